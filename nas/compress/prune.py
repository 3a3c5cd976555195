"""Layer-adaptive weight pruning by dynamic programming, and its baselines, behind one entry point.

The method follows "Efficient Joint Optimization of Layer-Adaptive Weight Pruning in Deep Neural
Networks" (ICCV 2023): the logit distortion of pruning several layers is close to the sum of the
distortions of pruning each alone, so per-layer rate-distortion curves and a dynamic programme
over layers allocate a global weight budget. The budget is bucketed, so the table stays small.

    result = prune(model, sparsity=0.9, method="dp", calib=x[:256])
    dense = make_permanent(result.model)        # fold the masks before export
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from nas.compress.pruning.allocate import (
    dp_allocate,
    dp_counts,
    erk_counts,
    global_counts,
    lamp_counts,
    uniform_counts,
)
from nas.compress.pruning.curves import (
    AdditivityReport,
    additivity,
    additivity_report,
    check_distortion,
    dead_distortion,
    distortion_curves,
    ratio_grid,
)
from nas.compress.pruning.group_latency import (
    LatencyTable,
    PredictedChannelLatency,
    measure_channel_latency,
    predicted_channel_latency,
    time_model,
)
from nas.compress.pruning.prunable import (
    apply_counts,
    check_calib,
    detach_masked,
    kept_counts,
    make_permanent,
    prunable_layers,
)
from nas.compress.pruning.result import PruneResult, sparsity_of
from nas.compress.pruning.structured import channel_groups, prune_channels
from nas.errors import CompressionError

METHODS = ("dp", "lamp", "global", "uniform", "erk")

__all__ = [
    "METHODS",
    "AdditivityReport",
    "LatencyTable",
    "PredictedChannelLatency",
    "PruneResult",
    "additivity",
    "additivity_report",
    "dead_distortion",
    "distortion_curves",
    "dp_allocate",
    "make_permanent",
    "prune",
    "channel_groups",
    "measure_channel_latency",
    "predicted_channel_latency",
    "prune_channels",
    "sparsity_of",
    "time_model",
]


def _check_request(sparsity, method, rounds, min_kept_per_output, max_layer_damage) -> None:
    if method not in METHODS:
        raise CompressionError(f"method {method!r} is unknown; valid methods: {list(METHODS)}")
    if not isinstance(sparsity, (int, float)) or not 0.0 < float(sparsity) < 1.0:
        raise CompressionError(
            f"sparsity {sparsity!r} is out of range: it must lie strictly between 0 and 1 "
            "(0 prunes nothing, 1 prunes every weight), e.g. 0.9"
        )
    if not isinstance(rounds, int) or rounds < 1:
        raise CompressionError(f"rounds={rounds!r} must be a positive integer, e.g. 1 or 3")
    if not isinstance(min_kept_per_output, int) or min_kept_per_output < 0:
        raise CompressionError(
            f"min_kept_per_output={min_kept_per_output!r} must be an integer >= 0, e.g. 1 (0: no floor)"
        )
    if max_layer_damage is not None and not 0.0 < float(max_layer_damage) <= 1.0:
        raise CompressionError(
            f"max_layer_damage={max_layer_damage!r} must lie in (0, 1], e.g. 0.5, or be None (no cap)"
        )


def _round_counts(method, layers, target, cap, curves, buckets, limit, floor, damage) -> dict[str, int]:
    sizes = {n: m.weight.numel() for n, m in layers.items()}
    if method == "dp":
        # the curves span each layer's remaining weights, so the DP's sizes are what is left
        floor_kept = {n: floor * m.weight.shape[0] for n, m in layers.items()} if floor else None
        return dp_counts(curves, cap, target, buckets=buckets, max_kept=cap, limit=limit,
                         min_kept=floor_kept, damage=damage)  # fmt: skip
    if method == "uniform":
        return uniform_counts(sizes, cap, target)
    if method == "global":
        return global_counts(layers, target)
    if method == "lamp":
        return lamp_counts(layers, target)
    return erk_counts(layers, cap, target)


@dataclass
class _Rounds:
    """The pruning schedule: each round keeps the same fraction of what the last one left."""

    method: str
    sparsity: float
    rounds: int
    calib: torch.Tensor
    grid_step: float
    distortion: str
    buckets: int
    finetune: Callable[[nn.Module], None] | None
    max_layer_distortion: float | None
    min_kept_per_output: int
    max_layer_damage: float | None

    def run(self, work, layers, total, curves) -> tuple[float, float, dict | None]:
        """Return (allocation seconds, curve seconds, first round's curves) after pruning work."""
        solve = curve_time = 0.0
        first = None
        with torch.no_grad():
            dense_ref = work.eval()(self.calib)
        dead = dead_distortion(work, self.calib, self.distortion)
        for t in range(1, self.rounds + 1):
            target = max(1, int(round((1.0 - self.sparsity) ** (t / self.rounds) * total)))
            round_curves = curves if t == 1 else None
            if self.method == "dp" and round_curves is None:
                start = time.perf_counter()
                # later rounds: curves of the pruned model, against the dense model's logits
                round_curves = distortion_curves(
                    work, self.calib, grid_step=self.grid_step, distortion=self.distortion,
                    reference=dense_ref if t > 1 else None,
                )
                curve_time += time.perf_counter() - start
            first = round_curves if first is None else first
            limit = None
            if self.method == "dp" and self.max_layer_distortion is not None:
                limit = self.max_layer_distortion * dead
            start = time.perf_counter()
            cap = kept_counts(layers)
            counts = _round_counts(self.method, layers, target, cap, round_curves, self.buckets, limit,
                                   self.min_kept_per_output, self.max_layer_damage)  # fmt: skip
            solve += time.perf_counter() - start
            apply_counts(layers, counts)
            if self.finetune is not None:
                self.finetune(work)
        return solve, curve_time, first


def prune(
    model: nn.Module,
    *,
    sparsity: float,
    method: str = "dp",
    calib: torch.Tensor,
    grid_step: float = 0.01,
    distortion: str = "mean",
    buckets: int = 10000,
    finetune: Callable[[nn.Module], None] | None = None,
    rounds: int = 1,
    curves: dict[str, np.ndarray] | None = None,
    check_additivity: bool = False,
    n_random: int = 20,
    seed: int = 0,
    max_layer_distortion: float | None = 1.0,
    min_kept_per_output: int = 1,
    max_layer_damage: float | None = 0.5,
) -> PruneResult:
    """Return a pruned copy of ``model`` (masks attached) at the target sparsity by ``method``.

    ``rounds`` > 1 prunes iteratively, the same fraction of what remains each round, fine-tuning
    after each if ``finetune`` is given; ``curves`` reuses distortion curves of the unpruned model
    for the first round. The input model is not modified.

    ``max_layer_distortion`` (beyond the paper) keeps the DP from choosing, for any layer, a
    ratio whose distortion alone exceeds that multiple of ``dead_distortion`` (a model that
    outputs the mean logits). Without it, at sparsities where every allocation saturates, the
    cheapest sum is often to mask a whole plain layer, which no fine-tuning can undo. ``None``
    gives the paper's unguarded DP; a target unreachable under the guard relaxes it by doubling.

    ``min_kept_per_output`` (beyond the paper; DP only) keeps at least that many weights per
    output channel or feature in every layer: past 90% sparsity the summed distortions of a
    small network saturate (every allocation is as bad as a dead model before fine-tuning), and
    the cheapest sum then empties the largest layer (a residual branch, or a plain conv), which
    the fixed masks never let fine-tuning reconnect. 0 gives the paper's DP.

    ``max_layer_damage`` (beyond the paper; DP only) is a per-layer cap on the ratio derived
    from the layer's own curve: no ratio past the first whose distortion exceeds that fraction
    of the distortion of emptying the layer. Where that cannot meet the target it is relaxed
    halfway towards 1, up to four times, then dropped. ``None`` turns it off.
    """
    _check_request(sparsity, method, rounds, min_kept_per_output, max_layer_damage)
    check_distortion(distortion)
    ratio_grid(grid_step)
    work = copy.deepcopy(detach_masked(model))
    layers = prunable_layers(work)
    check_calib(work.eval(), calib)
    total = sum(m.weight.numel() for m in layers.values())
    plan = _Rounds(
        method, sparsity, rounds, calib, grid_step, distortion, buckets, finetune,
        max_layer_distortion, min_kept_per_output, max_layer_damage,
    )
    solve, curve_time, first_curves = plan.run(work, layers, total, curves)
    work.eval()
    achieved, kept, _ = sparsity_of(work)
    sizes = {n: m.weight.numel() for n, m in layers.items()}
    allocation = {n: 1.0 - c / sizes[n] for n, c in kept_counts(layers).items()}
    result = PruneResult(
        model=work,
        allocation=allocation,
        sparsity=achieved,
        kept=kept,
        total=total,
        solve_seconds=solve,
        method=method,
        curves_seconds=curve_time,
        curves=first_curves,
    )
    if check_additivity:
        if first_curves is None:
            first_curves = distortion_curves(model, calib, grid_step=grid_step, distortion=distortion)
            result.curves = first_curves
        result.additivity = additivity(
            model, calib, first_curves, n_random=n_random, seed=seed, distortion=distortion
        )
    return result
