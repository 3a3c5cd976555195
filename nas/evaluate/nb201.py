"""NAS-Bench-201 as a tabular evaluator: a query is a table lookup (a few microseconds).

The table (``nb201_combined.csv.gz``, third-party data) is read from a folder the caller names;
it is never copied into the project. See ``shared/benchmarks/nb201/README.md`` for its columns
and the protocol: a searcher sees validation accuracy only; test accuracy is for reporting.
"""

from __future__ import annotations

import csv
import gzip
from collections.abc import Callable, Mapping
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from nas.errors import EvaluationError
from nas.evaluate.base import EpochCallback, EvalResult

TABLE_FILE = "nb201_combined.csv.gz"
EDGES: tuple[str, ...] = ("1<-0", "2<-0", "2<-1", "3<-0", "3<-1", "3<-2")
OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
_OPSET = frozenset(OPS)
# Per data set: validation, test, params (M), training time (s), NB201 latency (s), 12-epoch val.
_COLUMNS = {
    "cifar10": ("val_acc_200ep_cifar10-valid_mean", "test_acc_200ep_cifar10",
                "params_M_cifar10-valid", "train_time_s_cifar10-valid",
                "nb201_latency_cifar10-valid", "acc_12ep_cifar10-val"),
    "cifar100": ("val_acc_200ep_cifar100_mean", "test_acc_200ep_cifar100",
                 "params_M_cifar100", "train_time_s_cifar100",
                 "nb201_latency_cifar100", "acc_12ep_cifar100-val"),
    "ImageNet16-120": ("val_acc_200ep_ImageNet16-120_mean", "test_acc_200ep_ImageNet16-120",
                       "params_M_ImageNet16-120", "train_time_s_ImageNet16-120",
                       "nb201_latency_ImageNet16-120", "acc_12ep_imagenet-val"),
}
_SHAPES = {"cifar10": ((3, 32, 32), 10), "cifar100": ((3, 32, 32), 100),
           "ImageNet16-120": ((3, 16, 16), 120)}


def nb201_arch_str(arch: Mapping[str, str]) -> str:
    """Return NAS-Bench-201's cell string for a mapping of the six edge labels to op names."""
    ops = _edge_ops(arch)
    return f"|{ops[0]}~0|+|{ops[1]}~0|{ops[2]}~1|+|{ops[3]}~0|{ops[4]}~1|{ops[5]}~2|"


def nb201_arch_from_str(s: str) -> dict[str, str]:
    """Return the mapping of the six edge labels to op names spelled by a cell string."""
    nodes = s.strip().split("+") if isinstance(s, str) else []
    ops: list[str] = []
    ok = len(nodes) == 3
    for j, node in enumerate(nodes if ok else []):
        parts = node.strip("|").split("|")
        ok = ok and len(parts) == j + 1 and node.startswith("|") and node.endswith("|")
        for i, part in enumerate(parts if ok else []):
            op, _, src = part.partition("~")
            ok = ok and op in _OPSET and src == str(i)
            ops.append(op)
    if not ok:
        raise EvaluationError(
            f"{s!r} is not a NAS-Bench-201 cell string; expected e.g. "
            "'|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|"
            f"skip_connect~2|' with ops from {OPS}"
        )
    return dict(zip(EDGES, ops, strict=True))


def _edge_ops(arch: Mapping[str, str]) -> list[str]:
    """Return the six ops in edge order; labels may be scoped (``cell/2<-1``)."""
    try:
        ops = [arch[e] for e in EDGES]
    except KeyError:
        ops = _scoped_ops(arch)
    for edge, op in zip(EDGES, ops, strict=True):
        if op not in _OPSET:
            raise EvaluationError(f"edge {edge!r} has op {op!r}; valid ops: {OPS}")
    return ops


def _scoped_ops(arch: Mapping[str, str]) -> list[str]:
    found: dict[str, list[str]] = {e: [] for e in EDGES}
    for key in arch:
        last = str(key).rsplit("/", 1)[-1]
        if last in found:
            found[last].append(key)
    missing = [e for e, keys in found.items() if not keys]
    ambiguous = {e: keys for e, keys in found.items() if len(keys) > 1}
    if missing or ambiguous:
        raise EvaluationError(
            f"a NAS-Bench-201 architecture needs exactly one label per edge {EDGES}; "
            f"missing {missing}, ambiguous {ambiguous}, labels given: {sorted(map(str, arch))}"
        )
    return [arch[found[e][0]] for e in EDGES]


