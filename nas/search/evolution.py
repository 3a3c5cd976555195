"""Regularised (ageing) evolution, Real et al. 2019, with single-decision mutations.

The population is the `population` most recent completed trials (the oldest dies, whatever its
score); a parent is the best of `sample` members drawn at random, and the child is the parent with
one decision changed. Several objectives are scalarised (`Searcher.scalarize`). The population is a
function of the history and every draw comes from `step_rng`, so a restored run asks exactly what
an uninterrupted one would.
"""

from __future__ import annotations

from typing import Any

from nas.errors import SearchError
from nas.search.base import Searcher
from nas.search.mutation import mutate, random_unseen
from nas.space import Architecture


class RegularizedEvolution(Searcher):
    """Ageing evolution: tournament selection, one mutation per child, the oldest dies."""

    name = "evolution"
    resumable = True
    max_repeats = 100  # mutations tried before falling back to a random unseen architecture

    def configure(self, population: int = 10, sample: int = 3, mutations: int = 1,
                  **rest: Any) -> None:
        super().configure(**rest)
        population, sample, mutations = int(population), int(sample), int(mutations)
        if population < 2 or not 1 <= sample <= population or mutations < 1:
            raise SearchError(
                f"evolution: population={population}, sample={sample}, mutations={mutations}; "
                "need population >= 2, 1 <= sample <= population, mutations >= 1"
            )
        self.population, self.sample, self.mutations = population, sample, mutations

    def settings(self) -> dict[str, Any]:
        return {"population": self.population, "sample": self.sample, "mutations": self.mutations}

    def propose(self) -> Architecture:
        rng = self.step_rng()
        seen = self.seen()
        alive = self.completed()[-self.population:]
        if len(alive) >= self.population:
            contenders = rng.sample(alive, self.sample)
            parent = max(contenders, key=lambda o: self.scalarize(o.metrics)).arch
            for _ in range(self.max_repeats):
                child = mutate(self.space, parent, rng, self.mutations, self.decisions())
                if child.id not in seen:
                    return child
        return random_unseen(self.space, rng, seen)

