"""SimQ-NAS's evaluator: train each architecture once in fp32, then quantize it per its policy.

An architecture of a space with ``quantization=S.per_layer(...)`` is a structure (every decision
but ``quant/...``) plus a precision per layer. The structure's trained fp32 weights are kept in
``weight_cache`` (the search loop sets it to the study's weights in the store, under a key that
names the training settings and seed; an in-memory dict when it is None), keyed by the id of the
structural architecture, so every policy of one structure is post-training: no retraining per
policy. A structure trained here returns its fp32 weights, so the loop stores them with the trial.
The metrics are measured on the quantized model, never assumed.

    ev = QuantEvaluator(TrainEvaluator("digits"), policy_of=space.quant_policy)
    nas.run.search(space, evaluator=ev, searcher="linas",
                   objectives=["accuracy:max", "latency_ms:min", "size_mb:min"])
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import torch

from nas.compress.quantize import (
    apply_policy,
    complete_policy,
    default_backend,
    int8_layers,
    layer_precisions,
    quantizable_layers,
)
from nas.errors import CompressionError, EvaluationError
from nas.evaluate.base import EpochCallback, EvalResult
from nas.evaluate.model_metrics import count_flops, count_params, model_size_mb
from nas.evaluate.train_evaluator import TrainEvaluator
from nas.evaluate.train_loop import evaluate_model
from nas.hardware.timing import measure_latency
from nas.space import Architecture, Space

QUANT_PREFIX = "quant"


class WeightCache(Protocol):
    """Where trained weights are read between trials (`nas.results.weights.StoreWeightCache` is one)."""

    def get(self, arch_id: str) -> bytes | None:
        """Return the safetensors bytes kept for `arch_id`, or None."""
        ...


def is_quant_label(label: str) -> bool:
    """Return True for a precision decision's label (``quant`` or ``quant/...``)."""
    return label == QUANT_PREFIX or label.startswith(QUANT_PREFIX + "/")


def structural_arch(arch: Mapping[str, object]) -> Architecture:
    """Return the architecture without its precision decisions (what training depends on)."""
    return Architecture({k: v for k, v in arch.items() if not is_quant_label(k)})


