"""Decompose a built model into the kernels that run at inference, with their configurations.

One forward pass at batch 1 is traced: forward hooks see the leaf modules (conv, linear, norms,
pools, attention) and a TorchFunctionMode sees the functional glue written in `forward` bodies
(residual adds, concatenations, matmuls, softmax, reshapes). Kernels that run back to back on
one tensor are grouped as they execute together (conv+bn(+act), linear(+act)); in eager mode
they are still separate dispatches, so each group is later timed standalone *as it runs*.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from nas.errors import HardwareError

ACTIVATIONS: dict[type[nn.Module], str] = {
    nn.ReLU: "relu", nn.ReLU6: "relu6", nn.GELU: "gelu", nn.SiLU: "silu",
    nn.Hardswish: "hardswish", nn.Hardsigmoid: "hardsigmoid", nn.Sigmoid: "sigmoid",
    nn.Tanh: "tanh", nn.LeakyReLU: "leaky_relu", nn.ELU: "elu", nn.Mish: "mish",
}
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


@dataclass
class Kernel:
    """One unit of work at inference: `kind` and a JSON-able `config` (shapes at batch 1)."""

    kind: str
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def precision(self) -> str:
        """Return the precision the kernel runs at: "fp32" or "int8" (config["precision"])."""
        return str(self.config.get("precision", "fp32"))

    def key(self) -> str:
        """Return a canonical JSON string identifying this kernel configuration."""
        return json.dumps({"kind": self.kind, "config": self.config}, sort_keys=True)

    def to_json(self) -> dict[str, Any]:
        """Return {"kind", "config"} as plain JSON."""
        return {"kind": self.kind, "config": self.config}


def _shape(t: Any) -> list[int]:
    return [int(d) for d in t.shape]


def _first_tensor(obj: Any) -> torch.Tensor | None:
    if isinstance(obj, torch.Tensor):
        return obj
    if isinstance(obj, (tuple, list)):
        for item in obj:
            found = _first_tensor(item)
            if found is not None:
                return found
    return None


def _tensors(args: Any) -> list[torch.Tensor]:
    out: list[torch.Tensor] = []
    for a in args:
        if isinstance(a, torch.Tensor):
            out.append(a)
        elif isinstance(a, (tuple, list)):
            out.extend(_tensors(a))
    return out


def _pair(v: Any) -> list[int]:
    return [int(v), int(v)] if isinstance(v, int) else [int(x) for x in v]


# ---- configurations of leaf modules -------------------------------------------------------

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
    cfg: dict[str, Any] = {"type": kinds[type(m)], "shape": _shape(x)[1:], "out": _shape(y)[-2:]}
    if cfg["type"] in ("max", "avg"):
        cfg.update(k=_pair(m.kernel_size), stride=_pair(m.stride or m.kernel_size),
                   padding=_pair(m.padding))
    return cfg


def _module_kernel(m: nn.Module, args: tuple, kwargs: dict, out: Any) -> Kernel:
    x, y = _first_tensor(args), _first_tensor(out)
    if x is None or y is None:
        return Kernel("other", {"cls": type(m).__name__})
    kernel = _module_kernel_of(m, args, kwargs, x, y)
    if not x.is_contiguous() and kernel.kind in _LAYOUT_SENSITIVE:
        # A transposed view (ViT tokens) costs the next kernel a copy or strided reads.
        kernel.config["noncontig"] = True
    return kernel


_LAYOUT_SENSITIVE = {"linear", "norm", "act", "mha", "eltwise", "softmax", "reduce"}


def _module_kernel_of(m: nn.Module, args: tuple, kwargs: dict, x: torch.Tensor,
                      y: torch.Tensor) -> Kernel:
    if type(m) is nn.Conv2d:
        return Kernel("conv", _conv_config(m, x, y))
    if type(m) is nn.Linear:
        tokens = x.numel() // max(1, int(x.shape[0]) * m.in_features)
        return Kernel("linear", {"fin": m.in_features, "fout": m.out_features,
                                 "tokens": int(tokens), "bias": m.bias is not None, "act": None})
    if type(m) in ACTIVATIONS:
        return Kernel("act", {"fn": ACTIVATIONS[type(m)], "shape": _shape(x)[1:]})
    if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d, nn.LayerNorm, nn.GroupNorm)):
        kind = {nn.BatchNorm2d: "bn2d", nn.BatchNorm1d: "bn1d", nn.LayerNorm: "ln",
                nn.GroupNorm: "gn"}[type(m)]
        cfg: dict[str, Any] = {"type": kind, "shape": _shape(x)[1:]}
        if kind == "gn":
            cfg["groups"] = m.num_groups
        return Kernel("norm", cfg)
    if type(m) in (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d):
        return Kernel("pool", _pool_config(m, x, y))
    if isinstance(m, nn.Flatten):
        return Kernel("view", {"op": "flatten", "shape": _shape(x)[1:]})
    if isinstance(m, nn.Softmax):
        return Kernel("softmax", {"shape": _shape(x)[1:], "dim": int(m.dim if m.dim is not None
                                                                     else -1)})
    if isinstance(m, _NO_OP_MODULES):
        return Kernel("call", {})
    if isinstance(m, nn.MultiheadAttention):
        return _mha_kernel(m, args, kwargs)
    return Kernel("other", {"cls": type(m).__name__, "shape": _shape(x)[1:],
                            "out": _shape(y)[1:]})


def _mha_kernel(m: nn.MultiheadAttention, args: tuple, kwargs: dict) -> Kernel:
    q = args[0] if args else kwargs["query"]
    k = args[1] if len(args) > 1 else kwargs.get("key", q)
    seq_dim = 1 if m.batch_first else 0
    need = kwargs.get("need_weights", args[4] if len(args) > 4 else True)
    return Kernel("mha", {"embed": m.embed_dim, "heads": m.num_heads,
                          "tokens": int(q.shape[seq_dim]), "src_tokens": int(k.shape[seq_dim]),
                          "need_weights": bool(need)})


_ATOMIC = (nn.Conv2d, nn.Linear, nn.BatchNorm2d, nn.BatchNorm1d, nn.LayerNorm, nn.GroupNorm,
           nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.Flatten,
           nn.Softmax, nn.MultiheadAttention, *_NO_OP_MODULES, *ACTIVATIONS)


def _is_atomic(m: nn.Module) -> bool:
    # Other modules, leaves included (a user's GlobalAvgPool), are looked into: their
    # functional bodies are recorded by the TorchFunctionMode.
    return type(m) in _ATOMIC or isinstance(m, nn.MultiheadAttention)


# ---- configurations of functional calls --------------------------------------------------

def _functional_kernel(name: str, args: tuple, kwargs: dict, out: Any) -> Kernel | None:
    ins = _tensors(args)
    y = _first_tensor(out)
    if y is None or not ins:
        return None
    kernel = _functional_kernel_of(name, args, kwargs, ins, y)
    if kernel is not None and not ins[0].is_contiguous() and kernel.kind in _LAYOUT_SENSITIVE:
        kernel.config["noncontig"] = True
    return kernel


def _functional_kernel_of(name: str, args: tuple, kwargs: dict, ins: list[torch.Tensor],
                          y: torch.Tensor) -> Kernel | None:
    x = ins[0]
    if name in _ELTWISE:
        # Parameters (a position embedding) do not grow with the batch; activations do.
        return Kernel("eltwise", {"op": _ELTWISE[name], "shapes": [_shape(t) for t in ins],
                                  "batched": [not isinstance(t, nn.Parameter) for t in ins],
                                  "out": _shape(y)})
    if name in _ACT_FN_NAMES:
        return Kernel("act", {"fn": _ACT_FN_NAMES[name], "shape": _shape(x)[1:]})
    if name in ("cat", "concat", "stack"):
        dim = kwargs.get("dim", args[1] if len(args) > 1 and isinstance(args[1], int) else 0)
        return Kernel("cat", {"op": "stack" if name == "stack" else "cat",
                              "shapes": [_shape(t) for t in ins], "dim": int(dim)})
    if name in ("matmul", "__matmul__", "bmm", "mm"):
        return Kernel("matmul", {"shapes": [_shape(t) for t in ins[:2]]})
    if name in ("softmax", "log_softmax"):
        dim = kwargs.get("dim", args[1] if len(args) > 1 else -1)
        return Kernel("softmax", {"shape": _shape(x)[1:], "dim": int(dim)})
    if name == "scaled_dot_product_attention":
        return Kernel("sdpa", {"q": _shape(ins[0]), "k": _shape(ins[1]),
                               "causal": bool(kwargs.get("is_causal", False))})
    if name in _POOL_FNS:
        return Kernel("pool", {"type": _POOL_FNS[name], "shape": _shape(x)[1:],
                               "out": _shape(y)[-2:], "functional": True})
    if name in _REDUCE:
        dims = kwargs.get("dim", args[1] if len(args) > 1 else None)
        dims = [dims] if isinstance(dims, int) else (list(dims) if dims is not None else None)
        if dims is not None:
            dims = [int(d) % x.dim() for d in dims]
        return Kernel("reduce", {"op": name, "shape": _shape(x)[1:], "dims": dims,
                                 "keepdim": bool(kwargs.get("keepdim", False))})
    if name in ("layer_norm", "batch_norm", "group_norm"):
        return Kernel("norm", {"type": {"layer_norm": "ln", "batch_norm": "bn2d",
                                        "group_norm": "gn"}[name], "shape": _shape(x)[1:],
                               **({"groups": int(args[1])} if name == "group_norm" else {})})
    if name in _VIEWS:
        return Kernel("view", {"op": name.strip("_"), "shape": _shape(x)[1:]})
    return None


# ---- the tracer ---------------------------------------------------------------------------

class _Trace(TorchFunctionMode):
    """Records (kernel, input ids, output id) events at the top level of a forward pass."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple[Kernel, list[int], int]] = []
        self.depth = 0
        self.keep: list[Any] = []  # keeps tensors alive so their ids stay unique

    def add(self, kernel: Kernel, ins: list[torch.Tensor], out: Any) -> None:
        y = _first_tensor(out)
        self.keep.append(out)
        self.keep.extend(ins)
        self.events.append((kernel, [id(t) for t in ins], id(y) if y is not None else -1))

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if self.depth == 0:
            kernel = _functional_kernel(getattr(func, "__name__", ""), args, kwargs, out)
            if kernel is not None:
                self.add(kernel, _tensors(args), out)
        return out


