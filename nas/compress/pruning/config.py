"""What the pruning configurations share: scikit-learn's get_params and repr, and their checks.

A configuration is a frozen dataclass whose fields are its constructor's parameters, stored as
given and checked once, in ``__post_init__``: a bad value fails where it was written, not halfway
through a pruning, and cannot be changed afterwards.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any

from nas.compress.pruning.curves import DISTORTIONS
from nas.errors import CompressionError


class PruningConfig:
    """Base of the pruning configurations (frozen dataclasses declared with ``repr=False``)."""

    def get_params(self) -> dict[str, Any]:
        """Return the constructor's parameters as given: ``type(c)(**c.get_params())`` equals ``c``."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def __repr__(self) -> str:
        # scikit-learn's style: the defaults are left out, so the repr shows what was chosen
        shown = [
            f"{f.name}={getattr(self, f.name)!r}"
            for f in dataclasses.fields(self)
            if f.default is dataclasses.MISSING or getattr(self, f.name) != f.default
        ]
        return f"{type(self).__name__}({', '.join(shown)})"


def require(config: PruningConfig, name: str, ok: bool, allowed: str) -> None:
    """Raise CompressionError naming ``config``'s parameter ``name``, its value and what is allowed."""
    if not ok:
        raise CompressionError(f"{type(config).__name__}({name}={getattr(config, name)!r}): {allowed}")


def is_number(value: Any) -> bool:
    """Return whether ``value`` is a finite real number (a bool is not)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def is_int(value: Any, minimum: int) -> bool:
    """Return whether ``value`` is an integer (a bool is not) of at least ``minimum``."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= minimum


def check_curve_params(config: Any) -> None:
    """Check the parameters of the distortion curves and the DP that every configuration has."""
    require(config, "grid_step", is_number(config.grid_step) and 0 < config.grid_step <= 0.5,
            "the ratio grid step must lie in (0, 0.5], e.g. 0.01")  # fmt: skip
    require(config, "distortion", config.distortion in DISTORTIONS, f"unknown; valid: {list(DISTORTIONS)}")
    require(config, "buckets", is_int(config.buckets, 1), "must be an integer >= 1, e.g. 10000")
