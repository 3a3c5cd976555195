"""The one contract every searcher keeps: ask / ask_batch / tell / restore.

Searchers see the space, the objectives and constraints, and the *visible* (validation) metrics of
finished trials, never test metrics and never the database. A searcher that optimises one number
uses `scalarize`: the single objective itself, or, for several, an augmented Chebyshev scalarisation
of online-normalised objectives with equal weights (documented in README's searcher guide).
"""

from __future__ import annotations

import math
import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from nas.errors import SearchError
from nas.objectives import (
    Constraint,
    Objective,
    feasible,
    pareto_front,
    parse_constraints,
    parse_objectives,
    visible,
)
from nas.space import Architecture, Space

Estimator = Callable[[Architecture], Mapping[str, float]]


@dataclass(frozen=True)
class Observation:
    """A finished trial as a searcher sees it."""

    arch: Architecture
    metrics: Mapping[str, float] = field(default_factory=dict)
    state: str = "COMPLETE"  # COMPLETE | FAILED | PRUNED


class Searcher(ABC):
    """Proposes architectures and learns from their metrics."""

    name: ClassVar[str] = "base"
    #: how many proposals in a row may be predicted-infeasible before ask() gives up
    max_infeasible: ClassVar[int] = 1000
    #: whether `restore(history)` gives exactly the next asks of an uninterrupted run
    resumable: ClassVar[bool] = False

    def __init__(self, space: Space, objectives: Sequence[str | Objective] = ("accuracy:max",), *,
                 seed: int = 0, constraints: Sequence[str | Constraint] = (),
                 estimate: Estimator | None = None, **settings: Any) -> None:
        self.space = space
        self.objectives = parse_objectives(objectives)
        self.constraints = parse_constraints(constraints)
        self.seed = seed
        self.estimate = estimate
        self.rng = random.Random(seed)
        self.history: list[Observation] = []
        self.pending: dict[str, Architecture] = {}
        self.n_skipped = 0  # candidates rejected by predicted constraints, never evaluated
        self.infeasible: set[str] = set()  # their ids: `seen()` includes them, so none returns
        self._attempt = 0  # index of the current proposal within one ask (see step_rng)
        self._decisions: dict[str, tuple] | None = None
        self._bounds: dict[str, tuple[float, float]] = {}
        self.configure(**settings)

    # -- what subclasses write -----------------------------------------------------------------
    def configure(self, **settings: Any) -> None:
        """Take searcher-specific settings (`--searcher-arg k=v`); unknown ones are an error."""
        if settings:
            raise SearchError(f"searcher '{self.name}' takes no settings, got {sorted(settings)}")

    @abstractmethod
    def propose(self) -> Architecture:
        """Return the next candidate (feasibility and pending bookkeeping are done by `ask`)."""

    def observe(self, obs: Observation) -> None:  # noqa: B027 - optional hook
        """Update the searcher's model with one finished trial (default: nothing beyond history)."""

    def settings(self) -> dict[str, Any]:
        """Return the JSON-able settings that, with the seed, reproduce this searcher."""
        return {}

    # -- the contract ----------------------------------------------------------------------------
    def ask(self) -> Architecture:
        """Return an architecture to evaluate next, skipping predicted-infeasible ones."""
        for attempt in range(self.max_infeasible):
            self._attempt = attempt
            arch = self.propose()
            if self.is_feasible(arch):
                self.pending[arch.id] = arch
                return arch
            self.n_skipped += 1
            self.infeasible.add(arch.id)
            self.tell(arch, None, state="PRUNED", _count=False)
        raise SearchError(
            f"{self.max_infeasible} candidates in a row violate the constraints "
            f"{[str(c) for c in self.constraints]} by prediction; loosen them"
        )

    def ask_batch(self, n: int) -> list[Architecture]:
        """Return n architectures to evaluate in parallel (pending ones are known to `propose`)."""
        return [self.ask() for _ in range(n)]

    def tell(self, arch: Architecture, metrics: Mapping[str, float] | None,
             state: str = "COMPLETE", *, _count: bool = True) -> None:
        """Record the result of a trial (metrics None or state FAILED for a failed one)."""
        self.pending.pop(arch.id, None)
        shown = visible(metrics or {})
        if state == "COMPLETE" and not self._has_objectives(shown):
            state = "FAILED"
        obs = Observation(arch, shown, state)
        if state == "COMPLETE":
            self._update_bounds(shown)
        if _count:
            self.history.append(obs)
        self.observe(obs)

    def restore(self, history: Iterable[Observation]) -> None:
        """Rebuild the state from stored trials, in their original order (for --resume)."""
        for obs in history:
            self.tell(obs.arch, obs.metrics, obs.state)

    # -- helpers for subclasses ------------------------------------------------------------------
    def is_feasible(self, arch: Architecture) -> bool:
        """Return whether the estimated metrics of `arch` meet every constraint."""
        if not self.constraints or self.estimate is None:
            return True
        return feasible(self.estimate(arch), self.constraints)

    def step_rng(self, salt: str = "") -> random.Random:
        """Return a generator seeded by (seed, trials told, pending, attempt): resumable randomness.

        Everything it depends on is rebuilt by `restore`, so a searcher that draws only from it (and
        keeps no other state than what `observe` derives from the history) resumes exactly.
        """
        key = f"{self.seed}/{len(self.history)}/{len(self.pending)}/{self._attempt}/{salt}"
        return random.Random(key)

    def decisions(self) -> dict[str, tuple]:
        """Return `space.decisions()` (label -> options), computed once: it walks the whole space."""
        if self._decisions is None:
            self._decisions = self.space.decisions()
        return self._decisions

    def seen(self) -> set[str]:
        """Return the ids of architectures already told, pending, or predicted infeasible."""
        return {o.arch.id for o in self.history} | set(self.pending) | self.infeasible

    def completed(self) -> list[Observation]:
        """Return the successful observations."""
        return [o for o in self.history if o.state == "COMPLETE"]

    def front(self) -> list[Observation]:
        """Return the completed observations whose objectives no other completed one dominates."""
        done = self.completed()
        return [done[i] for i in pareto_front([self.values(o.metrics) for o in done])]

    def values(self, metrics: Mapping[str, float]) -> list[float]:
        """Return the objectives as 'higher is better' numbers."""
        return [o.sign() * float(metrics[o.name]) for o in self.objectives]

    def scalarize(self, metrics: Mapping[str, float], weights: Sequence[float] | None = None
                  ) -> float:
        """Return one 'higher is better' score: the objective, or a Chebyshev scalarisation."""
        vals = self.values(metrics)
        if len(vals) == 1:
            return vals[0]
        w = weights or [1.0 / len(vals)] * len(vals)
        normed = []
        for o, v, wi in zip(self.objectives, vals, w, strict=True):
            lo, hi = self._bounds.get(o.name, (v, v))
            lo, hi = sorted((o.sign() * lo, o.sign() * hi))
            normed.append(wi * ((v - lo) / (hi - lo) if hi > lo else 0.5))
        # augmented Chebyshev: the worst weighted objective dominates, the sum breaks ties
        return min(normed) + 0.05 * sum(normed)

    def _has_objectives(self, metrics: Mapping[str, float]) -> bool:
        return all(
            o.name in metrics and math.isfinite(float(metrics[o.name])) for o in self.objectives
        )

    def _update_bounds(self, metrics: Mapping[str, float]) -> None:
        for o in self.objectives:
            v = float(metrics[o.name])
            lo, hi = self._bounds.get(o.name, (v, v))
            self._bounds[o.name] = (min(lo, v), max(hi, v))
