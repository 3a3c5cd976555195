"""The structure of a space: layers and the substitution modules that combine them.

A node is a description, not a module: using one node twice builds two layers with their own weights.
Each node says which children are active under the current decisions (`expand`), which children it
could ever have (`all_children`, for static analysis), and which decisions it reads itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from nas.errors import SpaceError
from nas.space.hyper import (
    Choice,
    Hyperparameter,
    Resolver,
    check_label,
    current_scope,
    in_scope,
    join,
)
from nas.space.symbolic import apply_node


class Node:
    """A part of a search space."""

    hint = "part"  # the submodule name a compiled part gets, unless something better is known

    def expand(self, ctx: Resolver) -> list[Node]:
        """Return the children active under the decisions in `ctx` (may raise NeedDecision)."""
        return []

    def all_children(self) -> Iterator[Node]:
        """Yield every child this node can have under any decisions."""
        return iter(())

    def decisions(self) -> Iterator[Choice]:
        """Yield the decisions this node reads itself (not those of its children)."""
        return iter(())

    def describe(self) -> dict:
        """Return a JSON-able description of this node alone (children are described by the space)."""
        return {"kind": type(self).__name__.lower()}

    def __call__(self, *inputs: Any) -> Any:
        """Wire this part inside an `S.graph` function: apply it to a symbolic value."""
        return apply_node(self, inputs)


def as_node(x: object, where: str) -> Node:
    """Return `x` if it is a space part, else raise a SpaceError saying where it was given."""
    if isinstance(x, Node):
        return x
    if isinstance(x, Choice):
        raise SpaceError(
            f"{where}: choice '{x.path}' has plain values ({list(x.keys)}); it can only be an "
            "argument of a layer. To choose between parts, give a dict {name: part}"
        )
    raise SpaceError(f"{where}: expected a space part (a layer or a structure), got {x!r}")


def _describe_value(v: Any) -> Any:
    if isinstance(v, Choice):
        return {"choice": v.path}
    if isinstance(v, Hyperparameter):
        return {"dependent": [_describe_value(x) for x in getattr(v, "inputs", {}).values()]}
    return v


# Submodule names that read like hand-written PyTorch.
SHORT_NAMES = {"conv2d": "conv", "depthwise_conv2d": "dwconv", "batch_norm": "bn",
               "layer_norm": "ln", "linear": "fc", "max_pool2d": "pool", "avg_pool2d": "pool",
               "global_avg_pool": "gap", "dropout": "drop", "identity": "id"}


class Layer(Node):
    """One torch layer; its arguments may be values or hyperparameters."""

    def __init__(self, kind: str, args: Mapping[str, Any], factory: Callable | None = None) -> None:
        for name, v in args.items():
            if isinstance(v, Node):
                raise SpaceError(
                    f"{kind}({name}=...): got a space part; a layer argument is a value or a "
                    "hyperparameter (S.choice with plain values, or S.dependent)"
                )
        self.kind = kind
        self.args = dict(args)
        self.factory = factory
        self.scope = current_scope()  # where it was created: names its quantization decision
        name = getattr(factory, "__name__", "op") if factory else SHORT_NAMES.get(kind, kind)
        self.hint = "op" if name == "<lambda>" else name
        # Output shapes of a user op found so far, by (arguments, input shape): finding one costs a
        # forward pass on the meta device (~20 ms with a batch norm), and a cell reuses the same node.
        self.shape_memo: dict[str, tuple[int, ...]] = {}

    def expand(self, ctx: Resolver) -> list[Node]:
        for v in self.args.values():
            ctx.value(v)
        extra = ctx.extra.get(id(self))
        if extra is not None:
            ctx.decide(extra)
        return []

    def decisions(self) -> Iterator[Choice]:
        for v in self.args.values():
            if isinstance(v, Hyperparameter):
                yield from v.hyperparameters()

    def resolved(self, ctx: Resolver) -> dict[str, Any]:
        """Return the layer's arguments with every hyperparameter replaced by its value."""
        return {k: ctx.value(v) for k, v in self.args.items()}

    def describe(self) -> dict:
        d = {"kind": self.kind, "args": {k: _describe_value(v) for k, v in self.args.items()}}
        if self.factory is not None:
            f = self.factory
            d["factory"] = f"{getattr(f, '__module__', '?')}.{getattr(f, '__qualname__', f)}"
        return d


class Sequential(Node):
    """Parts applied one after another."""

    hint = "seq"

    def __init__(self, parts: list[Any], names: list[str | None]) -> None:
        self.parts = [as_node(p, f"sequential part {i}") for i, p in enumerate(parts)]
        self.names = names

    def expand(self, ctx: Resolver) -> list[Node]:
        return list(self.parts)

    def all_children(self) -> Iterator[Node]:
        return iter(self.parts)

    def describe(self) -> dict:
        return {"kind": "sequential", "names": self.names}


