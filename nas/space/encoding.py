"""Architecture encodings: fixed-width numeric vectors that predictors and surrogate models read.

`Encoder(space)` gives one column per (decision, option) pair of `space.decisions()`; an inactive
decision (one inside a part the architecture does not use) encodes as all zeros, so architectures of
different depths share one column layout. `features="onehot+paths"` adds, for every `S.graph` cell,
BANANAS-style path features: how many input-to-output paths of the cell carry each sequence of ops
(a path through a `zero` op, NAS-Bench-201's "none", carries nothing and is not counted).

Columns are named from labels and option values, never from positions, so an encoder made from an
edited space keeps the meaning of every column that still exists.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nas.errors import SpaceError
from nas.space.graph import Graph
from nas.space.nodes import BranchChoice, Layer, Node
from nas.space.space import Space

FEATURES = ("onehot", "onehot+paths")
# A cell's path columns grow as ops^length; beyond this the encoding is too wide to be useful.
MAX_PATH_COLUMNS = 50_000
MAX_STRUCTURAL_PATHS = 10_000




# One part on a path: (decision label, {option: op name or None}) for a choice between parts,
# (None, op name or None) for a fixed part. None marks a zero op, which cuts the path.
_Step = tuple[str | None, Any]


@dataclass(frozen=True)
class _Cell:
    """One `S.graph` of the space: its name and its input-to-output paths as tuples of steps."""

    name: str
    paths: tuple[tuple[_Step, ...], ...]


class Encoder:
    """Encodes architectures of one space as float32 rows: one-hot decisions (+ DAG path counts)."""

    def __init__(self, space: Space, *, features: str = "onehot") -> None:
        if not isinstance(space, Space):
            raise SpaceError(f"Encoder(space=...): expected a nas Space, got {type(space).__name__}")
        if features not in FEATURES:
            raise SpaceError(f"Encoder(features={features!r}): valid features are {FEATURES}")
        self.space = space
        self.features = features
        self._layout: tuple | None = None  # built on first use (no work in the constructor)

    # -- layout -------------------------------------------------------------------------------
    def _build(self) -> tuple:
        if self._layout is None:
            names: list[str] = []
            # (label, type, value) -> column: typed keys match strictly as the walk does (True is
            # not 1, 1.0 is not 1), and one flat dict keeps the per-decision cost to one lookup.
            onehot: dict[tuple[str, type, Any], int] = {}
            for label, options in self.space.decisions().items():
                for option in options:
                    onehot[(label, type(option), option)] = len(names)
                    names.append(f"{label}={option}")
            cells: list[_Cell] = []
            path_index: dict[tuple[str, tuple[str, ...]], int] = {}
            if self.features == "onehot+paths":
                cells = list(_cells(self.space))
                for cell in cells:
                    for seq in _possible_sequences(cell):
                        if (cell.name, seq) not in path_index:
                            path_index[(cell.name, seq)] = len(names)
                            names.append(f"path[{cell.name}]={'>'.join(seq)}")
            self._layout = (names, onehot, cells, path_index)
        return self._layout

    @property
    def dim(self) -> int:
        """Return the number of columns."""
        return len(self._build()[0])

    def column_names(self) -> list[str]:
        """Return the column names: "label=value" for decisions, "path[cell]=op>op" for paths."""
        return list(self._build()[0])

    # -- encoding -----------------------------------------------------------------------------
    def transform(self, archs: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Return an (n, dim) float32 array; inactive decisions and absent paths are zeros."""
        if isinstance(archs, Mapping):
            raise SpaceError("Encoder.transform takes a sequence of architectures; wrap one in [arch]")
        names, onehot, cells, path_index = self._build()
        archs = list(archs)
        # Gather (row, column) pairs in Python lists and write them in one numpy call: item-by-item
        # writes into an array cost more than the lookups themselves.
        rows: list[int] = []
        cols: list[int] = []
        for row, arch in enumerate(archs):
            if not isinstance(arch, Mapping):
                raise SpaceError(
                    f"Encoder.transform: item {row} is a {type(arch).__name__}, not an architecture "
                    "(a mapping label -> value)"
                )
            for label, value in arch.items():
                try:
                    col = onehot[(label, value.__class__, value)]
                except (KeyError, TypeError):
                    col = _slow_column(self.space, onehot, label, value)
                rows.append(row)
                cols.append(col)
            for cell in cells:
                for seq in _active_sequences(cell, arch):
                    rows.append(row)
                    cols.append(path_index[(cell.name, seq)])
        out = np.zeros((len(archs), len(names)), dtype=np.float32)
        np.add.at(out, (np.asarray(rows, dtype=np.intp), np.asarray(cols, dtype=np.intp)), 1.0)
        return out

    def __repr__(self) -> str:
        return f"Encoder({self.space!r}, features={self.features!r})"


