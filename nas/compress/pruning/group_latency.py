"""Per-group latency for channel pruning: from the kernel latency predictor, or measured."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from nas.compress.pruning.prunable import detach_masked, make_permanent
from nas.compress.pruning.structured import ChannelGroup, channel_groups, shrink
from nas.errors import CompressionError
from nas.kernels.kernel import Kernel
from nas.kernels.trace import extract_kernels


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

    @property
    def groups(self) -> list[str]:
        """Return the channel groups the table knows (as a predicted latency_fn's ``groups``)."""
        return list(self.points)

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


class PredictedChannelLatency:
    """``latency_fn(group, kept) -> ms`` from a kernel latency predictor: no timing at all.

    For a group narrowed to ``kept`` channels it is the predictor's estimate for the kernels
    that change (the producer conv with its fused norm and activation, the per-channel ops in
    between, the consumer) minus the same kernels at full width: 0 at full width, negative
    below. ``base_ms`` is the predicted latency of the whole dense model, so
    ``base_ms + sum(fn(g, kept_g))`` predicts an allocation like a ``LatencyTable`` does.
    The kernels of the narrowed model are traced once per group at one narrowed width; every
    other width rewrites the channel-proportional fields of those kernels, and all widths of a
    group are predicted in one batch and cached. A fitted predictor may be slightly
    non-monotone between close sizes: the values are made non-decreasing in width (wider is
    never faster), as the measured table does.
    """

    def __init__(self, model: nn.Module, input_shape: tuple[int, ...], predictor, batch_size: int = 1):
        self.model = make_permanent(copy.deepcopy(detach_masked(model))).eval()
        self.input_shape = tuple(int(d) for d in input_shape)
        self.predictor = predictor
        self.batch_size = int(batch_size)
        self.groups = {g.name: g for g in channel_groups(self.model)}
        self._full = extract_kernels(self.model, self.input_shape)
        self.base_ms = self.full_ms = float(predictor.predict_kernels(self._full, self.batch_size))
        self.points: dict[str, np.ndarray] = {}  # group -> ms delta at widths 1..channels

    def __call__(self, name: str, kept: int) -> float:
        """Return the predicted latency change (ms, <= 0) of group ``name`` at ``kept`` channels."""
        if name not in self.points:
            if name not in self.groups:
                raise CompressionError(f"no channel group {name!r}; groups: {sorted(self.groups)}")
            self.points[name] = self._group_curve(self.groups[name])
        ms = self.points[name]
        return float(ms[min(max(int(kept), 1), len(ms)) - 1])

    def _group_curve(self, group: ChannelGroup) -> np.ndarray:
        c = group.channels
        if c == 1:
            return np.zeros(1)
        probe = max(1, c // 2)
        narrowed = extract_kernels(_narrowed(self.model, group, probe), self.input_shape)
        widths = range(1, c + 1)
        changed = _changed(self._full, narrowed)
        full = [self._full[i] for i in changed or []]
        try:
            if changed is None:
                raise ValueError("the kernel list changed with the width")
            kernel_sets = [[_rescale(self._full[i], narrowed[i], c, probe, k) for i in changed]
                           for k in widths]  # fmt: skip
        except ValueError:  # not a plain rescaling: trace every width (slower, same answer)
            full = self._full
            kernel_sets = [extract_kernels(_narrowed(self.model, group, k), self.input_shape)
                           for k in widths]  # fmt: skip
        # one call over every width first: the predictor batches new kernels per kind
        self.predictor.predict_kernels([k for ks in kernel_sets for k in ks], self.batch_size)
        at_full = float(self.predictor.predict_kernels(full, self.batch_size))
        ms = np.array([float(self.predictor.predict_kernels(ks, self.batch_size)) for ks in kernel_sets])
        ms = np.maximum.accumulate(ms) - at_full
        return np.minimum(ms, 0.0)  # the full width itself is exactly 0, never a saving


def _changed(full: list[Kernel], narrowed: list[Kernel]) -> list[int] | None:
    # kernels whose configuration depends on the group's width, or None if the lists differ
    if len(full) != len(narrowed) or any(a.kind != b.kind for a, b in zip(full, narrowed, strict=True)):
        return None
    return [i for i, (a, b) in enumerate(zip(full, narrowed, strict=True)) if a.key() != b.key()]


def _scale_value(full, probe_value, channels: int, probe: int, kept: int):
    if isinstance(full, list) and isinstance(probe_value, list) and len(full) == len(probe_value):
        return [_scale_value(a, b, channels, probe, kept) for a, b in zip(full, probe_value, strict=True)]
    if isinstance(full, dict) and isinstance(probe_value, dict):
        return {key: _scale_value(v, probe_value.get(key), channels, probe, kept) for key, v in full.items()}
    if isinstance(full, int) and isinstance(probe_value, int) and full != probe_value:
        per = full // channels  # a field proportional to the channels: cin, cout, C*h*w
        if per * channels == full and per * probe == probe_value:
            return per * kept
        raise ValueError(f"field {full} -> {probe_value} is not proportional to the channels")
    return full


def _rescale(full: Kernel, probe_kernel: Kernel, channels: int, probe: int, kept: int) -> Kernel:
    """Return ``full`` with every field that shrank with the group rewritten for ``kept``."""
    return Kernel(full.kind, _scale_value(full.config, probe_kernel.config, channels, probe, kept))


def predicted_channel_latency(
    model: nn.Module, input_shape: tuple[int, ...], predictor, batch_size: int = 1
) -> PredictedChannelLatency:
    """Return a ``latency_fn(group, kept) -> ms`` (with ``base_ms``) from a latency predictor.

    ``predictor`` is a fitted ``predictors.LatencyPredictor`` (``LatencyPredictor.load(path)``);
    ``input_shape`` excludes the batch dimension, e.g. (1, 28, 28).
    """
    return PredictedChannelLatency(model, input_shape, predictor, batch_size)
