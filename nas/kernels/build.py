"""Standalone kernels: a tiny module and its inputs that run one Kernel at a batch size, for timing.

Each kernel is built as the model ran it: a fused conv+bn+act is one module chain, functional glue
a wrapped function, and inputs keep the memory layout the model handed on (a transposed view for
a "noncontig" kernel, channels-last for an "nhwc" one).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nas.kernels.kernel import Kernel, batched_shape

_ACT_MODULES: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU, "relu6": nn.ReLU6, "gelu": nn.GELU, "silu": nn.SiLU,
    "hardswish": nn.Hardswish, "hardsigmoid": nn.Hardsigmoid, "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh, "leaky_relu": nn.LeakyReLU, "elu": nn.ELU, "mish": nn.Mish,
}
# the fp32 kinds `build_float_kernel` builds ("other" is whatever the tracer does not model)
BUILDABLE = frozenset({"conv", "linear", "act", "norm", "pool", "view", "eltwise", "cat", "matmul",
                       "softmax", "sdpa", "mha", "reduce", "call"})
ModuleBuilder = Callable[[Kernel, int, torch.Generator], tuple[nn.Module, tuple]]


class _Chain(nn.Module):
    """Calls its parts in order, as the model did (one module call per part)."""

    def __init__(self, *parts: nn.Module) -> None:
        super().__init__()
        self.parts = nn.ModuleList(parts)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for p in self.parts:
            x = p(x)
        return x


class _Fn(nn.Module):
    """Wraps a function of tensors, for the functional glue kernels."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, *xs: torch.Tensor) -> Any:
        return self.fn(*xs)


def _rand(shape: list[int] | tuple[int, ...], gen: torch.Generator,
          noncontig: bool = False) -> torch.Tensor:
    dims = [int(d) for d in shape]
    if noncontig and len(dims) >= 3:
        # the layout a transposed view hands on: (N, L, C) strided as (N, C, L)
        return torch.randn([*dims[:-2], dims[-1], dims[-2]], generator=gen).transpose(-1, -2)
    return torch.randn(dims, generator=gen)


def _conv(c: dict, b: int, g: torch.Generator) -> tuple[nn.Module, tuple]:
    pad = c["padding"] if isinstance(c["padding"], str) else tuple(c["padding"])
    parts: list[nn.Module] = [nn.Conv2d(c["cin"], c["cout"], tuple(c["k"]), tuple(c["stride"]),
                                        pad, tuple(c["dilation"]), c["groups"], c["bias"])]
    if c.get("bn"):
        parts.append(nn.BatchNorm2d(c["cout"]))
    if c.get("act"):
        parts.append(_ACT_MODULES[c["act"]]())
    return _Chain(*parts), (_rand((b, c["cin"], c["h"], c["w"]), g),)


def _linear(c: dict, b: int, g: torch.Generator) -> tuple[nn.Module, tuple]:
    parts: list[nn.Module] = [nn.Linear(c["fin"], c["fout"], c["bias"])]
    if c.get("act"):
        parts.append(_ACT_MODULES[c["act"]]())
    shape = (b, c["tokens"], c["fin"]) if c["tokens"] > 1 else (b, c["fin"])
    return _Chain(*parts), (_rand(shape, g, c.get("noncontig", False)),)


def _norm(c: dict, b: int, g: torch.Generator) -> tuple[nn.Module, tuple]:
    s = c["shape"]
    mod = {"bn2d": lambda: nn.BatchNorm2d(s[0]), "bn1d": lambda: nn.BatchNorm1d(s[0]),
           "ln": lambda: nn.LayerNorm(s[-1]),
           "gn": lambda: nn.GroupNorm(c.get("groups", 1), s[0])}[c["type"]]()
    return mod, (_rand((b, *s), g, c.get("noncontig", False)),)


def _pool(c: dict, b: int, g: torch.Generator) -> tuple[nn.Module, tuple]:
    t = c["type"]
    if t == "max" and "k" in c:
        mod: nn.Module = nn.MaxPool2d(tuple(c["k"]), tuple(c["stride"]), tuple(c["padding"]))
    elif t == "avg" and "k" in c:
        mod = nn.AvgPool2d(tuple(c["k"]), tuple(c["stride"]), tuple(c["padding"]))
    elif t == "adaptive_max":
        mod = nn.AdaptiveMaxPool2d(tuple(c["out"]))
    else:  # adaptive_avg, or a functional pool whose window we did not record
        mod = nn.AdaptiveAvgPool2d(tuple(c["out"]))
    return mod, (_rand((b, *c["shape"]), g),)


def _view_fn(op: str) -> Callable[[torch.Tensor], Any]:
    table: dict[str, Callable[[torch.Tensor], Any]] = {
        "flatten": lambda x: x.flatten(1), "view": lambda x: x.view(x.shape[0], -1),
        "reshape": lambda x: x.reshape(x.shape[0], -1), "unsqueeze": lambda x: x.unsqueeze(1),
        "squeeze": lambda x: x.squeeze(), "getitem": lambda x: x[:, 0],
        "chunk": lambda x: x.chunk(2, -1), "split": lambda x: x.split(1, -1),
        "unbind": lambda x: x.unbind(1), "expand": lambda x: x.expand_as(x),
        "contiguous": lambda x: x.contiguous(), "dropout": lambda x: F.dropout(x, 0.1, False),
    }
    return table.get(op, lambda x: x.transpose(-1, -2) if x.dim() > 1 else x)


