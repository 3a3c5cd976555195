"""Symbolic values: what a space part is applied to inside an `S.graph` function.

Kept apart from `graph.py`, which traces functions of them, so that a part (`nodes.py`) can be called
on a value without the node vocabulary and the graph tracer importing each other.
"""

from __future__ import annotations

from typing import Any

from nas.errors import SpaceError


class Value:
    """A symbolic tensor inside a graph function; `a + b` sums two of them."""

    def __init__(self, op: object, inputs: tuple[Value, ...]) -> None:  # a space part, "input" or "add"
        self.op = op
        self.inputs = inputs

    def __add__(self, other: object) -> Value:
        if not isinstance(other, Value):
            raise SpaceError(f"inside S.graph only symbolic values can be added, not {other!r}")
        return Value("add", (self, other))

    def __radd__(self, other: object) -> Value:
        if other == 0:  # lets users write sum(values)
            return self
        return self.__add__(other)


def apply_node(node: Any, inputs: tuple[Any, ...]) -> Value:
    """Return the symbolic output of `node` applied to one symbolic input."""
    if len(inputs) != 1 or not isinstance(inputs[0], Value):
        raise SpaceError(
            f"{node.hint}: a space part is called on exactly one symbolic value inside an "
            f"S.graph function, got {len(inputs)} argument(s)"
        )
    return Value(node, inputs)
