"""Per-layer quantization policies applied to a built model (the machinery behind SimQ-NAS).

A *policy* maps every quantizable layer (conv / linear, by qualified module name) to a precision:
``"fp32"`` or ``"int8"`` (optionally ``"int8:pc-sym"``, ``"int8:pc-asym"``, ``"int8:pt-sym"``,
``"int8:pt-asym"`` for the weight mode) on the CPU backends ``fx-x86`` / ``fx-fbgemm`` /
``fx-qnnpack``; ``"fp32"``, ``"fp16"`` or ``"bf16"`` on the ``cast`` backend (GPUs, where torch has
no int8 kernels). The caller measures the returned model's accuracy; nothing here assumes it.

    layers = quantizable_layers(model)
    qmodel = apply_policy(model, {n: "int8" for n in layers}, example_input=x[:1], calib=x[:256])
    assert int8_layers(qmodel) == layers
    nas.evaluate.model_size_mb(qmodel)   # size_mb: its weights as stored, int8 at one byte
"""

from __future__ import annotations

import copy
import io
import itertools
from collections.abc import Iterable, Mapping

import torch
from torch import nn

from nas.compress.int8_backends import (
    LayerPrecision,
    QuantBackend,
    make_backend,
    quiet_ao,
)
from nas.errors import CompressionError

__all__ = [
    "QuantBackend",
    "apply_policy",
    "complete_policy",
    "default_backend",
    "int8_layers",
    "layer_precisions",
    "make_backend",
    "policy_options",
    "quantizable_layers",
    "torchscript_file_mb",
]

# Exact types: torch's FX flow maps float -> quantized modules by exact type, so a subclass would
# silently stay fp32; listing it as quantizable would make a policy lie.
_LAYER_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def _is_layer(module: nn.Module) -> bool:
    return type(module) in _LAYER_TYPES


def quantizable_layers(model: nn.Module) -> list[str]:
    """Return the qualified names of the model's conv/linear modules, in forward order.

    Forward order comes from a symbolic trace; a layer that forward never calls is left out. If
    the model cannot be traced, registration order (``named_modules``) is used instead.
    """
    modules = dict(model.named_modules())
    try:
        graph = torch.fx.Tracer().trace(model)  # torch.nn layers are leaves
    except Exception:  # untraceable forward: the cast backend still works, by module order
        return [name for name, m in modules.items() if _is_layer(m)]
    names: list[str] = []
    for node in graph.nodes:
        target = str(node.target)
        if node.op == "call_module" and _is_layer(modules[target]) and target not in names:
            names.append(target)
    return names


def default_backend() -> str:
    """Return ``cast`` where a CUDA GPU is present, else the int8 FX backend for this CPU."""
    if torch.cuda.is_available():
        return "cast"
    engines = torch.backends.quantized.supported_engines
    return "fx-x86" if "x86" in engines else "fx-qnnpack"


def policy_options(backend: str = "fx-x86") -> list[str]:
    """Return the precision values a policy may give a layer under `backend`."""
    return make_backend(backend).options()


def apply_policy(model: nn.Module, policy: Mapping[str, str], *, example_input: torch.Tensor,
                 calib: torch.Tensor | Iterable[torch.Tensor],
                 backend: str | QuantBackend = "fx-x86",
                 calib_samples: int = 256, calib_batch_size: int = 64) -> nn.Module:
    """Return a new model running each layer at the precision `policy` gives it.

    `calib` is a tensor of inputs (split into batches of `calib_batch_size`) or an iterable of
    batches (tensors, or ``(x, y)`` pairs as a DataLoader yields); at most `calib_samples` samples
    are used (the ``cast`` backend needs none). conv+bn(+relu) are fused before quantization. An
    all-``fp32`` policy returns an unchanged eval-mode copy. `model` itself is never modified.
    `backend` is a name (see `make_backend`) or any object satisfying `QuantBackend`.
    An int8 model runs its kernels under ``torch.backends.quantized.engine``, which is left set
    to the backend's engine.
    """
    qbackend = make_backend(backend) if isinstance(backend, str) else backend
    specs = _parse_policy(model, policy, qbackend)
    if all(s.precision == "fp32" for s in specs.values()):
        return _float_copy(model)
    batches = _calibration_batches(calib, calib_samples, calib_batch_size)
    if not batches and any(s.precision == "int8" for s in specs.values()):
        raise CompressionError(
            "calib holds no samples; int8 layers need a few hundred training inputs "
            f"(calib_samples={calib_samples}) to calibrate their activation ranges")
    return qbackend.apply(model, specs, example_input, batches)


def complete_policy(model: nn.Module, policy: Mapping[str, str]) -> dict[str, str]:
    """Return `policy` over all of `model`'s quantizable layers, those it leaves out at fp32.

    Raises CompressionError when it names a layer the model does not run.
    """
    layers = quantizable_layers(model)
    unknown = sorted(set(policy) - set(layers))
    if unknown:
        raise CompressionError(f"policy names layers {unknown} that the model does not run; its "
                               f"quantizable layers are {layers}")
    return {name: str(policy.get(name, "fp32")) for name in layers}


def _float_copy(model: nn.Module) -> nn.Module:
    return copy.deepcopy(model).eval()


