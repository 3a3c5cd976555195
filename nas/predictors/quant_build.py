"""Standalone int8 modules: an int8 kernel or an fp32<->int8 transition built as FX runs it, to time.

The float core (`nas.kernels.build.build_kernel`) seeds the weights and lays out "nhwc" inputs;
`build_int8_kernel` is the module builder it is handed for kernels that `is_int8`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from nas.errors import HardwareError
from nas.kernels.build import build_float_kernel
from nas.kernels.kernel import Kernel, batched_shape
from nas.predictors.quant_kernels import int8_engine

# Output / input qparams of standalone modules: timings do not depend on them.
_SCALE, _ZERO = 0.05, 64


class _Q(nn.Module):
    """Calls a function of (quantized) tensors."""

    def __init__(self, fn: Any) -> None:
        super().__init__()
        self.fn = fn

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
    op = {"add": "add", "mul": "mul"}.get(c["op"])
    if op is None or len(c["shapes"]) != 2:
        raise ValueError(f"no int8 eltwise {c['op']!r} of {len(c['shapes'])} tensors")
    fn = getattr(torch.ops.quantized, op + ("_relu" if c.get("act") == "relu" else ""))
    xs = tuple(_q(torch.randn(batched_shape(s, b), generator=g)) for s in c["shapes"])
    return _Q(lambda x, y: fn(x, y, _SCALE, _ZERO)), xs


def build_int8_kernel(kernel: Kernel, batch_size: int, g: torch.Generator
                      ) -> tuple[nn.Module, tuple]:
    """Return (module, inputs) running an int8 or transition kernel standalone, as FX runs it."""
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
    plain = {k: v for k, v in c.items() if k != "precision"}
    mod, xs = build_float_kernel(Kernel(kernel.kind, plain), b, g)
    return mod, tuple(_q(x) if x.is_floating_point() else x for x in xs)


def _select_engine() -> None:
    engine = int8_engine()
    if engine not in torch.backends.quantized.supported_engines:
        raise HardwareError("this torch build has no int8 engine (x86 / qnnpack); has "
                            f"{list(torch.backends.quantized.supported_engines)}")
    torch.backends.quantized.engine = engine
