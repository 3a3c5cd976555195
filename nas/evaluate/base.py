"""The evaluator contract: what every evaluator takes and what it gives back.

Metric names are one vocabulary across the project: ``accuracy`` (validation), ``loss``
(validation), ``test_accuracy``, ``params``, ``flops``, ``size_mb``, ``latency_ms``,
``train_seconds``, and ``lat_ms_<device>`` for latencies read from a table; compression and
latency prediction add the names in ``DERIVED_METRIC_NAMES``.
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
# What compression and latency prediction add beside them: the rest of the one vocabulary.
DERIVED_METRIC_NAMES: tuple[str, ...] = (
    "fp32_accuracy",  # a quantized model's float twin, same weights
    "pruned_accuracy", "pruned_test_accuracy", "pruned_params", "sparsity",
    "latency_ms_predicted", "latency_ms_measured", "latency_ms_dense", "latency_ms_dense_predicted",
    "latency_ratio",
)


def is_metric_name(name: str) -> bool:
    """Return whether `name` belongs to the one metric vocabulary (table latencies are lat_ms_*)."""
    return name in METRIC_NAMES or name in DERIVED_METRIC_NAMES or name.startswith("lat_ms_")

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


@runtime_checkable
class DeclaresMetrics(Protocol):
    """An evaluator that says which metrics it gives, so a search checks its objectives before training.

    Every evaluator of nas declares them; a user's own evaluator may (the check is then skipped).
    """

    def metric_names(self) -> set[str]:
        """Return the names of the metrics every successful trial gives."""
        ...


@runtime_checkable
class CachesWeights(Protocol):
    """An evaluator that reads trained weights between trials (post-training quantization).

    The search loop sets ``weight_cache`` to the study's weights in the store; a wrapper declares
    the attribute and hands it to what it wraps.
    """

    weight_cache: Any