def _parse_policy(model: nn.Module, policy: Mapping[str, str],
                  qbackend: QuantBackend) -> dict[str, LayerPrecision]:
    layers = quantizable_layers(model)
    unknown = [name for name in policy if name not in layers]
    missing = [name for name in layers if name not in policy]
    if unknown or missing:
        raise CompressionError(
            f"policy does not match the model's quantizable layers: unknown {unknown}, "
            f"missing {missing}; valid layer names (forward order): {layers}")
    options = qbackend.options()
    specs: dict[str, LayerPrecision] = {}
    for name in layers:
        value = policy[name]
        if value not in options:
            raise CompressionError(
                f"policy[{name!r}] = {value!r} is not a precision of backend "
                f"{qbackend.name!r}; valid: {options}")
        precision, _, mode = value.partition(":")
        specs[name] = LayerPrecision(precision, mode or None)
    return specs


def _calibration_batches(calib: torch.Tensor | Iterable[torch.Tensor], calib_samples: int,
                         calib_batch_size: int) -> list[torch.Tensor]:
    if calib_samples < 1 or calib_batch_size < 1:
        raise CompressionError(
            f"calib_samples={calib_samples} and calib_batch_size={calib_batch_size} "
            "must both be positive integers")
    if torch.is_tensor(calib):
        source: Iterable = torch.split(calib[:calib_samples], calib_batch_size)
    else:
        source = calib
    batches: list[torch.Tensor] = []
    seen = 0
    for item in itertools.islice(source, calib_samples):  # each batch holds >= 1 sample
        batch = item[0] if isinstance(item, (tuple, list)) else item
        if not torch.is_tensor(batch):
            raise CompressionError(
                f"calib yielded a {type(batch).__name__}; expected tensors or (x, y) pairs")
        batch = batch[: calib_samples - seen]
        if len(batch) == 0:  # an empty batch would reach the observers as NaN ranges
            continue
        batches.append(batch)
        seen += len(batch)
        if seen >= calib_samples:
            break
    return batches


def _quantized_weight(module: nn.Module) -> torch.Tensor | None:
    """The module's int8 weight if it is a quantized conv/linear (FX convert output), else None."""
    kind = type(module).__module__
    if not kind.startswith(("torch.ao.nn.quantized", "torch.ao.nn.intrinsic.quantized")):
        return None
    weight = getattr(module, "weight", None)
    if not callable(weight):
        return None
    w = weight()
    return w if torch.is_tensor(w) and w.is_quantized and w.dtype == torch.qint8 else None


def _layer_modules(qmodel: nn.Module) -> list[tuple[str, nn.Module]]:
    """Conv/linear-like modules of a (possibly converted) model, in call order where known."""
    modules = dict(qmodel.named_modules())
    graph = getattr(qmodel, "graph", None)
    if isinstance(graph, torch.fx.Graph):
        names = [str(n.target) for n in graph.nodes if n.op == "call_module"]
    else:
        names = list(modules)
    out = []
    for name in dict.fromkeys(names):
        module = modules[name]
        if _quantized_weight(module) is not None or _is_layer(module) or _is_fused_float(module):
            out.append((name, module))
    return out


def _is_fused_float(module: nn.Module) -> bool:
    # FX fusion keeps the conv's name for conv+bn+relu; the float conv sits inside as child "0".
    first = getattr(module, "_modules", {}).get("0")
    return type(module).__module__.startswith("torch.ao.nn.intrinsic.modules") and (
        first is not None and _is_layer(first))


def int8_layers(qmodel: nn.Module) -> list[str]:
    """Return the names of the layers that really run int8 kernels (quantized modules)."""
    return [name for name, m in _layer_modules(qmodel) if _quantized_weight(m) is not None]


def layer_precisions(qmodel: nn.Module) -> dict[str, str]:
    """Return each conv/linear layer's real precision: ``int8``, ``fp32``, ``fp16`` or ``bf16``."""
    names = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16",
             torch.float64: "fp64"}
    out: dict[str, str] = {}
    for name, module in _layer_modules(qmodel):
        if _quantized_weight(module) is not None:
            out[name] = "int8"
            continue
        layer = module if _is_layer(module) else module._modules["0"]
        out[name] = names.get(layer.weight.dtype, str(layer.weight.dtype))
    return out


def torchscript_file_mb(model: nn.Module, example_input: torch.Tensor) -> float:
    """Return the size in MB (10**6 bytes) of ``torch.jit.save`` of the traced model.

    The TorchScript file one would ship: the weights plus the serialized code, whose fixed
    overhead (tens of kB) dominates small models. This is not ``size_mb``: that metric is the
    weights alone (`nas.evaluate.model_size_mb`), which falls with every layer made int8.
    Scripting is tried if tracing fails.
    """
    was_training = model.training
    model.eval()  # tracing in train mode would update BatchNorm running statistics
    try:
        return _jit_size_mb(model, example_input)
    finally:
        model.train(was_training)


def _jit_size_mb(model: nn.Module, example_input: torch.Tensor) -> float:
    with quiet_ao(), torch.no_grad():
        try:
            compiled = torch.jit.trace(model, (example_input,), check_trace=False)
        except Exception as trace_error:  # scripting handles some models tracing cannot
            try:
                compiled = torch.jit.script(model)
            except Exception as exc:
                raise CompressionError(
                    f"cannot serialize {type(model).__name__} with torch.jit (trace: "
                    f"{trace_error}; script: {exc}); its size cannot be measured") from exc
        buffer = io.BytesIO()
        torch.jit.save(compiled, buffer)
    return buffer.getbuffer().nbytes / 1e6
