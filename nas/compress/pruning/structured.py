"""Latency-aware channel pruning: the least distortion under a latency budget, by the same DP.

A *channel group* is a conv whose output channels flow, through per-channel ops only (batch
norm, activations, pooling, flatten), into exactly one conv or linear layer and nowhere else (not
into a residual sum or a concatenation). Removing channel c of such a group removes filter c of
the producer, entry c of its batch norms, and input channel c (input columns c*hw..(c+1)*hw after
a flatten) of the consumer: a really smaller dense model. Its distortion equals zeroing those
consumer columns, so the curves come from the same tail runner as unstructured pruning; its
cost is ``latency_fn(group, kept_channels)`` from the caller (a predictor or a measured table).
``ChannelPruner`` holds the settings of a channel pruning and runs it.
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from functools import partial
from typing import TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import fx, nn

from nas.compress.pruning.allocate import dp_solve
from nas.compress.pruning.config import PruningConfig, check_curve_params, is_int, is_number, require
from nas.compress.pruning.prunable import (
    check_calib,
    detach_masked,
    make_permanent,
    prunable_layers,
)
from nas.compress.pruning.result import PruneResult
from nas.compress.pruning.tail import TailRunner
from nas.errors import CompressionError

_PASS_MODULES = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.ELU, nn.Hardswish, nn.Tanh, nn.Sigmoid,
    nn.Identity, nn.Dropout, nn.Dropout2d, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d,
    nn.AdaptiveMaxPool2d,
)  # fmt: skip
_PASS_FUNCTIONS = {
    F.relu, torch.relu, F.relu6, F.gelu, F.silu, F.leaky_relu, torch.sigmoid, torch.tanh,
    F.max_pool2d, F.avg_pool2d, F.adaptive_avg_pool2d, F.adaptive_max_pool2d, F.dropout,
}  # fmt: skip
_PASS_METHODS = {"relu", "sigmoid", "tanh", "contiguous"}

CHANNEL_METHODS = ("dp", "uniform")

LatencyFn = Callable[[str, int], float]  # (channel group, channels kept) -> ms
T = TypeVar("T")


@dataclass
class ChannelGroup:
    """A conv whose output channels can be removed, with the layers that must shrink with it."""

    name: str  # the producing conv
    consumer: str  # the one conv or linear that reads the channels
    norms: list[str] = field(default_factory=list)  # batch norms in between
    channels: int = 0


def _is_flatten(node: fx.Node, mod: nn.Module | None) -> bool:
    if isinstance(mod, nn.Flatten):
        return mod.start_dim == 1 and mod.end_dim == -1
    if node.op == "call_function" and node.target is torch.flatten:
        return tuple(node.args[1:2]) == (1,) or node.kwargs.get("start_dim") == 1
    if node.op == "call_method" and node.target == "flatten":
        return tuple(node.args[1:2]) == (1,)
    if node.op == "call_method" and node.target == "mean":
        dims = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
        return tuple(dims or ()) in {(2, 3), (-2, -1)} and not node.kwargs.get("keepdim")
    return False


def _follow(node: fx.Node, modules: dict[str, nn.Module], calls) -> ChannelGroup | None:
    norms, flat = [], False
    while len(node.users) == 1:
        node = next(iter(node.users))
        mod = modules.get(node.target) if node.op == "call_module" else None
        if mod is not None and calls[node.target] > 1:
            return None  # a shared module cannot shrink for one caller only
        if isinstance(mod, nn.Conv2d) and not flat and mod.groups == 1:
            return ChannelGroup(name="", consumer=node.target, norms=norms)
        if isinstance(mod, nn.Linear) and flat:
            return ChannelGroup(name="", consumer=node.target, norms=norms)
        if isinstance(mod, nn.BatchNorm2d) and not flat:
            norms.append(node.target)
        elif _is_flatten(node, mod):
            flat = True
        elif not (
            isinstance(mod, _PASS_MODULES)
            or (node.op == "call_function" and node.target in _PASS_FUNCTIONS)
            or (node.op == "call_method" and node.target in _PASS_METHODS)
        ):
            return None
    return None


def channel_groups(model: nn.Module) -> list[ChannelGroup]:
    """Return the conv layers whose output channels can be physically removed, in graph order."""
    try:
        gm = fx.symbolic_trace(model)
    except Exception as err:  # noqa: BLE001 - report any tracing failure as the user's problem
        raise CompressionError(
            f"channel pruning needs a torch.fx-traceable model; {type(model).__name__} is not ({err})"
        ) from err
    modules = dict(gm.named_modules())
    calls: dict[str, int] = {}
    for node in gm.graph.nodes:
        if node.op == "call_module":
            calls[node.target] = calls.get(node.target, 0) + 1
    groups = []
    for node in gm.graph.nodes:
        mod = modules.get(node.target) if node.op == "call_module" else None
        if isinstance(mod, nn.Conv2d) and mod.groups == 1 and calls[node.target] == 1:
            group = _follow(node, modules, calls)
            if group is not None:
                group.name, group.channels = node.target, mod.out_channels
                groups.append(group)
    return groups


def channel_importance(model: nn.Module, groups: list[ChannelGroup], calib) -> dict[str, torch.Tensor]:
    """Return per group and channel: mean |activation| entering the consumer x its weight norm."""
    modules = dict(model.named_modules())
    acts: dict[str, torch.Tensor] = {}
    hooks = []
    for g in groups:

        def hook(mod, inputs, g=g):
            x = inputs[0].detach().abs()
            acts[g.name] = x.reshape(x.shape[0], g.channels, -1).mean(dim=(0, 2))

        hooks.append(modules[g.consumer].register_forward_pre_hook(hook))
    try:
        with torch.no_grad():
            model(calib)
    finally:
        for h in hooks:
            h.remove()
    scores = {}
    for g in groups:
        w = modules[g.consumer].weight.detach()
        per = w.reshape(w.shape[0], g.channels, -1).pow(2).sum(dim=(0, 2)).sqrt()
        scores[g.name] = acts[g.name] * per
    return scores


def _zero_columns(weight: torch.Tensor, channels: int, drop: torch.Tensor) -> torch.Tensor:
    w = weight.detach().clone()
    view = w.reshape(w.shape[0], channels, -1)
    view[:, drop] = 0.0
    return view.reshape(weight.shape)


def _choices(channels: int, grid_step: float, min_channels: int) -> list[int]:
    fracs = np.arange(1, int(round(1.0 / grid_step)) + 1) * grid_step
    ks = {max(min_channels, min(channels, math.ceil(f * channels - 1e-9))) for f in fracs}
    return sorted(ks | {channels})


def shrink(model: nn.Module, groups: list[ChannelGroup], keep: dict[str, torch.Tensor]) -> None:
    """Physically remove the channels not in ``keep[group]`` from each group's layers, in place."""
    modules = dict(model.named_modules())
    with torch.no_grad():
        for g in groups:
            idx = torch.sort(keep[g.name]).values
            prod, cons = modules[g.name], modules[g.consumer]
            prod.weight = nn.Parameter(prod.weight[idx].clone())
            if prod.bias is not None:
                prod.bias = nn.Parameter(prod.bias[idx].clone())
            prod.out_channels = len(idx)
            for bn_name in g.norms:
                bn = modules[bn_name]
                if bn.affine:
                    bn.weight = nn.Parameter(bn.weight[idx].clone())
                    bn.bias = nn.Parameter(bn.bias[idx].clone())
                if bn.track_running_stats:
                    bn.running_mean = bn.running_mean[idx].clone()
                    bn.running_var = bn.running_var[idx].clone()
                bn.num_features = len(idx)
            w = cons.weight.reshape(cons.weight.shape[0], g.channels, -1)[:, idx]
            if isinstance(cons, nn.Conv2d):
                cons.weight = nn.Parameter(w.reshape(w.shape[0], len(idx), *cons.kernel_size))
                cons.in_channels = len(idx)
            else:
                cons.weight = nn.Parameter(w.reshape(w.shape[0], -1).clone())
                cons.in_features = cons.weight.shape[1]