class QuantEvaluator:
    """Post-training quantization of architectures trained once each by a `TrainEvaluator`.

    Metrics, all of the quantized model unless said: ``accuracy`` / ``loss`` (validation),
    ``test_accuracy``, ``latency_ms`` (median at ``latency_batch``, on the backend's kernels),
    ``size_mb`` (the weights as stored: int8 at one byte plus scales, ``model_size_mb``),
    ``params`` / ``flops`` (the float model),
    ``fp32_accuracy`` (validation accuracy of the float model with the same weights) and
    ``train_seconds`` (0 when the weights came from the cache). ``extra`` holds
    ``quant_policy`` {module: precision}, ``int8_layers`` and ``layer_precisions`` (what the
    quantized model really runs), ``weights`` ("trained" or "cached") and ``weights_arch_id``
    (the structure whose fp32 weights these are). The fp32 ``state_dict`` is returned when this
    call trained it (None on a cache hit).
    ``policy_of(arch)`` gives {module name in build(): precision} (pass ``space.quant_policy``);
    layers it leaves out stay fp32. Without it, only a global ``quant`` decision can be mapped.
    """

    name = "quant"

    def __init__(self, base: TrainEvaluator, *, calib_samples: int = 256, latency_batch: int = 1,
                 backend: str | None = None, measure_latency: bool = True,
                 policy_of: Callable[[Mapping[str, Any]], Mapping[str, str]] | None = None
                 ) -> None:
        self.base = base
        self.calib_samples = calib_samples
        self.latency_batch = latency_batch
        self.backend = backend
        self.measure_latency = measure_latency
        self.policy_of = policy_of
        self.weight_cache: WeightCache | None = None
        self._memory: dict[tuple[str, int], bytes] = {}  # (structure id, seed): the seed shapes them
        self.n_trained = 0  # trainings this instance ran (the cache's hits are the rest)

    def input_shape(self) -> tuple[int, ...]:
        """Return the (C, H, W) shape of one input example."""
        return self.base.input_shape()

    def num_classes(self) -> int:
        """Return the number of classes of the data set."""
        return self.base.num_classes()

    def metric_names(self) -> set[str]:
        """Return the names of the metrics every trial of this evaluator gives."""
        names = {"accuracy", "loss", "test_accuracy", "fp32_accuracy", "params", "flops", "size_mb",
                 "train_seconds"}
        return names | ({"latency_ms"} if self.measure_latency else set())

    def describe(self) -> dict:
        """Return the quantization settings and the base evaluator's, as JSON-able data."""
        return {"kind": self.name, "name": self.name, "backend": self._backend(),
                "calib_samples": self.calib_samples, "latency_batch": self.latency_batch,
                "measure_latency": self.measure_latency, "device": self._device(),
                "base": self.base.describe()}

    def _backend(self) -> str:
        return self.backend or default_backend()

    def _device(self) -> str:
        # int8 kernels exist on the CPU only; the cast backend runs where training ran
        return self.base.config.device if self._backend() == "cast" else "cpu"

    def evaluate(self, build: Callable[[], torch.nn.Module], arch: Mapping[str, object], *,
                 seed: int, on_epoch: EpochCallback | None = None) -> EvalResult:
        """Return the metrics of ``arch``'s model quantized per its policy (weights trained once)."""
        if self.calib_samples < 1 or self.latency_batch < 1:
            raise EvaluationError(f"QuantEvaluator: calib_samples={self.calib_samples} and "
                                  f"latency_batch={self.latency_batch} must both be >= 1")
        if self.policy_of is None and QUANT_PREFIX not in arch and any(map(is_quant_label, arch)):
            raise EvaluationError(
                "QuantEvaluator: arch has per-layer 'quant/...' decisions but no policy_of to map "
                "them to module names; pass QuantEvaluator(..., policy_of=space.quant_policy)")
        structure = structural_arch(arch)
        model, trained, curve, state = self._weights(build, structure, seed, on_epoch)
        model = model.to(self._device()).eval()
        policy = self._policy(model, arch)
        splits = self.base.splits()
        dev = self._device()
        example = splits.x_train[:1].to(dev)
        qmodel = apply_policy(model, policy, example_input=example,
                              calib=splits.x_train[: self.calib_samples].to(dev),
                              backend=self._backend(), calib_samples=self.calib_samples)
        metrics = self._measure(model, qmodel)
        metrics["train_seconds"] = trained
        extra: dict[str, Any] = {"quant_policy": policy, "int8_layers": int8_layers(qmodel),
                                 "layer_precisions": layer_precisions(qmodel),
                                 "weights": "trained" if state is not None else "cached",
                                 "weights_arch_id": structure.id, "structure_id": structure.id,
                                 "backend": self._backend()}
        return EvalResult(metrics=metrics, curve=curve, state_dict=state, extra=extra)

    def _weights(self, build, structure: Architecture, seed: int, on_epoch
                 ) -> tuple[torch.nn.Module, float, list[dict], dict[str, torch.Tensor] | None]:
        """Return (float model, seconds spent training here, curve, its weights if trained here)."""
        from safetensors.torch import load, save

        data = self._get(structure.id, seed)
        if data is not None:
            model = build()
            model.load_state_dict(load(data))
            return model, 0.0, [], None
        start = time.perf_counter()
        holder: dict[str, torch.nn.Module] = {}

        def keep() -> torch.nn.Module:
            holder["model"] = build()
            return holder["model"]

        self.base.splits()  # load once, so the copy below shares the data
        base = copy.copy(self.base)
        base.measure_latency = False  # the float model's latency is not a metric here
        result = base.evaluate(keep, structure, seed=seed, on_epoch=on_epoch)
        self.n_trained += 1
        state = {k: v.detach().to("cpu").contiguous() for k, v in result.state_dict.items()}
        if self.weight_cache is None:  # with a cache, the loop stores the returned weights
            self._memory[structure.id, seed] = save(state)
        return holder["model"].to("cpu"), time.perf_counter() - start, result.curve, state

    def _get(self, arch_id: str, seed: int) -> bytes | None:
        if self.weight_cache is not None:
            return self.weight_cache.get(arch_id)
        return self._memory.get((arch_id, seed))

    def _policy(self, model: torch.nn.Module, arch: Mapping[str, object]) -> dict[str, str]:
        """Return the full policy {layer: precision} over the model's quantizable layers."""
        layers = quantizable_layers(model)
        if self.policy_of is not None:
            given = dict(self.policy_of(arch))
        elif QUANT_PREFIX in arch:
            given = {name: str(arch[QUANT_PREFIX]) for name in layers}
        else:  # no precision decisions (checked in evaluate): the float model
            given = {}
        try:
            return complete_policy(model, given)
        except CompressionError as exc:
            raise EvaluationError(f"QuantEvaluator: {exc}") from exc

    def _measure(self, model: torch.nn.Module, qmodel: torch.nn.Module) -> dict[str, float]:
        splits, dev = self.base.splits(), self._device()
        val = (splits.x_val.to(dev), splits.y_val.to(dev))
        loss, acc = evaluate_model(qmodel, *val)
        _, test_acc = evaluate_model(qmodel, splits.x_test.to(dev), splits.y_test.to(dev))
        _, fp32_acc = evaluate_model(model, *val)
        metrics = {"accuracy": acc, "loss": loss, "test_accuracy": test_acc,
                   "fp32_accuracy": fp32_acc, "params": float(count_params(model)),
                   "flops": float(count_flops(model, splits.input_shape)),
                   "size_mb": model_size_mb(qmodel)}
        if self.measure_latency:
            metrics["latency_ms"] = measure_latency(
                qmodel, splits.input_shape, batch_size=self.latency_batch, device=dev,
                threads=self.base.latency_threads)
        return metrics


def as_quantized(model: Any, space: Space, arch: Architecture) -> Any:
    """Return `model` as the quantized evaluator runs it: `arch`'s policy applied (int8 kernels).

    Calibration is on random inputs: kernel shapes and speed do not depend on the ranges.
    """
    policy = space.quant_policy(arch)
    if not policy:
        return model
    x = torch.randn((16, *space.input_shape), generator=torch.Generator().manual_seed(0))
    return apply_policy(model.eval(), complete_policy(model, policy), example_input=x[:1], calib=x,
                        backend=default_backend())
