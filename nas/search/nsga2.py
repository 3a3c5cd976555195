"""NSGA-II (pymoo) on the mixed discrete decisions, driven one architecture at a time.

The genotype has one integer gene per decision of the space (`space.decisions()`), the option's
index; decoding walks the space with those genes as the chooser, so genes of inactive decisions
are carried but unused. Variation is uniform crossover and a random reset of each gene with
probability 1/n (categorical options have no order, so SBX / polynomial mutation do not fit).

pymoo's algorithm is driven by ask/tell a generation at a time: `ask()` hands out the members of
the current offspring population one by one (members that repeat a finished architecture are
filled in from memory at no cost); once every member is told, the generation is told to pymoo.
While members are still running elsewhere (parallel workers), extra asks get mutations of the
best architectures so far. `restore` seeds the first population with the latest trials; it is not
an exact replay (`resumable = False`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nas.errors import SearchError
from nas.search.base import Observation, Searcher
from nas.search.mutation import arch_to_genes, genes_to_arch, mutate, random_unseen
from nas.space import Architecture

WORST = 1e12  # pymoo minimises; failed or infeasible members get this in every objective


def operators() -> tuple[Any, Any]:
    """Return pymoo's crossover and mutation for categorical genes (also LINAS's, on predictions).

    Uniform crossover, and a reset of each gene with probability 1/n to another option: options
    have no order, so SBX / polynomial mutation do not fit.
    """
    from pymoo.core.mutation import Mutation
    from pymoo.operators.crossover.ux import UX

    class ResetMutation(Mutation):
        """Sets each gene, with probability 1/n, to another option drawn uniformly."""

        def _do(self, problem: Any, X: np.ndarray, random_state: Any = None, **kwargs: Any
                ) -> np.ndarray:
            X = X.copy()
            hit = random_state.random(X.shape) < 1.0 / X.shape[1]
            shift = random_state.integers(1, np.maximum(problem.xu + 1, 2), size=X.shape)
            X[hit] = ((X + shift) % (problem.xu + 1))[hit]
            return X

    return UX(), ResetMutation()


class NSGA2Search(Searcher):
    """pymoo's NSGA-II over decision genes (several objectives natively; one works too)."""

    name = "nsga2"

    def configure(self, pop_size: int = 20, **rest: Any) -> None:
        super().configure(**rest)
        if int(pop_size) < 4:
            raise SearchError(f"nsga2: pop_size={pop_size}; give at least 4 (e.g. 20)")
        self.pop_size = int(pop_size)
        self._algorithm: Any = None
        self._pop: Any = None
        self._archs: list[Architecture] = []
        self._F: np.ndarray = np.zeros((0, 0))
        self._queue: list[int] = []
        self._known: dict[str, np.ndarray] = {}

    def settings(self) -> dict[str, Any]:
        return {"pop_size": self.pop_size}

    def _setup(self) -> None:
        from pymoo.algorithms.moo.nsga2 import NSGA2
        from pymoo.core.problem import Problem
        from pymoo.operators.sampling.rnd import IntegerRandomSampling

        options = [len(o) for o in self.decisions().values()]
        problem = Problem(n_var=len(options), n_obj=len(self.objectives), xl=0,
                          xu=np.array(options) - 1, vtype=int)
        rng = self.step_rng("setup")
        latest = [o.arch for o in self.completed()][-self.pop_size:]
        sampling: Any = IntegerRandomSampling()
        if latest:  # restore: start from the latest trials, topped up with random genotypes
            genes = [arch_to_genes(self.decisions(), a, rng) for a in latest]
            genes += [[rng.randrange(n) for n in options] for _ in range(self.pop_size - len(genes))]
            sampling = np.array(genes)
        crossover, mutation = operators()
        self._algorithm = NSGA2(pop_size=self.pop_size, sampling=sampling, crossover=crossover,
                                mutation=mutation, eliminate_duplicates=True)
        self._algorithm.setup(problem, seed=self.seed, verbose=False)

    def _next_generation(self) -> None:
        if self._pop is not None:
            self._pop.set("F", self._F)
            self._algorithm.tell(infills=self._pop)
        self._pop = self._algorithm.ask()
        labels = list(self.decisions())
        self._archs = [genes_to_arch(self.space, x, labels) for x in self._pop.get("X")]
        self._F = np.full((len(self._archs), len(self.objectives)), np.nan)
        self._queue = list(range(len(self._archs)))

    def _fill_known(self) -> None:
        for i, a in enumerate(self._archs):
            if np.isnan(self._F[i, 0]) and a.id in self._known:
                self._F[i] = self._known[a.id]

    def propose(self) -> Architecture:
        if self._algorithm is None:
            self._setup()
        for _ in range(100):
            self._fill_known()
            self._queue = [i for i in self._queue if np.isnan(self._F[i, 0])]
            pending = self.seen() - set(self._known)
            while self._queue:
                i = self._queue.pop(0)
                if self._archs[i].id not in pending:
                    return self._archs[i]
            if not np.isnan(self._F).any():
                self._next_generation()
                continue
            break
        # members still running elsewhere: keep a parallel worker busy with a nearby architecture
        rng = self.step_rng("extra")
        done = self.completed()
        if done:
            best = max(done, key=lambda o: self.scalarize(o.metrics)).arch
            for _ in range(50):
                child = mutate(self.space, best, rng, 1, self.decisions())
                if child.id not in self.seen():
                    return child
        return random_unseen(self.space, rng, self.seen())

    def observe(self, obs: Observation) -> None:
        if obs.state == "COMPLETE":
            f = -np.array(self.values(obs.metrics))
        else:
            f = np.full(len(self.objectives), WORST)
        self._known[obs.arch.id] = f
        if self._pop is not None:
            self._fill_known()
