"""Drawing kept apart from definition: one walk over open decisions, many sources of choices.

The walk expands the space depth-first in a fixed order. Whenever an expansion needs a decision that
has no value yet, a *chooser* is asked for it (random sampling, replay of a stored architecture, MCTS,
a mutation, an Optuna trial...), and the expansion is retried. Counting uses the same expansion.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from nas.errors import SpaceError
from nas.space.hyper import Choice, NeedDecision, Resolver
from nas.space.nodes import Node


@dataclass(frozen=True)
class Decision:
    """An open decision: its label path and the values it may take."""

    label: str
    options: tuple


Chooser = Callable[[Decision], Any]


def same_option(value: Any, option: Any) -> bool:
    """Return whether `value` is `option` (strictly: True is not 1, and 1.0 is not 1)."""
    return value == option and type(value) is type(option)


def match_option(decision: Decision, value: Any) -> Any:
    """Return the option equal to `value`, or raise a SpaceError naming the label and options."""
    for option in decision.options:
        if same_option(value, option):
            return option
    raise SpaceError(
        f"'{decision.label}' = {value!r} is not among its options {list(decision.options)}"
    )


class _Frame:
    """A node on the walk's stack, with a link to its parent to detect cycles."""

    __slots__ = ("node", "parent")

    def __init__(self, node: Node, parent: _Frame | None) -> None:
        self.node, self.parent = node, parent

    def check_not_ancestor(self, child: Node) -> None:
        frame: _Frame | None = self
        path = []
        while frame is not None:
            path.append(frame.node.hint)
            if frame.node is child:
                chain = " -> ".join(reversed(path)) + f" -> {child.hint}"
                raise SpaceError(f"the space contains a cycle: {chain}")
            frame = frame.parent


def _advance(stack: list[_Frame], ctx: Resolver) -> Decision | None:
    """Expand `stack` in place until a decision is open (returned) or the walk is done (None)."""
    try:
        while stack:
            frame = stack[-1]
            try:
                children = frame.node.expand(ctx)
            except NeedDecision as need:
                return Decision(need.choice.path, need.choice.keys)
            stack.pop()
            for child in reversed(children):
                frame.check_not_ancestor(child)
                stack.append(_Frame(child, frame))
    except RecursionError as e:
        raise SpaceError("the space contains a cycle: a builder function calls itself") from e
    return None


Extra = Mapping[int, Choice] | None  # decisions a Space attaches to nodes (layer precisions)


def walk(root: Node, chooser: Chooser, extra: Extra = None) -> dict[str, Any]:
    """Return the decisions (label -> value, in walk order) made by `chooser` for one architecture."""
    values: dict[str, Any] = {}
    ctx = Resolver(values, extra)
    stack = [_Frame(root, None)]
    while (decision := _advance(stack, ctx)) is not None:
        values[decision.label] = match_option(decision, chooser(decision))
    return values


def replay(arch: Mapping[str, Any]) -> Chooser:
    """Return a chooser that reads every decision from `arch`, failing clearly on a missing label."""

    def choose(d: Decision) -> Any:
        if d.label not in arch:
            raise SpaceError(
                f"the architecture has no value for decision '{d.label}' (options "
                f"{list(d.options)}): it is incomplete or was made for another version of the space"
            )
        return arch[d.label]

    return choose


def random_chooser(seed: int | random.Random) -> Chooser:
    """Return a chooser drawing each decision uniformly at random (same seed, same draws)."""
    rng = seed if isinstance(seed, random.Random) else random.Random(seed)
    return lambda d: d.options[rng.randrange(len(d.options))]


class _Stop(Exception):  # noqa: N818 - control flow
    def __init__(self, decision: Decision) -> None:
        self.decision = decision


def next_decision(root: Node, partial: Mapping[str, Any], extra: Extra = None) -> Decision | None:
    """Return the first open decision given the partial assignment, or None when it is complete."""

    def choose(d: Decision) -> Any:
        if d.label in partial:
            return partial[d.label]
        raise _Stop(d)

    try:
        walk(root, choose, extra)
    except _Stop as stop:
        return stop.decision
    return None