def _uniform_keep(groups, latency_fn, budget: float, min_channels: int) -> dict[str, int]:
    # the widest common fraction, to the channel, whose predicted latency fits the budget
    for f in np.linspace(1.0, 0.0, 1001):
        kept = {g.name: max(min_channels, math.ceil(f * g.channels - 1e-9)) for g in groups}
        if sum(float(latency_fn(n, k)) for n, k in kept.items()) <= budget + 1e-9:
            return kept
    return {g.name: min_channels for g in groups}


def _dp_keep(curves, choices, latency_fn, budget: float, buckets: int) -> dict[str, int]:
    # costs are shifted so each group's cheapest width is free: the DP's buckets then span
    # only the latency that the allocation can actually trade
    names = list(choices)
    lat = {n: np.array([float(latency_fn(n, k)) for k in choices[n]]) for n in names}
    floor = {n: float(lat[n].min()) for n in names}
    costs = [lat[n] - floor[n] for n in names]
    picks = dp_solve([curves[n] for n in names], costs, budget - sum(floor.values()), buckets)
    return {n: choices[n][j] for n, j in zip(names, picks, strict=True)}


def _weights(model: nn.Module) -> int:
    return sum(m.weight.numel() for m in prunable_layers(model).values())


def _groups_of(model: nn.Module) -> list[ChannelGroup]:
    groups = channel_groups(model)
    if not groups:
        raise CompressionError(
            f"model {type(model).__name__} has no conv whose output channels feed exactly one "
            "conv or linear through per-channel ops (batch norm, activation, pooling, flatten); "
            "channels that enter a residual sum or a concatenation cannot be removed alone"
        )
    return groups