def _slow_column(space: Space, onehot: Mapping, label: str, value: Any) -> int:
    """Return the column of a numpy scalar's plain value (from pymoo, say), else raise why not."""
    if isinstance(value, np.generic):
        plain = value.item()
        col = onehot.get((label, type(plain), plain))
        if col is not None:
            return col
    return _bad_decision(space, label, value)


def _bad_decision(space: Space, label: str, value: Any) -> int:
    """Raise the SpaceError that says why (label, value) has no column."""
    decisions = space.decisions()
    if label not in decisions:
        raise SpaceError(
            f"the architecture has decision '{label}', which this space does not have; it was made "
            f"for another version of the space (decisions: {list(decisions)[:20]})"
        )
    raise SpaceError(f"'{label}' = {value!r} is not among its options {list(decisions[label])}")


# -- DAG paths --------------------------------------------------------------------------------
def _cells(space: Space) -> Iterator[_Cell]:
    """Yield every graph of the space with its structural input-to-output paths."""
    for node in space.nodes():
        if isinstance(node, Graph):
            # Cells that share a name (one per repeat, say) share columns: their counts add up.
            paths = tuple(tuple(_step(n) for n in p) for p in _structural_paths(node))
            yield _Cell(node.hint, paths)


def _structural_paths(graph: Graph) -> list[tuple[Node, ...]]:
    """Return every path from the graph's input to its output as the parts it passes through."""
    ops = graph.ops()
    # paths[i]: the part sequences from the input to step i; "add" steps pass their inputs through.
    paths: list[list[tuple[Node, ...]]] = []
    for i, step in enumerate(ops):
        if step.op == "input":
            paths.append([()])
            continue
        incoming = [p for j in step.inputs for p in paths[j]]
        if isinstance(step.op, Node):
            incoming = [p + (step.op,) for p in incoming]
        if len(incoming) > MAX_STRUCTURAL_PATHS:
            raise SpaceError(
                f"graph '{graph.hint}' has more than {MAX_STRUCTURAL_PATHS} input-to-output paths "
                f"(at step {i}); path features are impractical here, use Encoder(features='onehot')"
            )
        paths.append(incoming)
    return paths[-1]


def _is_zero(node: Node) -> bool:
    return isinstance(node, Layer) and node.kind == "zero"


def _step(node: Node) -> _Step:
    if isinstance(node, BranchChoice):
        return (node.path, {k: None if _is_zero(b) else str(k) for k, b in node.branches.items()})
    return (None, None if _is_zero(node) else node.hint)


def _tokens(step: _Step) -> list[str]:
    """Return the op names a step can show on a path (none for a part that is always zero)."""
    label, ops = step
    if label is None:
        return [] if ops is None else [ops]
    return [t for t in ops.values() if t is not None]


def _possible_sequences(cell: _Cell) -> Iterator[tuple[str, ...]]:
    """Yield every op sequence a path of the cell can carry, in a deterministic order."""
    total = 0
    for path in cell.paths:
        seqs: list[tuple[str, ...]] = [()]
        for step in path:
            seqs = [s + (t,) for s in seqs for t in _tokens(step)]
        total += len(seqs)
        if total > MAX_PATH_COLUMNS:
            raise SpaceError(
                f"graph '{cell.name}' has more than {MAX_PATH_COLUMNS} possible op sequences on its "
                "paths; path features are impractical here, use Encoder(features='onehot')"
            )
        yield from seqs


def _active_sequences(cell: _Cell, arch: Mapping[str, Any]) -> Iterator[tuple[str, ...]]:
    """Yield the op sequence of every path that carries signal in `arch` (none if the cell is unused)."""
    for path in cell.paths:
        seq = []
        for label, ops in path:
            if label is None:
                op = ops
            elif label in arch:
                op = ops[arch[label]]
            else:  # the cell is not part of this architecture
                return
            if op is None:
                break
            seq.append(op)
        else:
            yield tuple(seq)