def _view(c: dict, b: int, g: torch.Generator) -> tuple[nn.Module, tuple]:
    x = _rand((b, *c["shape"]), g)
    if c["op"] == "contiguous" and x.dim() > 2:
        x = x.transpose(-1, -2)  # contiguous() copies only a non-contiguous tensor
    return _Fn(_view_fn(c["op"])), (x,)


def _eltwise(c: dict, b: int, g: torch.Generator) -> tuple[nn.Module, tuple]:
    flags = c.get("batched", [True] * len(c["shapes"]))
    nc = c.get("noncontig", False)
    xs = tuple(_rand(batched_shape(s, b, f), g, nc and i == 0)
               for i, (s, f) in enumerate(zip(c["shapes"], flags, strict=False)))
    op = {"add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div}[c["op"]]
    if len(xs) == 1:
        return _Fn(lambda x: op(x, 0.5)), xs

    def run(*ts: torch.Tensor) -> torch.Tensor:
        out = ts[0]
        for t in ts[1:]:
            out = op(out, t)
        return out
    return _Fn(run), xs


def _functional(kind: str, c: dict, b: int, g: torch.Generator) -> tuple[nn.Module, tuple]:
    nc = c.get("noncontig", False)
    if kind == "act":
        return _ACT_MODULES[c["fn"]](), (_rand((b, *c["shape"]), g, nc),)
    if kind == "cat":
        xs = tuple(_rand(batched_shape(s, b), g) for s in c["shapes"])
        fn = torch.stack if c["op"] == "stack" else torch.cat
        return _Fn(lambda *ts: fn(ts, dim=c["dim"])), xs
    if kind == "matmul":
        xs = tuple(_rand(batched_shape(s, b, len(s) >= 3), g) for s in c["shapes"])
        return _Fn(torch.matmul), xs
    if kind == "softmax":
        return _Fn(lambda x: torch.softmax(x, c["dim"])), (_rand((b, *c["shape"]), g, nc),)
    if kind == "sdpa":
        q, k = _rand(batched_shape(c["q"], b), g), _rand(batched_shape(c["k"], b), g)
        fn = F.scaled_dot_product_attention
        return _Fn(lambda q_, k_: fn(q_, k_, k_, is_causal=c["causal"])), (q, k)
    if kind == "reduce":
        dims = c["dims"]
        op = {"mean": torch.mean, "sum": torch.sum, "amax": torch.amax}[c["op"]]
        if dims is None:
            return _Fn(lambda x: op(x)), (_rand((b, *c["shape"]), g, nc),)
        return _Fn(lambda x: op(x, dims, c["keepdim"])), (_rand((b, *c["shape"]), g, nc),)
    if kind == "mha":
        mod = nn.MultiheadAttention(c["embed"], c["heads"], batch_first=True)
        q = _rand((b, c["tokens"], c["embed"]), g, nc)
        kv = q if c["src_tokens"] == c["tokens"] else _rand((b, c["src_tokens"], c["embed"]), g)
        need = c["need_weights"]
        return _Fn(lambda q_, kv_: mod(q_, kv_, kv_, need_weights=need)), (q, kv)
    if kind == "call":
        return nn.Sequential(), (_rand((b, 1), g),)
    raise KeyError(kind)


def build_float_kernel(kernel: Kernel, batch_size: int,
                       g: torch.Generator) -> tuple[nn.Module, tuple]:
    """Return (module, inputs) of an fp32 `kernel` at `batch_size`, inputs drawn from `g`."""
    if kernel.precision != "fp32":  # an fp32 module would time it wrong, and silently
        raise ValueError(f"a {kernel.precision} {kernel.kind} kernel has no fp32 module; build it "
                         "with a builder of its precision")
    builders = {"conv": _conv, "linear": _linear, "norm": _norm, "pool": _pool,
                "view": _view, "eltwise": _eltwise}
    if kernel.kind in builders:
        return builders[kernel.kind](kernel.config, batch_size, g)
    return _functional(kernel.kind, kernel.config, batch_size, g)


def build_kernel(kernel: Kernel, batch_size: int, seed: int = 0, *,
                 builder: ModuleBuilder = build_float_kernel) -> tuple[nn.Module, tuple]:
    """Return (module, inputs) that run `kernel` standalone at `batch_size` (eval mode).

    `builder` makes the module and its inputs (fp32 kernels by default; int8 code passes one
    that knows its kernels too); here the weights are seeded and an "nhwc" kernel gets its
    4-D inputs in channels-last memory format, whatever the builder.
    """
    plain = Kernel(kernel.kind, {k: v for k, v in kernel.config.items() if k != "nhwc"})
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # weights are seeded too, though timings do not depend on them
        mod, xs = builder(plain, batch_size, g)
    if kernel.config.get("nhwc"):
        xs = channels_last(xs)
    return mod.eval(), xs


def channels_last(xs: tuple) -> tuple:
    """Return `xs` with every 4-D tensor in channels-last memory format (an "nhwc" kernel)."""
    return tuple(x.contiguous(memory_format=torch.channels_last)
                 if isinstance(x, torch.Tensor) and x.dim() == 4 else x for x in xs)
