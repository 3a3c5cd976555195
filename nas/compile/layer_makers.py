"""Built-in layer makers: resolved arguments + input shape -> (module, output shape), or a clear error.

Shapes exclude the batch dimension. Shape rules are written out (not found by running the layer) so
that building stays cheap; user ops are run once on the meta device instead.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from nas.compile import modules as M
from nas.errors import SpaceError

Shape = tuple[int, ...]
Maker = Callable[[dict[str, Any], Shape, str], tuple[nn.Module, Shape]]


def _need_image(kind: str, shape: Shape, where: str) -> None:
    if len(shape) != 3:
        raise SpaceError(
            f"at '{where}': {kind} expects an image input (channels, height, width), got shape "
            f"{shape}; it cannot follow a flatten, a global pool or a linear layer"
        )


def _positive_int(kind: str, name: str, v: Any, where: str) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or v < 1:
        raise SpaceError(f"at '{where}': {kind}({name}={v!r}) must be a positive integer")
    return v


def _spatial(kind: str, shape: Shape, k: int, s: int, p: int, where: str) -> Shape:
    h, w = ((d + 2 * p - k) // s + 1 for d in shape[1:])
    if h < 1 or w < 1:
        raise SpaceError(
            f"at '{where}': {kind} with kernel {k}, stride {s}, padding {p} shrinks the "
            f"{shape[1]}x{shape[2]} input to nothing; reduce strides/pooling or enlarge the input"
        )
    return (shape[0], h, w)


def conv2d(a: dict[str, Any], shape: Shape, where: str) -> tuple[nn.Module, Shape]:
    _need_image("conv2d", shape, where)
    c = shape[0]
    out = _positive_int("conv2d", "out_channels", a["out_channels"], where)
    k = _positive_int("conv2d", "kernel_size", a["kernel_size"], where)
    s = _positive_int("conv2d", "stride", a["stride"], where)
    g = _positive_int("conv2d", "groups", a["groups"], where)
    p = k // 2 if a["padding"] is None else a["padding"]
    if c % g or out % g:
        raise SpaceError(
            f"at '{where}': conv2d(groups={g}) needs input channels ({c}) and out_channels "
            f"({out}) divisible by groups"
        )
    conv = nn.Conv2d(c, out, k, stride=s, padding=p, groups=g, bias=bool(a["bias"]))
    return conv, _spatial("conv2d", (out, *shape[1:]), k, s, p, where)


def depthwise_conv2d(a: dict[str, Any], shape: Shape, where: str) -> tuple[nn.Module, Shape]:
    _need_image("depthwise_conv2d", shape, where)
    args = dict(out_channels=shape[0], groups=shape[0], padding=None, **a)
    return conv2d(args, shape, where)


def linear(a: dict[str, Any], shape: Shape, where: str) -> tuple[nn.Module, Shape]:
    if len(shape) not in (1, 2):
        raise SpaceError(
            f"at '{where}': linear expects (features,) or (tokens, features), got shape {shape}; "
            "add S.flatten() or S.global_avg_pool() before it"
        )
    out = _positive_int("linear", "out_features", a["out_features"], where)
    return nn.Linear(shape[-1], out, bias=bool(a["bias"])), (*shape[:-1], out)


def batch_norm(a: dict[str, Any], shape: Shape, where: str) -> tuple[nn.Module, Shape]:
    if len(shape) == 3:
        return nn.BatchNorm2d(shape[0]), shape
    if len(shape) == 1:
        return nn.BatchNorm1d(shape[0]), shape
    raise SpaceError(f"at '{where}': batch_norm on shape {shape}; use S.layer_norm() for tokens")


def layer_norm(a: dict[str, Any], shape: Shape, where: str) -> tuple[nn.Module, Shape]:
    if len(shape) == 3:  # over (C, H, W), as LayerNorm over a whole image would
        return nn.GroupNorm(1, shape[0]), shape
    return nn.LayerNorm(shape[-1]), shape


def _pool(kind: str, cls: type) -> Maker:
    def make(a: dict[str, Any], shape: Shape, where: str) -> tuple[nn.Module, Shape]:
        _need_image(kind, shape, where)
        k = _positive_int(kind, "kernel_size", a["kernel_size"], where)
        s = k if a["stride"] is None else _positive_int(kind, "stride", a["stride"], where)
        p = a["padding"]
        if not isinstance(p, int) or p < 0 or 2 * p > k:
            raise SpaceError(f"at '{where}': {kind}(padding={p!r}) must be between 0 and kernel/2")
        extra = {"count_include_pad": False} if cls is nn.AvgPool2d else {}
        return cls(k, stride=s, padding=p, **extra), _spatial(kind, shape, k, s, p, where)

    return make


def global_avg_pool(a: dict[str, Any], shape: Shape, where: str) -> tuple[nn.Module, Shape]:
    if len(shape) == 3:
        return M.GlobalAvgPool(), (shape[0],)
    if len(shape) == 2:
        return M.TokenMean(), (shape[1],)
    raise SpaceError(f"at '{where}': global_avg_pool needs an image or tokens, got shape {shape}")


def flatten(a: dict[str, Any], shape: Shape, where: str) -> tuple[nn.Module, Shape]:
    return nn.Flatten(), (math.prod(shape),)


def dropout(a: dict[str, Any], shape: Shape, where: str) -> tuple[nn.Module, Shape]:
    p = a["p"]
    if not isinstance(p, int | float) or not 0 <= p < 1:
        raise SpaceError(f"at '{where}': dropout(p={p!r}) must be in [0, 1)")
    return nn.Dropout(p), shape


def _same_shape(cls: type) -> Maker:
    return lambda a, shape, where: (cls(), shape)


def user_op(factory: Callable[..., Any], a: dict[str, Any], shape: Shape, where: str,
            memo: dict[str, Shape] | None = None) -> tuple[nn.Module, Shape]:
    """Return a user's op and its output shape (one forward pass on the meta device, or `memo`)."""
    kwargs = dict(a)
    if "in_shape" in inspect.signature(factory).parameters:
        kwargs["in_shape"] = shape
    name = getattr(factory, "__qualname__", repr(factory))
    try:
        module = factory(**kwargs)
    except Exception as e:
        raise SpaceError(f"at '{where}': op {name}({kwargs}) raised {type(e).__name__}: {e}") from e
    if not isinstance(module, nn.Module):
        raise SpaceError(f"at '{where}': op {name} returned {type(module).__name__}, not an nn.Module")
    key = repr((sorted(a.items()), shape))  # a factory is a pure function of its arguments
    if memo is not None and key in memo:
        return module, memo[key]
    meta = {k: v.to("meta") for k, v in [*module.named_parameters(), *module.named_buffers()]}
    try:
        out = torch.func.functional_call(module, meta, (torch.empty((1, *shape), device="meta"),))
    except Exception as e:
        raise SpaceError(
            f"at '{where}': op {name} does not accept input shape {shape}: {type(e).__name__}: {e}"
        ) from e
    if memo is not None:
        memo[key] = tuple(out.shape[1:])
    return module, tuple(out.shape[1:])


MAKERS: dict[str, Maker] = {
    "conv2d": conv2d,
    "depthwise_conv2d": depthwise_conv2d,
    "linear": linear,
    "batch_norm": batch_norm,
    "layer_norm": layer_norm,
    "relu": _same_shape(nn.ReLU),
    "gelu": _same_shape(nn.GELU),
    "identity": _same_shape(nn.Identity),
    "zero": _same_shape(M.Zero),
    "max_pool2d": _pool("max_pool2d", nn.MaxPool2d),
    "avg_pool2d": _pool("avg_pool2d", nn.AvgPool2d),
    "global_avg_pool": global_avg_pool,
    "flatten": flatten,
    "dropout": dropout,
}
