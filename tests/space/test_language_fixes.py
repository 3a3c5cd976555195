"""Tests for fixes to the language made while writing the built-in spaces."""

from __future__ import annotations

import torch
from torch import nn

from nas import space as S


class CountingDouble(nn.Module):
    """Concatenates x with itself on channels; counts its forward calls (meta passes included)."""

    calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        CountingDouble.calls += 1
        return torch.cat([x, x], dim=1)


def double(in_shape: tuple[int, ...]) -> nn.Module:
    return CountingDouble()


def test_user_op_shape_is_found_once_per_node_arguments_and_input_shape() -> None:
    op = S.op(double)
    sp = S.Space(S.sequential(op, op, op, S.global_avg_pool()), input_shape=(2, 4, 4))
    CountingDouble.calls = 0
    model = sp.build(sp.sample(0))
    # three different input shapes (2, 4, 8 channels): three meta passes, not fewer, not more
    assert CountingDouble.calls == 3
    assert model(torch.zeros(1, 2, 4, 4)).shape == (1, 16)
    CountingDouble.calls = 0
    sp.build(sp.sample(1))
    assert CountingDouble.calls == 0  # every (arguments, shape) is known now


def test_user_op_memo_keys_on_arguments() -> None:
    def pool(in_shape: tuple[int, ...], k: int) -> nn.Module:
        return nn.AvgPool2d(k)

    sp = S.Space(S.sequential(S.op(pool, k=S.choice("k", [1, 2, 4])), S.flatten()), (1, 8, 8))
    for _ in range(2):  # the second round reads the memo
        sizes = {a["k"]: sp.build(a)(torch.zeros(1, 1, 8, 8)).shape[1] for a in sp.architectures()}
        assert sizes == {1: 64, 2: 16, 4: 4}


def _shared_cell_space(copies: int, tail: bool) -> S.Space:
    a = S.choice("a", {"id": S.identity(), "relu": S.relu(), "zero": S.zero()})
    b = S.choice("b", {"id": S.identity(), "gelu": S.gelu()})

    @S.graph
    def cell(x: S.Value) -> S.Value:
        return a(x) + b(a(x))

    parts = [cell] * copies
    if tail:
        parts.append(S.optional("tail", S.sequential(S.repeat("n", [1, 2], lambda i: S.relu()))))
    return S.Space(S.sequential(*parts, S.global_avg_pool()), input_shape=(2, 3, 3))


def test_size_with_a_shared_cell_matches_enumeration() -> None:
    for copies in (1, 3):
        for tail in (False, True):
            sp = _shared_cell_space(copies, tail)
            listed = list(sp.architectures())
            assert len({x.id for x in listed}) == len(listed)
            assert sp.size() == len(listed) == 6 * (3 if tail else 1)


def test_enumeration_resumes_branches_and_keeps_walk_order() -> None:
    sp = _shared_cell_space(2, tail=True)
    listed = list(sp.architectures())
    # depth first, options in their given order; each listed architecture is one `walk` gives
    assert [dict(a) for a in listed] == [dict(sp.validate(a)) for a in listed]
    assert listed[0] == S.Architecture({"a": "id", "b": "id", "tail": False})
    assert listed[-1] == S.Architecture({"a": "zero", "b": "gelu", "tail": True, "n": 2})