class NB201Table:
    """The whole NAS-Bench-201 table: row i is NAS-Bench-201 index i."""

    def __init__(self, columns: list[str], arch_strs: list[str], values: np.ndarray,
                 path: str = "") -> None:
        self.columns = columns  # numeric columns, in file order (without arch_str)
        self.arch_strs = arch_strs
        self.values = values  # float64, (rows, len(columns))
        self.path = path
        self.index_of = {s: i for i, s in enumerate(arch_strs)}
        self._col = {c: j for j, c in enumerate(columns)}

    @classmethod
    def load(cls, table_dir: str | Path) -> NB201Table:
        """Return the table read from ``table_dir/nb201_combined.csv.gz``."""
        path = Path(table_dir) / TABLE_FILE
        if not path.is_file():
            raise EvaluationError(
                f"NAS-Bench-201 table not found: {str(path)!r}; pass the folder holding "
                f"{TABLE_FILE} (e.g. `--data-dir ../shared/benchmarks/nb201`)"
            )
        with gzip.open(path, "rt", newline="") as f:
            reader = csv.reader(f)
            header = next(reader)
            rows = list(reader)
        if "arch_str" not in header:
            raise EvaluationError(f"{str(path)!r} has no arch_str column; is it the NB201 table?")
        a = header.index("arch_str")
        columns = [c for j, c in enumerate(header) if j != a]
        arch_strs = [r[a] for r in rows]
        values = np.array([r[:a] + r[a + 1 :] for r in rows], dtype=np.float64)
        return cls(columns, arch_strs, values, str(path))

    def __len__(self) -> int:
        return len(self.arch_strs)

    @cached_property
    def _pyrows(self) -> list[list[float]]:
        # Python floats, converted once: building a metrics dict from them costs microseconds.
        return self.values.tolist()

    @cached_property
    def rows(self) -> list[dict[str, float | str]]:
        """All rows as dicts (column -> value, plus ``arch_str``); built on first use."""
        return [self.row(i) for i in range(len(self))]

    def row(self, i: int) -> dict[str, float | str]:
        """Return row ``i`` (the NAS-Bench-201 index) as a dict."""
        out: dict[str, float | str] = dict(zip(self.columns, self._pyrows[i], strict=True))
        out["arch_str"] = self.arch_strs[i]
        return out

    def lookup(self, arch_str: str) -> dict[str, float | str]:
        """Return the row of a cell string."""
        i = self.index_of.get(arch_str)
        if i is None:
            nb201_arch_from_str(arch_str)  # raises a precise error for a malformed string
            raise EvaluationError(f"cell {arch_str!r} is not in the table {self.path!r}")
        return self.row(i)

    def column(self, name: str) -> np.ndarray:
        """Return one numeric column as an array (row i = index i)."""
        j = self._col.get(name)
        if j is None:
            raise EvaluationError(f"no column {name!r} in the NB201 table; have {self.columns}")
        return self.values[:, j]

    def best(self, metric: str, *, maximize: bool = True) -> dict[str, float | str]:
        """Return the row with the largest (or, with ``maximize=False``, smallest) ``metric``."""
        col = self.column(metric)
        return self.row(int(np.argmax(col) if maximize else np.argmin(col)))


def _dataset_key(dataset: str) -> str:
    for key in _COLUMNS:
        if dataset.lower() == key.lower():
            return key
    raise EvaluationError(f"NB201 data set {dataset!r} unknown; valid: {tuple(_COLUMNS)}")


class NB201Evaluator:
    """Looks architectures up in NAS-Bench-201 instead of training them.

    Metrics, in the table's units: ``accuracy`` = 200-epoch validation accuracy in **percent**
    (cifar10 uses the ``cifar10-valid`` column), ``test_accuracy`` (percent), ``params`` (count),
    ``train_seconds``, every ``lat_ms_<device>`` column of the table, and ``lat_ms_nb201``
    (NAS-Bench-201's own latency, converted from s to ms). ``extra`` holds the NB201 ``index``,
    ``arch_str`` and ``accuracy_12ep`` (12-epoch validation accuracy, a low-fidelity signal).
    Figures are means over NB201's seeds, so ``seed`` is ignored and ``build`` never called.
    Pass ``table`` to share one loaded table between evaluators.
    """

    name = "nb201"

    def __init__(self, dataset: str = "cifar10", table_dir: str | None = None, *,
                 table: NB201Table | None = None) -> None:
        self.dataset = _dataset_key(dataset)
        if table_dir is None and table is None:
            raise EvaluationError(f"NB201Evaluator needs table_dir (the folder of {TABLE_FILE})")
        self.table_dir = table_dir
        self._table = table

    def table(self) -> NB201Table:
        """Return the table, reading it on the first call."""
        if self._table is None:
            self._table = NB201Table.load(self.table_dir)
        return self._table

    @cached_property
    def _plan(self) -> tuple[list[tuple[str, int, float]], int, dict[str, int], list]:
        table = self.table()
        val, test, params, seconds, nb_lat, acc12 = (table._col[c] for c in
                                                      _COLUMNS[self.dataset])
        plan = [("accuracy", val, 1.0), ("test_accuracy", test, 1.0), ("params", params, 1e6),
                ("train_seconds", seconds, 1.0), ("lat_ms_nb201", nb_lat, 1e3)]
        plan += [(c, j, 1.0) for j, c in enumerate(table.columns) if c.startswith("lat_ms_")]
        return plan, acc12, table.index_of, table._pyrows

    def input_shape(self) -> tuple[int, ...]:
        """Return the (C, H, W) input shape of the data set."""
        return _SHAPES[self.dataset][0]

    def num_classes(self) -> int:
        """Return the number of classes of the data set."""
        return _SHAPES[self.dataset][1]

    def metric_names(self) -> set[str]:
        """Return the names of the metrics the table gives (reading the table: a missing one fails now)."""
        return {name for name, _, _ in self._plan[0]}

    def describe(self) -> dict:
        """Return the data set and table location as JSON-able data."""
        path = self._table.path if self._table is not None else str(self.table_dir)
        return {"kind": self.name, "dataset": self.dataset, "table": path}

    def evaluate(self, build: Callable[[], torch.nn.Module] | None, arch: Mapping[str, object],
                 *, seed: int = 0, on_epoch: EpochCallback | None = None) -> EvalResult:
        """Return the tabulated metrics of ``arch`` (six edge labels -> op names)."""
        plan, acc12, index_of, pyrows = self._plan
        s = nb201_arch_str(arch)
        i = index_of.get(s)
        if i is None:
            raise EvaluationError(f"cell {s!r} is not in the table {self.table().path!r}")
        row = pyrows[i]
        metrics = {name: row[j] * scale for name, j, scale in plan}
        metrics["params"] = float(round(metrics["params"]))  # 0.129306 * 1e6 is not exact
        return EvalResult(metrics=metrics,
                          extra={"index": i, "arch_str": s, "accuracy_12ep": row[acc12]})
