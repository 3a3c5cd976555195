"""Pruner and ChannelPruner as configurations: checked at construction, get_params, repr, deprecations."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from nas.compress.prune import ChannelPruner, Pruner, prune, prune_channels
from nas.errors import CompressionError
from tests.compress.test_prune import _model
from tests.compress.test_prune_channels import _flops_ms, vgg

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def calib():
    return torch.randn(16, 1, 10, 10, generator=torch.Generator().manual_seed(1))


@pytest.fixture(scope="module")
def channel_calib():
    return torch.randn(24, 1, 12, 12, generator=torch.Generator().manual_seed(2))


@pytest.mark.parametrize(("params", "match"), [
    ({"sparsity": 0}, r"^Pruner\(sparsity=0\): must lie strictly between 0 and 1"),
    ({"sparsity": 1.0}, r"^Pruner\(sparsity=1\.0\): must lie strictly between 0 and 1"),
    ({"sparsity": -0.1}, r"sparsity=-0\.1"),
    ({"sparsity": "0.9"}, r"sparsity='0\.9'"),
    ({"sparsity": True}, r"sparsity=True"),
    ({"sparsity": float("nan")}, r"sparsity=nan"),
    ({"sparsity": 0.5, "method": "magic"}, r"method='magic'\): unknown; valid methods: "
                                            r"\['dp', 'lamp', 'global', 'uniform', 'erk'\]"),
    ({"sparsity": 0.5, "grid_step": 0.7}, r"grid_step=0\.7\): .*\(0, 0\.5\]"),
    ({"sparsity": 0.5, "distortion": "max"}, r"distortion='max'\): unknown; valid: \['mean', 'worst'\]"),
    ({"sparsity": 0.5, "buckets": 0}, r"buckets=0\): must be an integer >= 1"),
    ({"sparsity": 0.5, "rounds": 1.5}, r"rounds=1\.5\): must be an integer >= 1"),
    ({"sparsity": 0.5, "check_additivity": 1}, r"check_additivity=1\): must be True or False"),
    ({"sparsity": 0.5, "n_random": 2}, r"n_random=2\): must be an integer >= 3"),
    ({"sparsity": 0.5, "seed": -1}, r"seed=-1\): must be an integer >= 0"),
    ({"sparsity": 0.5, "max_layer_distortion": 0}, r"max_layer_distortion=0\): must be a number > 0"),
    ({"sparsity": 0.5, "min_kept_per_output": -1}, r"min_kept_per_output=-1\): must be an integer >= 0"),
    ({"sparsity": 0.5, "max_layer_damage": 1.5}, r"max_layer_damage=1\.5\): must lie in \(0, 1\]"),
])  # fmt: skip
def test_bad_pruner_parameters_fail_at_construction(params, match):
    with pytest.raises(CompressionError, match=match) as err:
        Pruner(**params)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(("params", "match"), [
    ({"latency_budget_ms": 0}, r"^ChannelPruner\(latency_budget_ms=0\): must be a number of milli\w+ > 0"),
    ({"latency_budget_ms": 1, "method": "x"}, r"method='x'\): .*valid: \['dp', 'uniform'\]"),
    ({"latency_budget_ms": 1, "method": "lamp"}, r"method='lamp'"),
    ({"latency_budget_ms": 1, "base_ms": None}, r"base_ms=None\): must be a number of milliseconds"),
    ({"latency_budget_ms": 1, "grid_step": 0}, r"grid_step=0\)"),
    ({"latency_budget_ms": 1, "min_channels": 0}, r"min_channels=0\): must be an integer >= 1"),
    ({"latency_budget_ms": 1, "calibrate_rounds": 0}, r"calibrate_rounds=0\): must be an integer >= 1"),
])  # fmt: skip
def test_bad_channel_pruner_parameters_fail_at_construction(params, match):
    with pytest.raises(CompressionError, match=match):
        ChannelPruner(**params)


@pytest.mark.parametrize("config", [
    Pruner(0.9),
    Pruner(0.5, "lamp", grid_step=0.1, rounds=3, max_layer_distortion=None, max_layer_damage=None),
    ChannelPruner(2.5),
    ChannelPruner(2.5, "uniform", base_ms=1.25, min_channels=2, calibrate_rounds=8),
])  # fmt: skip
def test_get_params_round_trips(config):
    params = config.get_params()
    copy = type(config)(**params)
    assert copy.get_params() == params and copy == config
    assert set(params) == {f.name for f in dataclasses.fields(config)}


def test_parameters_are_stored_as_given_and_cannot_change():
    pruner = Pruner(sparsity=0.9, method="dp", max_layer_damage=0.75)
    assert pruner.get_params() == {
        "sparsity": 0.9, "method": "dp", "grid_step": 0.01, "distortion": "mean", "buckets": 10000,
        "rounds": 1, "check_additivity": False, "n_random": 20, "seed": 0, "max_layer_distortion": 1.0,
        "min_kept_per_output": 1, "max_layer_damage": 0.75,
    }  # fmt: skip
    with pytest.raises(dataclasses.FrozenInstanceError):
        pruner.sparsity = 2.0  # a value checked once must not change unchecked


def test_repr_shows_what_differs_from_the_defaults():
    assert repr(Pruner(0.9)) == "Pruner(sparsity=0.9)"
    assert repr(Pruner(0.9, "lamp", max_layer_damage=None)) == (
        "Pruner(sparsity=0.9, method='lamp', max_layer_damage=None)")
    assert repr(ChannelPruner(3.0, base_ms=1.0)) == "ChannelPruner(latency_budget_ms=3.0, base_ms=1.0)"


def _same(a, b) -> bool:
    weights = zip(a.model.state_dict().values(), b.model.state_dict().values(), strict=True)
    return (a.allocation, a.sparsity, a.kept, a.channels) == (b.allocation, b.sparsity, b.kept, b.channels) \
        and all(torch.equal(x, y) for x, y in weights)


def test_deprecated_prune_warns_and_gives_the_pruners_result(calib):
    with pytest.warns(DeprecationWarning, match=r"Pruner\(sparsity=\.\.\., method=\.\.\.\)\.prune"):
        old = prune(_model(), sparsity=0.8, method="dp", calib=calib, grid_step=0.1, rounds=2)
    new = Pruner(0.8, "dp", grid_step=0.1, rounds=2).prune(_model(), calib)
    assert _same(old, new)
    with pytest.warns(DeprecationWarning), pytest.raises(CompressionError, match="sparsity=1.5"):
        prune(_model(), sparsity=1.5, calib=calib)


def test_deprecated_prune_channels_warns_and_gives_the_channel_pruners_result(channel_calib):
    with pytest.warns(DeprecationWarning, match=r"ChannelPruner\(latency_budget_ms=\.\.\."):
        old = prune_channels(vgg(), latency_budget_ms=0.3, latency_fn=_flops_ms, calib=channel_calib,
                             method="dp", grid_step=0.125)  # fmt: skip
    new = ChannelPruner(0.3, "dp", grid_step=0.125).prune(vgg(), channel_calib, _flops_ms)
    assert _same(old, new)
