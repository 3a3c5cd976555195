"""Latency in the search: predicted from a device profile by default, measured when asked.

A search with `latency_ms` in its objectives or constraints uses the profile of this device
(`nas/hardware/profiles/<device-id>.json`, made by `nas profile`) to predict each candidate's latency
without measuring it; constraints on latency then skip predicted-infeasible candidates before any
training; the final Pareto front is measured again (`nas.run.remeasure`). In a space with a
quantization policy each architecture is predicted as it runs quantized (int8 kernels and
fp32<->int8 transitions; the profile needs `nas profile --int8`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from nas.errors import HardwareError
from nas.evaluate import CachesWeights, EvalResult, count_params
from nas.objectives import Constraint, Objective
from nas.space import Architecture, Space

LATENCY = "latency_ms"


class LatencyModel:
    """Predicted latency (ms) of a space's architectures on one device and batch size."""

    def __init__(self, space: Space, profile: str | Path, batch_size: int = 1) -> None:
        self.space, self.profile, self.batch_size = space, Path(profile), batch_size
        self._predictor = None
        self._cache: dict[str, dict[str, float]] = {}  # arch id -> estimate: asks repeat candidates

    def predict(self, arch: Architecture) -> float:
        """Return the predicted latency of `arch` in ms (cached per architecture)."""
        return self.estimate(arch)[LATENCY]

    def estimate(self, arch: Architecture) -> dict[str, float]:
        """Return the metrics known before training: predicted latency and exact parameters."""
        if arch.id not in self._cache:
            model = self.space.build(arch)  # built once for both figures
            self._cache[arch.id] = {LATENCY: self._predict(model, arch),
                                    "params": float(count_params(model))}
        return self._cache[arch.id]

    def _predict(self, model: Any, arch: Architecture) -> float:
        if self._predictor is None:
            if not self.profile.is_file():
                raise HardwareError(
                    f"no device profile at {self.profile}: run `nas profile --space SPACE` on this "
                    "machine first, or search with --latency measured")
            from nas.predictors import LatencyPredictor

            self._predictor = LatencyPredictor.load(self.profile)
        # A quantized space's architecture runs per its policy: int8 kernels and transitions.
        policy = self.space.quant_policy(arch) if self.space.quantization else None
        return float(self._predictor.predict(model, self.space.input_shape, self.batch_size,
                                             key=arch.id, policy=policy))


class PredictedLatency:
    """Wraps an evaluator: `latency_ms` comes from the predictor (marked predicted), not a timer."""

    def __init__(self, base: Any, model: LatencyModel) -> None:
        self.base, self.model, self.name = base, model, getattr(base, "name", "train")

    @property
    def weight_cache(self) -> Any:
        """The wrapped evaluator's weight cache (None when it keeps none)."""
        return self.base.weight_cache if isinstance(self.base, CachesWeights) else None

    @weight_cache.setter
    def weight_cache(self, cache: Any) -> None:
        if isinstance(self.base, CachesWeights):
            self.base.weight_cache = cache

    def metric_names(self) -> set[str]:
        """Return the wrapped evaluator's metric names and the predicted latency's."""
        names = self.base.metric_names() | {LATENCY, "latency_ms_predicted"}
        return names | ({"latency_ms_measured"} if LATENCY in self.base.metric_names() else set())

    def describe(self) -> dict:
        return {**self.base.describe(), "latency": "predicted", "profile": str(self.model.profile),
                "latency_batch": self.model.batch_size}

    def input_shape(self) -> tuple[int, ...]:
        return self.base.input_shape()

    def num_classes(self) -> int:
        return self.base.num_classes()

    def evaluate(self, build: Callable, arch: Mapping[str, Any], *, seed: int, on_epoch=None) -> EvalResult:
        result = self.base.evaluate(build, arch, seed=seed, on_epoch=on_epoch)
        ms = self.model.predict(Architecture(arch))
        if LATENCY in result.metrics and LATENCY not in result.predicted:
            result.metrics["latency_ms_measured"] = result.metrics[LATENCY]
        result.metrics[LATENCY] = result.metrics["latency_ms_predicted"] = ms
        result.predicted = sorted({*result.predicted, LATENCY, "latency_ms_predicted"})
        return result


def uses_latency(objectives: Sequence[Objective], constraints: Sequence[Constraint]) -> bool:
    """Return whether a search needs latency figures."""
    return any(o.name == LATENCY for o in objectives) or any(c.name == LATENCY for c in constraints)
