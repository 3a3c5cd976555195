"""The evaluator contract, over every evaluator and every wrapper combination `nas.run.assemble` builds.

Every stack: gives every metric it declares, named from the one vocabulary; returns trained
weights that load into the architecture's model (or says they are cached); gives the same result
for the same seed and other weights for another; fails a diverging trial with `TrialFailed`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from nas.evaluate import DeclaresMetrics, TrainConfig, TrialFailed
from nas.evaluate.base import is_metric_name
from nas.evaluate.factory import nb201_dir
from nas.evaluate.nb201 import TABLE_FILE
from nas.hardware import SHIPPED_PROFILES_DIR
from nas.references import load_space
from nas.run.assemble import StudySettings, assemble, base_evaluator, quantization_arg

PROFILE = str(sorted(Path(SHIPPED_PROFILES_DIR).glob("cpu-*.json"))[0])
TRAIN = TrainConfig(epochs=1, batch_size=64)
SMALL = {"max_train": 300}
STACKS = {
    "train": (StudySettings(train=TRAIN, **SMALL), ["accuracy:max"]),
    "train+measured latency": (StudySettings(train=TRAIN, latency="measured", **SMALL),
                               ["accuracy:max", "latency_ms:min"]),
    "train+predicted latency": (StudySettings(train=TRAIN, profile=PROFILE, **SMALL),
                                ["accuracy:max", "latency_ms:min"]),
    "quant": (StudySettings(train=TRAIN, quantization="per-layer", **SMALL), ["accuracy:max", "size_mb:min"]),
    "quant+predicted latency": (
        StudySettings(train=TRAIN, quantization="per-layer", profile=PROFILE, **SMALL),
        ["accuracy:max", "latency_ms:min"]),
    "prune": (StudySettings(train=TRAIN, prune=0.5, **SMALL), ["pruned_accuracy:max"]),
    "prune+predicted latency": (StudySettings(train=TRAIN, prune=0.5, profile=PROFILE, **SMALL),
                                ["pruned_accuracy:max", "latency_ms:min"]),
}


def stack_for(settings: StudySettings, objectives: list[str]):
    base = base_evaluator(settings, objectives)
    args = {"widths": [8], "max_blocks": 1, "input_shape": list(base.input_shape())}
    if quantization_arg(settings) is not None:
        args["quantization"] = quantization_arg(settings)
    space = load_space("search_spaces.convnet:space", args)
    return space, assemble(settings, space, objectives, base=base)


@pytest.fixture(scope="module", params=list(STACKS))
def evaluated(request):
    torch.set_num_threads(1)
    settings, objectives = STACKS[request.param]
    space, stack = stack_for(settings, objectives)
    arch = space.sample(seed=3)
    run = lambda seed: stack.evaluator.evaluate(lambda: space.build(arch), arch, seed=seed)  # noqa: E731
    return request.param, space, stack, arch, run(0), run(0), run(1)


def test_every_declared_metric_is_given_and_named_from_the_vocabulary(evaluated):
    name, _, stack, _, result, _, _ = evaluated
    assert isinstance(stack.evaluator, DeclaresMetrics)
    declared = stack.evaluator.metric_names()
    assert declared <= set(result.metrics), f"{name}: declared but missing {declared - set(result.metrics)}"
    assert all(is_metric_name(m) for m in result.metrics), sorted(result.metrics)
    assert set(result.predicted) <= set(result.metrics)
    if "predicted latency" in name:
        assert "latency_ms" in result.predicted


def test_trained_weights_come_back_and_fit_the_architecture(evaluated):
    name, space, _, arch, result, _, _ = evaluated
    assert result.state_dict is not None, f"{name}: the first evaluation trained, and returns its weights"
    # strict: exactly the float model's own tensors (a quantized policy's float twin has the same)
    space.build(arch).load_state_dict(result.state_dict)


def test_a_seed_gives_the_same_result_and_another_seed_another(evaluated):
    name, _, _, _, first, again, other = evaluated
    assert first.metrics["accuracy"] == again.metrics["accuracy"], name
    if first.state_dict is not None and again.state_dict is not None:
        assert all(torch.equal(first.state_dict[k], again.state_dict[k]) for k in first.state_dict)
    if first.state_dict is not None and other.state_dict is not None:
        assert any(not torch.equal(first.state_dict[k], other.state_dict[k]) for k in first.state_dict)


@pytest.mark.parametrize("stack", ["train", "quant", "prune"])
def test_a_diverging_training_fails_as_trial_failed(stack):
    settings, objectives = STACKS[stack]
    settings = dataclasses.replace(settings, train=dataclasses.replace(TRAIN, lr=1e30, optimizer="sgd"))
    space, built = stack_for(settings, objectives)
    arch = space.sample(seed=3)
    with pytest.raises(TrialFailed, match="non-finite"):
        built.evaluator.evaluate(lambda: space.build(arch), arch, seed=0)


@pytest.mark.skipif(not (nb201_dir() / TABLE_FILE).is_file(), reason="no NAS-Bench-201 table")
def test_the_table_evaluator_declares_its_metrics():
    from search_spaces import nb201

    settings = StudySettings(dataset="nb201-cifar10")
    space = nb201.space(cells_per_stage=1)
    stack = assemble(settings, space, ["accuracy:max", "lat_ms_pixel3:min"])
    arch = space.sample(seed=0)
    result = stack.evaluator.evaluate(None, arch, seed=0)
    assert stack.evaluator.metric_names() <= set(result.metrics)
    assert all(is_metric_name(m) for m in result.metrics) and result.state_dict is None
