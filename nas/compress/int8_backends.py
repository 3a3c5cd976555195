"""Backends that apply a per-layer precision policy to a float model.

One small protocol, `QuantBackend`, so the deprecated `torch.ao.quantization` FX flow can be swapped
for torchao's pt2e flow later without touching callers. Two implementations:

- `FxInt8Backend`: post-training static int8 quantization on the CPU's real int8 kernels
  (FX graph mode; engine ``x86``/``fbgemm`` on Intel/AMD, ``qnnpack`` on ARM).
- `CastBackend`: fp32 / fp16 / bf16 per layer by casting (what a GPU offers instead of int8 kernels
  in torch); the same code runs on CPU, where bf16 and fp16 kernels exist too.
"""

from __future__ import annotations

import contextlib
import copy
import operator
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from nas.errors import CompressionError

INT8_WEIGHT_MODES = ("pc-sym", "pc-asym", "pt-sym", "pt-asym")
"""Weight modes for ``"int8:<mode>"``: per-channel/per-tensor x symmetric/asymmetric."""

# Non-layer ops that run on quantized tensors and keep their meaning there. They follow their
# inputs: quantized when every input comes from an int8 region, fp32 otherwise, so an fp32 layer
# never sees an activation that was needlessly rounded to int8 by a pooling op in between.
_FOLLOW_MODULES: tuple[type[nn.Module], ...] = (
    nn.ReLU, nn.ReLU6, nn.Hardtanh, nn.Identity, nn.Dropout,
    nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
    nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
    nn.BatchNorm2d, nn.BatchNorm3d,
    # what fuse_fx turns a BatchNorm followed by a ReLU into
    torch.ao.nn.intrinsic.BNReLU2d, torch.ao.nn.intrinsic.BNReLU3d,
)
_FOLLOW_FUNCTIONS = {
    F.relu, F.relu6, F.hardtanh, F.dropout, torch.flatten,
    F.max_pool1d, F.max_pool2d, F.max_pool3d, F.avg_pool1d, F.avg_pool2d, F.avg_pool3d,
    F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, F.adaptive_avg_pool3d,
    operator.add, torch.add, operator.mul, torch.mul, torch.cat, torch.mean,
}
# Tensor methods FX has no int8 pattern for, and the function each one means.
_METHOD_AS_FUNCTION = {"flatten": torch.flatten, "mul": operator.mul, "add": operator.add,
                       "mean": torch.mean}
# Metadata and shape steps: they neither break nor need a qconfig; they only carry the region on.
_TRANSPARENT_FUNCTIONS = {getattr, operator.getitem}
_TRANSPARENT_METHODS = {
    "size", "view", "reshape", "flatten", "squeeze", "unsqueeze", "permute", "transpose",
    "contiguous", "relu", "relu_",
}


@dataclass(frozen=True)
class LayerPrecision:
    """A parsed policy value: the precision of one layer and, for int8, its weight mode."""

    precision: str  # "fp32" | "int8" | "fp16" | "bf16"
    weight_mode: str | None = None  # one of INT8_WEIGHT_MODES, or None for the engine default


class QuantBackend(Protocol):
    """The contract every precision backend satisfies."""

    name: str

    def options(self) -> list[str]:
        """Return the policy values this backend accepts for a layer."""
        ...

    def apply(self, model: nn.Module, policy: Mapping[str, LayerPrecision],
              example_input: torch.Tensor, calib: list[torch.Tensor]) -> nn.Module:
        """Return a new model (the input is left untouched) running each layer as `policy` says."""
        ...


