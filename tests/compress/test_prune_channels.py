"""Latency-aware channel pruning: groups, exact shrinking, the DP against uniform, errors."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nas.compress.prune import (
    ChannelPruner,
    LatencyTable,
    channel_groups,
    measure_channel_latency,
)
from nas.compress.pruning.structured import channel_importance, shrink
from nas.errors import CompressionError

torch.set_num_threads(1)


def vgg(w: int = 8) -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(w, 2 * w, 3, padding=1), nn.BatchNorm2d(2 * w), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(2 * w, 2 * w, 3, padding=1), nn.BatchNorm2d(2 * w), nn.ReLU(),
        nn.Flatten(), nn.Linear(2 * w * 9, 10),
    )  # fmt: skip
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.2, 1.5)  # uneven channels, so the choice matters
    return model.eval()


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 6, 3, padding=1)
        self.conv1 = nn.Conv2d(6, 6, 3, padding=1)
        self.conv2 = nn.Conv2d(6, 6, 3, padding=1)
        self.fc = nn.Linear(6, 10)

    def forward(self, x):
        x = F.relu(self.stem(x))
        x = F.relu(x + self.conv2(F.relu(self.conv1(x))))
        return self.fc(x.mean((2, 3)))


@pytest.fixture(scope="module")
def calib():
    return torch.randn(24, 1, 12, 12, generator=torch.Generator().manual_seed(2))


def _flops_ms(name: str, kept: int) -> float:
    return 0.01 * kept  # a stand-in latency model: linear in the channels kept


def test_groups_stop_at_residual_sums():
    assert [(g.name, g.consumer, g.norms) for g in channel_groups(vgg())] == [
        ("0", "4", ["1"]),
        ("4", "8", ["5"]),
        ("8", "12", ["9"]),
    ]
    # stem and conv2 feed the residual sum; only conv1 -> conv2 is a removable channel set
    assert [(g.name, g.consumer) for g in channel_groups(Residual())] == [("conv1", "conv2")]


def test_shrinking_equals_zeroing_the_consumer_columns(calib):
    model = vgg()
    groups = channel_groups(model)
    keep = {g.name: torch.arange(0, g.channels, 2) for g in groups}
    small = copy.deepcopy(model)
    shrink(small, groups, keep)
    masked = copy.deepcopy(model)
    modules = dict(masked.named_modules())
    with torch.no_grad():
        for g in groups:
            w = modules[g.consumer].weight
            view = w.view(w.shape[0], g.channels, -1)
            drop = torch.ones(g.channels, dtype=torch.bool)
            drop[keep[g.name]] = False
            view[:, drop] = 0
    assert torch.allclose(small(calib), masked(calib), rtol=1e-5, atol=1e-5)
    assert small[0].out_channels == 4 and small[4].in_channels == 4 and small[12].in_features == 72


def test_dp_meets_the_budget_with_less_distortion_than_uniform(calib):
    model = vgg()
    ref = model(calib).detach()
    full = sum(_flops_ms(g.name, g.channels) for g in channel_groups(model))
    budget = 0.5 * full
    errs = {}
    for method in ("dp", "uniform"):
        result = ChannelPruner(budget, method, grid_step=0.125).prune(model, calib, _flops_ms)
        assert result.predicted_latency_ms <= budget + 1e-9
        assert sum(p.numel() for p in result.model.parameters()) < sum(
            p.numel() for p in model.parameters()
        )
        assert result.sparsity > 0 and result.channels is not None
        errs[method] = float((result.model(calib).detach() - ref).pow(2).mean())
        if method == "uniform":  # the widest common fraction, to the channel: 4 + 8 + 8 of 40
            assert result.channels == {"0": 4, "4": 8, "8": 8}
    assert errs["dp"] <= errs["uniform"]


def test_channel_importance_ranks_dead_channels_last(calib):
    model = vgg()
    with torch.no_grad():
        model[1].weight[3] = 0.0
        model[1].bias[3] = -5.0  # channel 3 of the first group is dead after the ReLU
    scores = channel_importance(model, channel_groups(model), calib)
    assert int(torch.argmin(scores["0"])) == 3


def test_finetune_runs_on_the_smaller_model(calib):
    seen = []
    ChannelPruner(0.3).prune(vgg(), calib, _flops_ms,
                             finetune=lambda m: seen.append(sum(m[i].out_channels for i in (0, 4, 8))))
    assert len(seen) == 1 and 28 <= seen[0] <= 30  # 40 channels cost 0.4 ms; 0.3 ms allows 30


def test_measured_latency_table(calib):
    table = measure_channel_latency(vgg(), calib, fractions=(0.25, 0.5), repeats=2)
    assert isinstance(table, LatencyTable) and set(table.points) == {"0", "4", "8"}
    for name, (ks, ms) in table.points.items():
        assert ms[0] == 0 and all(b >= a for a, b in zip(ms, ms[1:], strict=False))
        assert table(name, int(ks[-1])) == pytest.approx(ms[-1])
    full = table.base_ms + sum(table(n, int(ks[-1])) for n, (ks, _) in table.points.items())
    assert full == pytest.approx(table.full_ms)


def test_errors(calib):
    with pytest.raises(CompressionError, match="below the fastest they can reach"):
        ChannelPruner(0.001).prune(vgg(), calib, _flops_ms)
    plain = nn.Sequential(nn.Flatten(), nn.Linear(144, 10))
    with pytest.raises(CompressionError, match="no conv whose output channels"):
        ChannelPruner(1).prune(plain, calib, _flops_ms)


def test_measured_overshoot_lowers_the_budget_until_it_fits(calib):
    def measure(m: nn.Module) -> float:  # the additive model under-predicts by 0.05 ms
        return 0.01 * sum(m[i].out_channels for i in (0, 4, 8)) + 0.05

    for method in ("dp", "uniform"):
        result = ChannelPruner(0.3, method).prune(vgg(), calib, _flops_ms, measure=measure)
        assert result.measured_latency_ms == pytest.approx(measure(result.model))
        assert result.measured_latency_ms <= 0.3 + 1e-9
        assert result.predicted_latency_ms <= 0.25 + 1e-9
