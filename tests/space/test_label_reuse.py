"""A label path is one decision: sharing comes from reusing one object, never from repeating a label."""

from __future__ import annotations

import pytest
import torch

from nas import space as S
from nas.errors import NasError, SpaceError

SHARE = "pass that same object everywhere"


def _space(body, **kw) -> S.Space:
    return S.Space(body, input_shape=(1, 6, 6), **kw)


def _head(*parts) -> S.Sequential:
    return S.sequential(*parts, S.global_avg_pool(), S.linear(2))


def test_two_objects_with_one_label_and_the_same_options_are_an_error_at_definition():
    body = _head(S.conv2d(S.choice("width", [16, 32]), 1), S.conv2d(S.choice("width", [16, 32]), 1))
    with pytest.raises(SpaceError, match=r"label 'width' is given to two different hyperparameters") as e:
        _space(body)
    assert isinstance(e.value, NasError)
    assert "[16, 32]" in str(e.value) and SHARE in str(e.value)


def test_two_objects_with_one_label_and_different_options_are_an_error_at_definition():
    body = _head(S.conv2d(S.choice("width", [16, 32]), 1), S.conv2d(S.choice("width", [16, 64]), 1))
    reused = r"label 'width' is reused with different options: \[16, 32\] and \[16, 64\]"
    with pytest.raises(SpaceError, match=reused) as e:
        _space(body)
    assert SHARE in str(e.value)


def test_one_object_reused_is_one_decision_counted_once():
    width = S.choice("width", [16, 32])
    sp = _space(_head(S.conv2d(width, 1), S.relu(), S.conv2d(width, S.choice("kernel", [1, 3]))))
    assert sp.decisions() == {"width": (16, 32), "kernel": (1, 3)}
    assert sp.size() == 4 == len(set(sp.architectures()))
    model = sp.build({"width": 32, "kernel": 3})
    assert [c.out_channels for c in model.modules() if isinstance(c, torch.nn.Conv2d)] == [32, 32]


def test_one_object_reused_through_dependent_is_one_decision():
    width = S.choice("width", [4, 8])
    sp = _space(_head(S.conv2d(width, 1), S.conv2d(S.dependent(lambda w: 2 * w, w=width), 1)))
    assert list(sp.decisions()) == ["width"] and sp.size() == 2


def test_a_dependent_hiding_a_second_object_with_the_label_is_an_error():
    body = _head(S.conv2d(S.choice("w", [4, 8]), 1),
                 S.conv2d(S.dependent(lambda w: 2 * w, w=S.choice("w", [4, 8])), 1))
    with pytest.raises(SpaceError, match="label 'w' is given to two different hyperparameters"):
        _space(body)


def test_the_same_label_in_each_repeat_block_and_each_scope_is_not_a_duplicate():
    def block(i):
        return S.conv2d(4, S.choice("kernel", [1, 3]))

    with S.scope("a"):
        a = S.conv2d(S.choice("k", [4, 8]), 1)
    with S.scope("b"):
        b = S.conv2d(S.choice("k", [4, 8]), 1)
    sp = _space(_head(S.repeat("blocks", [2], block), a, b))
    assert list(sp.decisions()) == ["blocks", "blocks[0]/kernel", "blocks[1]/kernel", "a/k", "b/k"]
    assert sp.size() == 2**4


def test_a_label_made_twice_inside_one_repeat_block_names_the_scoped_path():
    def block(i):
        return S.sequential(S.conv2d(4, S.choice("kernel", [1, 3])), S.conv2d(4, S.choice("kernel", [1, 3])))

    with pytest.raises(SpaceError, match=r"label 'blocks\[0\]/kernel' is given to two different"):
        _space(_head(S.repeat("blocks", [1, 2], block)))


def test_a_label_made_twice_inside_one_scope_names_the_scoped_path():
    with S.scope("stage"):
        parts = [S.conv2d(4, S.choice("k", [1, 3])), S.conv2d(4, S.choice("k", [1, 3]))]
    with pytest.raises(SpaceError, match=r"label 'stage/k' is given to two different"):
        _space(_head(*parts))


