"""Reading results: the best trial, or the Pareto front, among feasible completed trials."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol

from nas.objectives import Constraint, Objective, feasible, pareto_front


class TrialLike(Protocol):
    state: Any
    metrics: dict[str, float]


def _usable(t: TrialLike, objectives: Sequence[Objective], constraints: Sequence[Constraint]) -> bool:
    if str(t.state) != "COMPLETE":
        return False
    if any(not math.isfinite(float(t.metrics.get(o.name, math.nan))) for o in objectives):
        return False
    return feasible(t.metrics, constraints)


def best_trials(trials: Sequence[TrialLike], objectives: Sequence[Objective],
                constraints: Sequence[Constraint] = ()) -> list[Any]:
    """Return the best feasible trial (one objective) or the Pareto front (several), best first."""
    ok = [t for t in trials if _usable(t, objectives, constraints)]
    if not ok:
        return []
    points = [[o.sign() * float(t.metrics[o.name]) for o in objectives] for t in ok]
    if len(objectives) == 1:
        return [ok[max(range(len(ok)), key=lambda i: points[i][0])]]
    front = [ok[i] for i in pareto_front(points)]
    first = objectives[0]
    return sorted(front, key=lambda t: -first.sign() * float(t.metrics[first.name]))