def _hook(model: nn.Module, trace: _Trace) -> list[Any]:
    handles = []
    for m in model.modules():
        if _is_atomic(m):
            def pre(mod, args, kwargs, _t=trace):  # noqa: ANN001
                _t.depth += 1

            def post(mod, args, kwargs, out, _t=trace):  # noqa: ANN001
                _t.depth -= 1
                if _t.depth == 0:
                    _t.add(_module_kernel(mod, args, kwargs, out), _tensors(args), out)
            handles.append(m.register_forward_pre_hook(pre, with_kwargs=True))
            handles.append(m.register_forward_hook(post, with_kwargs=True))
        else:
            def call(mod, args, _t=trace):  # noqa: ANN001
                if _t.depth == 0:
                    _t.events.append((Kernel("call", {}), [], -1))
            handles.append(m.register_forward_pre_hook(call))
    return handles


def _fuse(events: list[tuple[Kernel, list[int], int]]) -> list[Kernel]:
    calls = [k for k, _, _ in events if k.kind == "call"]
    work = [e for e in events if e[0].kind != "call"]
    fused: list[Kernel] = []
    i = 0
    while i < len(work):
        kernel, _, out = work[i]
        kernel = Kernel(kernel.kind, dict(kernel.config))
        i += 1
        if kernel.kind == "conv" and i < len(work) and work[i][0].kind == "norm" \
                and work[i][0].config["type"] == "bn2d" and out in work[i][1]:
            kernel.config["bn"], out = True, work[i][2]
            i += 1
        if kernel.kind in ("conv", "linear") and i < len(work) and work[i][0].kind == "act" \
                and out in work[i][1]:
            kernel.config["act"] = work[i][0].config["fn"]
            i += 1
        fused.append(kernel)
    return fused + calls


