"""Per-layer rate-distortion curves and the check that their distortions add up."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from rich.progress import track
from scipy import stats
from torch import nn

from nas.compress.pruning.prunable import (
    check_calib,
    detach_masked,
    make_permanent,
    prunable_layers,
)
from nas.compress.pruning.tail import TailRunner, per_sample_distortion, reduce_distortion
from nas.errors import CompressionError

DISTORTIONS = ("mean", "worst")


def ratio_grid(grid_step: float) -> np.ndarray:
    """Return the pruning ratios 0, step, ..., 1 for a grid step in (0, 0.5]."""
    if not 0 < grid_step <= 0.5:
        raise CompressionError(f"grid_step {grid_step!r} must lie in (0, 0.5], e.g. 0.01")
    return np.linspace(0.0, 1.0, int(round(1.0 / grid_step)) + 1)


def check_distortion(distortion: str) -> None:
    """Raise CompressionError unless ``distortion`` names a known reduction."""
    if distortion not in DISTORTIONS:
        raise CompressionError(f"distortion {distortion!r} is unknown; valid: {list(DISTORTIONS)}")


def _frozen(model: nn.Module) -> nn.Module:
    # a mask-free copy in eval mode: curves must not see dropout, batch statistics or prune hooks
    return make_permanent(copy.deepcopy(detach_masked(model))).eval()


def masked_variant(weight: torch.Tensor, order: torch.Tensor, pruned: int) -> torch.Tensor:
    """Return ``weight`` with its ``pruned`` smallest entries (by ``order``) set to zero."""
    flat = weight.flatten().clone()
    flat[order[:pruned]] = 0.0
    return flat.view_as(weight)


def distortion_curves(
    model: nn.Module,
    calib: torch.Tensor,
    *,
    grid_step: float = 0.01,
    distortion: str = "mean",
    max_batch: int = 256,
    progress: bool = False,
    reference: torch.Tensor | None = None,
) -> dict[str, np.ndarray]:
    """Return, per prunable layer, the logit distortion of pruning it alone at each grid ratio.

    The ratios are fractions of the weights the layer still has (zeros are pruned first): on a
    dense model, of all its weights; on a partly pruned one, the grid spans what is left, so
    its resolution does not shrink round after round. ``reference`` (the dense model's logits
    on ``calib``) measures distortion against it instead of against ``model``'s own output,
    minus the distortion ``model`` already has, so each curve starts at 0 and adds up over
    layers around the current, not the dense, model. ``max_batch`` bounds the samples one
    batched tail pass runs (variants x calibration batch); ``progress`` shows a progress bar.
    """
    check_distortion(distortion)
    ratios = ratio_grid(grid_step)
    work = _frozen(model)
    layers = prunable_layers(work)
    out = check_calib(work, calib)
    offset = 0.0
    if reference is not None:
        if tuple(reference.shape) != tuple(out.shape):
            raise CompressionError(f"reference logits of shape {tuple(reference.shape)} do not "
                                   f"match the model's {tuple(out.shape)} on this calibration batch")
        offset = float(reduce_distortion(per_sample_distortion(out, reference), distortion)[0])
    runner = TailRunner(work, calib, max_batch=max_batch, reference=reference)
    curves = {}
    items = list(layers.items())
    if progress:
        items = track(items, description="distortion curves")
    for name, module in items:
        w = module.weight.detach()
        mags = w.abs().flatten()
        order = torch.argsort(mags, stable=True)
        n_zero = int((mags == 0).sum())
        counts = n_zero + np.rint(ratios * (w.numel() - n_zero)).astype(np.int64)
        # pruning only zeros changes nothing: distortion 0 without running anything
        todo = sorted({int(c) for c in counts if c > n_zero})
        variants = [masked_variant(w, order, c) for c in todo]
        values = runner.distortions(name, variants, distortion).cpu().numpy().astype(np.float64)
        by_count = dict(zip(todo, values - offset, strict=True))
        curves[name] = np.array([by_count.get(int(c), 0.0) for c in counts])
    return curves


def dead_distortion(model: nn.Module, calib: torch.Tensor, distortion: str = "mean") -> float:
    """Return the distortion of a network that outputs the batch-mean logits for every sample.

    A layer pruned until its distortion alone reaches this carries no information about the
    input: the model is as good as dead, and fine-tuning cannot revive a fully masked layer.
    """
    check_distortion(distortion)
    with torch.no_grad():
        ref = check_calib(_frozen(model), calib)
    flat = ref.reshape(ref.shape[0], -1)
    const = flat.mean(dim=0, keepdim=True).expand_as(flat)
    return float(reduce_distortion(per_sample_distortion(const, flat), distortion)[0])


@dataclass(frozen=True)
class AdditivityReport:
    """Predicted (summed single-layer) against measured (joint) distortion on random allocations."""

    pearson: float
    spearman: float
    predicted: np.ndarray
    measured: np.ndarray


def additivity_report(
    model: nn.Module,
    calib: torch.Tensor,
    curves: dict[str, np.ndarray],
    *,
    n_random: int = 20,
    seed: int = 0,
    distortion: str = "mean",
    min_ratio: float = 0.0,
) -> AdditivityReport:
    """Return the correlation of summed single-layer distortions with measured joint ones.

    Each random allocation prunes every layer by a grid ratio of at least ``min_ratio`` (e.g.
    0.8 to check additivity where it matters at 90-95% sparsity: every layer pruned hard).
    """
    check_distortion(distortion)
    if not 0.0 <= min_ratio < 1.0:
        raise CompressionError(f"min_ratio={min_ratio!r} must lie in [0, 1), e.g. 0.8")
    work = _frozen(model)
    layers = prunable_layers(work)
    missing = sorted(set(layers) - set(curves))
    if missing:
        raise CompressionError(f"curves lack layers {missing}; compute them on this model")
    if n_random < 3:
        raise CompressionError(f"n_random={n_random} is too few for a correlation; use 3 or more")
    with torch.no_grad():
        ref = check_calib(work, calib)
    rng = np.random.default_rng(seed)
    originals = {name: m.weight.detach().clone() for name, m in layers.items()}
    orders = {name: torch.argsort(w.abs().flatten(), stable=True) for name, w in originals.items()}
    predicted, measured = [], []
    for _ in range(n_random):
        top = rng.uniform(max(0.1, min_ratio), 1.0)  # from mild to severe, not all near the mean
        pred = 0.0
        with torch.no_grad():
            for name, module in layers.items():
                grid = len(curves[name]) - 1
                low = int(np.ceil(min_ratio * grid - 1e-9))
                j = int(rng.integers(low, max(low, int(top * grid)) + 1))
                pred += float(curves[name][j])
                pruned = int(np.rint(np.linspace(0.0, 1.0, grid + 1)[j] * originals[name].numel()))
                module.weight.copy_(masked_variant(originals[name], orders[name], pruned))
            out = work(calib)
        predicted.append(pred)
        measured.append(float(reduce_distortion(per_sample_distortion(out, ref), distortion)[0]))
    p, m = np.array(predicted), np.array(measured)
    return AdditivityReport(
        pearson=float(stats.pearsonr(p, m)[0]),
        spearman=float(stats.spearmanr(p, m)[0]),
        predicted=p,
        measured=m,
    )


def additivity(
    model: nn.Module,
    calib: torch.Tensor,
    curves: dict[str, np.ndarray],
    *,
    n_random: int = 20,
    seed: int = 0,
    distortion: str = "mean",
) -> float:
    """Return the Pearson correlation of predicted (summed) and measured joint distortion."""
    return additivity_report(
        model, calib, curves, n_random=n_random, seed=seed, distortion=distortion
    ).pearson
