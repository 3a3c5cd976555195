"""Functional wiring for DAG cells: `S.graph(fn)` traces `fn` on symbolic values once, lazily."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from nas.errors import SpaceError
from nas.space.hyper import current_scope, in_scope
from nas.space.nodes import Node
from nas.space.symbolic import Value


@dataclass(frozen=True)
class GraphOp:
    """One step of a traced graph: a part applied to, or a sum of, earlier steps (by index)."""

    op: Node | str  # a Node, "input" or "add"
    inputs: tuple[int, ...]


class Graph(Node):
    """A DAG of parts wired by a Python function of one symbolic input."""

    def __init__(self, fn: Callable[[Value], Value]) -> None:
        if not callable(fn):
            raise SpaceError(f"S.graph needs a function, got {fn!r}")
        n_params = len(inspect.signature(fn).parameters)
        if n_params != 1:
            raise SpaceError(f"S.graph function '{fn.__name__}' must take one input, takes {n_params}")
        self.fn = fn
        self.hint = fn.__name__
        self.scope = current_scope()
        self._ops: list[GraphOp] | None = None  # memo of the trace

    def ops(self) -> list[GraphOp]:
        """Return the traced steps in topological order (step 0 is the input, the last the output)."""
        if self._ops is None:
            with in_scope(self.scope):
                out = self.fn(Value("input", ()))
            if not isinstance(out, Value):
                raise SpaceError(
                    f"S.graph function '{self.hint}' must return a symbolic value, got {out!r}"
                )
            self._ops = _toposort(out)
        return self._ops

    def expand(self, ctx: Any) -> list[Node]:
        return [op.op for op in self.ops() if isinstance(op.op, Node)]

    def all_children(self) -> Iterator[Node]:
        return iter(self.expand(None))

    def describe(self) -> dict:
        return {"kind": "graph", "name": self.hint,
                "wiring": [[op.op if isinstance(op.op, str) else "part", list(op.inputs)]
                           for op in self.ops()]}


def _toposort(out: Value) -> list[GraphOp]:
    order: dict[int, int] = {}
    ops: list[GraphOp] = []
    stack: list[tuple[Value, bool]] = [(out, False)]
    while stack:  # iterative post-order: deep cells must not hit the recursion limit
        v, done = stack.pop()
        if id(v) in order:
            continue
        if done:
            order[id(v)] = len(ops)
            ops.append(GraphOp(v.op, tuple(order[id(i)] for i in v.inputs)))
            continue
        stack.append((v, True))
        stack.extend((i, False) for i in reversed(v.inputs) if id(i) not in order)
    inputs = [i for i, op in enumerate(ops) if op.op == "input"]
    if inputs != [0]:
        raise SpaceError("an S.graph function's output must depend on its input")
    return ops