class BranchChoice(Choice, Node):
    """An or-module: one decision choosing which sub-space is expanded (lazily, like DeepArchitect)."""

    def __init__(self, label: str, options: Mapping[str, Any] | list[Any]) -> None:
        self.label = check_label(label)
        self.path = join(current_scope(), label)
        items = list(options.items()) if isinstance(options, Mapping) else list(enumerate(options))
        if not items:
            raise SpaceError(f"choice '{self.path}' has no options: give a non-empty list or dict")
        for k, _ in items:
            if not isinstance(k, str | int):
                raise SpaceError(f"choice '{self.path}': option names are strings, got {k!r}")
        self.branches = {k: as_node(v, f"choice '{self.path}' option {k!r}") for k, v in items}
        self.keys = tuple(self.branches)
        self.hint = label

    def expand(self, ctx: Resolver) -> list[Node]:
        return [self.branches[ctx.decide(self)]]

    def all_children(self) -> Iterator[Node]:
        return iter(self.branches.values())

    def decisions(self) -> Iterator[Choice]:
        yield self

    def describe(self) -> dict:
        return {"kind": "choice", "label": self.path, "options": list(self.keys)}


class Optional(Node):
    """A part that an architecture includes or leaves out."""

    def __init__(self, label: str, part: Any) -> None:
        self.choice = Choice(label, [False, True])
        self.part = as_node(part, f"optional '{self.choice.path}'")
        self.hint = label

    def expand(self, ctx: Resolver) -> list[Node]:
        return [self.part] if ctx.value(self.choice) else []

    def all_children(self) -> Iterator[Node]:
        yield self.part

    def decisions(self) -> Iterator[Choice]:
        yield self.choice

    def describe(self) -> dict:
        return {"kind": "optional", "label": self.choice.path}


class Repeat(Node):
    """`count` parts built by `fn(i)`; labels made inside `fn(i)` are scoped as `label[i]/...`."""

    def __init__(self, label: str, counts: list[int], fn: Callable[[int], Any]) -> None:
        self.choice = Choice(label, list(counts) if isinstance(counts, list | tuple) else counts)
        for c in self.choice.keys:
            if not isinstance(c, int) or isinstance(c, bool) or c < 0:
                raise SpaceError(
                    f"repeat '{self.choice.path}': counts are non-negative integers, got {c!r}"
                )
        if not callable(fn):
            raise SpaceError(f"repeat '{self.choice.path}': the builder must be a function of i")
        self.fn = fn
        self.hint = label
        self._parts: dict[int, Node] = {}  # memo: fn(i) is pure, and calling it per walk is slow

    def part(self, i: int) -> Node:
        """Return the i-th part, building it on first use inside its scope."""
        if i not in self._parts:
            with in_scope(f"{self.choice.path}[{i}]"):
                self._parts[i] = as_node(self.fn(i), f"repeat '{self.choice.path}' part {i}")
        return self._parts[i]

    def expand(self, ctx: Resolver) -> list[Node]:
        return [self.part(i) for i in range(ctx.value(self.choice))]

    def all_children(self) -> Iterator[Node]:
        return (self.part(i) for i in range(max(self.choice.keys)))

    def decisions(self) -> Iterator[Choice]:
        yield self.choice

    def describe(self) -> dict:
        return {"kind": "repeat", "label": self.choice.path}


class Parallel(Node):
    """Branches applied to the same input, merged by sum or channel concatenation."""

    hint = "parallel"

    def __init__(self, branches: list[Any], merge: str) -> None:
        if merge not in ("sum", "concat"):
            raise SpaceError(f"parallel(merge={merge!r}): valid merges are 'sum' and 'concat'")
        if not branches:
            raise SpaceError("parallel() needs at least one branch")
        self.branches = [as_node(b, f"parallel branch {i}") for i, b in enumerate(branches)]
        self.merge = merge

    def expand(self, ctx: Resolver) -> list[Node]:
        return list(self.branches)

    def all_children(self) -> Iterator[Node]:
        return iter(self.branches)

    def describe(self) -> dict:
        return {"kind": "parallel", "merge": self.merge}


class Residual(Node):
    """`x + part(x)`; the part must keep the shape."""

    hint = "residual"

    def __init__(self, part: Any) -> None:
        self.part = as_node(part, "residual")

    def expand(self, ctx: Resolver) -> list[Node]:
        return [self.part]

    def all_children(self) -> Iterator[Node]:
        yield self.part


LAYOUTS = ("deep", "shallow")


class Layout(Node):
    """Deep (blocks in sequence, each residual) or shallow (blocks side by side, summed with x)."""

    def __init__(self, label: str, stack: Any, options: list[str]) -> None:
        self.choice = Choice(label, list(options))
        bad = [o for o in self.choice.keys if o not in LAYOUTS]
        if bad:
            raise SpaceError(f"layout '{self.choice.path}': unknown layouts {bad}; valid: {LAYOUTS}")
        if not isinstance(stack, Repeat | Sequential):
            raise SpaceError(
                f"layout '{self.choice.path}': the stack must be S.repeat(...) or S.sequential(...) "
                f"of blocks, got {type(stack).__name__}"
            )
        self.stack = stack
        self.hint = label

    def expand(self, ctx: Resolver) -> list[Node]:
        ctx.value(self.choice)
        return [self.stack]

    def all_children(self) -> Iterator[Node]:
        yield self.stack

    def decisions(self) -> Iterator[Choice]:
        yield self.choice

    def describe(self) -> dict:
        return {"kind": "layout", "label": self.choice.path}

