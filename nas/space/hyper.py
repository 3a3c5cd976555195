"""Hyperparameters: the open decisions of a space, and values computed from them.

A decision is named by a *label path*: the user's label prefixed by the structural scope in which the
hyperparameter was created (`blocks[2]/kernel` for a `kernel` made by the third call of a repeat's
builder). Scopes come from where an object is *created*, not where it is used, so a hyperparameter made
once outside a repeat and passed into every block is one shared decision.
"""

from __future__ import annotations

import contextvars
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from nas.errors import SpaceError

# The scope in force while user code builds parts of a space. A context variable (not a global) so
# that threads and nested builders each see their own; it is always restored on exit.
_SCOPE: contextvars.ContextVar[str] = contextvars.ContextVar("nas_space_scope", default="")

_LABEL = re.compile(r"^[^/\[\]\s]+$")
Scalar = int | float | str | bool | None


def current_scope() -> str:
    """Return the label scope in force where the caller creates space objects ('' at top level)."""
    return _SCOPE.get()


@contextmanager
def scope(name: str) -> Iterator[None]:
    """Scope every label created inside the `with` block under `name/` (e.g. one per stage)."""
    check_label(name)
    token = _SCOPE.set(join(_SCOPE.get(), name))
    try:
        yield
    finally:
        _SCOPE.reset(token)


@contextmanager
def in_scope(path: str) -> Iterator[None]:
    """Run a lazily called builder inside an already-joined scope path."""
    token = _SCOPE.set(path)
    try:
        yield
    finally:
        _SCOPE.reset(token)


def join(prefix: str, label: str) -> str:
    """Return `prefix/label`, or `label` at top level."""
    return f"{prefix}/{label}" if prefix else label


def check_label(label: object) -> str:
    """Return the label if it is a usable decision name, else raise SpaceError."""
    if not isinstance(label, str) or not _LABEL.match(label):
        raise SpaceError(
            f"invalid label {label!r}: a label is a non-empty string without spaces, '/', '[' or ']'"
        )
    return label


def check_scalar(value: object, where: str) -> Scalar:
    """Return `value` if it can be stored in an architecture's JSON, else raise SpaceError."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    raise SpaceError(
        f"{where}: option {value!r} ({type(value).__name__}) cannot be stored in an architecture; "
        "options are int, float, str, bool or None (use a dict {name: part} to choose between parts)"
    )


class Hyperparameter:
    """Anything whose value is known only once an architecture is drawn."""

    def resolve(self, ctx: Resolver) -> Any:  # pragma: no cover - interface
        raise NotImplementedError

    def hyperparameters(self) -> Iterator[Choice]:  # pragma: no cover - interface
        raise NotImplementedError


class Choice(Hyperparameter):
    """One decision among plain values, named by a label path."""

    @classmethod
    def at(cls, path: str, options: list[Scalar]) -> Choice:
        """Return a choice with an already-scoped label path (for decisions the Space adds)."""
        choice = cls("x", options)
        choice.label, choice.path = path.rpartition("/")[2], path
        return choice

    def __init__(self, label: str, options: list[Scalar]) -> None:
        self.label = check_label(label)
        self.path = join(current_scope(), label)
        if not isinstance(options, list | tuple) or len(options) == 0:
            raise SpaceError(f"choice '{self.path}' has no options: give a non-empty list or dict")
        self.keys: tuple[Scalar, ...] = tuple(
            check_scalar(o, f"choice '{self.path}'") for o in options
        )
        if len(set(map(repr, self.keys))) != len(self.keys):
            raise SpaceError(f"choice '{self.path}' lists an option twice: {list(self.keys)}")

    def resolve(self, ctx: Resolver) -> Any:
        return ctx.decide(self)

    def hyperparameters(self) -> Iterator[Choice]:
        yield self

    def __repr__(self) -> str:
        return f"choice({self.path!r}, {list(self.keys)!r})"


def one_object_per_label(choices: Iterable[Choice]) -> dict[str, Choice]:
    """Return label path -> its decision, in first-seen order; raise if two objects share a path.

    A label path is one decision, and sharing comes only from reusing one object: two objects made
    with one label in one scope would otherwise be merged silently (same options) or clash at the first
    draw (different options).
    """
    found: dict[str, Choice] = {}
    for c in choices:
        first = found.setdefault(c.path, c)
        if first is not c:
            raise SpaceError(_clash(first, c))
    return found


def _clash(first: Choice, second: Choice) -> str:
    if first.keys == second.keys:
        what = (f"label '{first.path}' is given to two different hyperparameters in the same scope "
                f"(both with options {list(first.keys)})")
    else:
        what = (f"label '{first.path}' is reused with different options: {list(first.keys)} and "
                f"{list(second.keys)}")
    return (f"{what}; to share one decision, create it once and pass that same object everywhere "
            f"(x = S.choice('{first.label}', ...)); for separate decisions, give each its own label "
            "or create them in different scopes (S.scope, S.repeat)")


class Dependent(Hyperparameter):
    """A value computed from other hyperparameters (e.g. `expand * width`); not a decision itself."""

    def __init__(self, fn: Callable[..., Any], **hyperparameters: Any) -> None:
        if not callable(fn):
            raise SpaceError(f"dependent(...) needs a function as its first argument, got {fn!r}")
        self.fn = fn
        self.inputs = hyperparameters

    def resolve(self, ctx: Resolver) -> Any:
        return self.fn(**{k: ctx.value(v) for k, v in self.inputs.items()})

    def hyperparameters(self) -> Iterator[Choice]:
        for v in self.inputs.values():
            if isinstance(v, Hyperparameter):
                yield from v.hyperparameters()

    def __repr__(self) -> str:
        return f"dependent({getattr(self.fn, '__qualname__', self.fn)!r}, {self.inputs!r})"


class NeedDecision(Exception):  # noqa: N818 - control flow, not an error
    """Raised inside an expansion when a decision has no value yet; the walker decides and retries."""

    def __init__(self, choice: Choice) -> None:
        self.choice = choice


class Resolver:
    """Reads decision values during a walk; asks for a decision the first time a label is needed."""

    def __init__(self, values: Mapping[str, Any], extra: Mapping[int, Choice] | None = None) -> None:
        self.values = values
        self.options: dict[str, tuple] = {}
        # decisions the Space attaches to nodes (a layer's precision), keyed by id(node)
        self.extra: Mapping[int, Choice] = extra or {}
        self.policy: dict[str, Any] = {}  # filled while compiling: module name -> precision

    def value(self, x: Any) -> Any:
        """Return the concrete value of a hyperparameter, or `x` itself if it is a plain value."""
        return x.resolve(self) if isinstance(x, Hyperparameter) else x

    def decide(self, choice: Choice) -> Any:
        """Return the chosen option of `choice`, raising NeedDecision if it is still open."""
        known = self.options.setdefault(choice.path, choice.keys)
        if known != choice.keys:
            raise SpaceError(
                f"label '{choice.path}' is reused with different options: {list(known)} and "
                f"{list(choice.keys)}; pass the same object to share a decision, or use another label"
            )
        if choice.path not in self.values:
            raise NeedDecision(choice)
        return self.values[choice.path]
