"""Property tests over every built-in space: sampled architectures validate, build, run, round-trip.

Seeds are drawn by Hypothesis. The build-and-run tests use each space's structure at small widths
and input sizes (kwargs) so that hundreds of architectures take seconds; a few run at the defaults.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nas import space as S
from nas.evaluate.nb201 import EDGES, OPS, nb201_arch_from_str
from search_spaces import convnet, mobilenet, nb201, resnet, vgg, vit

torch.set_num_threads(1)

# name -> (factory of the default space, factory of a small copy with the same structure)
SPACES: dict[str, tuple[Callable[[], S.Space], Callable[[], S.Space]]] = {
    "convnet": (convnet.space, lambda: convnet.space(input_shape=(1, 6, 6), widths=(4, 8))),
    "resnet": (resnet.space, lambda: resnet.space(
        input_shape=(1, 8, 8), widths=((4, 6), (6, 8), (8, 12)), stem_width=4)),
    "vgg": (vgg.space, lambda: vgg.space(input_shape=(1, 8, 8), widths=((4, 6), (6, 8), (8, 12)))),
    "mobilenet": (mobilenet.space, lambda: mobilenet.space(
        input_shape=(1, 8, 8), stages=(((4, 6), 1), ((6, 8), 2), ((8, 12), 2)), stem_width=4,
        head_width=8)),
    "vit": (vit.space, lambda: vit.space(input_shape=(1, 8, 8), patches=(2, 4), dims=(8, 16))),
    "nb201": (nb201.space, lambda: nb201.space(input_shape=(3, 8, 8), cells_per_stage=1)),
}
NAMES = list(SPACES)
NUM_CLASSES = 10
seeds = st.integers(min_value=0, max_value=2**32 - 1)
FAST = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CHEAP = settings(max_examples=60, deadline=None)

_cache: dict[tuple[str, bool], S.Space] = {}


def get(name: str, small: bool = True) -> S.Space:
    """Return the (cached) small or default space `name`; spaces are immutable descriptions."""
    key = (name, small)
    if key not in _cache:
        _cache[key] = SPACES[name][1 if small else 0]()
    return _cache[key]


@pytest.mark.parametrize("name", NAMES)
@FAST
@given(seed=seeds)
def test_sampled_architecture_validates_builds_and_runs(name: str, seed: int) -> None:
    sp = get(name)
    arch = sp.sample(seed)
    assert sp.validate(dict(arch)) == arch
    model = sp.build(arch)
    out = model(torch.randn(2, *sp.input_shape))
    assert out.shape == (2, NUM_CLASSES)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=5, deadline=None)
@given(seed=seeds)
def test_default_spaces_build_and_run(name: str, seed: int) -> None:
    sp = get(name, small=False)
    model = sp.build(sp.sample(seed, uniform="architectures"))
    model.eval()  # one example per batch: batch norm must use its running statistics
    with torch.no_grad():
        assert model(torch.randn(1, *sp.input_shape)).shape == (1, NUM_CLASSES)


@pytest.mark.parametrize("name", NAMES)
@CHEAP
@given(seed=seeds)
def test_json_round_trip_and_deterministic_sampling(name: str, seed: int) -> None:
    sp = get(name, small=False)
    arch = sp.sample(seed)
    back = S.Architecture.from_json(arch.to_json())
    assert back == arch and back.id == arch.id and dict(back) == dict(arch)
    again = SPACES[name][0]().sample(seed)  # a fresh space object: the same draw
    assert again == arch and again.id == arch.id
    assert sp.sample(random.Random(seed)) == arch
    decisions = sp.decisions()
    assert all(arch[k] in decisions[k] for k in arch)


@pytest.mark.parametrize("name", NAMES)
@CHEAP
@given(seed=seeds)
def test_partial_walk_reaches_the_sampled_architecture(name: str, seed: int) -> None:
    sp = get(name, small=False)
    arch = sp.sample(seed)
    partial: dict = {}
    while (d := sp.next_decision(partial)) is not None:
        assert d.label in arch and d.label not in partial
        assert arch[d.label] in d.options
        partial[d.label] = arch[d.label]
    assert S.Architecture(partial) == arch
    assert len(partial) == len(arch)


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=10, deadline=None)
@given(seed=seeds)
def test_uniform_over_architectures_gives_valid_architectures(name: str, seed: int) -> None:
    sp = get(name, small=False)
    arch = sp.sample(seed, uniform="architectures")
    assert sp.validate(arch) == arch
    assert sp.sample(seed, uniform="architectures") == arch


# Small configurations whose every architecture can be listed.
ENUMERABLE = {
    "convnet": (lambda: convnet.space(widths=(8, 16), max_blocks=2), 2 * 2 * (4 + 16)),
    "resnet": (lambda: resnet.space(widths=((4, 8), (8,)), depths=(1, 2)),
               (2 * 2 * (2 + 4)) * (1 * 2 * (2 + 4))),
    "vgg": (vgg.space, 6**3),
    "mobilenet": (lambda: mobilenet.space(stages=(((8, 16), 1), ((16,), 2)), depths=(1, 2),
                                          expands=(1, 2), kernels=(3,)), (2 * (2 + 4)) * (2 + 4)),
    "vit": (lambda: vit.space(patches=(4,), dims=(8, 16), depths=(1, 2), heads=(1, 2),
                              mlp_ratios=(1, 2)), 2 * (4 + 16)),
}


@pytest.mark.parametrize("name", list(ENUMERABLE))
def test_size_equals_brute_force_enumeration(name: str) -> None:
    factory, expected = ENUMERABLE[name]
    sp = factory()
    listed = list(sp.architectures())
    assert len({a.id for a in listed}) == len(listed)  # no architecture twice
    assert sp.size() == len(listed) == expected
    for a in listed[:: max(1, len(listed) // 20)]:
        assert sp.validate(a) == a


def test_nb201_size_equals_brute_force_enumeration() -> None:
    sp = nb201.space(cells_per_stage=1)
    listed = {a.to_json() for a in sp.architectures()}
    assert len(listed) == sp.size() == 5**6 == nb201.space().size()


@settings(max_examples=50, deadline=None)
@given(seed=seeds)
def test_nb201_labels_and_cell_string(seed: int) -> None:
    sp = get("nb201", small=False)
    arch = sp.sample(seed)
    assert tuple(sorted(arch)) == tuple(sorted(EDGES)) and set(arch.values()) <= set(OPS)
    s = nb201.to_nb201_string(arch)
    assert s.count("~") == 6 and s.startswith("|") and s.endswith("|")
    assert sp.validate(nb201_arch_from_str(s)) == arch
