"""The evaluator contract: what every evaluator takes and what it gives back.

Metric names are one vocabulary across the project: ``accuracy`` (validation), ``loss``
(validation), ``test_accuracy``, ``params``, ``flops``, ``size_mb``, ``latency_ms``,
``train_seconds``, and ``lat_ms_<device>`` for latencies read from a table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch

METRIC_NAMES: tuple[str, ...] = (
    "accuracy",
    "loss",
    "test_accuracy",
    "params",
    "flops",
    "size_mb",
    "latency_ms",
    "train_seconds",
)

EpochCallback = Callable[[dict], None]


class TrialFailed(Exception):
    """One trial failed (e.g. its training diverged); the search loop records it and goes on.

    Deliberately not a ``NasError``: nothing the user wrote is wrong, this architecture just
    did not train.
    """


@dataclass
class EvalResult:
    """What an evaluator measured for one architecture.

    ``predicted`` names the metrics that came from a model rather than a measurement;
    ``curve`` holds one dict per epoch; ``state_dict`` the final weights (CPU tensors) where
    the evaluator trained a model; ``extra`` anything JSON-able worth keeping.
    """

    metrics: dict[str, float]
    predicted: list[str] = field(default_factory=list)
    curve: list[dict] = field(default_factory=list)
    state_dict: dict[str, torch.Tensor] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Evaluator(Protocol):
    """Turns an architecture (and a way to build it) into metrics."""

    name: str

    def describe(self) -> dict:
        """Return the evaluator's settings as JSON-able data, stored with the study."""
        ...

    def evaluate(
        self,
        build: Callable[[], torch.nn.Module],
        arch: Mapping[str, object],
        *,
        seed: int,
        on_epoch: EpochCallback | None = None,
    ) -> EvalResult:
        """Return the metrics of ``arch``; ``build()`` gives a fresh model of it."""
        ...
