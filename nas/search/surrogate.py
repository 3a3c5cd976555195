"""The searchers' shared surrogates: models of the objectives over an architecture encoding.

`GPSurrogate` is the model of SMBO (every acquisition, EHVI included) and of LINAS's predictors:
one GP per objective (`nas.search.gp`) on the `Encoder` features, its hyperparameters fitted on a
schedule that is a function of the number of trials only (so a restore refits at the same points),
and pending architectures believed at their predicted means (the kriging believer). Acquisitions
are pure functions of its predictions (`expected_improvement`, `ucb` and
`hypervolume_improvement_2d` in `nas.search.gp`, EHVI in `nas.search.mo`): the searchers choose
them, the surrogate only predicts. `RidgeSurrogate` is MCTS's: a ridge regression cheap enough to
rank rollouts on every ask.

The surrogates keep only what derives from the trials told to them (encodings, fitted
hyperparameters), so a searcher that rebuilds them from its history resumes exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from nas.errors import SpaceError
from nas.search.gp import GP, normal_scores
from nas.space import Architecture, Space
from nas.space.encoding import Encoder

if TYPE_CHECKING:
    from nas.search.base import Searcher


def encoder_for(space: Space, features: str = "auto") -> Encoder:
    """Return the encoder of `space`: one-hot decisions, plus DAG path counts for "auto" when
    the space has DAG cells and their paths are practical (else one-hot alone)."""
    enc = Encoder(space, features="onehot+paths" if features == "auto" else features)
    try:
        enc.dim  # noqa: B018 - builds the layout; path features can be impractical
    except SpaceError:
        if features != "auto":
            raise
        enc = Encoder(space, features="onehot")
    return enc


def refit_point(n: int) -> int:
    """Return the training-set size whose hyperparameters serve a model of n points (SMBO's
    schedule: every trial up to 30, then every ~10 %)."""
    return n if n <= 30 else n - n % max(1, n // 10)


def training_set(searcher: Searcher) -> tuple[list[Architecture], np.ndarray]:
    """Return the searcher's evaluated architectures and their 'higher is better' objective
    values; a failed trial counts as the worst value seen in each objective."""
    done = [o for o in searcher.history if o.state in ("COMPLETE", "FAILED")]
    ok = [searcher.values(o.metrics) for o in done if o.state == "COMPLETE"]
    n_obj = len(searcher.objectives)
    worst = np.min(np.array(ok), axis=0) if ok else np.zeros(n_obj)
    y = np.array([searcher.values(o.metrics) if o.state == "COMPLETE" else worst for o in done])
    return [o.arch for o in done], y.reshape(len(done), n_obj)


class GPSurrogate:
    """One GP per objective on the encoding of a space's architectures (see the module's doc).

    `linear` ("auto", "none" or "onehot"; one for all objectives or one per objective, comma
    separated) adds a dot-product kernel term on the one-hot columns; `max_train` caps the trials a
    GP is fitted on; `schedule(n)` is the training-set size whose hyperparameters serve n trials.
    """

    def __init__(self, space: Space, *, seed: int, features: str = "auto", linear: str = "auto",
                 max_train: int = 300, schedule: Callable[[int], int] = refit_point) -> None:
        self.space, self.seed, self.features, self.linear = space, seed, features, linear
        self.max_train, self.schedule = max_train, schedule
        self._encoder: Encoder | None = None
        self._group_cols: list[np.ndarray] | None = None
        self._rows: dict[str, np.ndarray] = {}
        # (objective, refit point, targets kind) -> GP hyperparameters
        self._params: dict[tuple[int, int, str], np.ndarray] = {}

    # -- encoding ----------------------------------------------------------------------------------
    def encoder(self) -> Encoder:
        """Return the encoder (built once: its layout walks the space)."""
        if self._encoder is None:
            self._encoder = encoder_for(self.space, self.features)
        return self._encoder

    def encode(self, archs: Sequence[Architecture]) -> np.ndarray:
        """Return the encodings of `archs` (float32 rows, cached by architecture id)."""
        missing = [a for a in archs if a.id not in self._rows]
        if missing:
            for a, row in zip(missing, self.encoder().transform(missing), strict=True):
                self._rows[a.id] = row
        return np.stack([self._rows[a.id] for a in archs]) if archs else np.zeros((0, 0))

    def groups(self) -> list[np.ndarray]:
        """Return the GP's column groups: the one-hot columns, then the path columns if any."""
        if self._group_cols is None:  # the encoder's layout is fixed once built
            names = self.encoder().column_names()
            paths = np.array([n.startswith("path[") for n in names])
            self._group_cols = [g for g in (np.flatnonzero(~paths), np.flatnonzero(paths)) if len(g)]
        return self._group_cols

    def linear_groups(self, j: int, kind: str) -> list[np.ndarray]:
        """Return the column groups of objective j's dot-product kernel terms (its targets: `kind`).

        Latency is close to a sum of per-op costs: a linear term in the one-hot columns predicts a
        cell of skips and nones as cheap, where the squared-exponential kernel alone, far from
        every trial, falls back to the mean latency. Ranks (accuracy) are not additive that way.
        """
        per = self.linear.split(",")
        want = per[min(j, len(per) - 1)]
        if want == "onehot" or (want == "auto" and kind != "rank"):
            return [self.groups()[0]]  # the first group: the one-hot columns
        return []

    # -- fitting -------------------------------------------------------------------------------------
    def subset(self, y: np.ndarray) -> np.ndarray:
        """Return the trials the GPs are fitted on: all, or the best and the latest beyond max_train."""
        n = len(y)
        if n <= self.max_train:
            return np.arange(n)
        best = np.argsort(-np.max([normal_scores(c) for c in y.T], axis=0), kind="stable")
        top = set(best[: self.max_train // 2].tolist())
        recent = [i for i in range(n - 1, -1, -1) if i not in top][: self.max_train - len(top)]
        return np.array(sorted(top | set(recent)))

    def model(self, j: int, X: np.ndarray, z: np.ndarray, rows: np.ndarray | None = None,
              kind: str = "rank", prefix: Callable[[int], np.ndarray] | None = None) -> GP:
        """Return objective j's GP on (X, z), or on its `rows` only (hyperparameters: the schedule's).

        X and z hold every trial in the order told. The hyperparameters are fitted on the targets
        of the first r trials (r = `schedule(len(z))`), `prefix(r)`, by default the normal scores
        of z's first r values: the same after a restore.
        """
        r = self.schedule(len(z))
        gp = GP(self.groups(), linear=self.linear_groups(j, kind))
        key = (j, r, kind)
        if key not in self._params:
            first = prefix(r) if prefix is not None else normal_scores(np.asarray(z[:r]))
            rng = np.random.default_rng([self.seed, j, r])
            self._params[key] = gp.fit_params(X[:r], first, rng)
        gp.log_params = self._params[key]
        if rows is not None:
            X, z = X[rows], z[rows]
        return gp.fit(X, z, refit=False)

    def believer(self, j: int, X: np.ndarray, z: np.ndarray, rows: np.ndarray,
                 pending: Sequence[Architecture], kind: str = "rank",
                 prefix: Callable[[int], np.ndarray] | None = None) -> tuple[GP, np.ndarray]:
        """Return objective j's GP on the trials' `rows` and the pending architectures, and the
        targets those were given: their predicted means (the kriging believer, so that a batch
        of asks spreads out). Without pending architectures: `model(...)` and no targets."""
        gp = self.model(j, X, z, rows, kind=kind, prefix=prefix)
        if not pending:
            return gp, np.zeros(0)
        Xp = self.encode(pending)
        believed = gp.predict(Xp)[0]
        return gp.fit(np.vstack([X[rows], Xp]), np.concatenate([z[rows], believed]), refit=False), believed


class RidgeSurrogate:
    """Ridge regression on the architecture encoding: a cheap model to rank rollouts (microseconds)."""

    def __init__(self, space: Space, alpha: float = 1.0) -> None:
        self.space, self.alpha = space, alpha
        self._encoder: Encoder | None = None
        self._rows: list[np.ndarray] = []
        self._y: list[float] = []
        self._w: np.ndarray | None = None

    def _encode(self, archs: list[Architecture]) -> np.ndarray:
        if self._encoder is None:
            self._encoder = encoder_for(self.space)
        return self._encoder.transform(archs).astype(np.float64)

    def add(self, arch: Architecture, reward: float) -> None:
        """Record one (architecture, reward) pair."""
        self._rows.append(self._encode([arch])[0])
        self._y.append(reward)
        self._w = None

    def predict(self, archs: list[Architecture]) -> np.ndarray:
        """Return the predicted rewards of `archs`."""
        if self._w is None:
            X, y = np.array(self._rows), np.array(self._y)
            X = np.hstack([X, np.ones((len(X), 1))])
            # ranks, not raw values: broken architectures (10 % accuracy) would dominate a fit
            z = np.argsort(np.argsort(y)) / max(len(y) - 1, 1)
            self._w = np.linalg.solve(X.T @ X + self.alpha * np.eye(X.shape[1]), X.T @ z)
        X = self._encode(archs)
        return np.hstack([X, np.ones((len(X), 1))]) @ self._w
