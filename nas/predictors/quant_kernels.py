"""int8 kernels: what an FX-quantized model really runs, read off its converted graph.

A (float model, policy) pair is decomposed by quantizing it for real (torch's FX flow, as
`nas.compress.quantize.apply_policy` does for a search) with a random calibration batch, then
running the converted GraphModule once at batch 1 and reading each node: kernel shapes and
which ops run on quantized tensors do not depend on calibration values, and this way every
decision FX makes (which glue stays quantized, conv+bn folding, add+relu fusion, where
`quantize_per_tensor` and `dequantize` go) is read off the graph rather than re-derived.

Kernels gain ``config["precision"] = "int8"`` when they run on quantized tensors; the
transitions are kinds of their own: ``quantize`` (fp32 -> int8) and ``dequantize``
(int8 -> fp32), sized by the tensor they convert. fp32 kernels keep plain float configs, read by
the float core's recognizers (`nas.kernels.recognize`). Standalone int8 modules to time them are
in `nas.predictors.quant_build`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn

from nas.errors import HardwareError
from nas.kernels.kernel import Kernel
from nas.kernels.recognize import first_tensor, function_kernel, module_kernel, shape_of
from nas.kernels.trace import extract_kernels

INT8 = "int8"
TRANSITIONS = ("quantize", "dequantize")


def is_int8(kernel: Kernel) -> bool:
    """Return whether `kernel` runs on int8 tensors or converts to or from them."""
    return kernel.kind in TRANSITIONS or kernel.config.get("precision") == INT8


def needs_int8_profile(kernel: Kernel) -> bool:
    """Return whether `kernel` runs only in quantized models: an int8 kernel, a transition, or an
    fp32 one on the channels-last tensors int8 convs hand on. These are profiled by
    `nas.predictors.int8_profiler` and predicted apart from the float kernels."""
    return is_int8(kernel) or bool(kernel.config.get("nhwc"))


def has_transitions(kernels: Iterable[Kernel]) -> bool:
    """Return whether `kernels` convert to or from int8: the mark of a quantized model's run."""
    return any(k.kind in TRANSITIONS for k in kernels)


def is_quantized_model(model: nn.Module) -> bool:
    """Return whether `model` is an FX-converted module holding quantized kernels."""
    if not isinstance(model, torch.fx.GraphModule):
        return False
    return any(n.op == "call_method" and n.target == "dequantize" or
               n.op == "call_function" and n.target is torch.quantize_per_tensor
               for n in model.graph.nodes)


def policy_is_float(policy: Mapping[str, str] | None) -> bool:
    """Return whether `policy` (layer -> precision) leaves every layer in fp32."""
    return not policy or all(str(v) == "fp32" for v in policy.values())


def int8_engine() -> str:
    """Return the int8 engine this torch build runs on: "x86" where it has one, else "qnnpack"."""
    return "x86" if "x86" in torch.backends.quantized.supported_engines else "qnnpack"


def quantize_for_prediction(model: nn.Module, policy: Mapping[str, str],
                            input_shape: tuple[int, ...], seed: int = 0) -> nn.Module:
    """Return `model` quantized per `policy` (layers left out stay fp32), calibrated on noise."""
    from nas.compress.quantize import apply_policy, complete_policy
    from nas.errors import CompressionError

    try:
        full = complete_policy(model, policy)
    except CompressionError as exc:
        raise HardwareError(str(exc)) from exc
    bad = sorted({v for v in full.values() if v.partition(":")[0] not in ("fp32", INT8)})
    if bad:
        raise HardwareError(f"precisions {bad} cannot be predicted on this device; the latency "
                            "predictor knows 'fp32' and 'int8' (CPU int8 kernels)")
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn((2, *input_shape), generator=gen)
    try:
        return apply_policy(model.eval(), full, example_input=x[:1], calib=x,
                            backend="fx-" + int8_engine())
    except CompressionError as exc:
        raise HardwareError(f"cannot decompose the quantized model: {exc}") from exc


# ---- reading a converted GraphModule ------------------------------------------------------

def _qconv_config(m: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, Any]:
    from torch.ao.nn.intrinsic.quantized import ConvReLU2d

    pad = [int(p) for p in m.padding]
    return {"cin": m.in_channels, "cout": m.out_channels, "k": [int(k) for k in m.kernel_size],
            "stride": [int(s) for s in m.stride], "padding": pad,
            "dilation": [int(d) for d in m.dilation], "groups": m.groups,
            "bias": m.bias() is not None, "h": int(x.shape[-2]), "w": int(x.shape[-1]),
            "ho": int(y.shape[-2]), "wo": int(y.shape[-1]), "bn": False,
            "act": "relu" if isinstance(m, ConvReLU2d) else None, "precision": INT8}


