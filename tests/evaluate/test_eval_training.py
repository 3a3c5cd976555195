"""The training evaluator and the evaluator factory."""

from __future__ import annotations

import json
import textwrap
import warnings

import pytest
import torch

from nas.errors import EvaluationError
from nas.evaluate import (
    METRIC_NAMES,
    Evaluator,
    TrainConfig,
    TrainEvaluator,
    TrialFailed,
    count_params,
    make_evaluator,
)


def test_construction_does_no_work():
    ev = TrainEvaluator("fashion-mnist", data_dir="/no/such/folder")
    assert isinstance(ev, Evaluator)
    assert json.loads(json.dumps(ev.describe()))["dataset"] == "fashion-mnist"
    with pytest.raises(EvaluationError, match="/no/such/folder"):
        ev.input_shape()


def test_evaluate_gives_every_metric_and_is_seeded(small_cnn):
    ev = TrainEvaluator("digits", config=TrainConfig(epochs=2), latency_batch=4)
    assert ev.input_shape() == (1, 8, 8) and ev.num_classes() == 10
    epochs: list[dict] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        a = ev.evaluate(small_cnn, {"width": 16}, seed=3, on_epoch=epochs.append)
    b = ev.evaluate(small_cnn, {"width": 16}, seed=3)
    c = ev.evaluate(small_cnn, {"width": 16}, seed=4)
    assert set(a.metrics) == set(METRIC_NAMES) and a.metrics["latency_ms"] > 0
    assert not [w for w in caught if "latency" in str(w.message)]
    assert a.metrics["params"] == count_params(small_cnn())
    assert a.metrics["flops"] > 0 and a.metrics["size_mb"] > 0
    assert 0 <= a.metrics["accuracy"] <= 1 and len(a.curve) == 2 == len(epochs)
    assert a.curve == b.curve  # the weights' initialisation is seeded too
    assert a.curve != c.curve
    assert set(a.state_dict) == set(small_cnn().state_dict())
    assert json.dumps(a.metrics) and json.dumps(a.curve) and json.dumps(a.extra)


def test_diverging_trial_raises_trial_failed(small_cnn):
    ev = TrainEvaluator("digits", config=TrainConfig(epochs=1, lr=1e6), measure_latency=False)
    with pytest.raises(TrialFailed):
        ev.evaluate(small_cnn, {}, seed=0)


def test_factory_maps_names(tmp_path, small_cnn):
    assert isinstance(make_evaluator("digits"), TrainEvaluator)
    config = TrainConfig(epochs=1)
    ev = make_evaluator("fashion-mnist", data_dir=str(tmp_path), config=config, max_train=10)
    assert (ev.dataset, ev.data_dir, ev.config, ev.max_train) == (
        "fashion-mnist", str(tmp_path), config, 10)
    loader = tmp_path / "data.py"
    loader.write_text(textwrap.dedent("""
        import torch
        def load():
            g = torch.Generator().manual_seed(0)
            return torch.randn(40, 1, 8, 8, generator=g), torch.arange(40) % 10
    """))
    user = make_evaluator(f"{loader}:load", config=TrainConfig(epochs=1), measure_latency=False)
    assert user.num_classes() == 10
    result = user.evaluate(small_cnn, {}, seed=0)
    assert set(result.metrics) == set(METRIC_NAMES) - {"latency_ms"}
    with pytest.raises(EvaluationError, match="'mnist'.*digits, fashion-mnist, cifar10.*nb201"):
        make_evaluator("mnist")


def test_evaluate_leaves_the_global_rng_alone(small_cnn):
    ev = TrainEvaluator("digits", config=TrainConfig(epochs=1), measure_latency=False)
    torch.manual_seed(1)
    before = torch.random.get_rng_state()
    ev.evaluate(small_cnn, {}, seed=0)
    assert torch.equal(before, torch.random.get_rng_state())
