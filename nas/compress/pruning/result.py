"""The record a pruning run returns, and the sparsity count it reports."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch import nn

from nas.compress.pruning.prunable import kept_counts, prunable_layers


@dataclass
class PruneResult:
    """A pruned model and how its budget was spent."""

    model: nn.Module
    allocation: dict[str, float]  # layer -> pruning ratio (unstructured) or kept channel fraction
    sparsity: float  # achieved fraction of prunable weights removed
    kept: int
    total: int
    solve_seconds: float  # allocation time (the DP solve for "dp"), curves excluded
    method: str = "dp"
    curves_seconds: float = 0.0
    additivity: float | None = None  # Pearson r, predicted vs measured joint distortion
    curves: dict[str, np.ndarray] | None = None
    channels: dict[str, int] | None = None  # structured only: kept channels per group
    predicted_latency_ms: float | None = None  # structured only
    measured_latency_ms: float | None = None  # structured only, when a measure was given


def sparsity_of(model: nn.Module) -> tuple[float, int, int]:
    """Return (sparsity, kept, total) over the prunable weights of a model, masks applied."""
    layers = prunable_layers(model)
    kept = sum(kept_counts(layers).values())
    total = sum(m.weight.numel() for m in layers.values())
    return 1.0 - kept / total, kept, total