def run_traced(model: nn.Module, x: torch.Tensor, handles: list[Any] | None = None) -> _Trace:
    """Return the trace of one forward pass of `model` on `x`; all hooks (also `handles`) removed."""
    trace = _Trace()
    handles = [*(handles or []), *_hook(model, trace)]
    try:
        with torch.inference_mode(), trace:
            model(x)
    finally:
        for h in handles:
            h.remove()
    return trace


def _trace(model: nn.Module, x: torch.Tensor) -> list[Kernel]:
    return _fuse(run_traced(model, x).events)


def _meta_copy(model: nn.Module) -> nn.Module:
    # Tensors are pre-seeded in deepcopy's memo as meta tensors, so no weight is copied.
    memo: dict[int, Any] = {}
    for t in list(model.parameters()) + list(model.buffers()):
        meta = torch.empty_like(t, device="meta")
        memo[id(t)] = nn.Parameter(meta, t.requires_grad) if isinstance(t, nn.Parameter) else meta
    return copy.deepcopy(model, memo).eval()


def extract_kernels(model: nn.Module, input_shape: tuple[int, ...],
                    dtype: torch.dtype = torch.float32, *,
                    policy: Mapping[str, str] | None = None,
                    int8_method: str = "analyse") -> list[Kernel]:
    """Return the kernels one forward pass of `model` runs at batch 1, fused as they execute.

    With a `policy` ({layer name: "fp32" | "int8"}, layers left out stay fp32) the model is
    decomposed as it runs quantized: int8 kernels carry config["precision"] = "int8" and the
    fp32<->int8 transitions are "quantize" / "dequantize" kernels. An FX-converted int8 model
    is decomposed as it is. `int8_method` "analyse" replays the FX backend's rules on the float
    trace (`predictors.quant_analysis`); "convert" quantizes the model (random calibration) and
    reads the converted graph, exact by construction. On 52 quantized VGG pairs both gave the
    same kernels every time, "analyse" about 9x faster (e.g. 51 vs 464 ms per pair).
    """
    from nas.predictors import quant_kernels as qk

    if not isinstance(model, nn.Module):
        raise HardwareError(f"extract_kernels needs a torch.nn.Module, got {type(model).__name__}")
    if not input_shape or any(int(d) < 1 for d in input_shape):
        raise HardwareError(f"input_shape={tuple(input_shape)} is invalid; give positive dims "
                            "without the batch dimension, e.g. (3, 32, 32)")
    if int8_method not in ("convert", "analyse"):
        raise HardwareError(f"int8_method={int8_method!r} is invalid; valid: 'convert', 'analyse'")
    if not qk.policy_is_float(policy):
        shape = tuple(map(int, input_shape))
        if int8_method == "analyse":
            from nas.predictors.quant_analysis import analyse_policy_kernels

            try:
                return analyse_policy_kernels(model, shape, dict(policy or {}))
            except (RuntimeError, NotImplementedError, TypeError, copy.Error):
                pass  # a model that cannot be traced on meta: quantize it for real
        return qk.extract_policy_kernels(model, shape, dict(policy or {}))
    if qk.is_quantized_model(model):
        return qk.extract_converted_kernels(model, tuple(map(int, input_shape)))
    shape = (1, *map(int, input_shape))
    # On the meta device only shapes are computed: a fresh model's first real forward pass
    # spends seconds creating oneDNN kernels for each new shape. A copy keeps the caller's
    # weights; models that cannot be copied or run on meta are traced for real.
    try:
        shadow = _meta_copy(model)
        return _trace(shadow, torch.empty(shape, dtype=dtype, device="meta"))
    except (RuntimeError, NotImplementedError, TypeError, copy.Error):
        pass
    was_training = model.training
    try:
        x = torch.randn(shape, generator=torch.Generator().manual_seed(0), dtype=dtype)
        return _trace(model.eval(), x)
    finally:
        model.train(was_training)
