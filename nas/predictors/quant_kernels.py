"""int8 kernels: what an FX-quantized model really runs, and standalone int8 modules to time.

A (float model, policy) pair is decomposed by quantizing it for real (torch's FX flow, as
`nas.compress.quantize.apply_policy` does for a search) with a random calibration batch, then
running the converted GraphModule once at batch 1 and reading each node: kernel shapes and
which ops run on quantized tensors do not depend on calibration values, and this way every
decision FX makes (which glue stays quantized, conv+bn folding, add+relu fusion, where
`quantize_per_tensor` and `dequantize` go) is read off the graph rather than re-derived.

Kernels gain ``config["precision"] = "int8"`` when they run on quantized tensors; the
transitions are kinds of their own: ``quantize`` (fp32 -> int8) and ``dequantize``
(int8 -> fp32), sized by the tensor they convert. fp32 kernels keep plain float configs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from nas.errors import HardwareError
from nas.predictors.kernels import Kernel, _first_tensor, _functional_kernel, _module_kernel, _shape

INT8 = "int8"
TRANSITIONS = ("quantize", "dequantize")
# Output / input qparams of standalone modules: timings do not depend on them.
_SCALE, _ZERO = 0.05, 64


def is_int8(kernel: Kernel) -> bool:
    """Return whether `kernel` runs on int8 tensors or converts to or from them."""
    return kernel.kind in TRANSITIONS or kernel.config.get("precision") == INT8


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
                            backend="fx-x86" if "x86" in _engines() else "fx-qnnpack")
    except CompressionError as exc:
        raise HardwareError(f"cannot decompose the quantized model: {exc}") from exc


def _engines() -> list[str]:
    return list(torch.backends.quantized.supported_engines)


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

    x, y = _first_tensor(args), _first_tensor(out)
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
        kernel = _module_kernel(inner, args, kwargs, inner(*args))
        kernel.config["act"] = "relu"
        return kernel
    kernel = _module_kernel(m, args, kwargs, out)
    if x is not None and x.is_quantized:
        kernel.config["precision"] = INT8
    return kernel


def _function_name(node: torch.fx.Node) -> str:
    if node.op == "call_method":
        return str(node.target)
    return getattr(node.target, "__name__", str(node.target))


def _converted_function_kernel(node: torch.fx.Node, args: tuple, kwargs: dict,
                               out: Any) -> Kernel | None:
    x = _first_tensor(args)
    if node.op == "call_function" and node.target is torch.quantize_per_tensor:
        return Kernel("quantize", {"shape": _shape(args[0])[1:]})
    if node.op == "call_method" and node.target == "dequantize" and x is not None:
        return Kernel("dequantize", {"shape": _shape(x)[1:]})
    name = _function_name(node)
    act = None
    if str(node.target).startswith("quantized."):
        args = args[:2]  # (x, y, scale, zero_point): the output qparams are no inputs
        if name.endswith("_relu"):
            name, act = name[: -len("_relu")], "relu"  # quantized.add_relu: one fused kernel
    kernel = _functional_kernel(name, args, kwargs, out)
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
            x = _first_tensor(args)
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
        from nas.predictors.kernels import extract_kernels

        return extract_kernels(qmodel, tuple(input_shape))
    return extract_converted_kernels(qmodel, tuple(input_shape))


# ---- standalone int8 modules --------------------------------------------------------------

class _Q(nn.Module):
    """Calls a function of (quantized) tensors."""

    def __init__(self, fn: Any, mod: nn.Module | None = None) -> None:
        super().__init__()
        self.fn, self.mod = fn, mod

    def forward(self, *xs: torch.Tensor) -> Any:
        return self.fn(*xs)


def _q(x: torch.Tensor) -> torch.Tensor:
    return torch.quantize_per_tensor(x, _SCALE, _ZERO, torch.quint8)


def _qweight(w: torch.Tensor) -> torch.Tensor:
    # per-channel symmetric, the x86 engine's default weight scheme in FX
    scale = (w.abs().flatten(1).amax(1) / 127.0).clamp_min(1e-8).double()
    return torch.quantize_per_channel(w, scale, torch.zeros_like(scale, dtype=torch.long), 0,
                                      torch.qint8)


def _int8_conv(c: dict, b: int, g: torch.Generator) -> tuple[nn.Module, tuple]:
    import torch.ao.nn.intrinsic.quantized as nniq
    import torch.ao.nn.quantized as nnq

    if isinstance(c["padding"], str) or c.get("act") not in (None, "relu"):
        raise ValueError(f"no int8 conv with padding={c['padding']!r}, act={c.get('act')!r}")
    cls = nniq.ConvReLU2d if c.get("act") == "relu" else nnq.Conv2d
    mod = cls(c["cin"], c["cout"], tuple(c["k"]), tuple(c["stride"]), tuple(c["padding"]),
              tuple(c["dilation"]), c["groups"], c["bias"])
    w = torch.randn((c["cout"], c["cin"] // c["groups"], *c["k"]), generator=g)
    mod.set_weight_bias(_qweight(w), torch.randn(c["cout"], generator=g) if c["bias"] else None)
    mod.scale, mod.zero_point = _SCALE, _ZERO
    return mod, (_q(torch.randn((b, c["cin"], c["h"], c["w"]), generator=g)),)


def _int8_linear(c: dict, b: int, g: torch.Generator) -> tuple[nn.Module, tuple]:
    import torch.ao.nn.intrinsic.quantized as nniq
    import torch.ao.nn.quantized as nnq

    if c.get("act") not in (None, "relu"):
        raise ValueError(f"no int8 linear with act={c.get('act')!r}")
    mod = (nniq.LinearReLU if c.get("act") == "relu" else nnq.Linear)(c["fin"], c["fout"],
                                                                    bias_=c["bias"])
    w = torch.randn((c["fout"], c["fin"]), generator=g)
    mod.set_weight_bias(_qweight(w), torch.randn(c["fout"], generator=g) if c["bias"] else None)
    mod.scale, mod.zero_point = _SCALE, _ZERO
    shape = (b, c["tokens"], c["fin"]) if c["tokens"] > 1 else (b, c["fin"])
    return mod, (_q(torch.randn(shape, generator=g)),)


def _int8_eltwise(c: dict, b: int, g: torch.Generator) -> tuple[nn.Module, tuple]:
    from nas.predictors.kernel_ops import _batched

    op = {"add": "add", "mul": "mul"}.get(c["op"])
    if op is None or len(c["shapes"]) != 2:
        raise ValueError(f"no int8 eltwise {c['op']!r} of {len(c['shapes'])} tensors")
    fn = getattr(torch.ops.quantized, op + ("_relu" if c.get("act") == "relu" else ""))
    xs = tuple(_q(torch.randn(_batched(s, b), generator=g)) for s in c["shapes"])
    return _Q(lambda x, y: fn(x, y, _SCALE, _ZERO)), xs


def build_int8_kernel(kernel: Kernel, batch_size: int, g: torch.Generator
                      ) -> tuple[nn.Module, tuple]:
    """Return (module, inputs) running an int8 or transition kernel standalone, as FX runs it."""
    from nas.predictors.kernel_ops import build_float_kernel

    _select_engine()
    c, b = kernel.config, batch_size
    if kernel.kind == "quantize":
        return _Q(_q), (torch.randn((b, *c["shape"]), generator=g),)
    if kernel.kind == "dequantize":
        return _Q(lambda q: q.dequantize()), (_q(torch.randn((b, *c["shape"]), generator=g)),)
    if kernel.kind == "conv":
        return _int8_conv(c, b, g)
    if kernel.kind == "linear":
        return _int8_linear(c, b, g)
    if kernel.kind == "eltwise":
        return _int8_eltwise(c, b, g)
    # glue that keeps its float module or function on a quantized tensor (pool, mean, flatten,
    # relu, cat): the float builder, its inputs quantized
    plain = {k: v for k, v in c.items() if k not in ("precision", "nhwc")}
    mod, xs = build_float_kernel(Kernel(kernel.kind, plain), b, g)
    return mod, tuple(_q(x) if x.is_floating_point() else x for x in xs)


def channels_last(xs: tuple) -> tuple:
    """Return `xs` with every 4-D tensor in channels-last memory format (an "nhwc" kernel)."""
    return tuple(x.contiguous(memory_format=torch.channels_last)
                 if isinstance(x, torch.Tensor) and x.dim() == 4 else x for x in xs)


def _select_engine() -> None:
    engines = _engines()
    engine = "x86" if "x86" in engines else "qnnpack"
    if engine not in engines:
        raise HardwareError(f"this torch build has no int8 engine (x86 / qnnpack); has {engines}")
    torch.backends.quantized.engine = engine
