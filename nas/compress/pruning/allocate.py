"""Sparsity allocation across layers: the bucketed dynamic programme and the baselines."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from nas.compress.pruning.prunable import effective_weight
from nas.errors import CompressionError


def dp_solve(
    dists: Sequence[np.ndarray], costs: Sequence[np.ndarray], budget: float, buckets: int
) -> list[int]:
    """Return one choice index per layer minimising summed distortion with summed cost <= budget.

    Costs are rounded UP to whole buckets of ``budget / buckets`` so that any solution is
    feasible in exact units; the table is layers x (buckets + 1) small integers, never the
    layers x weights table that needs gigabytes for ResNet-50.
    """
    if buckets < 1:
        raise CompressionError(f"buckets={buckets} must be a positive integer, e.g. 10000")
    # a budget of 0 affords only free choices: a tiny unit prices every positive cost out
    unit = budget / buckets if budget > 0 else 1e-12
    value = np.full(buckets + 1, np.inf)
    value[0] = 0.0
    dtype = np.int16 if max(len(d) for d in dists) < 2**15 else np.int32
    choice = np.zeros((len(dists), buckets + 1), dtype=dtype)
    for i, (d, c) in enumerate(zip(dists, costs, strict=True)):
        units = np.ceil(np.asarray(c, dtype=np.float64) / unit - 1e-9).astype(np.int64)
        new = np.full(buckets + 1, np.inf)
        for j in np.argsort(units, kind="stable"):
            u = int(units[j])
            if u > buckets:
                break
            cand = value[: buckets + 1 - u] + float(d[j])
            seg = new[u:]
            better = cand < seg
            seg[better] = cand[better]
            choice[i, u:][better] = j
        value = new
    if not np.isfinite(value).any():
        need = sum(float(np.min(c)) for c in costs)
        raise CompressionError(
            f"budget {budget:g} is below the least any allocation costs ({need:g}); "
            "raise the budget or allow smaller layers"
        )
    b = int(np.argmin(value))
    picks = [0] * len(dists)
    for i in range(len(dists) - 1, -1, -1):
        j = int(choice[i, b])
        picks[i] = j
        unit_cost = np.ceil(float(costs[i][j]) / unit - 1e-9)
        b -= int(unit_cost)
    return picks


def _grid_kept(size: int, grid: int) -> np.ndarray:
    ratios = np.linspace(0.0, 1.0, grid)
    return size - np.rint(ratios * size).astype(np.int64)


def _refine(curves, kept_grid, picks, slack: int) -> list[int]:
    # spend the weights the bucket rounding left unused, on the layers whose (piecewise
    # linear) curve falls fastest per weight, so the target is met to the weight
    idx, kept = list(picks), [int(kept_grid[i][j]) for i, j in enumerate(picks)]
    while slack > 0:
        best, best_slope = -1, np.inf
        for i, j in enumerate(idx):
            if j == 0:
                continue
            dk = int(kept_grid[i][j - 1] - kept_grid[i][j])
            with np.errstate(invalid="ignore"):  # inf - inf: a guarded pair, handled below
                slope = (curves[i][j - 1] - curves[i][j]) / dk if dk > 0 else -np.inf
            if np.isnan(slope) or slope == np.inf:
                # a guarded (inf) or non-monotone neighbour: keeping more weights of a layer never
                # hurts, so it stays a candidate, last in line, and the target is still met
                slope = np.finfo(float).max
            if slope < best_slope:
                best, best_slope = i, slope
        if best < 0:
            break
        step = int(kept_grid[best][idx[best] - 1] - kept_grid[best][idx[best]])
        take = min(slack, step)
        kept[best] += take
        slack -= take
        if take == step:
            idx[best] -= 1
    return kept


def _least_kept(dists, kept_grid) -> float:
    # the fewest weights any allocation can keep with every layer on a finite choice
    return sum(float(np.min(k[np.isfinite(d)])) if np.isfinite(d).any() else np.inf
               for k, d in zip(kept_grid, dists, strict=True))  # fmt: skip


def _damage_capped(dists, raw, kept_grid, target: int, damage: float) -> list[np.ndarray]:
    # per layer, exclude every ratio from the first whose distortion (on the raw curve, before
    # any exclusion) exceeds `damage` x the layer's distortion when emptied; relax halfway
    # towards 1 (four times) until the target fits
    for _ in range(5):
        capped = []
        for d, r in zip(dists, raw, strict=True):
            over = np.nonzero(r > damage * r[-1])[0] if r[-1] > 0 else np.array([], dtype=int)
            cut = max(int(over[0]), 1) if len(over) else len(d)
            capped.append(np.where(np.arange(len(d)) >= cut, np.inf, d))
        if _least_kept(capped, kept_grid) <= target:
            return capped
        damage = 1.0 - (1.0 - damage) / 2.0
    return list(dists)


@dataclass(frozen=True)
class LayerGuards:
    """Per-layer choices the DP may not take; a guard the target cannot meet is relaxed, not failed.

    ``limit`` excludes every choice whose own distortion exceeds it; if the target cannot be met
    under it, it is doubled (up to six times) before it is dropped. ``min_kept`` excludes the
    choices that keep fewer weights than that in a layer: on a grid of step s a large layer is
    then pruned by at most 1 - s; it is dropped only if no allocation meets the target with it.
    ``damage`` excludes each layer's choices from the first whose distortion exceeds that fraction
    of the layer's distortion when emptied, relaxed halfway towards 1 (up to four times) until the
    target fits. None turns a guard off; ``nas.compress.prune.Pruner`` says why each exists.
    """

    limit: float | None = None
    min_kept: dict[str, int] | None = None
    damage: float | None = None


def _solve_under_limit(dists, kept_grid, target_kept: int, buckets: int, limit: float | None):
    # returns (picks, the curves they were solved on): the refinement must see the same exclusions
    for _ in range(6 if limit is not None else 0):
        guarded = [np.where(d > limit, np.inf, d) for d in dists]
        try:
            return dp_solve(guarded, kept_grid, float(target_kept), buckets), guarded
        except CompressionError:
            limit *= 2.0  # too sparse for this guard: relax it step by step, not all at once
    return dp_solve(dists, kept_grid, float(target_kept), buckets), dists


def dp_counts(
    curves: dict[str, np.ndarray],
    sizes: dict[str, int],
    target_kept: int,
    *,
    buckets: int = 10000,
    refine: bool = True,
    guards: LayerGuards = LayerGuards(),
) -> dict[str, int]:
    """Return kept weights per layer minimising summed distortion with sum(kept) <= target.

    ``curves[layer]`` holds the distortion of pruning the layer's ``sizes[layer]`` weights at the
    ratios 0 .. 1 of an even grid; ``guards`` excludes choices (see ``LayerGuards``); ``refine``
    spends the weights the bucket rounding left unused.
    """
    names = list(sizes)
    missing = [n for n in names if n not in curves]
    if missing:
        raise CompressionError(f"no distortion curve for layers {missing}; have {sorted(curves)}")
    kept_grid = [_grid_kept(sizes[n], len(curves[n])) for n in names]
    dists = raw = [np.asarray(curves[n], dtype=np.float64) for n in names]
    if guards.min_kept is not None:
        # choices that would leave a layer fewer weights than its floor are excluded (priced
        # as inf): measured, this beat keeping the floor at the excluded choice's price, which
        # the DP takes as readily as emptying the layer (docs/pruning.md)
        floored = [np.where(k < min(guards.min_kept[n], sizes[n]), np.inf, d)
                   for n, k, d in zip(names, kept_grid, dists, strict=True)]  # fmt: skip
        if _least_kept(floored, kept_grid) <= target_kept:
            dists = floored
    if guards.damage is not None:
        dists = _damage_capped(dists, raw, kept_grid, int(target_kept), guards.damage)
    picks, dists = _solve_under_limit(dists, kept_grid, target_kept, buckets, guards.limit)
    kept = [int(kept_grid[i][j]) for i, j in enumerate(picks)]
    if refine:
        kept = _refine(dists, kept_grid, picks, int(target_kept) - sum(kept))
    return dict(zip(names, kept, strict=True))


def dp_allocate(
    curves: dict[str, np.ndarray],
    sizes: dict[str, int],
    target_kept: int,
    *,
    buckets: int = 10000,
    refine: bool = True,
) -> dict[str, float]:
    """Return the pruning ratio per layer that minimises summed distortion under the kept target."""
    counts = dp_counts(curves, sizes, target_kept, buckets=buckets, refine=refine)
    return {n: 1.0 - counts[n] / sizes[n] for n in sizes}


def uniform_counts(sizes: dict[str, int], cap: dict[str, int], target: int) -> dict[str, int]:
    """Return kept weights per layer with every layer at the same density."""
    frac = target / sum(sizes.values())
    return {n: min(cap[n], int(round(frac * s))) for n, s in sizes.items()}


def _top_scores(scores: dict[str, torch.Tensor], target: int) -> dict[str, int]:
    names = list(scores)
    flat = torch.cat([scores[n].flatten() for n in names])
    owner = torch.cat([torch.full((scores[n].numel(),), i, device=flat.device) for i, n in enumerate(names)])
    top = torch.topk(flat, min(target, flat.numel()), sorted=False).indices
    counts = torch.bincount(owner[top], minlength=len(names))
    return {n: int(counts[i]) for i, n in enumerate(names)}


def global_counts(layers: dict[str, nn.Module], target: int) -> dict[str, int]:
    """Return kept weights per layer from one magnitude threshold over all layers."""
    return _top_scores({n: effective_weight(m).abs() for n, m in layers.items()}, target)


def lamp_scores(weight: torch.Tensor) -> torch.Tensor:
    """Return LAMP scores: w_u^2 over the sum of w_v^2 of all weights at least as large."""
    w2 = weight.detach().flatten().pow(2).double()
    sorted_w2, order = torch.sort(w2)
    tail = torch.flip(torch.cumsum(torch.flip(sorted_w2, [0]), 0), [0])
    scores = torch.zeros_like(w2)
    scores[order] = torch.where(tail > 0, sorted_w2 / tail.clamp_min(1e-300), 0.0)
    return scores.view_as(weight)


def lamp_counts(layers: dict[str, nn.Module], target: int) -> dict[str, int]:
    """Return kept weights per layer from one threshold on LAMP scores (Lee et al., 2021)."""
    return _top_scores({n: lamp_scores(effective_weight(m)) for n, m in layers.items()}, target)


def erk_counts(layers: dict[str, nn.Module], cap: dict[str, int], target: int) -> dict[str, int]:
    """Return kept weights per layer with Erdos-Renyi-Kernel densities scaled to the target."""
    sizes = {n: m.weight.numel() for n, m in layers.items()}
    erk = {n: sum(m.weight.shape) / sizes[n] for n, m in layers.items()}
    dense: set[str] = set()
    while True:
        free = [n for n in sizes if n not in dense]
        room = target - sum(cap[n] for n in dense)
        denom = sum(erk[n] * sizes[n] for n in free)
        eps = room / denom if denom > 0 else 0.0
        full = {n for n in free if eps * erk[n] * sizes[n] >= cap[n]}
        if not full:
            break
        dense |= full
    want = {n: cap[n] if n in dense else eps * erk[n] * sizes[n] for n in sizes}
    counts = {n: int(np.floor(v)) for n, v in want.items()}
    # hand the rounding remainder to the largest fractional parts so the total is exact
    rest = target - sum(counts.values())
    for n in sorted(sizes, key=lambda n: counts[n] - want[n])[: max(rest, 0)]:
        if counts[n] < cap[n]:
            counts[n] += 1
    return counts