@pytest.mark.parametrize("make", [
    lambda: S.choice("x", {"relu": S.relu(), "gelu": S.gelu()}),
    lambda: S.optional("x", S.relu()),
    lambda: S.layout("x", S.sequential(S.conv2d(4, 1))),
], ids=["branch-choice", "optional", "layout"])
def test_structural_decisions_with_one_label_twice_are_an_error(make):
    with pytest.raises(SpaceError, match="label 'x' is given to two different hyperparameters"):
        _space(_head(S.conv2d(4, 1), make(), make()))


def test_two_repeats_with_one_label_are_an_error():
    def block(i):
        return S.conv2d(4, 1)

    with pytest.raises(SpaceError, match="label 'blocks' is given to two different hyperparameters"):
        _space(_head(S.repeat("blocks", [1, 2], block), S.repeat("blocks", [1, 2], block)))


def test_one_label_in_two_exclusive_branches_is_still_two_objects_in_one_scope():
    branches = {"a": S.conv2d(S.choice("w", [4, 8]), 1), "b": S.conv2d(S.choice("w", [4, 8]), 3)}
    with pytest.raises(SpaceError, match="label 'w' is given to two different hyperparameters"):
        _space(_head(S.choice("op", branches)))


def test_a_graph_cell_used_many_times_shares_its_decisions():
    ops = {"conv": S.conv2d(4, 1), "skip": S.identity()}

    @S.graph
    def cell(x0):
        x1 = S.choice("1<-0", ops)(x0)
        return S.choice("2<-0", ops)(x0) + S.choice("2<-1", ops)(x1)

    sp = _space(_head(S.conv2d(4, 1), *[cell] * 4))
    assert set(sp.decisions()) == {"1<-0", "2<-0", "2<-1"} and sp.size() == 8


def test_a_graph_cell_that_makes_one_label_twice_is_an_error_at_definition():
    @S.graph
    def cell(x0):
        return S.choice("e", {"conv": S.conv2d(4, 1)})(x0) + S.choice("e", {"conv": S.conv2d(4, 1)})(x0)

    with pytest.raises(SpaceError, match="label 'e' is given to two different hyperparameters"):
        _space(_head(S.conv2d(4, 1), cell))


def test_graph_cells_made_per_repeat_block_are_scoped():
    def block(i):
        @S.graph
        def cell(x0):
            return S.choice("e", {"conv": S.conv2d(4, 1), "skip": S.identity()})(x0)

        return cell

    sp = _space(_head(S.conv2d(4, 1), S.repeat("cells", [2], block)))
    assert list(sp.decisions()) == ["cells", "cells[0]/e", "cells[1]/e"] and sp.size() == 4


def test_per_layer_quantization_labels_are_distinct_and_the_global_one_is_shared():
    width = S.choice("width", [4, 8])
    body = _head(S.conv2d(width, 1), S.repeat("blocks", [1, 2], lambda i: S.conv2d(width, 1)))
    per_layer = _space(body, quantization=S.per_layer())
    assert {k for k in per_layer.decisions() if k.startswith("quant/")} == {
        "quant/conv0", "quant/fc0", "quant/blocks[0]/conv0", "quant/blocks[1]/conv0"}
    assert "quant" in _space(body, quantization=S.global_precision()).decisions()


def test_a_user_label_that_collides_with_a_precision_decision_is_an_error():
    body = _head(S.conv2d(S.choice("quant", [4, 8]), 1))
    with pytest.raises(SpaceError, match="label 'quant' is reused with different options"):
        _space(body, quantization=S.global_precision())
    with S.scope("quant"):
        scoped = S.conv2d(4, S.choice("conv0", [1, 3]))  # its path is the first conv's precision's
    with pytest.raises(SpaceError, match="label 'quant/conv0' is reused with different options"):
        _space(_head(S.conv2d(4, 1), scoped), quantization=S.per_layer())


def test_two_spaces_may_each_use_a_label():
    one = _space(_head(S.conv2d(S.choice("w", [4, 8]), 1)))
    two = _space(_head(S.conv2d(S.choice("w", [4, 8]), 1)))
    assert one.decisions() == two.decisions() and one.fingerprint == two.fingerprint
