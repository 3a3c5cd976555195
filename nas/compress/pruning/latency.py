"""A measured per-group latency table for channel pruning, when no latency predictor is at hand."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from nas.compress.pruning.layers import detach_masked, make_permanent
from nas.compress.pruning.structured import ChannelGroup, channel_groups, shrink


@dataclass
class LatencyTable:
    """``table(group, kept) -> ms``: latency attributable to a group's kept channels.

    Measured by timing the whole model with one group narrowed at a time, so the predicted
    latency of an allocation is ``base_ms + sum(table(g, kept_g))``, exact at full width and
    when one group alone is narrowed, additive otherwise.
    """

    points: dict[str, tuple[np.ndarray, np.ndarray]]  # group -> (kept channels, ms above minimum)
    base_ms: float
    full_ms: float

    def __call__(self, name: str, kept: int) -> float:
        """Return the interpolated latency share of ``name`` with ``kept`` channels, in ms."""
        ks, ms = self.points[name]
        return float(np.interp(kept, ks, ms))


def time_model(model: nn.Module, example: torch.Tensor, *, repeats: int = 20) -> float:
    """Return the fastest of ``repeats`` forward passes of ``model`` on ``example``, in ms.

    The minimum, not the median: on a shared machine other work only ever adds time, so the
    fastest run is the most repeatable estimate of the model's own cost.
    """
    return float(np.min(latency_samples([model], example, repeats)[0]))


def latency_samples(models: list[nn.Module], example: torch.Tensor, repeats: int) -> list[list[float]]:
    """Return ``repeats`` forward times (ms) per model, interleaved round by round."""
    # interleaved: every round times every model once, so drifting load hits all alike
    out: list[list[float]] = [[] for _ in models]
    with torch.inference_mode():
        for m in models:
            m.eval()
            for _ in range(3):
                m(example)
        for _ in range(repeats):
            for i, m in enumerate(models):
                start = time.perf_counter()
                m(example)
                out[i].append((time.perf_counter() - start) * 1e3)
    return out


def _narrowed(model: nn.Module, group: ChannelGroup, kept: int) -> nn.Module:
    m = copy.deepcopy(model)
    shrink(m, [group], {group.name: torch.arange(kept)})
    return m


def measure_channel_latency(
    model: nn.Module,
    example: torch.Tensor,
    *,
    fractions: tuple[float, ...] = (0.125, 0.25, 0.5, 0.75),
    repeats: int = 15,
) -> LatencyTable:
    """Return a latency table measured on this machine for each channel group of ``model``."""
    base = make_permanent(copy.deepcopy(detach_masked(model))).eval()
    groups = channel_groups(base)
    configs: list[tuple[str, int]] = []
    for g in groups:
        ks = sorted({max(1, int(round(f * g.channels))) for f in fractions} - {g.channels})
        configs += [(g.name, k) for k in ks]
    by_name = {g.name: g for g in groups}
    models = [base] + [_narrowed(base, by_name[n], k) for n, k in configs]
    fastest = [float(np.min(s)) for s in latency_samples(models, example, repeats)]
    full = fastest[0]
    points: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for g in groups:
        pairs = [(k, ms) for (n, k), ms in zip(configs, fastest[1:], strict=True) if n == g.name]
        pairs.append((g.channels, full))
        ks = np.array([k for k, _ in pairs], dtype=np.float64)
        ms = np.maximum.accumulate(np.array([t for _, t in pairs]))  # wider is never faster
        points[g.name] = (ks, ms - ms[0])
    share = sum(float(p[1][-1]) for p in points.values())
    return LatencyTable(points=points, base_ms=full - share, full_ms=full)
