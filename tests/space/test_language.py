"""The language's semantics: scoping, sharing, conditional decisions, counting, drawing, describing."""

from __future__ import annotations

import json
import random
from collections import Counter

import pytest
import torch

from nas import space as S
from nas.space import Architecture


def small_space(kernels=(3, 5)) -> S.Space:
    width = S.choice("width", [4, 8])

    def block(i):
        return S.sequential(S.conv2d(width, S.choice("kernel", list(kernels))), S.relu())

    return S.Space(S.sequential(S.repeat("blocks", [1, 2], block), S.global_avg_pool(), S.linear(3)),
                   input_shape=(1, 6, 6))


def test_labels_are_scoped_by_repeat_index_and_shared_objects_are_one_decision():
    sp = small_space()
    assert list(sp.decisions()) == ["blocks", "width", "blocks[0]/kernel", "blocks[1]/kernel"]
    arch = sp.validate({"blocks": 2, "width": 8, "blocks[0]/kernel": 3, "blocks[1]/kernel": 5})
    model = sp.build(arch)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [8, 8]  # one shared width decision
    assert [c.kernel_size for c in convs] == [(3, 3), (5, 5)]  # one kernel decision per block


def test_only_active_decisions_are_in_an_architecture():
    sp = small_space()
    arch = sp.validate({"blocks": 1, "width": 4, "blocks[0]/kernel": 3})
    assert set(arch) == {"blocks", "width", "blocks[0]/kernel"}


def test_size_matches_enumeration_with_sharing_and_conditionals():
    sp = small_space()
    # 1 block: 2 widths x 2 kernels; 2 blocks: 2 widths x 4 kernel pairs
    assert sp.size() == 4 + 8 == len(set(sp.architectures()))


def test_size_is_exact_for_huge_spaces_without_enumerating():
    def block(i):
        return S.conv2d(S.choice("w", [8, 16, 32, 64]), S.choice("k", [1, 3, 5]))

    sp = S.Space(S.repeat("b", [40], block), input_shape=(3, 8, 8))
    assert sp.size() == 12**40  # a Python big int, computed by memoised counting


def test_optional_and_branch_choice_expand_lazily():
    inner = S.choice("inner", [2, 4])
    sp = S.Space(S.sequential(
        S.conv2d(4, 3),
        S.optional("extra", S.conv2d(inner, 1)),
        S.choice("act", {"relu": S.relu(), "conv": S.conv2d(S.choice("c", [1, 2]), 1)}),
    ), input_shape=(1, 5, 5))
    assert sp.size() == (1 + 2) * (1 + 2)
    assert sp.next_decision({}).label == "extra"
    assert sp.next_decision({"extra": False}).label == "act"
    assert sp.next_decision({"extra": True}).label == "inner"
    assert sp.next_decision({"extra": False, "act": "relu"}) is None
    assert sp.next_decision({"extra": False, "act": "conv"}).label == "c"


def test_dependent_values_follow_their_inputs():
    w = S.choice("w", [2, 3])
    e = S.choice("e", [1, 4])
    sp = S.Space(S.sequential(S.conv2d(w, 1), S.conv2d(S.dependent(lambda w, e: w * e, w=w, e=e), 1)),
                 input_shape=(1, 4, 4))
    model = sp.build({"w": 3, "e": 4})
    assert model[1].out_channels == 12
    assert sp.size() == 4


def test_parallel_concat_adds_channels_and_sum_keeps_them():
    sp = S.Space(S.sequential(
        S.parallel(S.conv2d(3, 1), S.conv2d(5, 3), merge="concat"),
        S.parallel(S.identity(), S.conv2d(8, 1)),
    ), input_shape=(2, 4, 4))
    model = sp.build({})
    assert model(torch.randn(1, 2, 4, 4)).shape == (1, 8, 4, 4)


def test_graph_wiring_computes_the_sum_of_its_edges():
    @S.graph
    def cell(x0):
        x1 = S.conv2d(4, 1)(x0)
        return x0 + x1 + S.identity()(x1)

    model = S.Space(cell, input_shape=(4, 3, 3)).build({})
    x = torch.randn(2, 4, 3, 3)
    conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    assert torch.allclose(model(x), x + 2 * conv(x), atol=1e-6)


def test_sampling_is_deterministic_and_covers_the_options():
    sp = small_space()
    assert [sp.sample(s) for s in range(20)] == [sp.sample(s) for s in range(20)]
    assert len({sp.sample(s) for s in range(200)}) == sp.size()


def test_uniform_over_architectures_weights_bigger_subtrees():
    sp = small_space()
    n = Counter(sp.sample(random.Random(s), uniform="architectures")["blocks"] for s in range(3000))
    # 4 architectures with one block, 8 with two: 1/3 vs 2/3 (decision-uniform would be 1/2)
    assert 0.6 < n[2] / 3000 < 0.73


def test_architecture_is_canonical_and_round_trips():
    a = Architecture({"b": 1, "a": "x", "c": True, "d": 0.5})
    b = Architecture({"d": 0.5, "c": True, "a": "x", "b": 1})
    assert a == b and a.id == b.id and hash(a) == hash(b)
    assert a.to_json() == '{"a":"x","b":1,"c":true,"d":0.5}'
    assert Architecture.from_json(a.to_json()).id == a.id
    assert a.id == "9f5e91b7eabf893c"  # a content hash: the same in every process and on every machine
    assert a.replace_items({"b": 2}).id != a.id


def test_fingerprint_is_stable_and_changes_with_the_space():
    assert small_space().fingerprint == small_space().fingerprint
    assert small_space().fingerprint != small_space(kernels=(3, 7)).fingerprint
    json.dumps(small_space().describe())  # JSON-able


def test_walk_asks_the_chooser_in_a_fixed_order():
    asked = []
    small_space().walk(lambda d: asked.append(d.label) or d.options[-1])
    assert asked == ["blocks", "width", "blocks[0]/kernel", "blocks[1]/kernel"]


def test_explicit_scope_and_named_parts():
    with S.scope("stage1"):
        k = S.choice("k", [1, 3])
    sp = S.Space(S.sequential(stem=S.conv2d(2, k), head=S.sequential(S.flatten(), S.linear(2))),
                 input_shape=(1, 3, 3))
    assert list(sp.decisions()) == ["stage1/k"]
    assert [n for n, _ in sp.build({"stage1/k": 3}).named_children()] == ["stem", "head"]


@pytest.mark.parametrize("layout", ["deep", "shallow"])
def test_layout_choice_builds_either_layout(layout):
    sp = S.Space(S.layout("layout", S.repeat("b", [2], lambda i: S.conv2d(3, 3))),
                 input_shape=(3, 4, 4))
    model = sp.build({"layout": layout, "b": 2})
    assert model(torch.randn(1, 3, 4, 4)).shape == (1, 3, 4, 4)
