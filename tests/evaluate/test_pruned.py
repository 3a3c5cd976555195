"""PruneEvaluator: every trained candidate pruned inside a real search, metrics and masks checked."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load

from nas.compress.prune import METHODS
from nas.compress.pruning.prunable import prunable_layers
from nas.errors import CompressionError
from nas.evaluate import TrainConfig, TrainEvaluator
from nas.evaluate.prune_evaluator import PruneEvaluator
from nas.evaluate.quant_evaluator import QuantEvaluator
from nas.hardware import SHIPPED_PROFILES_DIR
from nas.results.weights import trial_weights
from nas.run import search
from nas.space import Architecture
from nas.store import Store
from search_spaces import convnet, vgg

torch.set_num_threads(1)


def _base(epochs: int = 2, **kw) -> TrainEvaluator:
    return TrainEvaluator("digits", config=TrainConfig(epochs=epochs), measure_latency=False, **kw)


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """A two-trial digits search whose candidates are pruned to 80% by the DP."""
    space = convnet.space(widths=(8, 16), max_blocks=2)
    db = str(tmp_path_factory.mktemp("prune") / "p.db")
    ev = PruneEvaluator(_base(), sparsity=0.8, method="dp", calib_samples=64)
    result = search(space, evaluator=ev, budget=2, storage=db, study="p", seed=0,
                    objectives=["pruned_accuracy:max"])
    return space, result, db


def test_search_records_pruned_metrics_and_allocation(searched):
    space, result, _ = searched
    assert [str(t.state) for t in result.trials] == ["COMPLETE", "COMPLETE"]
    for t in result.trials:
        m = t.metrics
        assert {"accuracy", "test_accuracy", "params", "pruned_accuracy", "pruned_test_accuracy",
                "sparsity", "pruned_params"} <= set(m)
        assert 0.0 <= m["pruned_accuracy"] <= 1.0 and 0.0 <= m["pruned_test_accuracy"] <= 1.0
        # within one bucket of the DP's 10000 (and one weight of rounding)
        assert m["sparsity"] == pytest.approx(0.8, abs=2e-3)
        layers = prunable_layers(space.build(Architecture(t.architecture)))
        assert set(t.extra["prune_allocation"]) == set(layers)
        assert all(0.0 <= r <= 1.0 for r in t.extra["prune_allocation"].values())
        assert t.extra["prune_method"] == "dp"
        assert m["pruned_params"] < m["params"]
    assert result.study.evaluator["kind"] == "prune" and result.study.evaluator["sparsity"] == 0.8


def test_stored_weights_are_the_dense_model(searched):
    space, result, _ = searched
    t = result.trials[0]
    weights = trial_weights(Store.open(searched[2], readonly=True), result.study, t)
    state = load(weights)
    assert not any(k.endswith(("_orig", "_mask")) for k in state)
    model = space.build(Architecture(t.architecture))
    model.load_state_dict(state)  # strict: the dense architecture's own keys
    total = sum(m.weight.numel() for m in prunable_layers(model).values())
    nonzero = sum(int(torch.count_nonzero(m.weight)) for m in prunable_layers(model).values())
    assert nonzero > 0.95 * total  # dense, not the 80%-sparse copy


def test_pruned_weights_stay_zero_through_finetuning(digits, small_cnn):
    ev = PruneEvaluator(_base(epochs=3), sparsity=0.7, method="lamp", finetune_epochs=1)
    torch.manual_seed(0)
    dense = ev.base.evaluate(small_cnn, {}, seed=0)
    model = small_cnn()
    model.load_state_dict(dense.state_dict)
    result, metrics, extra = ev.prune_model(model, seed=0)
    moved = False
    for name, layer in prunable_layers(result.model).items():
        mask = layer.weight_mask.bool()
        assert torch.all(layer.weight[~mask] == 0), name
        before = dict(model.named_parameters())[f"{name}.weight"]
        moved |= not torch.allclose(layer.weight_orig[mask], before[mask])
    assert moved, "fine-tuning changed no surviving weight"
    assert metrics["sparsity"] == pytest.approx(0.7, abs=1e-3)
    assert extra["prune_method"] == "lamp"
    # the input model is left dense
    assert all(not hasattr(m, "weight_mask") for m in model.modules())


def _profile() -> Path:
    profiles = sorted(Path(SHIPPED_PROFILES_DIR).glob("cpu-*.json"))
    if not profiles:
        pytest.skip("no committed CPU device profile in nas/hardware/profiles")
    return profiles[0]


@pytest.mark.parametrize("latency", ["predicted", "measured"])
def test_structured_records_latency_after_pruning(latency):
    space = vgg.space(input_shape=(1, 8, 8), widths=((32,), (64,)), depths=(1,))
    arch = space.sample(0)
    profile = _profile() if latency == "predicted" else None
    ev = PruneEvaluator(_base(epochs=1, latency_batch=64), sparsity=0.5, method="dp", structured=True,
                        latency=latency, profile=profile)
    assert ev.describe()["latency"] == latency
    r = ev.evaluate(lambda: space.build(arch), arch, seed=0)
    m = r.metrics
    # measured always, whichever model set the DP's costs
    assert m["latency_ms"] > 0 and m["latency_ms_dense"] > 0
    assert m["latency_ratio"] == pytest.approx(m["latency_ms"] / m["latency_ms_dense"])
    if latency == "predicted":
        assert r.extra["prune_latency_cost"] == "predictor"
        assert 0 < m["latency_ms_predicted"] < m["latency_ms_dense_predicted"]
        assert m["latency_ms_predicted"] <= r.extra["latency_budget_ms"] + 1e-6
    else:
        assert r.extra["prune_latency_cost"] == "measured table"
        assert "latency_ms_predicted" not in m
    assert set(r.extra["prune_allocation"]) == set(r.extra["prune_channels"])
    assert all(0.0 < f <= 1.0 for f in r.extra["prune_allocation"].values())
    assert r.extra["prune_method"] == "channels-dp" and 0.0 <= m["sparsity"] < 1.0
    assert r.extra["latency_budget_ms"] > 0
    space.build(arch).load_state_dict(r.state_dict)  # the dense weights, not the narrowed ones


@pytest.mark.parametrize("kw, match", [
    ({"sparsity": 1.0}, "sparsity 1.0"),
    ({"sparsity": 0}, "sparsity 0"),
    ({"sparsity": 0.5, "method": "magic"}, "'magic' is unknown"),
    ({"sparsity": 0.5, "method": "lamp", "structured": True}, "valid methods: \\['dp', 'uniform'\\]"),
    ({"sparsity": 0.5, "finetune_epochs": -1}, "finetune_epochs=-1"),
    ({"sparsity": 0.5, "latency": "guessed"}, "latency='guessed' is unknown"),
    ({"sparsity": 0.5, "structured": True, "latency": "predicted", "profile": "/nonexistent.json"},
     "needs a device profile, and there is none at /nonexistent.json"),
])
def test_bad_settings_fail_before_training(kw, match):
    ev = PruneEvaluator(_base(), **kw)
    with pytest.raises(CompressionError, match=match):
        ev.describe()
    with pytest.raises(CompressionError, match=match):
        ev.evaluate(lambda: torch.nn.Linear(1, 1), {}, seed=0)


def test_a_base_without_dense_weights_is_refused():
    ev = PruneEvaluator(QuantEvaluator(_base()), sparsity=0.5)  # type: ignore[arg-type]
    with pytest.raises(CompressionError, match="needs a TrainEvaluator"):
        ev.describe()


def test_every_method_is_accepted():
    for method in METHODS:
        assert PruneEvaluator(_base(), sparsity=0.5, method=method).describe()["method"] == method
