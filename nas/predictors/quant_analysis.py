"""int8 decomposition by analysis: precisions propagated along the float trace, nothing quantized.

The alternative to `quant_kernels.extract_policy_kernels` (which quantizes for real and reads
the converted graph): the float model is traced once on the meta device, as for the float
predictor, and the rules of the FX backend (`nas.compress.int8_backends`) are replayed on the
recorded data flow: conv(+bn)(+relu) and linear(+relu) fuse, with bn folded; a layer is int8
when the policy says; pooling, relu, add/mul, cat, mean, flatten stay int8 when all their inputs
are (an int8 add followed by relu is one ``add_relu``); anything else is fp32; a ``quantize`` or
``dequantize`` sits on every edge whose precision changes (one per tensor) and at an int8 output;
int8 convs hand on channels-last tensors, which the ops after them keep.

`benchmarks/int8_latency.py` measures how often it agrees with the real conversion and how
much faster it is.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from nas.kernels.kernel import Kernel
from nas.kernels.recognize import LAYOUT_SENSITIVE
from nas.kernels.trace import Event, extract_kernels, meta_copy, run_traced
from nas.predictors.quant_kernels import policy_is_float

# What the FX backend keeps int8 inside an int8 region (its _FOLLOW_MODULES / _FOLLOW_FUNCTIONS)
_FOLLOW = {"pool": ("type", {"max", "avg", "adaptive_avg"}), "eltwise": ("op", {"add", "mul"}),
           "cat": ("op", {"cat"}), "reduce": ("op", {"mean"}), "norm": ("type", {"bn2d"}),
           "act": ("fn", {"relu", "relu6"})}


def _trace_events(model: nn.Module, shape: tuple[int, ...]
                  ) -> tuple[list[Event], dict[int, str], dict[int, list[int]], int]:
    """Return (events, layer name by output id, shape by tensor id, input id) of one pass."""
    shadow = meta_copy(model)
    names: dict[int, str] = {}
    shapes: dict[int, list[int]] = {}
    handles = []
    for name, m in shadow.named_modules():
        if type(m) in (nn.Conv2d, nn.Linear):
            handles.append(m.register_forward_hook(
                lambda _m, _a, out, n=name: names.__setitem__(id(out), n)))
    x = torch.empty((1, *shape), device="meta")
    trace = run_traced(shadow, x, handles)
    for t in trace.keep:
        if isinstance(t, torch.Tensor):
            shapes[id(t)] = [int(d) for d in t.shape]
    shapes[id(x)] = [1, *shape]
    return [e for e in trace.events if e[0].kind != "call"], names, shapes, id(x)


def _consumes(events: list[Event], i: int, out: int, kind: str, what: set[str]) -> bool:
    if i >= len(events) or out not in events[i][1] or events[i][0].kind != kind:
        return False
    cfg = events[i][0].config
    return cfg.get("fn", cfg.get("type")) in what


class _Flow:
    """Precision and memory format of every tensor, and the kernels emitted so far."""

    def __init__(self, shapes: dict[int, list[int]], x: int) -> None:
        self.shapes = shapes
        self.prec: dict[int, str] = {x: "fp32"}
        self.nhwc: dict[int, bool] = {x: False}
        self.converted: dict[tuple[int, str], int] = {}
        self.kernels: list[Kernel] = [Kernel("call", {})]

    def with_layout(self, kernel: Kernel, t: int) -> Kernel:
        """Return `kernel`, marked "nhwc" when its input `t` is a channels-last 4-D tensor."""
        s = self.shapes.get(t, [])
        if self.nhwc.get(t) and len(s) == 4 and s[1] > 1 and s[2] * s[3] > 1:
            kernel.config["nhwc"] = True
            if kernel.kind in LAYOUT_SENSITIVE:  # as the tracer marks a non-contiguous input
                kernel.config["noncontig"] = True
        return kernel

    def feed(self, t: int, precision: str) -> None:
        """Convert tensor `t` to `precision` if it is not (once per tensor)."""
        if self.prec.get(t, "fp32") == precision or (t, precision) in self.converted:
            return
        kind = "quantize" if precision == "int8" else "dequantize"
        self.kernels.append(self.with_layout(Kernel(kind, {"shape": self.shapes[t][1:]}), t))
        self.converted[(t, precision)] = t

    def emit(self, kernel: Kernel, ins: list[int], out: int, precision: str,
             nhwc_out: bool | None = None) -> None:
        """Record `kernel` at `precision`, converting its inputs first."""
        for t in ins:
            self.feed(t, precision)
        if precision == "int8":
            kernel.config["precision"] = "int8"
        self.kernels.append(self.with_layout(kernel, ins[0]) if ins else kernel)
        self.prec[out] = precision
        shape = self.shapes.get(out, [])
        carried = any(self.nhwc.get(t) for t in ins[:1])
        self.nhwc[out] = (nhwc_out if nhwc_out is not None else carried) and len(shape) == 4


def analyse_policy_kernels(model: nn.Module, input_shape: tuple[int, ...],
                           policy: Mapping[str, str]) -> list[Kernel]:
    """Return the kernels `model` would run quantized per `policy`, without quantizing it."""
    if policy_is_float(policy):  # apply_policy returns the float model itself
        return extract_kernels(model, tuple(input_shape))
    events, names, shapes, x = _trace_events(model, tuple(int(d) for d in input_shape))
    flow = _Flow(shapes, x)
    i, last = 0, x
    while i < len(events):
        kernel, ins, out = events[i]
        kernel = Kernel(kernel.kind, dict(kernel.config))
        i += 1
        if kernel.kind in ("conv", "linear"):
            name = names.get(out, "")
            i, out = _layer(events, i, kernel, out)
            precision = "int8" if str(policy.get(name, "fp32")).startswith("int8") else "fp32"
            flow.emit(kernel, ins, out, precision, True if precision == "int8" else None)
        elif kernel.kind == "view":
            flow.prec[out] = flow.prec.get(ins[0], "fp32")  # carries its input's precision
            flow.nhwc[out] = flow.nhwc.get(ins[0], False) and len(shapes.get(out, [])) == 4
            if flow.prec[out] == "int8":
                kernel.config["precision"] = "int8"
            flow.kernels.append(flow.with_layout(kernel, ins[0]))
        else:
            int8 = _follows(kernel) and all(flow.prec.get(t, "fp32") == "int8" for t in ins)
            if int8 and kernel.kind == "eltwise" and _consumes(events, i, out, "act", {"relu"}):
                kernel.config["act"], out = "relu", events[i][2]
                i += 1
            flow.emit(kernel, ins, out, "int8" if int8 else "fp32")
        last = out
    if flow.prec.get(last) == "int8":
        flow.feed(last, "fp32")
    return flow.kernels


def _follows(kernel: Kernel) -> bool:
    field, values = _FOLLOW.get(kernel.kind, ("", set()))
    return kernel.config.get(field) in values


def _layer(events: list[Event], i: int, kernel: Kernel, out: int) -> tuple[int, int]:
    """Fuse bn (folded) and relu into a conv/linear as fuse_fx does; return (next i, out)."""
    if kernel.kind == "conv" and _consumes(events, i, out, "norm", {"bn2d"}):
        kernel.config["bias"] = True  # the folded bn's shift
        out = events[i][2]
        i += 1
    kernel.config["bn"] = False if kernel.kind == "conv" else kernel.config.get("bn", False)
    if kernel.kind == "linear":
        kernel.config.pop("bn")
    kernel.config["act"] = None
    if _consumes(events, i, out, "act", {"relu"}):
        kernel.config["act"], out = "relu", events[i][2]
        i += 1
    return i, out


def agreement(a: list[Kernel], b: list[Kernel]) -> bool:
    """Return whether two decompositions hold the same kernels (as multisets)."""
    return sorted(k.key() for k in a) == sorted(k.key() for k in b)