def iter_assignments(root: Node, extra: Extra = None) -> Iterator[dict[str, Any]]:
    """Yield every architecture of the space (depth-first); only for spaces small enough to list."""
    # Depth first over walk states: a branch resumes from a copy of its parent's stack instead of
    # walking again from the root (the frames themselves are never mutated, so copies share them).
    todo: list[tuple[list[_Frame], Resolver]] = [([_Frame(root, None)], Resolver({}, extra))]
    while todo:
        stack, ctx = todo.pop()
        d = _advance(stack, ctx)
        if d is None:
            yield dict(ctx.values)
            continue
        for o in reversed(d.options):
            branch = Resolver({**ctx.values, d.label: o}, extra)
            branch.options = dict(ctx.options)
            todo.append((list(stack), branch))


class Counter:
    """Counts architectures exactly by memoised expansion.

    Two walk states with the same remaining stack of nodes and the same values for the labels that
    those nodes can still read have the same number of completions, so independent decisions are
    multiplied rather than enumerated, while shared and conditional ones stay exact.
    """

    def __init__(self, root: Node, extra: Extra = None) -> None:
        self.root = root
        self.extra = extra or {}
        self._reach: dict[int, frozenset[str]] = {}
        self._memo: dict[tuple, int] = {}

    def reach(self, node: Node, _active: frozenset[int] = frozenset()) -> frozenset[str]:
        """Return every label that `node` or its descendants can read."""
        key = id(node)
        if key not in self._reach:
            if key in _active:
                raise SpaceError(f"the space contains a cycle through '{node.hint}'")
            inner = _active | {key}
            labels = {c.path for c in node.decisions()}
            if id(node) in self.extra:
                labels.add(self.extra[id(node)].path)
            for child in node.all_children():
                labels |= self.reach(child, inner)
            self._reach[key] = frozenset(labels)
        return self._reach[key]

    def count(self, stack: tuple[Node, ...] | None = None, values: Mapping[str, Any] = {}) -> int:
        """Return the number of distinct completions of a walk state (default: the whole space)."""
        if stack is None:
            self.reach(self.root)  # a cycle would otherwise expand forever
        nodes = list(stack) if stack is not None else [self.root]
        vals = dict(values)
        ctx = Resolver(vals, self.extra)
        while nodes:
            try:
                children = nodes[-1].expand(ctx)
            except NeedDecision as need:
                return self._branch(nodes, vals, need.choice)
            nodes.pop()
            nodes.extend(reversed(children))
        return 1

    def _branch(self, nodes: list[Node], vals: dict[str, Any], choice: Any) -> int:
        relevant: set[str] = set()
        for n in nodes:
            relevant |= self.reach(n)
        if relevant <= vals.keys() | {choice.path}:
            # nothing after this decision is open (e.g. the copies of a shared cell): one each
            return len(choice.keys)
        state = frozenset((k, repr(v)) for k, v in vals.items() if k in relevant)
        key = (tuple(map(id, nodes)), state)
        if key not in self._memo:
            frozen = tuple(nodes)
            self._memo[key] = sum(self.count(frozen, {**vals, choice.path: o}) for o in choice.keys)
        return self._memo[key]


def uniform_chooser(root: Node, seed: int, extra: Extra = None) -> Callable[[], dict[str, Any]]:
    """Return a sampler drawing architectures uniformly over architectures (not over decisions)."""
    counter = Counter(root, extra)
    rng = random.Random(seed)

    def draw() -> dict[str, Any]:
        values: dict[str, Any] = {}
        ctx = Resolver(values, extra)
        nodes: list[Node] = [root]
        while nodes:
            try:
                children = nodes[-1].expand(ctx)
            except NeedDecision as need:
                c = need.choice
                weights = [counter.count(tuple(nodes), {**values, c.path: o}) for o in c.keys]
                values[c.path] = rng.choices(c.keys, weights=weights)[0]
                continue
            nodes.pop()
            nodes.extend(reversed(children))
        return values

    return draw