@contextlib.contextmanager
def quiet_ao() -> Iterator[None]:
    """Silence torch.ao / torch.jit deprecation chatter (torchao's pt2e flow is the successor)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\.ao\..*")
        warnings.filterwarnings("ignore", message=r".*torch\.ao\.quantization.*")
        warnings.filterwarnings("ignore", message=r".*TorchScript.*")
        yield


class FxInt8Backend:
    """Per-layer post-training static int8 with torch's FX graph mode on one quantized engine."""

    def __init__(self, engine: str = "x86") -> None:
        self.engine = engine
        self.name = f"fx-{engine}"

    def options(self) -> list[str]:
        """Return ``fp32``, ``int8`` and ``int8:<weight mode>`` for each mode."""
        return ["fp32", "int8", *[f"int8:{m}" for m in INT8_WEIGHT_MODES]]

    def apply(self, model: nn.Module, policy: Mapping[str, LayerPrecision],
              example_input: torch.Tensor, calib: list[torch.Tensor]) -> nn.Module:
        """Return the fused, calibrated and converted GraphModule (int8 where `policy` says)."""
        from torch.ao.quantization.quantize_fx import convert_fx, fuse_fx, prepare_fx

        self._check_device(model, example_input)
        self._select_engine()
        with quiet_ao(), torch.no_grad():
            float_model = copy.deepcopy(model).eval()
            try:
                traced = torch.fx.symbolic_trace(float_model)
            except Exception as exc:  # torch.fx raises many types for untraceable code
                raise CompressionError(
                    f"backend {self.name!r} needs a model torch.fx can trace symbolically; "
                    f"tracing {type(model).__name__} failed: {exc}. Use backend='cast' or make "
                    "forward free of data-dependent Python control flow") from exc
            # Fusing (conv+bn folded, +relu) also flattens the graph, so every functional op
            # sits in the root scope and can be given a qconfig by its order there.
            fused = fuse_fx(_normalize(traced))
            mapping = self._qconfig_mapping(fused, policy)
            prepared = prepare_fx(fused, mapping, example_inputs=(example_input,))
            for batch in calib:
                prepared(batch)
            return convert_fx(prepared)

    def _check_device(self, model: nn.Module, example_input: torch.Tensor) -> None:
        devices = {p.device.type for p in model.parameters()} | {example_input.device.type}
        if devices != {"cpu"}:
            raise CompressionError(
                f"backend {self.name!r} runs int8 kernels on the CPU only, but the model/input "
                f"live on {sorted(devices)}; move them to the CPU or use backend='cast' "
                "(fp32/fp16/bf16 per layer) on a GPU")

    def _select_engine(self) -> None:
        supported = torch.backends.quantized.supported_engines
        if self.engine not in supported:
            raise CompressionError(
                f"quantized engine {self.engine!r} is not in this torch build; supported: "
                f"{sorted(e for e in supported if e != 'none')}")
        # Process-wide on purpose: the converted model's int8 kernels dispatch on the engine at
        # call time, so it must stay selected after this function returns.
        torch.backends.quantized.engine = self.engine

    def _qconfig(self, weight_mode: str | None):  # -> QConfig
        from torch.ao.quantization import (
            MinMaxObserver,
            PerChannelMinMaxObserver,
            QConfig,
            get_default_qconfig,
        )

        base = get_default_qconfig(self.engine)
        if weight_mode is None:
            return base
        per_channel = weight_mode.startswith("pc")
        symmetric = weight_mode.endswith("-sym")
        if per_channel:
            scheme = torch.per_channel_symmetric if symmetric else torch.per_channel_affine
            weight = PerChannelMinMaxObserver.with_args(dtype=torch.qint8, qscheme=scheme)
        else:
            scheme = torch.per_tensor_symmetric if symmetric else torch.per_tensor_affine
            weight = MinMaxObserver.with_args(dtype=torch.qint8, qscheme=scheme)
        return QConfig(activation=base.activation, weight=weight)

    def _qconfig_mapping(self, fused: torch.fx.GraphModule,
                         policy: Mapping[str, LayerPrecision]):  # -> QConfigMapping
        """Global fp32; int8 layers by name; follow-ops int8 only inside int8 regions."""
        from torch.ao.quantization import QConfigMapping

        mapping = QConfigMapping()  # global qconfig None: anything not named stays fp32
        modules = dict(fused.named_modules())
        follow_qconfig = self._qconfig(None)
        int8_nodes: set[torch.fx.Node] = set()
        function_counts: dict[object, int] = {}
        for node in fused.graph.nodes:
            if node.op == "call_function":
                index = function_counts.get(node.target, 0)
                function_counts[node.target] = index + 1
            spec = policy.get(str(node.target)) if node.op == "call_module" else None
            if spec is not None:
                if spec.precision == "int8":
                    mapping.set_module_name(str(node.target), self._qconfig(spec.weight_mode))
                    int8_nodes.add(node)
                continue
            if not self._follows(node, modules, int8_nodes):
                continue
            int8_nodes.add(node)
            if node.op == "call_module":
                mapping.set_module_name(str(node.target), follow_qconfig)
            elif node.op == "call_function" and node.target in _FOLLOW_FUNCTIONS:
                mapping.set_module_name_object_type_order("", node.target, index, follow_qconfig)
            # call_method (view, flatten, size...) carries its input's quantization on its own
        return mapping

    @staticmethod
    def _follows(node: torch.fx.Node, modules: dict[str, nn.Module],
                 int8_nodes: set[torch.fx.Node]) -> bool:
        inputs = node.all_input_nodes
        if not inputs or not all(n in int8_nodes for n in inputs):
            return False
        if node.op == "call_module":
            return type(modules[str(node.target)]) in _FOLLOW_MODULES
        if node.op == "call_function":
            return node.target in _FOLLOW_FUNCTIONS or node.target in _TRANSPARENT_FUNCTIONS
        return node.op == "call_method" and node.target in _TRANSPARENT_METHODS


