"""Encoder: one-hot columns per (decision, option), zeros for inactive decisions, DAG path counts."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from nas import space as S
from nas.errors import SpaceError
from nas.space.encoding import Encoder

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")


def _op(label: str) -> S.Choice:
    return S.choice(label, {"none": S.zero(), "skip_connect": S.identity(),
                            "nor_conv_1x1": S.conv2d(4, 1), "nor_conv_3x3": S.conv2d(4, 3),
                            "avg_pool_3x3": S.avg_pool2d(3, 1, 1)})


def nb201_cell_space() -> S.Space:
    @S.graph
    def cell(x0):
        x1 = _op("1<-0")(x0)
        x2 = _op("2<-0")(x0) + _op("2<-1")(x1)
        return _op("3<-0")(x0) + _op("3<-1")(x1) + _op("3<-2")(x2)

    return S.Space(cell, input_shape=(4, 8, 8))


def conditional_space() -> S.Space:
    width = S.choice("width", [16, 32])

    def block(i: int):
        return S.sequential(S.conv2d(width, kernel_size=S.choice("kernel", [3, 5])), S.relu())

    body = S.sequential(
        S.repeat("blocks", [1, 2], block),
        S.optional("extra", S.conv2d(8, kernel_size=S.choice("k", [1, 3]))),
        # strict matching: True and 1 are different options with different columns
        S.conv2d(4, kernel_size=1, bias=S.choice("flag", [True, 1])),
        S.global_avg_pool(),
    )
    return S.Space(body, input_shape=(1, 8, 8))


def test_onehot_columns_name_every_option_and_inactive_decisions_are_zero():
    sp = conditional_space()
    enc = Encoder(sp)
    names = enc.column_names()
    assert enc.dim == len(names) == sum(len(o) for o in sp.decisions().values())
    assert {"width=16", "blocks[1]/kernel=5", "extra=True", "k=3", "flag=True", "flag=1"} <= set(names)
    arch = {"blocks": 1, "width": 32, "blocks[0]/kernel": 5, "extra": False, "flag": 1}
    sp.validate(arch)
    (row,) = enc.transform([arch])
    on = {n for n, v in zip(names, row, strict=True) if v}
    assert on == {"blocks=1", "width=32", "blocks[0]/kernel=5", "extra=False", "flag=1"}
    assert row.dtype == np.float32 and row.sum() == len(arch)


def test_transform_is_consistent_over_samples_and_row_sums_count_active_decisions():
    sp = conditional_space()
    archs = [sp.sample(s) for s in range(40)]
    X = Encoder(sp).transform(archs)
    assert X.shape == (40, Encoder(sp).dim)
    assert X.sum(axis=1).tolist() == [len(a) for a in archs]
    assert len({x.tobytes() for x in X}) == len(set(archs))  # distinct archs, distinct rows


def test_unknown_labels_and_values_are_clear_errors():
    enc = Encoder(conditional_space())
    with pytest.raises(SpaceError, match="'depth'.*another version"):
        enc.transform([{"depth": 3}])
    with pytest.raises(SpaceError, match=r"'width' = 24 is not among its options \[16, 32\]"):
        enc.transform([{"width": 24}])
    with pytest.raises(SpaceError, match=r"'flag' = 1.0"):
        enc.transform([{"flag": 1.0}])
    plain = enc.transform([{"width": 32, "k": 3}])
    np.testing.assert_array_equal(enc.transform([{"width": np.int64(32), "k": np.int32(3)}]), plain)
    with pytest.raises(SpaceError, match="features"):
        Encoder(conditional_space(), features="graph")
    with pytest.raises(SpaceError, match="sequence of architectures"):
        enc.transform({"width": 16})


def test_path_features_count_op_sequences_and_zero_ops_cut_paths():
    sp = nb201_cell_space()
    enc = Encoder(sp, features="onehot+paths")
    paths = [n for n in enc.column_names() if n.startswith("path[cell]=")]
    assert len(paths) == 4 + 4**2 + 4**3  # sequences of length 1, 2, 3 over the four non-zero ops
    arch = {"1<-0": "skip_connect", "2<-0": "avg_pool_3x3", "2<-1": "skip_connect",
            "3<-0": "none", "3<-1": "avg_pool_3x3", "3<-2": "avg_pool_3x3"}
    (row,) = enc.transform([arch])
    got = {n: v for n, v in zip(enc.column_names(), row, strict=True) if v and n.startswith("path")}
    assert got == {"path[cell]=skip_connect>avg_pool_3x3": 1.0,  # 0 -> 1 -> 3
                   "path[cell]=avg_pool_3x3>avg_pool_3x3": 1.0,  # 0 -> 2 -> 3
                   "path[cell]=skip_connect>skip_connect>avg_pool_3x3": 1.0}  # 0 -> 1 -> 2 -> 3
    same = dict(arch, **{"1<-0": "avg_pool_3x3", "2<-0": "skip_connect"})  # 0-1-3 and 0-2-3 swap
    (row2,) = enc.transform([same])
    assert row2[-len(paths):].sum() == 3  # three live paths again; two share a sequence
    assert row2[enc.column_names().index("path[cell]=avg_pool_3x3>avg_pool_3x3")] == 1
    dead = dict.fromkeys(arch, "none")
    assert enc.transform([dead])[0][-len(paths):].sum() == 0


def test_path_features_distinguish_what_onehot_alone_cannot_see():
    # Every cell whose output is cut off from its input has no paths at all.
    sp = nb201_cell_space()
    labels = list(sp.decisions())
    archs = [dict(zip(labels, ops, strict=True)) for ops in itertools.product(OPS, repeat=6)]
    X = Encoder(sp, features="onehot+paths").transform(archs)
    assert X.shape == (5**6, 30 + 84)
    n_paths = X[:, 30:].sum(axis=1)
    cut = [a for a, n in zip(archs, n_paths, strict=True) if n == 0]
    assert all(a["3<-0"] == "none" for a in cut)
    assert len(cut) > 0 and n_paths.max() == 4


def test_path_columns_of_cells_inside_inactive_parts_stay_zero():
    @S.graph
    def cell(x0):
        return _op("a")(x0) + S.identity()(x0)

    sp = S.Space(S.sequential(S.conv2d(4, 1), S.optional("use_cell", cell)), input_shape=(1, 4, 4))
    enc = Encoder(sp, features="onehot+paths")
    off, on = enc.transform([{"use_cell": False}, {"use_cell": True, "a": "nor_conv_1x1"}])
    names = enc.column_names()
    assert not any(v for n, v in zip(names, off, strict=True) if n.startswith("path"))
    assert on[names.index("path[cell]=nor_conv_1x1")] == 1 and on[names.index("path[cell]=id")] == 1


def test_columns_keep_their_meaning_when_the_space_changes_elsewhere():
    a = Encoder(conditional_space())
    width = S.choice("width", [16, 32])
    edited = S.Space(S.sequential(S.conv2d(width), S.conv2d(4, kernel_size=S.choice("k", [1, 3]))),
                     input_shape=(1, 8, 8))
    b = Encoder(edited)
    arch = {"width": 32, "k": 3}
    xa = dict(zip(a.column_names(), a.transform([dict(arch, blocks=1, **{"blocks[0]/kernel": 3,
                                                                         "extra": True,
                                                                         "flag": True})])[0],
                  strict=True))
    xb = dict(zip(b.column_names(), b.transform([arch])[0], strict=True))
    assert all(xa[n] == v for n, v in xb.items())


def test_cells_made_per_repeat_share_path_columns_and_their_counts_add():
    def block(i: int):
        @S.graph
        def cell(x0):
            return _op("e")(x0) + S.identity()(x0)

        return cell

    sp = S.Space(S.repeat("cells", [1, 2], block), input_shape=(1, 4, 4))
    enc = Encoder(sp, features="onehot+paths")
    names = enc.column_names()
    assert names.count("path[cell]=id") == 1 and "cells[1]/e=none" in names
    one, two = enc.transform([{"cells": 1, "cells[0]/e": "nor_conv_3x3"},
                              {"cells": 2, "cells[0]/e": "nor_conv_3x3", "cells[1]/e": "none"}])
    assert one[names.index("path[cell]=id")] == 1 and two[names.index("path[cell]=id")] == 2
    assert one[names.index("path[cell]=nor_conv_3x3")] == two[names.index("path[cell]=nor_conv_3x3")] == 1
