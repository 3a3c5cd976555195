"""Which kernel a module call or a functional call is, and its configuration (shapes at batch 1).

The tracer (`nas.kernels.trace`) asks `module_kernel` about the leaf modules it hooks (conv,
linear, norms, pools, attention: `is_atomic`) and `function_kernel` about the functional glue a
`forward` body calls (residual adds, concatenations, matmuls, softmax, reshapes). Readers of other
graphs (an FX-quantized model) ask the same two functions, so both agree on every configuration.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from nas.kernels.kernel import Kernel

ACTIVATIONS: dict[type[nn.Module], str] = {
    nn.ReLU: "relu", nn.ReLU6: "relu6", nn.GELU: "gelu", nn.SiLU: "silu",
    nn.Hardswish: "hardswish", nn.Hardsigmoid: "hardsigmoid", nn.Sigmoid: "sigmoid",
    nn.Tanh: "tanh", nn.LeakyReLU: "leaky_relu", nn.ELU: "elu", nn.Mish: "mish",
}
# Kinds that read their input in memory order: a non-contiguous input costs them a copy or
# strided reads, so they are marked config["noncontig"].
LAYOUT_SENSITIVE = {"linear", "norm", "act", "mha", "eltwise", "softmax", "reduce"}

_ACT_FN_NAMES = {
    "relu": "relu", "relu_": "relu", "gelu": "gelu", "silu": "silu", "hardswish": "hardswish",
    "hardsigmoid": "hardsigmoid", "sigmoid": "sigmoid", "sigmoid_": "sigmoid", "tanh": "tanh",
    "relu6": "relu6", "hardtanh": "relu6", "leaky_relu": "leaky_relu", "elu": "elu",
    "mish": "mish",
}
_ELTWISE = {
    "add": "add", "__add__": "add", "__iadd__": "add", "__radd__": "add", "add_": "add",
    "sub": "sub", "__sub__": "sub", "__rsub__": "sub", "__isub__": "sub",
    "mul": "mul", "__mul__": "mul", "__imul__": "mul", "__rmul__": "mul", "mul_": "mul",
    "div": "div", "__truediv__": "div", "__itruediv__": "div",
}
_VIEWS = {"flatten", "view", "reshape", "permute", "transpose", "unsqueeze", "squeeze",
          "contiguous", "chunk", "split", "unbind", "__getitem__", "expand", "t", "dropout"}
_POOL_FNS = {"adaptive_avg_pool2d": "adaptive_avg", "avg_pool2d": "avg",
             "max_pool2d": "max", "adaptive_max_pool2d": "adaptive_max"}
_REDUCE = {"mean", "sum", "amax"}
_NO_OP_MODULES = (nn.Identity, nn.Dropout, nn.Dropout2d, nn.Dropout1d, nn.AlphaDropout)
_ATOMIC = (nn.Conv2d, nn.Linear, nn.BatchNorm2d, nn.BatchNorm1d, nn.LayerNorm, nn.GroupNorm,
           nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.Flatten,
           nn.Softmax, nn.MultiheadAttention, *_NO_OP_MODULES, *ACTIVATIONS)


def shape_of(t: Any) -> list[int]:
    """Return the shape of tensor `t` as plain ints."""
    return [int(d) for d in t.shape]


def first_tensor(obj: Any) -> torch.Tensor | None:
    """Return the first tensor in `obj` (a tensor, or tuples and lists of them), or None."""
    if isinstance(obj, torch.Tensor):
        return obj
    if isinstance(obj, (tuple, list)):
        for item in obj:
            found = first_tensor(item)
            if found is not None:
                return found
    return None


def all_tensors(args: Any) -> list[torch.Tensor]:
    """Return every tensor in `args` (tuples and lists looked into), in order."""
    out: list[torch.Tensor] = []
    for a in args:
        if isinstance(a, torch.Tensor):
            out.append(a)
        elif isinstance(a, (tuple, list)):
            out.extend(all_tensors(a))
    return out


def is_atomic(m: nn.Module) -> bool:
    """Return whether `m` is one kernel (hooked whole) rather than looked into."""
    # Other modules, leaves included (a user's GlobalAvgPool), are looked into: their
    # functional bodies are recorded by the tracer's TorchFunctionMode.
    return type(m) in _ATOMIC or isinstance(m, nn.MultiheadAttention)


def _pair(v: Any) -> list[int]:
    return [int(v), int(v)] if isinstance(v, int) else [int(x) for x in v]


# ---- leaf modules ---------------------------------------------------------------------------

def module_kernel(m: nn.Module, args: tuple, kwargs: dict, out: Any) -> Kernel:
    """Return the kernel of a call of module `m` on (`args`, `kwargs`) that returned `out`."""
    x, y = first_tensor(args), first_tensor(out)
    if x is None or y is None:
        return Kernel("other", {"cls": type(m).__name__})
    kernel = _module_kernel_of(m, args, kwargs, x, y)
    if not x.is_contiguous() and kernel.kind in LAYOUT_SENSITIVE:
        # A transposed view (ViT tokens) costs the next kernel a copy or strided reads.
        kernel.config["noncontig"] = True
    return kernel


def _conv_config(m: nn.Conv2d, x: torch.Tensor, y: torch.Tensor) -> dict[str, Any]:
    pad = m.padding if isinstance(m.padding, str) else _pair(m.padding)
    return {"cin": m.in_channels, "cout": m.out_channels, "k": _pair(m.kernel_size),
            "stride": _pair(m.stride), "padding": pad, "dilation": _pair(m.dilation),
            "groups": m.groups, "bias": m.bias is not None, "h": int(x.shape[-2]),
            "w": int(x.shape[-1]), "ho": int(y.shape[-2]), "wo": int(y.shape[-1]),
            "bn": False, "act": None}


def _pool_config(m: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, Any]:
    kinds = {nn.MaxPool2d: "max", nn.AvgPool2d: "avg", nn.AdaptiveAvgPool2d: "adaptive_avg",
             nn.AdaptiveMaxPool2d: "adaptive_max"}
    cfg: dict[str, Any] = {"type": kinds[type(m)], "shape": shape_of(x)[1:], "out": shape_of(y)[-2:]}
    if cfg["type"] in ("max", "avg"):
        cfg.update(k=_pair(m.kernel_size), stride=_pair(m.stride or m.kernel_size),
                   padding=_pair(m.padding))
    return cfg


def _module_kernel_of(m: nn.Module, args: tuple, kwargs: dict, x: torch.Tensor,
                      y: torch.Tensor) -> Kernel:
    if type(m) is nn.Conv2d:
        return Kernel("conv", _conv_config(m, x, y))
    if type(m) is nn.Linear:
        tokens = x.numel() // max(1, int(x.shape[0]) * m.in_features)
        return Kernel("linear", {"fin": m.in_features, "fout": m.out_features,
                                 "tokens": int(tokens), "bias": m.bias is not None, "act": None})
    if type(m) in ACTIVATIONS:
        return Kernel("act", {"fn": ACTIVATIONS[type(m)], "shape": shape_of(x)[1:]})
    if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d, nn.LayerNorm, nn.GroupNorm)):
        kind = {nn.BatchNorm2d: "bn2d", nn.BatchNorm1d: "bn1d", nn.LayerNorm: "ln",
                nn.GroupNorm: "gn"}[type(m)]
        cfg: dict[str, Any] = {"type": kind, "shape": shape_of(x)[1:]}
        if kind == "gn":
            cfg["groups"] = m.num_groups
        return Kernel("norm", cfg)
    if type(m) in (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d):
        return Kernel("pool", _pool_config(m, x, y))
    if isinstance(m, nn.Flatten):
        return Kernel("view", {"op": "flatten", "shape": shape_of(x)[1:]})
    if isinstance(m, nn.Softmax):
        return Kernel("softmax", {"shape": shape_of(x)[1:], "dim": int(m.dim if m.dim is not None
                                                                       else -1)})
    if isinstance(m, _NO_OP_MODULES):
        return Kernel("call", {})
    if isinstance(m, nn.MultiheadAttention):
        return _mha_kernel(m, args, kwargs)
    return Kernel("other", {"cls": type(m).__name__, "shape": shape_of(x)[1:],
                            "out": shape_of(y)[1:]})


def _mha_kernel(m: nn.MultiheadAttention, args: tuple, kwargs: dict) -> Kernel:
    q = args[0] if args else kwargs["query"]
    k = args[1] if len(args) > 1 else kwargs.get("key", q)
    seq_dim = 1 if m.batch_first else 0
    need = kwargs.get("need_weights", args[4] if len(args) > 4 else True)
    return Kernel("mha", {"embed": m.embed_dim, "heads": m.num_heads,
                          "tokens": int(q.shape[seq_dim]), "src_tokens": int(k.shape[seq_dim]),
                          "need_weights": bool(need)})


# ---- functional calls -----------------------------------------------------------------------

def function_kernel(name: str, args: tuple, kwargs: dict, out: Any) -> Kernel | None:
    """Return the kernel of a call of the torch function `name`, or None for no work we model."""
    ins = all_tensors(args)
    y = first_tensor(out)
    if y is None or not ins:
        return None
    kernel = _function_kernel_of(name, args, kwargs, ins, y)
    if kernel is not None and not ins[0].is_contiguous() and kernel.kind in LAYOUT_SENSITIVE:
        kernel.config["noncontig"] = True
    return kernel


def _function_kernel_of(name: str, args: tuple, kwargs: dict, ins: list[torch.Tensor],
                        y: torch.Tensor) -> Kernel | None:
    x = ins[0]
    if name in _ELTWISE:
        # Parameters (a position embedding) do not grow with the batch; activations do.
        return Kernel("eltwise", {"op": _ELTWISE[name], "shapes": [shape_of(t) for t in ins],
                                  "batched": [not isinstance(t, nn.Parameter) for t in ins],
                                  "out": shape_of(y)})
    if name in _ACT_FN_NAMES:
        return Kernel("act", {"fn": _ACT_FN_NAMES[name], "shape": shape_of(x)[1:]})
    if name in ("cat", "concat", "stack"):
        dim = kwargs.get("dim", args[1] if len(args) > 1 and isinstance(args[1], int) else 0)
        return Kernel("cat", {"op": "stack" if name == "stack" else "cat",
                              "shapes": [shape_of(t) for t in ins], "dim": int(dim)})
    if name in ("matmul", "__matmul__", "bmm", "mm"):
        return Kernel("matmul", {"shapes": [shape_of(t) for t in ins[:2]]})
    if name in ("softmax", "log_softmax"):
        dim = kwargs.get("dim", args[1] if len(args) > 1 else -1)
        return Kernel("softmax", {"shape": shape_of(x)[1:], "dim": int(dim)})
    if name == "scaled_dot_product_attention":
        return Kernel("sdpa", {"q": shape_of(ins[0]), "k": shape_of(ins[1]),
                               "causal": bool(kwargs.get("is_causal", False))})
    if name in _POOL_FNS:
        return Kernel("pool", {"type": _POOL_FNS[name], "shape": shape_of(x)[1:],
                               "out": shape_of(y)[-2:], "functional": True})
    if name in _REDUCE:
        dims = kwargs.get("dim", args[1] if len(args) > 1 else None)
        dims = [dims] if isinstance(dims, int) else (list(dims) if dims is not None else None)
        if dims is not None:
            dims = [int(d) % x.dim() for d in dims]
        return Kernel("reduce", {"op": name, "shape": shape_of(x)[1:], "dims": dims,
                                 "keepdim": bool(kwargs.get("keepdim", False))})
    if name in ("layer_norm", "batch_norm", "group_norm"):
        return Kernel("norm", {"type": {"layer_norm": "ln", "batch_norm": "bn2d",
                                        "group_norm": "gn"}[name], "shape": shape_of(x)[1:],
                               **({"groups": int(args[1])} if name == "group_norm" else {})})
    if name in _VIEWS:
        return Kernel("view", {"op": name.strip("_"), "shape": shape_of(x)[1:]})
    return None