def _timed(fn: Callable[..., T], *args) -> tuple[T, float]:
    """Return (``fn(*args)``, the seconds it took)."""
    start = time.perf_counter()
    return fn(*args), time.perf_counter() - start


@dataclass
class _RankedGroups:
    """A model's channel groups, each group's channels ranked most important first."""

    model: nn.Module
    groups: list[ChannelGroup]
    order: dict[str, torch.Tensor]

    @classmethod
    def of(cls, model: nn.Module, calib: torch.Tensor) -> _RankedGroups:
        """Return the groups of ``model``, their channels ranked by ``channel_importance`` on ``calib``."""
        groups = _groups_of(model)
        scores = channel_importance(model, groups, calib)
        order = {n: torch.argsort(s, descending=True, stable=True) for n, s in scores.items()}
        return cls(model, groups, order)

    def keep(self, kept: dict[str, int]) -> dict[str, torch.Tensor]:
        """Return the channels each group keeps: its ``kept[group]`` most important ones."""
        return {g.name: self.order[g.name][: kept[g.name]] for g in self.groups}

    def shrunk_copy(self, kept: dict[str, int]) -> nn.Module:
        """Return a copy of the model with each group narrowed to ``kept[group]`` channels."""
        candidate = copy.deepcopy(self.model)
        shrink(candidate, self.groups, self.keep(kept))
        return candidate.eval()


