"""The search-space language: `from nas import space as S`.

A space is written once in Python; architectures are drawn from it by any searcher and compiled to
plain `torch.nn.Module`s. See README.md for a worked example.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from nas.space.architecture import Architecture
from nas.space.graph import Graph
from nas.space.hyper import Choice, Dependent, Hyperparameter, scope
from nas.space.layers import (
    avg_pool2d,
    batch_norm,
    conv2d,
    depthwise_conv2d,
    dropout,
    flatten,
    gelu,
    global_avg_pool,
    identity,
    layer_norm,
    linear,
    max_pool2d,
    op,
    relu,
    zero,
)
from nas.space.nodes import (
    BranchChoice,
    Layer,
    Layout,
    Node,
    Optional,
    Parallel,
    Repeat,
    Residual,
    Sequential,
)
from nas.space.precision import Quantization, global_precision, per_layer
from nas.space.space import Space
from nas.space.symbolic import Value
from nas.space.walk import Decision


def choice(label: str, options: list[Any] | Mapping[str, Any]) -> Choice:
    """Return one decision: plain values (a hyperparameter), or a dict {name: part} of sub-spaces.

    A list of parts is accepted too (option names are then 0, 1, ...). Passing the returned object
    to several places shares one decision.
    """
    if isinstance(options, Mapping):
        return BranchChoice(label, options)
    if isinstance(options, list | tuple) and options and all(isinstance(o, Node) for o in options):
        return BranchChoice(label, list(options))
    return Choice(label, options)


def dependent(fn: Callable[..., Any], **hyperparameters: Any) -> Dependent:
    """Return a value computed by `fn(**values)` from other hyperparameters (not a decision)."""
    return Dependent(fn, **hyperparameters)


def sequential(*parts: Any, **named_parts: Any) -> Sequential:
    """Return parts applied in order; keyword parts give their submodules those names."""
    names: list[str | None] = [None] * len(parts) + list(named_parts)
    return Sequential([*parts, *named_parts.values()], names)


def optional(label: str, part: Any) -> Optional:
    """Return a part that each architecture includes or leaves out (decision `label`: False/True)."""
    return Optional(label, part)


def repeat(label: str, counts: list[int], fn: Callable[[int], Any]) -> Repeat:
    """Return `n` parts `fn(0) ... fn(n-1)`, n chosen from `counts`; labels inside are `label[i]/...`."""
    return Repeat(label, counts, fn)


def parallel(*branches: Any, merge: str = "sum") -> Parallel:
    """Return branches applied to one input and merged by "sum" or "concat" (channels)."""
    return Parallel(list(branches), merge)


def residual(part: Any) -> Residual:
    """Return `x + part(x)`."""
    return Residual(part)


def graph(fn: Callable[[Value], Value]) -> Graph:
    """Return a DAG part wired by `fn` on a symbolic input (use as a decorator); `+` sums values."""
    return Graph(fn)


def layout(label: str, stack: Any, options: list[str] | tuple[str, ...] = ("deep", "shallow")) -> Layout:
    """Return a choice between a deep layout of `stack`'s blocks and a shallow (parallel) one.

    deep: x -> x + F_1(x) -> ... (each block residual, in sequence);
    shallow: x + sum_k F_k(x) (the same blocks side by side, one broad layer).
    """
    return Layout(label, stack, list(options))


__all__ = [
    "Architecture", "Choice", "Decision", "Dependent", "Graph", "Hyperparameter", "Layer", "Node",
    "Quantization", "Space", "Value", "avg_pool2d", "batch_norm", "choice", "conv2d", "dependent",
    "depthwise_conv2d", "global_precision", "per_layer",
    "dropout", "flatten", "gelu", "global_avg_pool", "graph", "identity", "layer_norm", "layout",
    "linear", "max_pool2d", "op", "optional", "parallel", "relu", "repeat", "residual", "scope",
    "sequential", "zero",
]
