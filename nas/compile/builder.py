"""Assigned space -> `torch.nn.Module`: one compile rule per kind of node, with shape propagation."""

from __future__ import annotations

import operator
import re
from collections import Counter, OrderedDict
from functools import singledispatch

import torch.fx as fx
from torch import nn

from nas.compile import modules as M
from nas.compile.layer_makers import MAKERS, Shape, user_op
from nas.errors import SpaceError
from nas.space.graph import Graph
from nas.space.hyper import Resolver
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

Built = tuple[nn.Module | None, Shape]  # None: the part is absent (an identity)


def ident(hint: str) -> str:
    """Return a Python identifier for a submodule name ('2<-1' -> 'e2_from_1')."""
    name = re.sub(r"\W", "_", hint.replace("<-", "_from_"))
    return f"e{name}" if not name or name[0].isdigit() else name


def unique_names(hints: list[str]) -> list[str]:
    """Return submodule names: the hint itself when unique, hint0, hint1, ... when repeated."""
    counts = Counter(hints)
    seen: Counter[str] = Counter()
    names = []
    for h in hints:
        names.append(h if counts[h] == 1 else f"{h}{seen[h]}")
        seen[h] += 1
    return names


def _at(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def compile_node(node: Node, ctx: Resolver, shape: Shape, where: str) -> Built:
    """Return the module for `node` on inputs of `shape` and its output shape.

    The root's module (``where == ""``: what `Space.build` returns) carries ``.input_shape``, the
    space's shape of one example without the batch dimension, e.g. ``(1, 8, 8)``, so that
    shape-needing tools (``LatencyPredictor.predict``) need not be told it again. A plain tuple
    attribute: state_dict, torch.jit.script and torch.fx tracing ignore it.
    """
    module, out = _compile(node, ctx, shape, where)
    if module is not None and not where and not hasattr(module, "input_shape"):
        # a user's module at the root may already use the name for something else: left alone
        module.input_shape = tuple(shape)
    return module, out


@singledispatch
def _compile(node: Node, ctx: Resolver, shape: Shape, where: str) -> Built:
    """The compile rule of `node`'s kind (registered below), without the root's input_shape."""
    raise SpaceError(f"at '{where}': no compile rule for {type(node).__name__}")


@_compile.register
def _(node: Layer, ctx: Resolver, shape: Shape, where: str) -> Built:
    args = node.resolved(ctx)
    precision = ctx.extra.get(id(node))
    if precision is not None:  # a quantization decision: remember it under the module's name
        ctx.policy[where] = ctx.decide(precision)
    if node.factory is not None:
        return user_op(node.factory, args, shape, where, node.shape_memo)
    return MAKERS[node.kind](args, shape, where)


def _sequence(parts: list[Node], hints: list[str], ctx: Resolver, shape: Shape, where: str
              ) -> tuple[OrderedDict, Shape]:
    mods: OrderedDict[str, nn.Module] = OrderedDict()
    for part, name in zip(parts, unique_names(hints), strict=True):
        module, shape = compile_node(part, ctx, shape, _at(where, name))
        if module is not None:
            mods[name] = module
    return mods, shape


@_compile.register
def _(node: Sequential, ctx: Resolver, shape: Shape, where: str) -> Built:
    hints = [n or ident(p.hint) for p, n in zip(node.parts, node.names, strict=True)]
    mods, shape = _sequence(node.parts, hints, ctx, shape, where)
    return (nn.Sequential(mods) if mods else None), shape


@_compile.register
def _(node: Repeat, ctx: Resolver, shape: Shape, where: str) -> Built:
    parts = node.expand(ctx)
    mods, shape = _sequence(parts, [str(i) for i in range(len(parts))], ctx, shape, where)
    return (nn.Sequential(mods) if mods else None), shape


@_compile.register
def _(node: BranchChoice, ctx: Resolver, shape: Shape, where: str) -> Built:
    (branch,) = node.expand(ctx)
    return compile_node(branch, ctx, shape, where)


@_compile.register
def _(node: Optional, ctx: Resolver, shape: Shape, where: str) -> Built:
    parts = node.expand(ctx)
    return compile_node(parts[0], ctx, shape, where) if parts else (None, shape)


def _same(shape: Shape, out: Shape, what: str, where: str) -> None:
    if out != shape:
        raise SpaceError(
            f"at '{where}': {what} needs its part to keep the shape {shape}, but it gives {out}"
        )


@_compile.register
def _(node: Residual, ctx: Resolver, shape: Shape, where: str) -> Built:
    module, out = compile_node(node.part, ctx, shape, _at(where, "body"))
    _same(shape, out, "residual", where)
    return M.Residual(module or nn.Identity()), shape


@_compile.register
def _(node: Parallel, ctx: Resolver, shape: Shape, where: str) -> Built:
    mods, shapes = [], []
    for i, b in enumerate(node.branches):
        module, out = compile_node(b, ctx, shape, _at(where, f"branches.{i}"))
        mods.append(module or nn.Identity())
        shapes.append(out)
    if node.merge == "sum" and len(set(shapes)) > 1:
        raise SpaceError(f"at '{where}': parallel(merge='sum') branches give shapes {shapes}; "
                         "they must agree (or use merge='concat' for different channel counts)")
    if node.merge == "concat":
        if len({s[1:] for s in shapes}) > 1:
            raise SpaceError(f"at '{where}': parallel(merge='concat') branches give shapes {shapes}; "
                             "all but the channel dimension must agree")
        return M.Parallel(mods, "concat"), (sum(s[0] for s in shapes), *shapes[0][1:])
    return M.Parallel(mods, "sum"), shapes[0]


@_compile.register
def _(node: Layout, ctx: Resolver, shape: Shape, where: str) -> Built:
    kind = ctx.value(node.choice)
    blocks = []
    for i, part in enumerate(node.stack.expand(ctx)):
        # the names the blocks will have inside Shallow / Sequential(Residual) below
        inner = _at(where, f"blocks.{len(blocks)}" if kind == "shallow" else f"{len(blocks)}.body")
        module, out = compile_node(part, ctx, shape, inner)
        if module is None:
            continue
        _same(shape, out, f"the {kind} layout", _at(where, str(i)))
        blocks.append(module)
    if not blocks:
        return None, shape
    if kind == "shallow":
        return M.Shallow(blocks), shape
    return nn.Sequential(OrderedDict((str(i), M.Residual(b)) for i, b in enumerate(blocks))), shape


@_compile.register
def _(node: Graph, ctx: Resolver, shape: Shape, where: str) -> Built:
    ops = node.ops()
    graph, root = fx.Graph(), nn.Module()
    values: list[fx.Node] = []
    shapes: list[Shape] = []
    hints = unique_names([ident(op.op.hint) if isinstance(op.op, Node) else op.op for op in ops])
    for op, name in zip(ops, hints, strict=True):
        if op.op == "input":
            values.append(graph.placeholder("x"))
            shapes.append(shape)
        elif op.op == "add":
            a, b = op.inputs
            if shapes[a] != shapes[b]:
                raise SpaceError(f"at '{where}': adding values of shapes {shapes[a]} and {shapes[b]}")
            values.append(graph.call_function(operator.add, (values[a], values[b])))
            shapes.append(shapes[a])
        else:
            (src,) = op.inputs
            module, out = compile_node(op.op, ctx, shapes[src], _at(where, name))
            if module is None:
                values.append(values[src])
            else:
                root.add_module(name, module)
                values.append(graph.call_module(name, (values[src],)))
            shapes.append(out)
    graph.output(values[-1])
    return fx.GraphModule(root, graph, class_name=ident(node.hint)), shapes[-1]