@dataclass(frozen=True, repr=False)
class ChannelPruner(PruningConfig):
    """Channel pruning under a latency budget: the parameters, checked once, and ``prune``.

        pruner = ChannelPruner(latency_budget_ms=0.7 * table.full_ms, base_ms=table.base_ms)
        result = pruner.prune(model, calib=x[:256], latency_fn=table)

    An allocation's predicted latency is ``base_ms + sum(latency_fn(group, kept))`` over the
    channel groups: ``base_ms`` is the latency outside them (a ``LatencyTable``'s or a
    ``PredictedChannelLatency``'s ``base_ms``), and ``method="dp"`` keeps the least distortion
    within ``latency_budget_ms``; ``"uniform"`` keeps the same fraction of channels everywhere
    instead (the baseline). ``grid_step`` is the grid of kept-channel fractions each group's
    distortion curve is measured at, ``distortion`` and ``buckets`` are as for ``Pruner``,
    ``min_channels`` the fewest channels a group keeps, and ``calibrate_rounds`` bounds how often
    the allocation is redone against a ``measure`` (see ``prune``).
    """

    latency_budget_ms: float
    method: str = "dp"
    _: KW_ONLY
    base_ms: float = 0.0
    grid_step: float = 0.05
    distortion: str = "mean"
    buckets: int = 2000
    min_channels: int = 1
    calibrate_rounds: int = 4

    def __post_init__(self) -> None:
        require(self, "latency_budget_ms", is_number(self.latency_budget_ms) and self.latency_budget_ms > 0,
                "must be a number of milliseconds > 0")
        require(self, "method", self.method in CHANNEL_METHODS,
                f"unknown for channel pruning; valid: {list(CHANNEL_METHODS)}")
        require(self, "base_ms", is_number(self.base_ms),
                "must be a number of milliseconds: the latency outside the channel groups")
        check_curve_params(self)
        require(self, "min_channels", is_int(self.min_channels, 1), "must be an integer >= 1")
        require(self, "calibrate_rounds", is_int(self.calibrate_rounds, 1), "must be an integer >= 1, e.g. 4")

    def prune(self, model: nn.Module, calib: torch.Tensor, latency_fn: LatencyFn, *,
              finetune: Callable[[nn.Module], None] | None = None,
              measure: Callable[[nn.Module], float] | None = None) -> PruneResult:  # fmt: skip
        """Return a smaller dense copy of ``model`` with the least distortion under the latency budget.

        ``calib`` is the calibration batch; ``latency_fn(group, kept) -> ms`` any callable: a
        ``LatencyTable``, a ``PredictedChannelLatency``, or your own. A per-group latency model is
        additive, but narrowing two adjacent groups shrinks the conv between them by the product
        of the two: the sum under-predicts. Given ``measure(model) -> ms`` (a timer or a
        whole-model predictor), the budget handed to the allocation is lowered by the measured
        overshoot and the allocation redone, up to ``calibrate_rounds`` times. ``finetune(model)``,
        if given, trains the smaller model in place.
        """
        work = make_permanent(copy.deepcopy(detach_masked(model))).eval()
        check_calib(work, calib)
        ranked = _RankedGroups.of(work, calib)
        fastest = sum(float(latency_fn(g.name, min(self.min_channels, g.channels))) for g in ranked.groups)
        self._check_budget(fastest)
        (allocate, curves), curve_time = _timed(self._allocator, ranked, calib, latency_fn)
        (kept, measured), solve = _timed(self._fit_budget, allocate, ranked, measure, fastest)
        total = _weights(work)
        shrink(work, ranked.groups, ranked.keep(kept))
        if finetune is not None:
            finetune(work)
        left = _weights(work.eval())
        return PruneResult(
            model=work,
            allocation={g.name: kept[g.name] / g.channels for g in ranked.groups},
            sparsity=1.0 - left / total,
            kept=left,
            total=total,
            solve_seconds=solve,
            method=f"channels-{self.method}",
            curves_seconds=curve_time,
            curves=curves,
            channels=kept,
            predicted_latency_ms=self.base_ms + sum(float(latency_fn(n, k)) for n, k in kept.items()),
            measured_latency_ms=measured,
        )

    def _check_budget(self, fastest: float) -> None:
        """Raise CompressionError if the groups cannot get under the budget even at their narrowest."""
        budget = self.latency_budget_ms - self.base_ms
        if budget < fastest - 1e-9:
            raise CompressionError(
                f"latency_budget_ms - base_ms leaves {budget:.4g} ms for the prunable groups, below "
                f"the fastest they can reach ({fastest:.4g} ms predicted at min_channels="
                f"{self.min_channels}); ask for more latency or lower min_channels"
            )

    def _allocator(self, ranked: _RankedGroups, calib: torch.Tensor, latency_fn: LatencyFn
                   ) -> tuple[Callable[[float], dict[str, int]], dict[str, np.ndarray] | None]:  # fmt: skip
        """Return (kept channels per group for a groups' budget in ms, the DP's curves: None if uniform)."""
        if self.method == "uniform":
            return partial(_uniform_keep, ranked.groups, latency_fn, min_channels=self.min_channels), None
        curves, choices = self._group_curves(ranked, calib)
        return partial(_dp_keep, curves, choices, latency_fn, buckets=self.buckets), curves

    def _group_curves(self, ranked: _RankedGroups, calib: torch.Tensor
                      ) -> tuple[dict[str, np.ndarray], dict[str, list[int]]]:  # fmt: skip
        """Return per group the distortion at each choice of kept channels, and those choices."""
        runner = TailRunner(ranked.model, calib)
        modules = dict(ranked.model.named_modules())
        curves, choices = {}, {}
        for g in ranked.groups:
            ks = _choices(g.channels, self.grid_step, self.min_channels)
            w = modules[g.consumer].weight
            variants = [_zero_columns(w, g.channels, ranked.order[g.name][k:]) for k in ks]
            curves[g.name] = runner.distortions(g.consumer, variants, self.distortion).cpu().numpy()
            choices[g.name] = ks
        return curves, choices

    def _fit_budget(self, allocate: Callable[[float], dict[str, int]], ranked: _RankedGroups,
                    measure: Callable[[nn.Module], float] | None, fastest: float
                    ) -> tuple[dict[str, int], float | None]:  # fmt: skip
        """Return (kept channels per group, the pruned model's measured ms: None without ``measure``)."""
        budget, measured, last, step = self.latency_budget_ms - self.base_ms, None, None, 0.0
        for _ in range(self.calibrate_rounds):
            kept = allocate(budget)
            if measure is None:
                break
            measured = float(measure(ranked.shrunk_copy(kept)))
            over = measured - self.latency_budget_ms
            if over <= 0 or budget <= fastest:
                break
            # lower the budget by the overshoot; twice the last cut when the allocation did not move
            step = 2.0 * step if kept == last else over
            budget, last = max(fastest, budget - step), kept
        return kept, measured


def prune_channels(model: nn.Module, *, latency_fn: LatencyFn, calib: torch.Tensor,
                   finetune: Callable[[nn.Module], None] | None = None,
                   measure: Callable[[nn.Module], float] | None = None, **params) -> PruneResult:  # fmt: skip
    """Deprecated: ``ChannelPruner(**params).prune(model, calib, latency_fn, ...)``, which this calls.

    Kept for one release; ``params`` are ``ChannelPruner``'s (``latency_budget_ms``, ``method``, ...).
    """
    warnings.warn("nas.compress.prune.prune_channels() is deprecated and goes in the next release: use "
                  "ChannelPruner(latency_budget_ms=..., base_ms=...).prune(model, calib, latency_fn, "
                  "finetune=..., measure=...)", DeprecationWarning, stacklevel=2)  # fmt: skip
    return ChannelPruner(**params).prune(model, calib, latency_fn, finetune=finetune, measure=measure)
