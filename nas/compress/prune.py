"""Layer-adaptive weight pruning by dynamic programming, and its baselines, behind one entry point.

The method follows "Efficient Joint Optimization of Layer-Adaptive Weight Pruning in Deep Neural
Networks" (ICCV 2023): the logit distortion of pruning several layers is close to the sum of the
distortions of pruning each alone, so per-layer rate-distortion curves and a dynamic programme
over layers allocate a global weight budget. The budget is bucketed, so the table stays small.

    result = Pruner(sparsity=0.9, method="dp").prune(model, calib=x[:256])
    dense = make_permanent(result.model)        # fold the masks before export

Channel pruning under a latency budget is ``ChannelPruner`` (``nas.compress.pruning.structured``).
"""

from __future__ import annotations

import copy
import time
import warnings
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field

import numpy as np
import torch
from torch import nn

from nas.compress.pruning.allocate import (
    LayerGuards,
    dp_allocate,
    dp_counts,
    erk_counts,
    global_counts,
    lamp_counts,
    uniform_counts,
)
from nas.compress.pruning.config import PruningConfig, check_curve_params, is_int, is_number, require
from nas.compress.pruning.curves import (
    AdditivityReport,
    additivity,
    additivity_report,
    dead_distortion,
    distortion_curves,
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
from nas.compress.pruning.structured import CHANNEL_METHODS, ChannelPruner, channel_groups, prune_channels

METHODS = ("dp", "lamp", "global", "uniform", "erk")

__all__ = [
    "CHANNEL_METHODS",
    "METHODS",
    "AdditivityReport",
    "ChannelPruner",
    "LatencyTable",
    "PredictedChannelLatency",
    "PruneResult",
    "Pruner",
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

Finetune = Callable[[nn.Module], None]


@dataclass
class _Timings:
    """Seconds spent on the allocations and on the distortion curves, over all rounds."""

    solve: float = 0.0
    curves: float = 0.0


@dataclass
class _Run:
    """One call's model being pruned and what its rounds share."""

    work: nn.Module
    calib: torch.Tensor
    dense_logits: torch.Tensor  # the unpruned model's, which later rounds' curves measure against
    layers: dict[str, nn.Module] = field(init=False)
    total: int = field(init=False)  # prunable weights, pruned or not
    timings: _Timings = field(default_factory=_Timings)

    def __post_init__(self) -> None:
        self.layers = prunable_layers(self.work)
        self.total = sum(m.weight.numel() for m in self.layers.values())


@dataclass(frozen=True, repr=False)
class Pruner(PruningConfig):
    """Unstructured weight pruning to a target sparsity: the parameters, checked once, and ``prune``.

        pruner = Pruner(sparsity=0.9, method="dp", max_layer_damage=0.5)
        result = pruner.prune(model, calib=x[:256])

    ``sparsity`` is the fraction of prunable weights (conv, linear) to remove, in (0, 1);
    ``method`` one of ``METHODS``: ``dp`` (the layer-adaptive DP), ``lamp``, ``global``
    (one magnitude threshold), ``uniform``, ``erk``. ``grid_step`` is the ratio grid of the
    distortion curves, ``distortion`` their per-sample reduction (``mean`` or ``worst``),
    ``buckets`` the DP's budget resolution. ``rounds`` > 1 prunes iteratively, the same fraction
    of what remains each round, re-curving the pruned model against the dense logits before each
    DP round. ``check_additivity`` also reports the Pearson correlation of summed single-layer
    and measured joint distortion over ``n_random`` random allocations drawn from ``seed``.

    Three guards beyond the paper, for ``dp`` only (``max_layer_distortion=None,
    min_kept_per_output=0, max_layer_damage=None`` gives the paper's DP):

    ``max_layer_distortion`` keeps the DP from choosing, for any layer, a ratio whose distortion
    alone exceeds that multiple of ``dead_distortion`` (a model that outputs the mean logits).
    Without it, at sparsities where every allocation saturates, the cheapest sum is often to mask
    a whole plain layer, which no fine-tuning can undo. A target unreachable under the guard
    relaxes it by doubling.

    ``min_kept_per_output`` keeps at least that many weights per output channel or feature in
    every layer: past 90% sparsity the summed distortions of a small network saturate (every
    allocation is as bad as a dead model before fine-tuning), and the cheapest sum then empties
    the largest layer (a residual branch, or a plain conv), which the fixed masks never let
    fine-tuning reconnect.

    ``max_layer_damage`` caps each layer's ratio from the layer's own curve: no ratio past the
    first whose distortion exceeds that fraction of the distortion of emptying the layer. Where
    that cannot meet the target it is relaxed halfway towards 1, up to four times, then dropped.
    """

    sparsity: float
    method: str = "dp"
    _: KW_ONLY
    grid_step: float = 0.01
    distortion: str = "mean"
    buckets: int = 10000
    rounds: int = 1
    check_additivity: bool = False
    n_random: int = 20
    seed: int = 0
    max_layer_distortion: float | None = 1.0
    min_kept_per_output: int = 1
    max_layer_damage: float | None = 0.5

    def __post_init__(self) -> None:
        guard, cap = self.max_layer_distortion, self.max_layer_damage
        require(self, "sparsity", is_number(self.sparsity) and 0.0 < self.sparsity < 1.0,
                "must lie strictly between 0 and 1 (0 prunes nothing, 1 prunes every weight), e.g. 0.9")
        require(self, "method", self.method in METHODS, f"unknown; valid methods: {list(METHODS)}")
        check_curve_params(self)
        require(self, "rounds", is_int(self.rounds, 1), "must be an integer >= 1, e.g. 1 or 3")
        require(self, "check_additivity", isinstance(self.check_additivity, bool), "must be True or False")
        require(self, "n_random", is_int(self.n_random, 3), "must be an integer >= 3, e.g. 20")
        require(self, "seed", is_int(self.seed, 0), "must be an integer >= 0")
        require(self, "max_layer_distortion", guard is None or (is_number(guard) and guard > 0),
                "must be a number > 0 (a multiple of the dead distortion), e.g. 1.0, or None (no guard)")
        require(self, "min_kept_per_output", is_int(self.min_kept_per_output, 0),
                "must be an integer >= 0, e.g. 1 (0: no floor)")
        require(self, "max_layer_damage", cap is None or (is_number(cap) and 0.0 < cap <= 1.0),
                "must lie in (0, 1], e.g. 0.5, or be None (no cap)")

    def prune(self, model: nn.Module, calib: torch.Tensor, *, finetune: Finetune | None = None,
              curves: dict[str, np.ndarray] | None = None) -> PruneResult:  # fmt: skip
        """Return a pruned copy of ``model`` (masks attached); ``model`` itself is not modified.

        ``calib`` is the calibration batch (inputs) the distortions are measured on;
        ``finetune(model)``, if given, trains the pruned model in place after each round;
        ``curves`` reuses distortion curves of the unpruned model for the first round.
        """
        work = copy.deepcopy(detach_masked(model))
        run = _Run(work, calib, dense_logits=check_calib(work.eval(), calib))
        first_curves = self._prune_in_rounds(run, finetune, curves)
        work.eval()
        achieved, kept, _ = sparsity_of(work)
        sizes = {n: m.weight.numel() for n, m in run.layers.items()}
        result = PruneResult(
            model=work,
            allocation={n: 1.0 - c / sizes[n] for n, c in kept_counts(run.layers).items()},
            sparsity=achieved,
            kept=kept,
            total=run.total,
            solve_seconds=run.timings.solve,
            method=self.method,
            curves_seconds=run.timings.curves,
            curves=first_curves,
        )
        if self.check_additivity:
            self._add_additivity(result, model, calib)
        return result

    def _prune_in_rounds(self, run: _Run, finetune: Finetune | None,
                         curves: dict[str, np.ndarray] | None) -> dict[str, np.ndarray] | None:  # fmt: skip
        """Prune ``run.work`` round by round; return the first round's curves (None if none)."""
        guards = self._guards(run)
        first = None
        for t in range(1, self.rounds + 1):
            # each round keeps the same fraction of what the last one left
            target = max(1, int(round((1.0 - self.sparsity) ** (t / self.rounds) * run.total)))
            round_curves = curves if t == 1 else None
            if self.method == "dp" and round_curves is None:
                round_curves = self._round_curves(run, later=t > 1)
            first = round_curves if first is None else first
            start = time.perf_counter()
            counts = self._counts(run.layers, target, round_curves, guards)
            run.timings.solve += time.perf_counter() - start
            apply_counts(run.layers, counts)
            if finetune is not None:
                finetune(run.work)
        return first

    def _round_curves(self, run: _Run, later: bool) -> dict[str, np.ndarray]:
        """Return the distortion curves of the model as it now is."""
        start = time.perf_counter()
        # later rounds: curves of the pruned model, against the dense model's logits
        curves = distortion_curves(run.work, run.calib, grid_step=self.grid_step, distortion=self.distortion,
                                   reference=run.dense_logits if later else None)  # fmt: skip
        run.timings.curves += time.perf_counter() - start
        return curves

    def _guards(self, run: _Run) -> LayerGuards:
        """Return the DP's per-layer guards on the unpruned model (none for the other methods)."""
        if self.method != "dp":
            return LayerGuards()
        limit = None
        if self.max_layer_distortion is not None:
            limit = self.max_layer_distortion * dead_distortion(run.work, run.calib, self.distortion)
        floor = None
        if self.min_kept_per_output:
            floor = {n: self.min_kept_per_output * m.weight.shape[0] for n, m in run.layers.items()}
        return LayerGuards(limit=limit, min_kept=floor, damage=self.max_layer_damage)

    def _counts(self, layers: dict[str, nn.Module], target: int, curves: dict[str, np.ndarray] | None,
                guards: LayerGuards) -> dict[str, int]:  # fmt: skip
        """Return the weights each layer keeps this round, ``target`` in all, by ``method``."""
        cap = kept_counts(layers)
        if self.method == "dp":
            # the curves span each layer's remaining weights, so the DP's sizes are what is left
            return dp_counts(curves, cap, target, buckets=self.buckets, guards=guards)
        if self.method == "uniform":
            return uniform_counts({n: m.weight.numel() for n, m in layers.items()}, cap, target)
        if self.method == "global":
            return global_counts(layers, target)
        if self.method == "lamp":
            return lamp_counts(layers, target)
        return erk_counts(layers, cap, target)

    def _add_additivity(self, result: PruneResult, model: nn.Module, calib: torch.Tensor) -> None:
        """Set ``result.additivity``, curving the unpruned ``model`` first if no round did."""
        if result.curves is None:
            result.curves = distortion_curves(model, calib, grid_step=self.grid_step,
                                              distortion=self.distortion)  # fmt: skip
        result.additivity = additivity(model, calib, result.curves, n_random=self.n_random, seed=self.seed,
                                       distortion=self.distortion)  # fmt: skip


def prune(model: nn.Module, *, calib: torch.Tensor, finetune: Finetune | None = None,
          curves: dict[str, np.ndarray] | None = None, **params) -> PruneResult:  # fmt: skip
    """Deprecated: ``Pruner(**params).prune(model, calib, finetune=, curves=)``, which this calls.

    Kept for one release; ``params`` are ``Pruner``'s (``sparsity``, ``method``, ...).
    """
    warnings.warn("nas.compress.prune.prune() is deprecated and goes in the next release: use "
                  "Pruner(sparsity=..., method=...).prune(model, calib, finetune=..., curves=...)",
                  DeprecationWarning, stacklevel=2)  # fmt: skip
    return Pruner(**params).prune(model, calib, finetune=finetune, curves=curves)
