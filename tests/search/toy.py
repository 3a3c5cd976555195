"""A small space with a conditional decision and a deterministic objective with a known optimum."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from nas import space as S
from nas.space import Space


def toy_space() -> Space:
    """Return 4 x 4 x 3 x (1 + 3) = 192 architectures; `extra/d` exists only when `extra` is on."""
    body = S.sequential(
        S.op(nn.Identity, a=S.choice("a", [0, 1, 2, 3]), b=S.choice("b", [0, 1, 2, 3]),
             c=S.choice("c", ["x", "y", "z"])),
        S.optional("extra", S.op(nn.Identity, d=S.choice("d", [0, 1, 2]))),
    )
    return S.Space(body, input_shape=(4,), name="toy")


def value(arch: Mapping[str, Any], key: str) -> Any:
    """Return the decision whose label ends with `key` (labels may be scoped), or None."""
    for label, v in arch.items():
        if label.rsplit("/", 1)[-1] == key:
            return v
    return None


def metrics(arch: Mapping[str, Any]) -> dict[str, float]:
    """Return accuracy (max 10 at a=2, b=1, c=x, extra on, d=2), latency and params."""
    a, b, c = value(arch, "a"), value(arch, "b"), value(arch, "c")
    extra, d = bool(value(arch, "extra")), value(arch, "d")
    acc = 6.0 - (a - 2) ** 2 - abs(b - 1) - {"x": 0, "y": 1, "z": 2}[c]
    acc += 4.0 if extra and d == 2 else (1.0 if extra else 0.0)
    latency = 1.0 + a + b + (2.0 + d if extra else 0.0)
    return {"accuracy": acc, "latency_ms": latency, "params": 100.0 * (1 + a + b),
            "test_accuracy": -acc}


OPTIMUM = 10.0
