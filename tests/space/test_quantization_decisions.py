"""Quantization policies in the language: decisions per quantizable layer, active only with the layer."""

from __future__ import annotations

import importlib

import pytest
import torch

from nas import space as S
from nas.errors import SpaceError

SPACES = ["convnet", "resnet", "vgg", "mobilenet", "vit"]


def quantized(name: str, granularity: str = "layer") -> S.Space:
    base = importlib.import_module(f"search_spaces.{name}").space()
    policy = S.per_layer(["fp32", "int8"]) if granularity == "layer" else S.global_precision(["fp32", "int8"])
    return S.Space(base.root, base.input_shape, quantization=policy)


@pytest.mark.parametrize("name", SPACES)
def test_policy_names_exactly_the_models_conv_and_linear_layers(name):
    sp = quantized(name)
    for seed in range(5):
        arch = sp.sample(seed)
        model = sp.build(arch)
        policy = sp.quant_policy(arch)
        modules = dict(model.named_modules())
        assert set(policy) <= set(modules)
        assert all(isinstance(modules[n], torch.nn.Conv2d | torch.nn.Linear) for n in policy)
        quant_labels = [k for k in arch if k.startswith("quant/")]
        assert len(quant_labels) == len(policy)  # one active decision per built layer
        assert sorted(policy.values()) == sorted(arch[k] for k in quant_labels)


def test_size_counts_a_precision_per_layer_exactly():
    sp = quantized("convnet")
    base = importlib.import_module("search_spaces.convnet").space(max_blocks=2)
    small = S.Space(base.root, base.input_shape, quantization=S.per_layer(["fp32", "int8"]))
    assert small.size() == len(set(small.architectures()))
    # 2 layouts x 3 widths x (1 block: 4 options x 2^3 layers; 2 blocks: 16 x 2^4)
    assert small.size() == 2 * 3 * (4 * 8 + 16 * 16)
    assert sp.size() > base.size()


def test_global_precision_is_one_shared_decision():
    sp = quantized("vgg", "global")
    arch = sp.sample(3)
    assert [k for k in arch if k.startswith("quant")] == ["quant"]
    assert set(sp.quant_policy(arch).values()) == {arch["quant"]}
    assert sp.size() == 2 * importlib.import_module("search_spaces.vgg").space().size()


def test_walk_reaches_quantization_decisions_one_at_a_time():
    sp = quantized("convnet")
    arch = sp.sample(7)
    partial: dict = {}
    while (d := sp.next_decision(partial)) is not None:
        partial[d.label] = arch[d.label]
    assert sp.validate(partial) == arch


def test_bad_policies():
    with pytest.raises(SpaceError, match="precision names"):
        S.per_layer([])
    with pytest.raises(SpaceError, match="takes S.per_layer"):
        S.Space(S.conv2d(2, 1), (1, 2, 2), quantization=["int8"])
    sp = quantized("vgg")
    arch = dict(sp.sample(0))
    arch[next(k for k in arch if k.startswith("quant/"))] = "int4"
    with pytest.raises(SpaceError, match=r"is not among its options \['fp32', 'int8'\]"):
        sp.validate(arch)
