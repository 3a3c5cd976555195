"""What the latency regressors learn from: a kernel's FLOPs, bytes moved and shape, at a batch size."""

from __future__ import annotations

import math

import numpy as np

from nas.kernels.kernel import Kernel, batched_shape


def _numel(shape: list[int]) -> int:
    return int(math.prod(shape)) if shape else 1


def kernel_cost(kernel: Kernel, batch_size: int) -> tuple[float, float]:
    """Return (FLOPs, bytes moved at fp32) of `kernel` at `batch_size` (approximate)."""
    c, b, k = kernel.config, batch_size, kernel.kind
    if k == "conv":
        out = c["cout"] * c["ho"] * c["wo"]
        w = c["cout"] * c["cin"] // c["groups"] * c["k"][0] * c["k"][1]
        flops = 2.0 * b * out * (c["cin"] // c["groups"]) * c["k"][0] * c["k"][1]
        return flops, 4.0 * (b * c["cin"] * c["h"] * c["w"] + b * out + w)
    if k == "linear":
        rows = b * c["tokens"]
        return 2.0 * rows * c["fin"] * c["fout"], 4.0 * (rows * (c["fin"] + c["fout"])
                                                         + c["fin"] * c["fout"])
    if k == "mha":
        e, t, s = c["embed"], c["tokens"], c["src_tokens"]
        flops = 2.0 * b * (t * e * e * 2 + s * e * e * 2 + 2 * t * s * e)
        return flops, 4.0 * (4 * e * e + b * (2 * t * e + 2 * s * e + c["heads"] * t * s))
    if k == "matmul":
        a, w = c["shapes"][0], c["shapes"][1]
        batch = _numel(batched_shape(a, b, len(a) >= 3)[:-2]) if len(a) > 2 else 1
        return 2.0 * batch * _numel(a[-2:]) * w[-1], 4.0 * batch * (_numel(a[-2:]) +
                                                                   _numel(w[-2:]) +
                                                                   a[-2] * w[-1])
    if k == "sdpa":
        q, kk = c["q"], c["k"]
        rows = b * _numel(q[1:-1])
        return 4.0 * rows * kk[-2] * q[-1], 4.0 * b * (_numel(q[1:]) + 2 * _numel(kk[1:]))
    if k in ("eltwise", "cat"):
        flags = c.get("batched", [True] * len(c["shapes"]))
        moved = sum(_numel(batched_shape(s, b, f)) for s, f in zip(c["shapes"], flags, strict=False))
        return float(moved), 4.0 * 2 * moved
    if k == "call":
        return 1.0, 4.0
    n = b * _numel(c.get("shape", []))
    return float(n), 8.0 * n


def kernel_features(kernel: Kernel, batch_size: int) -> np.ndarray:
    """Return the regression features of `kernel` at `batch_size` (logs, kind-specific tail)."""
    flops, moved = kernel_cost(kernel, batch_size)
    base = [math.log(flops + 1.0), math.log(moved + 1.0), math.log(batch_size)]
    c = kernel.config
    if kernel.kind == "conv":
        per_group = c["cin"] // c["groups"]
        tail = [math.log(c["cin"]), math.log(c["cout"]), c["k"][0], c["stride"][0],
                math.log(c["h"] * c["w"]), math.log(per_group), float(c["groups"] > 1),
                float(bool(c.get("bn"))), float(bool(c.get("act")))]
    elif kernel.kind == "linear":
        tail = [math.log(c["fin"]), math.log(c["fout"]), math.log(c["tokens"] * batch_size),
                float(bool(c.get("act")))]
    elif kernel.kind == "mha":
        tail = [math.log(c["embed"]), float(c["heads"]), math.log(c["tokens"]),
                float(c["need_weights"])]
    elif kernel.kind in ("act", "norm", "pool", "view", "softmax", "reduce"):
        shape = c.get("shape", [1])
        tail = [math.log(max(1, shape[0])), float(len(shape)),
                float(hash_str(str(c.get("fn", c.get("type", c.get("op", ""))))) % 97)]
    else:
        tail = []
    return np.asarray(base + tail + [float(bool(c.get("noncontig")))], dtype=float)


def hash_str(text: str) -> int:
    """Return a stable (unsalted) small integer for a categorical string."""
    return sum((i + 1) * ord(ch) for i, ch in enumerate(text))
