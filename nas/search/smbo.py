"""Sequential model-based optimisation: a GP surrogate over an architecture encoding, EI/UCB.

- Encoding: `nas.space.encoding.Encoder`, one-hot decisions plus BANANAS-style path counts when
  the space has DAG cells (`features="auto"`).
- Surrogate: one GP per objective (`nas.search.gp`), on normal scores of the observed values
  (two objectives: `targets`, e.g. latency on its values, with a linear kernel term, `linear`);
  kernel hyperparameters are refitted by marginal likelihood on a schedule that is a function of
  the number of trials only (every trial up to 30, then every ~10 %), so a restore is exact.
- Candidates: every unseen architecture when the space has at most `max_listed` of them (NAS-Bench-201
  has 15,625: scoring them all costs milliseconds), else mutations of the best architectures plus
  random ones.
- Acquisition: expected improvement (or UCB) for one objective; for two, the exact expected
  hypervolume improvement over the current front (`nas.search.mo`, `mo="ehvi"`; each objective
  modelled on its own scale, `targets`; every `top_every`-th ask, the expected improvement of
  the first objective alone), or the hypervolume improvement of the optimistic
  (mean + beta * std) point (`mo="hvi"`); for more, a random Chebyshev weighting of optimistic
  points (ParEGO-like).
- Parallel workers: pending architectures enter the fit with the predicted mean as their value
  (the kriging believer), so a batch spreads out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from nas.errors import SearchError, SpaceError
from nas.search.base import Observation, Searcher
from nas.search.gp import GP, expected_improvement, hypervolume_improvement_2d, normal_scores
from nas.search.mo import propose_ehvi
from nas.search.mutation import MAX_LISTED, listed, mutate, random_unseen
from nas.space import Architecture
from nas.space.encoding import Encoder


class SMBO(Searcher):
    """GP-based Bayesian optimisation over architectures (EI / UCB / hypervolume improvement)."""

    name = "smbo"
    resumable = True

    def configure(self, n_init: int | None = None, acquisition: str = "ei", beta: float = 2.0,
                  features: str = "auto", max_listed: int = MAX_LISTED, candidates: int = 1000,
                  max_train: int = 300, surrogate: str = "gp", mo: str = "ehvi",
                  targets: str = "rank,value", ref: str = "predicted", top_every: int = 4,
                  linear: str = "auto", **rest: Any) -> None:
        super().configure(**rest)
        if any(k not in ("auto", "none", "onehot") for k in linear.split(",")):
            raise SearchError(f"smbo: linear={linear!r}; valid: onehot (a dot-product kernel on the "
                              f"one-hot columns beside the squared-exponential one), none, or auto "
                              f"(onehot for objectives modelled on their values or logs, e.g. latency; "
                              f"none for those on ranks); one for all objectives or one per objective")
        self.linear = linear
        self.mo, self.targets, self.ref, self.top_every = mo, targets, ref, int(top_every)
        if ref not in ("observed", "predicted"):
            raise SearchError(f"smbo: ref={ref!r}; valid: observed, predicted")
        if mo not in ("ehvi", "hvi"):
            raise SearchError(f"smbo: mo={mo!r}; valid: ehvi (expected hypervolume improvement), "
                              f"hvi (improvement of the optimistic point)")
        if any(t not in ("rank", "value", "log") for t in targets.split(",")):
            raise SearchError(f"smbo: targets={targets!r}; valid: rank, value or log, one for all "
                              f"objectives or one per objective separated by commas")
        if acquisition not in ("ei", "ucb"):
            raise SearchError(f"smbo: acquisition={acquisition!r}; valid: ei, ucb")
        kinds = ("ridge", "svr", "gbm", "rf", "ensemble", "gp", "auto")
        if surrogate != "gp" and surrogate.removeprefix("predictor:") not in kinds:
            raise SearchError(f"smbo: surrogate={surrogate!r}; valid: gp (built in), or "
                              f"predictor:<kind> with kind in {kinds} (predictors.accuracy)")
        self.surrogate = surrogate
        if features not in ("auto", "onehot", "onehot+paths"):
            raise SearchError(f"smbo: features={features!r}; valid: auto, onehot, onehot+paths")
        if n_init is None:
            # Two objectives by EHVI: 6 random trials, then the model. On NAS-Bench-201 (10
            # seeds, 100 queries) that lifted pixel3's hypervolume ratio from 0.984 to 0.991,
            # raspi4 0.991 -> 0.992, titan 0.992 -> 0.992, gold 0.980 -> 0.977 (docs/searchers.md).
            # One objective keeps 10: the single-objective tables were measured with it.
            n_init = 6 if self._ehvi() else 10
        if int(n_init) < 2 or int(candidates) < 1 or float(beta) < 0:
            raise SearchError(f"smbo: n_init={n_init} (>= 2), candidates={candidates} (>= 1), "
                              f"beta={beta} (>= 0)")
        self.n_init, self.acquisition, self.beta = int(n_init), acquisition, float(beta)
        self.features, self.max_listed, self.n_candidates = features, int(max_listed), int(candidates)
        self.max_train = max(int(max_train), 20)
        self._encoder: Encoder | None = None
        self._group_cols: list[np.ndarray] | None = None
        self._rows: dict[str, np.ndarray] = {}
        self._listed: tuple[list[Architecture], np.ndarray] | None = None
        # (objective, refit point, targets kind) -> GP hyperparameters
        self._params: dict[tuple[int, int, str], np.ndarray] = {}
        self._pruned: list[Architecture] = []  # predicted infeasible: never candidates again

    def settings(self) -> dict[str, Any]:
        return {"n_init": self.n_init, "acquisition": self.acquisition, "beta": self.beta,
                "features": self.features, "max_listed": self.max_listed,
                "candidates": self.n_candidates, "max_train": self.max_train,
                "surrogate": self.surrogate, "mo": self.mo, "targets": self.targets,
                "ref": self.ref, "top_every": self.top_every, "linear": self.linear}

    def observe(self, obs: Observation) -> None:
        if obs.state == "PRUNED":
            self._pruned.append(obs.arch)

    # -- encoding ----------------------------------------------------------------------------------
    def encoder(self) -> Encoder:
        """Return the encoder (paths added when the space has DAG cells and features="auto")."""
        if self._encoder is None:
            wanted = "onehot+paths" if self.features == "auto" else self.features
            enc = Encoder(self.space, features=wanted)
            try:
                enc.dim  # noqa: B018 - builds the layout; path features can be impractical
            except SpaceError:
                if self.features != "auto":
                    raise
                enc = Encoder(self.space, features="onehot")
            self._encoder = enc
        return self._encoder

    def _encode(self, archs: list[Architecture]) -> np.ndarray:
        missing = [a for a in archs if a.id not in self._rows]
        if missing:
            for a, row in zip(missing, self.encoder().transform(missing), strict=True):
                self._rows[a.id] = row
        return np.stack([self._rows[a.id] for a in archs]) if archs else np.zeros((0, 0))

    def _groups(self) -> list[np.ndarray]:
        """Return the GP's column groups: the one-hot columns, then the path columns if any."""
        if self._group_cols is None:  # the encoder's layout is fixed once built
            names = self.encoder().column_names()
            paths = np.array([n.startswith("path[") for n in names])
            self._group_cols = [g for g in (np.flatnonzero(~paths), np.flatnonzero(paths)) if len(g)]
        return self._group_cols

    # -- candidates --------------------------------------------------------------------------------
    def _key(self, arch: Any) -> tuple:
        return tuple((label, type(arch.get(label)).__name__, arch.get(label))
                     for label in self.decisions())

    def _candidates(self, rng: Any, seen: set[str], best: list[Architecture]
                    ) -> tuple[list[Any], np.ndarray]:
        """Return the unseen candidates (mappings label -> value) and their encodings."""
        if self._listed is None and self.space.size() <= self.max_listed:
            # plain dicts (no Architecture ids) keep listing 15,625 architectures about a second
            archs = list(listed(self.space, plain=True))
            keys = {self._key(a): i for i, a in enumerate(archs)}
            self._listed = (archs, keys, self.encoder().transform(archs).astype(np.float64))
        if self._listed is not None:
            archs, keys, X = self._listed
            mask = np.ones(len(archs), dtype=bool)
            for a in [o.arch for o in self.history] + list(self.pending.values()) + self._pruned:
                i = keys.get(self._key(a))
                if i is not None:
                    mask[i] = False
            keep = np.flatnonzero(mask)
            return [archs[i] for i in keep], X[keep]
        out: dict[str, Architecture] = {}
        per_parent = max(1, self.n_candidates // (2 * max(len(best), 1)))
        for parent in best:
            for i in range(per_parent):
                child = mutate(self.space, parent, rng, 1 + i % 2, self.decisions())
                out.setdefault(child.id, child)
        while len(out) < self.n_candidates:
            a = self.space.sample(rng)
            out.setdefault(a.id, a)
        cands = [a for a in out.values() if a.id not in seen]
        return cands, self._encode(cands)

    # -- the model -----------------------------------------------------------------------------------
    def _training_set(self) -> tuple[list[Architecture], np.ndarray]:
        """Return the evaluated architectures and their 'higher is better' objective values."""
        done = [o for o in self.history if o.state in ("COMPLETE", "FAILED")]
        ok = [self.values(o.metrics) for o in done if o.state == "COMPLETE"]
        worst = np.min(np.array(ok), axis=0) if ok else np.zeros(len(self.objectives))
        y = np.array([self.values(o.metrics) if o.state == "COMPLETE" else worst for o in done])
        return [o.arch for o in done], y.reshape(len(done), len(self.objectives))

    @staticmethod
    def refit_point(n: int) -> int:
        """Return the training-set size whose hyperparameters serve a model of n points."""
        return n if n <= 30 else n - n % max(1, n // 10)

    def _linear(self, j: int, kind: str) -> list[np.ndarray]:
        """Return the column groups of objective j's dot-product kernel terms (its targets: `kind`).

        Latency is close to a sum of per-op costs: a linear term in the one-hot columns predicts a
        cell of skips and nones as cheap, where the squared-exponential kernel alone, far from
        every trial, falls back to the mean latency. Ranks (accuracy) are not additive that way.
        """
        per = self.linear.split(",")
        want = per[min(j, len(per) - 1)]
        if want == "onehot" or (want == "auto" and kind != "rank"):
            return [self._groups()[0]]  # the first group: the one-hot columns
        return []

    def _model(self, j: int, X: np.ndarray, z: np.ndarray, rows: np.ndarray | None = None,
               kind: str = "rank", prefix: Callable[[int], np.ndarray] | None = None) -> GP:
        """Return objective j's GP on (X, z), or on its `rows` only (hyperparameters: the schedule's).

        The hyperparameters are fitted on the targets of the first r trials (r = `refit_point`),
        `prefix(r)`, by default the normal scores of z's first r values: the same after a restore.
        """
        r = self.refit_point(len(z))
        gp = GP(self._groups(), linear=self._linear(j, kind))
        key = (j, r, kind)
        if key not in self._params:
            first = prefix(r) if prefix is not None else normal_scores_prefix(z, r)
            rng = np.random.default_rng([self.seed, j, r])
            self._params[key] = gp.fit_params(X[:r], first, rng)
        gp.log_params = self._params[key]
        if rows is not None:
            X, z = X[rows], z[rows]
        return gp.fit(X, z, refit=False)

    def draft(self) -> Architecture | tuple:
        """Return (rng, trials' archs, their objectives, candidates, candidates' encoding) for a
        model-based ask, or a random unseen Architecture while it is too early for a model (under
        n_init trials, one distinct value) or no candidate is left."""
        rng = self.step_rng()
        seen = self.seen()
        archs, y = self._training_set()
        if len(archs) < self.n_init or len(np.unique(y[:, 0])) < 2:
            return random_unseen(self.space, rng, seen)
        order = np.argsort(-y.sum(1))[:10]
        cands, Xc = self._candidates(rng, seen, [archs[i] for i in order])
        if not cands:
            return random_unseen(self.space, rng, seen)
        return rng, archs, y, cands, Xc

    def _ehvi(self) -> bool:
        """Return whether asks go through the two-objective EHVI path (`nas.search.mo`)."""
        return len(self.objectives) == 2 and self.mo == "ehvi" and self.surrogate == "gp"

    def propose(self) -> Architecture:
        if self._ehvi():
            return propose_ehvi(self)
        draft = self.draft()
        if isinstance(draft, Architecture):
            return draft
        rng, archs, y, cands, Xc = draft
        X = self._encode(archs)
        pending = list(self.pending.values())
        means, stds, zs = [], [], []
        keep = self._subset(y)
        for j in range(y.shape[1]):
            if self.surrogate != "gp":
                m, sd = self._predictor(X[keep], y[keep, j], pending, Xc)
                z = y[:, j]  # the predictor works in the objective's own units
            else:
                z = normal_scores(y[:, j])
                gp = self._model(j, X, z)
                if len(keep) < len(z):
                    gp = gp.fit(X[keep], z[keep], refit=False)
                if pending:  # kriging believer: pending architectures count as their predicted mean
                    Xp = self._encode(pending)
                    gp = gp.fit(np.vstack([X[keep], Xp]),
                                np.concatenate([z[keep], gp.predict(Xp)[0]]), refit=False)
                m, sd = gp.predict(Xc)
            means.append(m)
            stds.append(sd)
            zs.append(z)
        score = self._acquire(np.array(means).T, np.array(stds).T, np.array(zs).T, y, rng)
        return Architecture(cands[int(np.argmax(score))])

    def _predictor(self, X: np.ndarray, y: np.ndarray, pending: list[Architecture],
                   Xc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return the mean and std at Xc of a `predictors.accuracy.AccuracyPredictor` fitted on (X, y)."""
        from predictors.accuracy import AccuracyPredictor

        kind = self.surrogate.removeprefix("predictor:")
        p = AccuracyPredictor(kind, seed=self.seed).fit(X, y)
        if pending:  # kriging believer, as for the GP
            Xp = self._encode(pending)
            p = AccuracyPredictor(p.kind_, seed=self.seed).fit(
                np.vstack([X, Xp]), np.concatenate([y, p.predict(Xp)[0]]))
        mean, std = p.predict(Xc)
        # models without an uncertainty (ridge, svr, gbm) make EI a greedy choice of the best mean
        std = np.full(len(mean), 1e-9) if std is None else np.maximum(std, 1e-9)
        return mean, std

    def _subset(self, y: np.ndarray) -> np.ndarray:
        """Return the trials the GP is fitted on: all, or the best and the latest beyond max_train."""
        n = len(y)
        if n <= self.max_train:
            return np.arange(n)
        best = np.argsort(-np.max([normal_scores(c) for c in y.T], axis=0), kind="stable")
        top = set(best[: self.max_train // 2].tolist())
        recent = [i for i in range(n - 1, -1, -1) if i not in top][: self.max_train - len(top)]
        return np.array(sorted(top | set(recent)))

    def _acquire(self, mean: np.ndarray, std: np.ndarray, z: np.ndarray, y: np.ndarray,
                 rng: Any) -> np.ndarray:
        if mean.shape[1] == 1:
            if self.acquisition == "ei":
                return expected_improvement(mean[:, 0], std[:, 0], float(z.max()))
            return mean[:, 0] + self.beta * std[:, 0]
        # Several objectives: judge optimistic points on the objectives' own (linear) scales, where
        # the user's trade-off lives, normalised by the observed ranges.
        opt = np.column_stack([to_values(mean[:, j] + self.beta * std[:, j], z[:, j], y[:, j])
                               for j in range(y.shape[1])])
        lo, span = y.min(0), np.maximum(y.max(0) - y.min(0), 1e-12)
        opt, seen_pts = (opt - lo) / span, (y - lo) / span
        ref = np.full(y.shape[1], -0.1)
        if y.shape[1] == 2:
            gain = hypervolume_improvement_2d(opt, seen_pts[_non_dominated(seen_pts)], ref)
            if gain.max() > 0:
                return gain
        w = np.array([rng.random() for _ in range(y.shape[1])]) + 1e-3
        return (w * (opt - ref)).min(1) + 0.05 * (w * (opt - ref)).sum(1)


def to_values(zq: np.ndarray, z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Return normal scores mapped back to values: the empirical inverse, linear beyond the ends."""
    order = np.argsort(z)
    zs, ys = z[order], y[order]
    slope = (ys[-1] - ys[0]) / max(zs[-1] - zs[0], 1e-12)
    out = np.interp(zq, zs, ys)
    out = np.where(zq > zs[-1], ys[-1] + (zq - zs[-1]) * slope, out)
    return np.where(zq < zs[0], ys[0] + (zq - zs[0]) * slope, out)


def normal_scores_prefix(z_full: np.ndarray, r: int) -> np.ndarray:
    """Return the normal scores of the first r values' ranks (recomputed on the prefix)."""
    return normal_scores(np.asarray(z_full[:r]))


def _non_dominated(points: np.ndarray) -> np.ndarray:
    """Return the indices of the rows of `points` not dominated by another (all maximised)."""
    keep = []
    for i, p in enumerate(points):
        dominated = np.any(np.all(points >= p, axis=1) & np.any(points > p, axis=1))
        if not dominated:
            keep.append(i)
    return np.asarray(keep, dtype=int)