def _normalize(traced: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """Rewrite spellings torch's FX flow has no int8 pattern for into equivalent ones it has
    (``torch.relu`` -> ``F.relu``, ``x.flatten()`` / ``nn.Flatten`` -> ``torch.flatten``,
    ``x.mul(s)`` -> ``x * s``, ``x.mean(d)`` -> ``torch.mean(x, d)``); otherwise each would cost
    a dequantize/quantize pair inside an int8 region."""
    modules = dict(traced.named_modules())
    for node in list(traced.graph.nodes):
        if node.op == "call_function" and node.target is torch.relu:
            node.target = F.relu
        elif node.op == "call_method" and node.target in _METHOD_AS_FUNCTION:
            if node.target in ("mul", "add") and (node.kwargs or len(node.args) != 2):
                continue  # x.add(y, alpha=2) has no operator spelling
            node.op, node.target = "call_function", _METHOD_AS_FUNCTION[node.target]
        elif node.op == "call_module" and type(modules[str(node.target)]) is nn.Flatten:
            flatten = modules[str(node.target)]
            node.op, node.target = "call_function", torch.flatten
            node.args = (node.args[0], flatten.start_dim, flatten.end_dim)
    traced.graph.lint()
    traced.recompile()
    return traced


class CastBackend:
    """fp32 / fp16 / bf16 per layer: the layer's weights are cast, its inputs cast on entry and
    its output cast back to fp32 on exit (the boundaries), so neighbouring ops are untouched."""

    name = "cast"
    _DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}

    def options(self) -> list[str]:
        """Return ``fp32``, ``fp16`` and ``bf16``."""
        return ["fp32", "fp16", "bf16"]

    def apply(self, model: nn.Module, policy: Mapping[str, LayerPrecision],
              example_input: torch.Tensor, calib: list[torch.Tensor]) -> nn.Module:
        """Return a copy of `model` whose low-precision layers carry casting hooks."""
        cast_model = copy.deepcopy(model).eval()
        modules = dict(cast_model.named_modules())
        for name, spec in policy.items():
            if spec.precision in self._DTYPES:
                self._cast_layer(modules[name], self._DTYPES[spec.precision])
        with torch.no_grad():
            try:
                cast_model(example_input)
            except RuntimeError as exc:
                raise CompressionError(
                    f"a layer cast to fp16/bf16 does not run on {example_input.device}: {exc}; "
                    "keep that layer in 'fp32' or use a device with those kernels") from exc
        return cast_model

    @staticmethod
    def _cast_layer(layer: nn.Module, dtype: torch.dtype) -> None:
        layer.to(dtype)

        def enter(_module: nn.Module, args: tuple) -> tuple:
            return tuple(a.to(dtype) if torch.is_tensor(a) and a.is_floating_point() else a
                         for a in args)

        def leave(_module: nn.Module, _args: tuple, out: torch.Tensor) -> torch.Tensor:
            return out.to(torch.float32)

        layer.register_forward_pre_hook(enter)
        layer.register_forward_hook(leave)


def make_backend(name: str) -> QuantBackend:
    """Return the backend called `name` (``fx-x86``, ``fx-fbgemm``, ``fx-qnnpack``, ``cast``)."""
    if name == "cast":
        return CastBackend()
    engines = ("x86", "fbgemm", "qnnpack")
    if name.startswith("fx-") and name[3:] in engines:
        return FxInt8Backend(name[3:])
    raise CompressionError(
        f"unknown quantization backend {name!r}; valid: "
        f"{[f'fx-{e}' for e in engines] + ['cast']}")
