"""Channel pruning whose DP cost is the kernel latency predictor's estimate (no timing)."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from nas.compress.prune import ChannelPruner, channel_groups, predicted_channel_latency
from nas.compress.pruning.structured import shrink
from nas.errors import CompressionError
from nas.hardware import SHIPPED_PROFILES_DIR
from nas.kernels.trace import extract_kernels
from nas.predictors import LatencyPredictor

torch.set_num_threads(1)
SHAPE = (1, 12, 12)
BATCH = 32


def vgg(w: int = 8) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(w, 2 * w, 3, padding=1), nn.BatchNorm2d(2 * w), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(2 * w, 2 * w, 3, padding=1), nn.BatchNorm2d(2 * w), nn.ReLU(),
        nn.Flatten(), nn.Linear(2 * w * 9, 10),
    ).eval()  # fmt: skip


@pytest.fixture(scope="module")
def predictor() -> LatencyPredictor:
    # any committed CPU profile: the predictor's figures need not match this machine here
    profiles = sorted(Path(SHIPPED_PROFILES_DIR).glob("cpu-*.json"))
    if not profiles:
        pytest.skip("no committed CPU device profile in nas/hardware/profiles")
    return LatencyPredictor.load(profiles[0])


@pytest.fixture(scope="module")
def fn(predictor):
    return predicted_channel_latency(vgg(), SHAPE, predictor, BATCH)


@pytest.fixture(scope="module")
def calib():
    return torch.randn(24, *SHAPE, generator=torch.Generator().manual_seed(2))


def test_zero_at_full_width_and_monotone_in_width(fn):
    assert set(fn.groups) == {"0", "4", "8"}
    for g in channel_groups(vgg()):
        ms = [fn(g.name, k) for k in range(1, g.channels + 1)]
        assert ms[-1] == 0.0
        assert all(b >= a for a, b in zip(ms, ms[1:], strict=False)), (g.name, ms)
        assert ms[0] < 0.0, "removing all but one channel saves nothing?"


def test_rescaled_kernels_equal_the_traced_narrowed_model(fn, predictor):
    # the shortcut (trace one narrowed width, rewrite the channel fields for the others) must
    # give what tracing each narrowed model itself gives, under the same monotone envelope
    model = vgg()
    for g in channel_groups(model):
        traced = []
        for kept in range(1, g.channels + 1):
            small = copy.deepcopy(model)
            shrink(small, [g], {g.name: torch.arange(kept)})
            traced.append(predictor.predict_kernels(extract_kernels(small, SHAPE), BATCH))
        expect = np.maximum.accumulate(np.array(traced)) - fn.full_ms
        assert fn.points[g.name] == pytest.approx(np.minimum(expect, 0.0), abs=1e-6)


def test_pruned_model_is_predicted_within_the_budget(fn, predictor, calib):
    budget = 0.8 * fn.full_ms

    def whole(m: nn.Module) -> float:
        return predictor.predict(m, SHAPE, BATCH)

    for method in ("dp", "uniform"):
        pruner = ChannelPruner(budget, method, base_ms=fn.base_ms, grid_step=0.125)
        result = pruner.prune(vgg(), calib, fn, measure=whole)
        assert result.predicted_latency_ms <= budget + 1e-9
        # the whole narrowed model through the predictor, not only the per-group sum
        assert whole(result.model) <= budget + 1e-6
        assert whole(result.model) == pytest.approx(result.measured_latency_ms)
        assert sum(result.channels.values()) < 40


def test_unknown_group_is_an_error(fn):
    with pytest.raises(CompressionError, match="no channel group 'nope'"):
        fn("nope", 1)
