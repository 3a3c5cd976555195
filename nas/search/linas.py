"""Predictor-driven NSGA-II in the spirit of LINAS / SimQ-NAS (Intel Labs, 2022-2023).

Rounds of: fit one light predictor per objective on the trials so far (SMBO's surrogate,
`nas.search.surrogate.GPSurrogate`: a GP on the `Encoder` features, normal scores of the values),
run pymoo's NSGA-II for `generations` x `pop_size` predictor calls on optimistic predictions
(mean + beta * std), and queue the best `batch` unseen members of the final population (by
non-dominated rank, then crowding) for real evaluation. Real trials are spent only where the
predictors expect the front to move.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nas.errors import SearchError
from nas.search.base import Searcher
from nas.search.gp import normal_scores, ucb
from nas.search.mutation import genes_to_arch, is_flat, random_unseen
from nas.search.nsga2 import operators
from nas.search.surrogate import GPSurrogate, training_set
from nas.search.surrogate import refit_point as smbo_refit_point
from nas.space import Architecture


class LINAS(Searcher):
    """NSGA-II on surrogate predictions; the best predicted members are evaluated for real."""

    name = "linas"

    def configure(self, n_init: int = 10, batch: int = 5, pop_size: int = 40,
                  generations: int = 10, beta: float = 0.5, **rest: Any) -> None:
        super().configure(**rest)
        if min(int(n_init), int(batch), int(generations)) < 1 or int(pop_size) < 4:
            raise SearchError(f"linas: n_init={n_init}, batch={batch}, generations={generations} "
                              f"(each >= 1), pop_size={pop_size} (>= 4)")
        self.n_init, self.batch, self.pop_size = int(n_init), int(batch), int(pop_size)
        self.generations, self.beta = int(generations), float(beta)
        self._queue: list[Architecture] = []
        self._decoded: dict[bytes, Architecture] = {}  # genes -> architecture, across rounds
        self._flat: bool | None = None  # every decision always active: genes map straight to values
        # SMBO's surrogate with SMBO's defaults, refitted on LINAS's sparser schedule
        self._model = GPSurrogate(self.space, seed=self.seed, schedule=refit_point)

    def settings(self) -> dict[str, Any]:
        return {"n_init": self.n_init, "batch": self.batch, "pop_size": self.pop_size,
                "generations": self.generations, "beta": self.beta}

    def propose(self) -> Architecture:
        seen = self.seen()
        self._queue = [a for a in self._queue if a.id not in seen]
        done = [o for o in self.history if o.state in ("COMPLETE", "FAILED")]
        if not self._queue and len(done) >= self.n_init and len(self.completed()) >= 2:
            self._queue = self._round(seen)
        if self._queue:
            return self._queue.pop(0)
        return random_unseen(self.space, self.step_rng(), seen)

    def _round(self, seen: set[str]) -> list[Architecture]:
        """Return up to `batch` unseen architectures chosen by NSGA-II on the predictors."""
        from pymoo.algorithms.moo.nsga2 import NSGA2
        from pymoo.core.problem import Problem
        from pymoo.optimize import minimize
        from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

        archs, y = training_set(self)
        X = self._model.encode(archs)
        # beyond max_train (300) trials the GPs see the best and the latest only, as in SMBO:
        # an ask stays well under 50 ms at 1,000 trials
        rows = self._model.subset(y)
        models = [self._model.model(j, X, normal_scores(y[:, j]), rows) for j in range(y.shape[1])]
        labels = list(self.decisions())
        options = list(self.decisions().values())
        if self._flat is None:
            self._flat = is_flat(self.space)
        if len(self._decoded) > 100_000:  # a huge space: keep the cache bounded
            self._decoded.clear()
        decoded = self._decoded

        def decode(x: np.ndarray) -> Architecture:
            key = np.asarray(x, dtype=np.int64).tobytes()
            if key not in decoded:
                # a walk costs milliseconds; in a flat space the genes are the decisions' values
                decoded[key] = (Architecture({label: opts[int(g) % len(opts)]
                                              for label, opts, g in zip(labels, options, x, strict=True)})
                                if self._flat else genes_to_arch(self.space, x, labels))
            return decoded[key]

        def predict(genes: np.ndarray) -> np.ndarray:
            Xc = self._model.encode([decode(x) for x in genes])
            preds = [m.predict(Xc) for m in models]
            return -np.array([ucb(mu, sd, self.beta) for mu, sd in preds]).T

        class Surrogate(Problem):
            def _evaluate(self, x: np.ndarray, out: dict, *args: Any, **kwargs: Any) -> None:
                out["F"] = predict(x)

        sizes = np.array([len(o) for o in options])
        crossover, mutation = operators()
        algo = NSGA2(pop_size=self.pop_size, crossover=crossover, mutation=mutation,
                     eliminate_duplicates=True)
        seed = int(self.step_rng("round").randrange(2**31))
        res = minimize(Surrogate(n_var=len(options), n_obj=y.shape[1], xl=0, xu=sizes - 1,
                                 vtype=int), algo, ("n_gen", self.generations), seed=seed,
                       verbose=False)
        genes, F = res.pop.get("X"), res.pop.get("F")
        fronts = NonDominatedSorting().do(F)
        picked: list[Architecture] = []
        for front in fronts:
            for i in sorted(front, key=lambda i: F[i].sum()):
                a = decode(genes[i])
                if a.id not in seen and all(a.id != p.id for p in picked):
                    picked.append(a)
                if len(picked) >= self.batch:
                    return picked
        return picked


def refit_point(n: int) -> int:
    """Return the training-set size whose GP hyperparameters serve n trials in LINAS.

    SMBO's schedule (every trial up to 30, then every ~10 %) up to 300 trials, then every 25 %:
    beyond 300 the GPs see 300 trials anyway, and a refit (two marginal-likelihood fits) costs more
    than a whole round. A function of n alone, so a restore refits at the same points.
    """
    if n <= 300:
        return smbo_refit_point(n)
    r = 300
    while r * 1.25 <= n:
        r = int(r * 1.25)
    return r
