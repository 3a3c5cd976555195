"""Kernel configurations near a profiled one, where the adaptive profiler samples next."""

from __future__ import annotations

import random
from typing import Any

from nas.kernels.kernel import Kernel

_FACTORS = (0.5, 0.75, 1.25, 1.5, 2.0)


def _scale(v: int, f: float, lo: int = 1) -> int:
    return max(lo, int(round(v * f)))


def _out(n: int, k: int, s: int, p: Any, d: int) -> int:
    if isinstance(p, str):  # "same" (stride 1) or "valid"
        return n if p == "same" else (n - d * (k - 1) - 1) // s + 1
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def _perturb_conv(c: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    c = dict(c)
    what = rng.choice(["cin", "cout", "hw", "k", "stride", "both"])
    f = rng.choice(_FACTORS)
    depthwise = c["groups"] > 1 and c["groups"] == c["cin"] == c["cout"]
    if depthwise and what in ("cin", "cout", "both"):
        c["cin"] = c["cout"] = c["groups"] = _scale(c["cin"], f)
    elif what in ("cin", "both") and c["groups"] == 1:
        c["cin"] = _scale(c["cin"], f)
    if what in ("cout", "both") and not depthwise and c["groups"] == 1:
        c["cout"] = _scale(c["cout"], f)
    if what == "hw":
        c["h"], c["w"] = _scale(c["h"], f, 2), _scale(c["w"], f, 2)
    if what == "k" and not isinstance(c["padding"], str):
        k = rng.choice([1, 3, 5, 7])
        c["k"], c["padding"] = [k, k], [k // 2 * c["dilation"][0]] * 2
    if what == "stride" and not isinstance(c["padding"], str):
        s = rng.choice([1, 2])
        c["stride"] = [s, s]
    c["ho"] = _out(c["h"], c["k"][0], c["stride"][0], c["padding"] if isinstance(
        c["padding"], str) else c["padding"][0], c["dilation"][0])
    c["wo"] = _out(c["w"], c["k"][1], c["stride"][1], c["padding"] if isinstance(
        c["padding"], str) else c["padding"][1], c["dilation"][1])
    return c


def perturb(kernel: Kernel, rng: random.Random) -> Kernel | None:
    """Return a configuration near `kernel` (one size scaled, or a conv's window or stride
    changed), or None for kinds that are not perturbed."""
    c, f = dict(kernel.config), rng.choice(_FACTORS)
    if kernel.kind == "conv":
        c = _perturb_conv(c, rng)
    elif kernel.kind == "linear":
        key = rng.choice(["fin", "fout", "tokens"])
        c[key] = _scale(c[key], f)
    elif kernel.kind == "mha":
        if rng.random() < 0.5:
            c["embed"] = _scale(c["embed"] // c["heads"], f) * c["heads"]
        else:
            c["tokens"] = c["src_tokens"] = _scale(c["tokens"], f)
    elif kernel.kind in ("act", "norm", "pool", "softmax", "reduce", "view") and c.get("shape"):
        c["shape"] = [_scale(c["shape"][0], f), *c["shape"][1:]]
        if kernel.kind == "norm" and c["type"] == "gn" and c["shape"][0] % c["groups"]:
            return None
    elif kernel.kind in ("eltwise", "cat"):
        c["shapes"] = [[s[0], _scale(s[1], f), *s[2:]] if len(s) > 1 and s[1] > 1 else s
                       for s in c["shapes"]]
        if "out" in c and len(c["out"]) > 1 and c["out"][1] > 1:
            c["out"] = [c["out"][0], _scale(c["out"][1], f), *c["out"][2:]]
    else:
        return None
    return Kernel(kernel.kind, c)
