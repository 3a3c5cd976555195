"""NAS-Bench-201: cell strings, known table values, speed, and the errors."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import pytest

from nas.errors import EvaluationError
from nas.evaluate import (
    NB201Evaluator,
    NB201Table,
    make_evaluator,
    nb201_arch_from_str,
    nb201_arch_str,
)
from nas.evaluate.nb201 import EDGES, OPS

TABLE_DIR = Path(__file__).resolve().parents[3] / "shared" / "benchmarks" / "nb201"
needs_table = pytest.mark.skipif(
    not (TABLE_DIR / "nb201_combined.csv.gz").is_file(),
    reason=f"NAS-Bench-201 table not at {TABLE_DIR} (third-party data, never committed)",
)
ROW1 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


@pytest.fixture(scope="module")
def table() -> NB201Table:
    return NB201Table.load(TABLE_DIR)


def test_arch_string_round_trip_and_order():
    arch = nb201_arch_from_str(ROW1)
    assert arch == {"1<-0": "nor_conv_3x3", "2<-0": "nor_conv_3x3", "2<-1": "avg_pool_3x3",
                    "3<-0": "skip_connect", "3<-1": "nor_conv_3x3", "3<-2": "skip_connect"}
    assert nb201_arch_str(arch) == ROW1
    assert nb201_arch_str({f"cells[0]/{k}": v for k, v in arch.items()}) == ROW1


def test_every_cell_string_is_distinct_and_round_trips():
    strings = {nb201_arch_str(dict(zip(EDGES, ops, strict=True)))
               for ops in itertools.product(OPS, repeat=6)}
    assert len(strings) == 5**6 == 15625
    assert all(nb201_arch_str(nb201_arch_from_str(s)) == s for s in strings)


@pytest.mark.parametrize(
    "bad",
    ["", ROW1.replace("~2", "~3"), ROW1.replace("avg_pool_3x3", "max_pool_3x3"),
     ROW1.replace("+", "", 1), ROW1[1:], ROW1 + "+|none~0|"],
)
def test_malformed_strings_are_rejected(bad):
    with pytest.raises(EvaluationError, match="not a NAS-Bench-201 cell string"):
        nb201_arch_from_str(bad)


def test_bad_mappings_name_the_fault():
    arch = nb201_arch_from_str(ROW1)
    with pytest.raises(EvaluationError, match="edge '2<-1' has op 'conv_5x5'"):
        nb201_arch_str({**arch, "2<-1": "conv_5x5"})
    with pytest.raises(EvaluationError, match=r"missing \['3<-2'\]"):
        nb201_arch_str({k: v for k, v in arch.items() if k != "3<-2"})
    doubled = {**{f"a/{k}": v for k, v in arch.items()}, "b/1<-0": "none"}
    with pytest.raises(EvaluationError, match="ambiguous.*1<-0"):
        nb201_arch_str(doubled)


@needs_table
def test_table_rows_and_known_values(table):
    assert len(table) == 15625 and len(set(table.arch_strs)) == 15625
    assert table.lookup(ROW1)["index"] == 1
    # checked by hand against the csv (zcat | sed -n 3p)
    ev = NB201Evaluator("cifar10", table=table)
    m = ev.evaluate(None, nb201_arch_from_str(ROW1), seed=0).metrics
    assert m["accuracy"] == pytest.approx(90.7693)
    assert m["test_accuracy"] == pytest.approx(93.66)
    assert m["params"] == 802426
    assert m["train_seconds"] == pytest.approx(2169.64)
    assert m["lat_ms_pixel3"] == pytest.approx(17.2381)
    assert m["lat_ms_titan_rtx_256"] == pytest.approx(26.5129)
    assert m["lat_ms_nb201"] == pytest.approx(16.8526)
    assert sum(k.startswith("lat_ms_") for k in m) == 28
    c100 = NB201Evaluator("cifar100", table=table).evaluate(None, nb201_arch_from_str(ROW1),
                                                            seed=0)
    assert (c100.metrics["accuracy"], c100.metrics["test_accuracy"]) == (69.8267, 70.2933)
    img = NB201Evaluator("imagenet16-120", table=table).evaluate(None, nb201_arch_from_str(ROW1),
                                                                 seed=0)
    assert (img.metrics["accuracy"], img.metrics["test_accuracy"]) == (44.4889, 44.0333)
    assert img.extra == {"index": 1, "arch_str": ROW1, "accuracy_12ep": 35.4333}


@needs_table
def test_best_and_columns(table):
    best = table.best("test_acc_200ep_cifar10")
    assert best["test_acc_200ep_cifar10"] == pytest.approx(94.37, abs=0.01)
    assert table.best("test_acc_200ep_cifar100")["test_acc_200ep_cifar100"] == pytest.approx(
        73.51, abs=0.01)
    fastest = table.best("lat_ms_pixel3", maximize=False)
    assert fastest["lat_ms_pixel3"] == table.column("lat_ms_pixel3").min()
    assert table.rows[1]["arch_str"] == ROW1
    with pytest.raises(EvaluationError, match="no column 'accuracy'"):
        table.column("accuracy")


@needs_table
def test_queries_are_fast(table):
    ev = NB201Evaluator("cifar10", table=table)
    archs = [nb201_arch_from_str(s) for s in table.arch_strs[:2000]]
    ev.evaluate(None, archs[0], seed=0)
    start = time.perf_counter()
    for arch in archs:
        ev.evaluate(None, arch, seed=0)
    per_query = (time.perf_counter() - start) / len(archs)
    assert per_query < 250e-6, f"{per_query * 1e6:.1f} us per query"  # ~10 us here, idle


@needs_table
def test_factory_and_table_loaded_once():
    ev = make_evaluator("nb201-cifar100", data_dir=str(TABLE_DIR))
    assert isinstance(ev, NB201Evaluator) and ev.dataset == "cifar100"
    assert ev.table() is ev.table()
    assert ev.describe()["dataset"] == "cifar100" and ev.num_classes() == 100


def test_missing_table_and_bad_dataset(tmp_path):
    ev = NB201Evaluator("cifar10", str(tmp_path))  # constructing reads nothing
    with pytest.raises(EvaluationError, match="nb201_combined.csv.gz"):
        ev.evaluate(None, nb201_arch_from_str(ROW1), seed=0)
    with pytest.raises(EvaluationError, match="'cifar-10'.*'cifar10', 'cifar100'"):
        NB201Evaluator("cifar-10", str(tmp_path))
    with pytest.raises(EvaluationError, match="takes no training config"):
        from nas.evaluate import TrainConfig

        make_evaluator("nb201-cifar10", config=TrainConfig())
