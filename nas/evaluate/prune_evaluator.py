"""Pruning inside the search: train each architecture, prune it, and record both sets of metrics.

    ev = PruneEvaluator(TrainEvaluator("digits"), sparsity=0.9, method="dp")
    nas.run.search(space, evaluator=ev, objectives=["pruned_accuracy:max", "params:min"])

Unstructured (default): layer-adaptive magnitude pruning (``nas.compress.prune.Pruner``) to a
fraction of prunable weights removed; it makes no CPU kernel faster, so ``latency_ms`` stays the
dense model's. Structured (``structured=True``): channel pruning (``ChannelPruner``) under a
latency budget of ``(1 - sparsity)`` x the dense model's latency. The DP's cost per channel group
comes from the kernel latency predictor when this device has a profile (``nas.hardware.profile_path``;
no timing during the allocation), from a latency table measured on this machine otherwise
(``latency="auto"``; ``"predicted"`` or ``"measured"`` forces one). Either way ``latency_ms`` is
the pruned model's *measured* latency, timed interleaved with the dense one
(``latency_ms_dense``); with the predictor, ``latency_ms_predicted`` stands beside it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from nas.compress.prune import CHANNEL_METHODS, METHODS, ChannelPruner, Pruner
from nas.compress.pruning.group_latency import (
    LatencyTable,
    latency_samples,
    measure_channel_latency,
    predicted_channel_latency,
)
from nas.compress.pruning.result import PruneResult
from nas.errors import CompressionError
from nas.evaluate.base import EpochCallback, EvalResult
from nas.evaluate.train_evaluator import TrainEvaluator
from nas.evaluate.train_loop import evaluate_model, train
from nas.hardware.timing import cpu_threads

LATENCY_SOURCES = ("auto", "predicted", "measured")
LATENCY_REPEATS = 15
# Fine-tuning starts from a trained minimum: a from-scratch learning rate would throw it away.
FINETUNE_LR_SCALE = 0.1


class PruneEvaluator:
    """Trains with ``base``, prunes the trained model, and measures it again.

    Metrics: every metric of ``base`` (of the dense model), plus ``pruned_accuracy`` and
    ``pruned_test_accuracy`` (validation and test accuracy of the pruned model), ``sparsity``
    (achieved fraction of prunable weights removed) and ``pruned_params`` (non-zero parameters
    left). Structured: ``latency_ms`` (pruned, measured), ``latency_ms_dense`` (measured),
    ``latency_ratio`` (their ratio) and, when the predictor set the costs,
    ``latency_ms_predicted`` and ``latency_ms_dense_predicted``; ``extra["prune_latency_cost"]``
    says which ("predictor" or "measured table") and ``extra["latency_budget_ms"]`` the budget
    on that scale. ``extra`` holds
    ``prune_allocation`` {layer: ratio} (pruning ratio per layer; kept channel fraction per
    group when structured) and ``prune_method``. The returned ``state_dict`` is the dense model's.
    """

    name = "prune"

    def __init__(self, base: TrainEvaluator, *, sparsity: float, method: str = "dp",
                 finetune_epochs: int = 0, structured: bool = False, calib_samples: int = 256,
                 latency: str = "auto", profile: str | Path | None = None) -> None:
        self.base = base
        self.sparsity = sparsity
        self.method = method
        self.finetune_epochs = finetune_epochs
        self.structured = structured
        self.calib_samples = calib_samples
        self.latency = latency
        self.profile = profile
        self._predictor: Any = None

    def input_shape(self) -> tuple[int, ...]:
        """Return the (C, H, W) shape of one input example."""
        return self.base.input_shape()

    def num_classes(self) -> int:
        """Return the number of classes of the data set."""
        return self.base.num_classes()

    def metric_names(self) -> set[str]:
        """Return the names of the metrics every trial of this evaluator gives."""
        names = self.base.metric_names() | {"pruned_accuracy", "pruned_test_accuracy", "sparsity",
                                            "pruned_params"}
        return names | ({"latency_ms", "latency_ms_dense", "latency_ratio"} if self.structured else set())

    def describe(self) -> dict:
        """Return the pruning settings and the base evaluator's, as JSON-able data."""
        # The search loop describes the evaluator before the first trial: checking here stops a
        # bad setting before any training instead of failing every trial with it.
        self._check()
        return {"kind": self.name, "name": self.name, "sparsity": float(self.sparsity),
                "method": self.method, "finetune_epochs": self.finetune_epochs,
                "structured": self.structured, "calib_samples": self.calib_samples,
                **({"latency": self.latency, "profile": str(self._profile_path())}
                   if self.structured else {}),
                "dataset": self.base.dataset, "device": self.base.config.device,
                "base": self.base.describe()}

    def _check(self) -> None:
        if not isinstance(self.base, TrainEvaluator):
            raise CompressionError(
                f"PruneEvaluator: base evaluator {getattr(self.base, 'name', self.base)!r} does not "
                "train models (or, like 'quant', returns no dense weights); pruning needs a "
                "TrainEvaluator, e.g. --dataset digits without --quantization")
        methods = CHANNEL_METHODS if self.structured else METHODS
        if self.method not in methods:
            kind = "structured (channel)" if self.structured else "unstructured"
            raise CompressionError(f"PruneEvaluator: method {self.method!r} is unknown for "
                                   f"{kind} pruning; valid methods: {list(methods)}")
        s = self.sparsity
        if isinstance(s, bool) or not isinstance(s, (int, float)) or not 0.0 < float(s) < 1.0:
            raise CompressionError(f"PruneEvaluator: sparsity {s!r} must lie strictly between 0 "
                                   "and 1, e.g. 0.9")
        if not isinstance(self.finetune_epochs, int) or self.finetune_epochs < 0:
            raise CompressionError(f"PruneEvaluator: finetune_epochs={self.finetune_epochs!r} "
                                   "must be an integer >= 0")
        if self.latency not in LATENCY_SOURCES:
            raise CompressionError(f"PruneEvaluator: latency={self.latency!r} is unknown; valid: "
                                   f"{list(LATENCY_SOURCES)}")
        if self.structured and self.latency == "predicted" and not self._profile_path().is_file():
            raise CompressionError(
                f"PruneEvaluator: latency='predicted' needs a device profile, and there is none "
                f"at {self._profile_path()}; run `nas profile` on this machine, or use 'measured'")
        if not isinstance(self.calib_samples, int) or self.calib_samples < 1:
            raise CompressionError(f"PruneEvaluator: calib_samples={self.calib_samples!r} must "
                                   "be an integer >= 1")

    def evaluate(self, build: Callable[[], nn.Module], arch: Mapping[str, object], *,
                 seed: int, on_epoch: EpochCallback | None = None) -> EvalResult:
        """Return the dense model's metrics and weights plus the pruned model's metrics."""
        self._check()
        dense = self.base.evaluate(build, arch, seed=seed, on_epoch=on_epoch)
        model = build()
        model.load_state_dict(dense.state_dict)
        result, metrics, extra = self.prune_model(model, seed=seed)
        metrics = {**dense.metrics, **metrics}
        extra = {**dense.extra, **extra}
        return EvalResult(metrics=metrics, predicted=list(dense.predicted), curve=dense.curve,
                          state_dict=dense.state_dict, extra=extra)

    def prune_model(self, model: nn.Module, *, seed: int
                    ) -> tuple[PruneResult, dict[str, float], dict[str, Any]]:
        """Return (pruning result, pruned-model metrics, extra) for a trained ``model`` (kept as is).

        What ``evaluate`` adds to the base metrics; ``nas prune`` calls it on stored weights.
        """
        self._check()
        model = model.to("cpu").eval()
        metrics: dict[str, float] = {}
        extra: dict[str, Any] = {}
        if self.structured:
            result = self._prune_channels(model, seed, metrics, extra)
        else:
            pruner = Pruner(float(self.sparsity), self.method)
            result = pruner.prune(model, self._calib(), finetune=self._finetune(seed))
        metrics.update(self._measure(result))
        extra["prune_allocation"] = {k: float(v) for k, v in result.allocation.items()}
        extra["prune_method"] = result.method
        return result, metrics, extra

    def _calib(self) -> torch.Tensor:
        return self.base.splits().x_train[: self.calib_samples].to("cpu")

    def _finetune(self, seed: int) -> Callable[[nn.Module], None] | None:
        """Return a callable that trains a pruned model in place, or None without fine-tuning."""
        if self.finetune_epochs <= 0:
            return None
        config = dataclasses.replace(self.base.config, epochs=self.finetune_epochs, seed=seed,
                                     lr=self.base.config.lr * FINETUNE_LR_SCALE)
        splits = self.base.splits()

        def finetune(model: nn.Module) -> None:
            # masks from torch.nn.utils.prune recompute weight = orig * mask on every forward,
            # so the pruned weights stay zero through these steps
            train(model, splits, config)
            model.to("cpu")

        return finetune

    def _measure(self, result: PruneResult) -> dict[str, float]:
        splits, model = self.base.splits(), result.model.to("cpu").eval()
        _, acc = evaluate_model(model, splits.x_val, splits.y_val)
        _, test_acc = evaluate_model(model, splits.x_test, splits.y_test)
        with torch.no_grad():
            nonzero = sum(int(torch.count_nonzero(t)) for t in _computed_tensors(model))
        return {"pruned_accuracy": acc, "pruned_test_accuracy": test_acc,
                "sparsity": float(result.sparsity), "pruned_params": float(nonzero)}

    def _profile_path(self) -> Path:
        """Return the device profile the predictor would be fitted from (it may not exist)."""
        if self.profile is not None:
            return Path(self.profile)
        from nas.hardware import profile_path

        device = self.base.config.device if self.base.config.device != "auto" else "cpu"
        return profile_path(device, self._threads())

    def _threads(self) -> int | None:
        """Return the CPU threads latency is predicted and timed with (the base evaluator's)."""
        return getattr(self.base, "latency_threads", None)

    def _use_predictor(self) -> bool:
        return self.latency == "predicted" or (self.latency == "auto" and self._profile_path().is_file())

    def _latency_model(self, model: nn.Module, example: torch.Tensor
                       ) -> tuple[Any, Callable[[nn.Module], float], str]:
        """Return (latency_fn with base_ms and full_ms, whole-model measure, source name)."""
        if self._use_predictor():
            if self._predictor is None:  # fitted once per evaluator: refitting takes a second
                from nas.predictors import LatencyPredictor

                self._predictor = LatencyPredictor.load(self._profile_path())
            shape, batch, predictor = self.input_shape(), self.base.latency_batch, self._predictor
            fn = predicted_channel_latency(model, shape, predictor, batch)
            # the whole pruned model through the predictor: it sees what the per-group sum
            # misses (two adjacent narrowed groups shrink the conv between them twice)
            return fn, lambda m: float(predictor.predict(m, shape, batch)), "predictor"
        table = measure_channel_latency(model, example, repeats=LATENCY_REPEATS)
        return table, _relative_timer(model, example, table, self._threads()), "measured table"

    def _prune_channels(self, model: nn.Module, seed: int, metrics: dict[str, float],
                        extra: dict[str, Any]) -> PruneResult:
        """Return the channel-pruned model under (1 - sparsity) x the dense latency."""
        splits = self.base.splits()
        example = splits.x_train[: self.base.latency_batch].to("cpu")
        with cpu_threads(self._threads()):  # a measured table is timed as the search times
            latency_fn, measure, source = self._latency_model(model, example)
        budget = (1.0 - float(self.sparsity)) * latency_fn.full_ms
        fastest = latency_fn.base_ms + sum(latency_fn(g, 1) for g in latency_fn.groups)
        # A tiny model's fixed cost can exceed the asked fraction: then prune to the fastest
        # reachable width rather than fail the trial, and say so.
        extra["latency_budget_ms"] = max(budget, fastest)
        extra["latency_budget_clamped"] = budget < fastest
        extra["prune_latency_cost"] = source
        # a predicted whole model costs no timing, so it affords more budget rounds than a timed one
        pruner = ChannelPruner(max(budget, fastest), self.method, base_ms=latency_fn.base_ms,
                               calibrate_rounds=8 if source == "predictor" else 4)  # fmt: skip
        result = pruner.prune(model, self._calib(), latency_fn, finetune=self._finetune(seed),
                              measure=measure)  # fmt: skip
        with cpu_threads(self._threads()):
            samples = latency_samples([model, result.model.eval()], example, LATENCY_REPEATS)
        dense_ms, pruned_ms = (float(np.median(s)) for s in samples)
        metrics["latency_ms"], metrics["latency_ms_dense"] = pruned_ms, dense_ms
        metrics["latency_ratio"] = pruned_ms / dense_ms
        if source == "predictor":
            metrics["latency_ms_predicted"] = measure(result.model)
            metrics["latency_ms_dense_predicted"] = float(latency_fn.full_ms)
        extra["prune_channels"] = dict(result.channels or {})
        return result


def _computed_tensors(model: nn.Module) -> list[torch.Tensor]:
    """Return the parameters a model computes with, masks applied (weight, not weight_orig)."""
    out = []
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if name.endswith("_orig") and hasattr(module, name[: -len("_orig")] + "_mask"):
                out.append(getattr(module, name[: -len("_orig")]))
            else:
                out.append(p)
    return out


def _relative_timer(dense: nn.Module, example: torch.Tensor, table: LatencyTable,
                    threads: int | None = None) -> Callable[[nn.Module], float]:
    """Return ``measure(model) -> ms`` on the table's scale, timed beside the dense model."""

    def measure(candidate: nn.Module) -> float:
        # the load here drifts within minutes: time against the dense model in the same run
        with cpu_threads(threads):
            samples = latency_samples([dense, candidate], example, LATENCY_REPEATS)
        dense_ms, ms = (min(s) for s in samples)
        return table.full_ms * ms / dense_ms

    return measure


__all__ = ["PruneEvaluator"]
