"""Objectives (`accuracy:max`) and constraints (`latency_ms<=5`): parsed once, used everywhere."""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nas.errors import SearchError

if TYPE_CHECKING:
    import numpy as np

# One vocabulary for metric names everywhere (CLI, store, dashboard, JSON output).
KNOWN_METRICS = {
    "accuracy": "max", "loss": "min", "test_accuracy": "max", "params": "min", "flops": "min",
    "size_mb": "min", "latency_ms": "min", "train_seconds": "min", "pruned_accuracy": "max",
    "sparsity": "max",
}
HIDDEN_METRICS = frozenset({"test_accuracy"})  # recorded, never shown to a searcher
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_OPS = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt}


def _check_name(name: str, text: str) -> str:
    if not _NAME.match(name):
        raise SearchError(f"{text!r}: metric names are identifiers such as accuracy, latency_ms")
    if name in HIDDEN_METRICS:
        raise SearchError(
            f"{text!r}: {name} is the held-out test metric; searching on it leaks the test set. "
            "Use accuracy (validation) instead"
        )
    return name


@dataclass(frozen=True)
class Objective:
    """A metric to maximise or minimise."""

    name: str
    direction: str  # "max" | "min"

    @classmethod
    def parse(cls, text: str | Objective) -> Objective:
        """Return the objective written as `name:max`, `name:min`, or a bare known metric name."""
        if isinstance(text, Objective):
            return text
        name, _, direction = str(text).strip().partition(":")
        direction = direction or KNOWN_METRICS.get(name, "")
        if direction not in ("max", "min"):
            raise SearchError(
                f"objective {text!r}: write name:max or name:min (e.g. accuracy:max, latency_ms:min)"
            )
        return cls(_check_name(name, str(text)), direction)

    def sign(self) -> float:
        """Return +1 for max and -1 for min: `sign() * value` is always 'higher is better'."""
        return 1.0 if self.direction == "max" else -1.0

    def __str__(self) -> str:
        return f"{self.name}:{self.direction}"


@dataclass(frozen=True)
class Constraint:
    """A bound on a metric, e.g. `latency_ms<=5` or `params<=1e6`."""

    name: str
    op: str
    bound: float

    @classmethod
    def parse(cls, text: str | Constraint) -> Constraint:
        """Return the constraint written as `name<=value` (also >=, <, >)."""
        if isinstance(text, Constraint):
            return text
        m = re.match(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|<|>)\s*([-+0-9.eE]+)\s*$", str(text))
        try:
            bound = float(m.group(3)) if m else math.nan
        except ValueError:
            bound = math.nan
        if not m or not math.isfinite(bound):
            raise SearchError(
                f"constraint {text!r}: write name<=number (also >=, <, >), e.g. latency_ms<=5"
            )
        return cls(_check_name(m.group(1), str(text)), m.group(2), bound)

    def satisfied(self, metrics: Mapping[str, float]) -> bool | None:
        """Return whether `metrics` meet the bound, or None if the metric is not known."""
        v = metrics.get(self.name)
        if v is None or not math.isfinite(v):
            return None
        return bool(_OPS[self.op](v, self.bound))

    def __str__(self) -> str:
        return f"{self.name}{self.op}{self.bound:g}"


def parse_objectives(items: Iterable[str | Objective]) -> list[Objective]:
    """Return parsed objectives; at least one, no metric twice."""
    objs = [Objective.parse(t) for t in items]
    if not objs:
        raise SearchError("give at least one objective, e.g. accuracy:max")
    names = [o.name for o in objs]
    if len(set(names)) != len(names):
        raise SearchError(f"objectives name a metric twice: {names}")
    return objs


def parse_constraints(items: Iterable[str | Constraint]) -> list[Constraint]:
    """Return parsed constraints."""
    return [Constraint.parse(t) for t in items]


def feasible(metrics: Mapping[str, float], constraints: Sequence[Constraint]) -> bool:
    """Return whether no constraint is known to be violated."""
    return all(c.satisfied(metrics) is not False for c in constraints)


def visible(metrics: Mapping[str, float]) -> dict[str, float]:
    """Return the metrics a searcher may see (the held-out test metrics removed)."""
    return {k: v for k, v in metrics.items() if k not in HIDDEN_METRICS and not k.startswith("test_")}


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """Return whether a Pareto-dominates b (both 'higher is better')."""
    return all(x >= y for x, y in zip(a, b, strict=True)) and any(
        x > y for x, y in zip(a, b, strict=True)
    )


def _front_2d(values: np.ndarray) -> np.ndarray:
    """Return the non-dominated mask of 2-D points ('higher is better') by one sorted sweep."""
    import numpy as np

    order = np.lexsort((-values[:, 1], -values[:, 0]))
    a, b = values[order, 0], values[order, 1]
    # Every possible dominator of a point comes before it in this order. Identical points do
    # not dominate each other, so each run of identical points takes its first member's fate.
    first = np.ones(len(a), dtype=bool)
    first[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
    best_before = np.concatenate([[-np.inf], np.maximum.accumulate(b)[:-1]])
    dominated = (best_before >= b)[first][np.cumsum(first) - 1]
    mask = np.empty(len(a), dtype=bool)
    mask[order] = ~dominated
    return mask


def pareto_mask(values: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    """Return a boolean mask of the non-dominated rows of `values` ('higher is better')."""
    import numpy as np  # here, not at the top: `nas --help` and `nas trials` never need it

    values = np.asarray(values, dtype=float)
    n = len(values)
    if n == 0:
        return np.zeros(0, dtype=bool)
    if values.shape[1] == 2:
        return _front_2d(values)
    mask = np.zeros(n, dtype=bool)
    # Lexicographically descending: a point can only be dominated by one before it, and only
    # the front so far needs checking, so the loop is O(n * front) in numpy.
    order = np.lexsort(tuple(-values[:, k] for k in reversed(range(values.shape[1]))))
    front = np.empty((0, values.shape[1]))
    for i in order:
        p = values[i]
        if not len(front) or not np.any(np.all(front >= p, axis=1) & np.any(front > p, axis=1)):
            front = np.vstack([front, p])
            mask[i] = True
    return mask


def pareto_front(points: Sequence[Sequence[float]]) -> list[int]:
    """Return the indices of the non-dominated points ('higher is better' in every coordinate)."""
    return [i for i, kept in enumerate(pareto_mask(points)) if kept]
