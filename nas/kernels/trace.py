"""Decompose a built fp32 model into the kernels that run at inference, with their configurations.

One forward pass at batch 1 is traced: forward hooks see the leaf modules (conv, linear, norms,
pools, attention) and a TorchFunctionMode sees the functional glue written in `forward` bodies
(residual adds, concatenations, matmuls, softmax, reshapes); `nas.kernels.recognize` says which
kernel each call is. Kernels that run back to back on one tensor are grouped as they execute
together (conv+bn(+act), linear(+act)); in eager mode they are still separate dispatches, so each
group is later timed standalone *as it runs*.

Quantized models are not read here: `nas.predictors.mixed_precision.extract_kernels` decomposes
them (and float models under an int8 policy) on top of `run_traced` and the recognizers.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from nas.errors import HardwareError
from nas.kernels.kernel import Kernel
from nas.kernels.recognize import all_tensors, first_tensor, function_kernel, is_atomic, module_kernel

Event = tuple[Kernel, list[int], int]  # (kernel, ids of its input tensors, id of its output)


class Trace(TorchFunctionMode):
    """Records the (kernel, input ids, output id) events at the top level of a forward pass."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[Event] = []
        self.depth = 0  # > 0 inside a hooked leaf module: its own calls are not kernels of their own
        self.keep: list[Any] = []  # keeps tensors alive so their ids stay unique

    def add(self, kernel: Kernel, ins: list[torch.Tensor], out: Any) -> None:
        """Record `kernel`, which read `ins` and returned `out`."""
        y = first_tensor(out)
        self.keep.append(out)
        self.keep.extend(ins)
        self.events.append((kernel, [id(t) for t in ins], id(y) if y is not None else -1))

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if self.depth == 0:
            kernel = function_kernel(getattr(func, "__name__", ""), args, kwargs, out)
            if kernel is not None:
                self.add(kernel, all_tensors(args), out)
        return out


def _hook(model: nn.Module, trace: Trace) -> list[Any]:
    handles = []
    for m in model.modules():
        if is_atomic(m):
            def pre(mod, args, kwargs, _t=trace):  # noqa: ANN001
                _t.depth += 1

            def post(mod, args, kwargs, out, _t=trace):  # noqa: ANN001
                _t.depth -= 1
                if _t.depth == 0:
                    _t.add(module_kernel(mod, args, kwargs, out), all_tensors(args), out)
            handles.append(m.register_forward_pre_hook(pre, with_kwargs=True))
            handles.append(m.register_forward_hook(post, with_kwargs=True))
        else:
            def call(mod, args, _t=trace):  # noqa: ANN001
                if _t.depth == 0:
                    _t.events.append((Kernel("call", {}), [], -1))
            handles.append(m.register_forward_pre_hook(call))
    return handles


def _fuse(events: list[Event]) -> list[Kernel]:
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


def run_traced(model: nn.Module, x: torch.Tensor, handles: list[Any] | None = None) -> Trace:
    """Return the trace of one forward pass of `model` on `x`; all hooks (also `handles`) removed."""
    trace = Trace()
    handles = [*(handles or []), *_hook(model, trace)]
    try:
        with torch.inference_mode(), trace:
            model(x)
    finally:
        for h in handles:
            h.remove()
    return trace


def _traced_kernels(model: nn.Module, x: torch.Tensor) -> list[Kernel]:
    return _fuse(run_traced(model, x).events)


def meta_copy(model: nn.Module) -> nn.Module:
    """Return an eval-mode copy of `model` on the meta device (shapes only, no weight copied)."""
    # Tensors are pre-seeded in deepcopy's memo as meta tensors, so no weight is copied.
    memo: dict[int, Any] = {}
    for t in list(model.parameters()) + list(model.buffers()):
        meta = torch.empty_like(t, device="meta")
        memo[id(t)] = nn.Parameter(meta, t.requires_grad) if isinstance(t, nn.Parameter) else meta
    return copy.deepcopy(model, memo).eval()


def check_input(model: Any, input_shape: tuple[int, ...]) -> None:
    """Raise HardwareError unless `model` is a module and `input_shape` positive dims."""
    if not isinstance(model, nn.Module):
        raise HardwareError(f"extract_kernels needs a torch.nn.Module, got {type(model).__name__}")
    if not input_shape or any(int(d) < 1 for d in input_shape):
        raise HardwareError(f"input_shape={tuple(input_shape)} is invalid; give positive dims "
                            "without the batch dimension, e.g. (3, 32, 32)")


def extract_kernels(model: nn.Module, input_shape: tuple[int, ...],
                    dtype: torch.dtype = torch.float32) -> list[Kernel]:
    """Return the kernels one forward pass of the fp32 `model` runs at batch 1, fused as they execute."""
    check_input(model, input_shape)
    shape = (1, *map(int, input_shape))
    # On the meta device only shapes are computed: a fresh model's first real forward pass
    # spends seconds creating oneDNN kernels for each new shape. A copy keeps the caller's
    # weights; models that cannot be copied or run on meta are traced for real.
    try:
        shadow = meta_copy(model)
        return _traced_kernels(shadow, torch.empty(shape, dtype=dtype, device="meta"))
    except (RuntimeError, NotImplementedError, TypeError, copy.Error):
        pass
    was_training = model.training
    try:
        x = torch.randn(shape, generator=torch.Generator().manual_seed(0), dtype=dtype)
        return _traced_kernels(model.eval(), x)
    finally:
        model.train(was_training)
