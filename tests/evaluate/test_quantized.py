"""QuantEvaluator end to end: per-layer policies searched through nas.run.search on digits.

One thread (conftest); each architecture trains 1 epoch on 400 digits, so the file runs in ~20 s.
"""

from __future__ import annotations

import pytest

import search_spaces.convnet as convnet
from nas import space as S
from nas.errors import EvaluationError
from nas.evaluate import TrainConfig, TrainEvaluator
from nas.evaluate.quant_evaluator import QuantEvaluator, structural_arch
from nas.results.weights import trial_weights
from nas.run import search
from nas.space import Architecture
from nas.store import Store, TrialState

METRICS = {"accuracy", "loss", "test_accuracy", "latency_ms", "size_mb", "params", "flops",
           "fp32_accuracy", "train_seconds"}


def quant_space(granularity: str = "layer") -> S.Space:
    base = convnet.space(widths=(8, 16), max_blocks=2)
    make = S.per_layer if granularity == "layer" else S.global_precision
    return S.Space(base.root, base.input_shape, quantization=make(["fp32", "int8"]))


def evaluator(space: S.Space | None = None, **kw) -> QuantEvaluator:
    base = TrainEvaluator("digits", config=TrainConfig(epochs=1, lr=0.05), max_train=400)
    policy_of = space.quant_policy if space is not None else None
    return QuantEvaluator(base, calib_samples=64, policy_of=policy_of, **kw)


def with_policy(space: S.Space, arch: Architecture, precision: str) -> Architecture:
    return Architecture({k: (precision if k.startswith("quant/") else v) for k, v in arch.items()})


def test_search_records_quantized_metrics_and_reuses_weights_for_a_second_policy(tmp_path):
    space = quant_space()
    ev = evaluator(space)
    db = tmp_path / "simq.db"
    result = search(space, evaluator=ev, searcher="random", budget=3, storage=str(db), seed=1,
                    objectives=["accuracy:max", "latency_ms:min", "size_mb:min"])
    trials = [t for t in result.trials if t.state == TrialState.COMPLETE]
    assert len(trials) == 3
    for t in trials:
        assert METRICS <= set(t.metrics)
        policy = t.extra["quant_policy"]
        arch = Architecture(t.architecture)
        assert policy == space.quant_policy(arch)  # the policy in the arch, by module name
        # int8 layers are real quantized modules, exactly the ones the policy names
        assert t.extra["int8_layers"] == [n for n, p in policy.items() if p == "int8"]
        assert t.extra["layer_precisions"] == policy
    trained = ev.n_trained
    assert trained == len({structural_arch(t.architecture).id for t in trials})
    first = Architecture(trials[0].architecture)
    sid = structural_arch(first).id
    # the structure's fp32 weights are stored with the trial that trained them, under the study's key
    assert trials[0].extra["weights_ref"]["arch_id"] == sid
    assert trial_weights(Store.open(str(db)), result.study, trials[0]) is not None

    # another policy of the same structure: post-training only, weights from the store's cache
    for precision in ("int8", "fp32"):
        other = with_policy(space, first, precision)
        r = ev.evaluate(lambda a=other: space.build(a), other, seed=1)
        assert ev.n_trained == trained, "a second policy of a trained structure must not retrain"
        assert r.extra["weights"] == "cached" and r.metrics["train_seconds"] == 0.0
        assert r.metrics["fp32_accuracy"] == trials[0].metrics["fp32_accuracy"]
        assert r.state_dict is None
        if precision == "int8":
            all_int8 = r
    fp32 = r
    assert set(all_int8.extra["int8_layers"]) == set(space.quant_policy(first))
    assert fp32.extra["int8_layers"] == []
    # all-fp32 is the float model itself; int8 weights make the serialised file smaller
    assert fp32.metrics["accuracy"] == fp32.metrics["fp32_accuracy"]
    assert all_int8.metrics["size_mb"] < fp32.metrics["size_mb"]
    assert abs(all_int8.metrics["accuracy"] - fp32.metrics["accuracy"]) < 0.1


def test_in_memory_cache_and_global_policy_without_policy_of():
    space = quant_space("global")
    ev = evaluator(None, measure_latency=False)  # a global decision maps without the space
    assert ev.weight_cache is None
    arch = Architecture({**space.sample(0), "quant": "int8"})
    r1 = ev.evaluate(lambda: space.build(arch), arch, seed=0)
    other = Architecture({**arch, "quant": "fp32"})
    r2 = ev.evaluate(lambda: space.build(other), other, seed=0)
    assert ev.n_trained == 1 and r1.extra["weights"] == "trained" and r2.extra["weights"] == "cached"
    assert len(r1.extra["int8_layers"]) == len(r1.extra["quant_policy"]) > 0
    assert r2.extra["int8_layers"] == [] and "latency_ms" not in r2.metrics
    assert r2.metrics["accuracy"] == r1.metrics["fp32_accuracy"]


def test_per_layer_decisions_without_policy_of_is_a_clear_error():
    space = quant_space()
    ev = evaluator(None)
    arch = space.sample(0)
    with pytest.raises(EvaluationError, match="policy_of=space.quant_policy"):
        ev.evaluate(lambda: space.build(arch), arch, seed=0)


def test_structural_arch_drops_only_precision_decisions():
    space = quant_space()
    arch = space.sample(2)
    s = structural_arch(arch)
    assert not any(k.startswith("quant") for k in s)
    assert len(s) == sum(not k.startswith("quant") for k in arch)
    assert structural_arch(with_policy(space, arch, "int8")).id == s.id