def _converted_module_kernel(m: nn.Module, args: tuple, kwargs: dict, out: Any) -> Kernel:
    import torch.ao.nn.intrinsic as nni
    import torch.ao.nn.intrinsic.quantized as nniq
    import torch.ao.nn.quantized as nnq

    x, y = first_tensor(args), first_tensor(out)
    if isinstance(m, nnq.Conv2d) and x is not None and y is not None:
        return Kernel("conv", _qconv_config(m, x, y))
    if isinstance(m, nnq.Linear) and x is not None:
        tokens = x.numel() // max(1, int(x.shape[0]) * m.in_features)
        return Kernel("linear", {"fin": m.in_features, "fout": m.out_features,
                                 "tokens": int(tokens), "bias": m.bias() is not None,
                                 "act": "relu" if isinstance(m, nniq.LinearReLU) else None,
                                 "precision": INT8})
    if isinstance(m, (nni.ConvReLU2d, nni.LinearReLU)):  # an fp32 layer, bn folded by fuse_fx
        inner = m[0]
        kernel = module_kernel(inner, args, kwargs, inner(*args))
        kernel.config["act"] = "relu"
        return kernel
    kernel = module_kernel(m, args, kwargs, out)
    if x is not None and x.is_quantized:
        kernel.config["precision"] = INT8
    return kernel


def _function_name(node: torch.fx.Node) -> str:
    if node.op == "call_method":
        return str(node.target)
    return getattr(node.target, "__name__", str(node.target))


def _converted_function_kernel(node: torch.fx.Node, args: tuple, kwargs: dict,
                               out: Any) -> Kernel | None:
    x = first_tensor(args)
    if node.op == "call_function" and node.target is torch.quantize_per_tensor:
        return Kernel("quantize", {"shape": shape_of(args[0])[1:]})
    if node.op == "call_method" and node.target == "dequantize" and x is not None:
        return Kernel("dequantize", {"shape": shape_of(x)[1:]})
    name = _function_name(node)
    act = None
    if str(node.target).startswith("quantized."):
        args = args[:2]  # (x, y, scale, zero_point): the output qparams are no inputs
        if name.endswith("_relu"):
            name, act = name[: -len("_relu")], "relu"  # quantized.add_relu: one fused kernel
    kernel = function_kernel(name, args, kwargs, out)
    if kernel is None:
        return None
    if x is not None and x.is_quantized:
        kernel.config["precision"] = INT8
        if act is not None:
            kernel.config["act"] = act
    return kernel


class _ConvertedTrace(torch.fx.Interpreter):
    """Runs a converted GraphModule node by node and records the kernel each node runs."""

    def __init__(self, module: torch.fx.GraphModule) -> None:
        super().__init__(module)
        self.kernels: list[Kernel] = [Kernel("call", {})]  # the GraphModule's own call

    def run_node(self, n: torch.fx.Node) -> Any:
        if n.op not in ("call_module", "call_function", "call_method"):
            return super().run_node(n)
        args, kwargs = self.fetch_args_kwargs_from_env(n)
        out = super().run_node(n)
        if n.op == "call_module":
            kernel: Kernel | None = _converted_module_kernel(self.fetch_attr(str(n.target)),
                                                             args, kwargs, out)
        else:
            kernel = _converted_function_kernel(n, args, kwargs, out)
        if kernel is not None and kernel.kind != "call":
            x = first_tensor(args)
            if x is not None and _is_nhwc(x):
                # int8 convs hand on channels-last tensors, and the ops after them (pooling
                # 30x faster, an fp32 conv after a dequantize 1.6x) run differently on them
                kernel.config["nhwc"] = True
            self.kernels.append(kernel)
        return out


def _is_nhwc(x: torch.Tensor) -> bool:
    return x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(
        memory_format=torch.channels_last)


def extract_converted_kernels(qmodel: torch.fx.GraphModule,
                              input_shape: tuple[int, ...]) -> list[Kernel]:
    """Return the kernels one forward pass of a converted (quantized) GraphModule runs."""
    x = torch.randn((1, *map(int, input_shape)), generator=torch.Generator().manual_seed(0))
    from nas.compress.int8_backends import quiet_ao

    trace = _ConvertedTrace(qmodel.eval())
    with torch.inference_mode(), quiet_ao():
        trace.run(x)
    return trace.kernels


def extract_policy_kernels(model: nn.Module, input_shape: tuple[int, ...],
                           policy: Mapping[str, str]) -> list[Kernel]:
    """Return the kernels `model` runs quantized per `policy` (int8 ones marked), at batch 1."""
    qmodel = quantize_for_prediction(model, policy, tuple(input_shape))
    if not isinstance(qmodel, torch.fx.GraphModule):  # nothing was quantized
        return extract_kernels(qmodel, tuple(input_shape))
    return extract_converted_kernels(qmodel, tuple(input_shape))
