"""Drawings of compiled models, made at trial time and kept in the database as plain data.

A database is data: the dashboard must show an architecture without importing the space code
that the database names. The search runs that code anyway, so each trial records what a drawing
needs (`model_drawing`) and the dashboard turns it into Graphviz DOT (`drawing_dot`). The stored
form is nodes and edges, not DOT text: the DOT is written here with every label quoted, so a
doctored database cannot smuggle Graphviz attributes (links, scripts) into the page.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import fx

from nas.errors import StoreError

VERSION = 1
MAX_NODES = 400  # beyond this a drawing is unreadable; the (cut) module tree is drawn instead
MAX_EDGES = 16 * MAX_NODES
MAX_TEXT = 8_000  # characters of str(model): the layer listing, kept small since every trial holds one
MAX_LABEL = 200
KINDS = {"dataflow": "TB", "module tree": "LR"}  # kind -> DOT rankdir
ROLES = {"module": "lightblue", "function": "lightyellow", "io": "palegreen", "other": "white"}

_ARGS = ("in_channels", "out_channels", "kernel_size", "stride", "groups", "in_features",
         "out_features", "num_features", "p", "normalized_shape", "embed_dim", "num_heads")


def _describe(module: torch.nn.Module) -> str:
    """Return the module's class and its shape-defining arguments, e.g. 'Conv2d\\nkernel_size=3'."""
    parts = [type(module).__name__]
    for name in _ARGS:
        value = getattr(module, name, None)
        if isinstance(value, (int, float, tuple)) and not isinstance(value, bool):
            parts.append(f"{name}={value[0] if isinstance(value, tuple) and len(set(value)) == 1 else value}")
    return "\n".join([parts[0], " ".join(parts[1:])]) if len(parts) > 1 else parts[0]


def _node(node: fx.Node, modules: dict[str, torch.nn.Module]) -> dict[str, str]:
    """Return one FX node as {"label", "role"}."""
    if node.op == "call_module":
        return {"label": f"{node.target}\n{_describe(modules[str(node.target)])}", "role": "module"}
    if node.op in ("call_function", "call_method"):
        return {"label": getattr(node.target, "__name__", str(node.target)), "role": "function"}
    if node.op == "placeholder":
        return {"label": f"input: {node.target}", "role": "io"}
    if node.op == "output":
        return {"label": "output", "role": "io"}
    return {"label": f"{node.op}: {node.target}", "role": "other"}


def _dataflow(model: torch.nn.Module) -> tuple[list[dict], list[list[int]]]:
    """Return the traced dataflow graph's (nodes, edges); raises if torch.fx cannot trace it."""
    if sum(1 for _ in model.modules()) > MAX_NODES:  # too big to draw: do not pay for the trace
        raise ValueError("too many modules to draw")
    # Tracer.trace gives the graph alone: a GraphModule (symbolic_trace) would also generate and
    # compile Python code for it, several times the cost, on every trial. (No catch_warnings
    # around it either: resetting the warning filters costs more than the trace.)
    graph = fx.Tracer().trace(model)
    nodes = list(graph.nodes)
    if len(nodes) > MAX_NODES:
        raise ValueError(f"{len(nodes)} nodes is too many to draw")
    modules, index = dict(model.named_modules()), {n: i for i, n in enumerate(nodes)}
    edges = [[index[a], i] for i, n in enumerate(nodes) for a in n.all_input_nodes]
    if len(edges) > MAX_EDGES:
        raise ValueError(f"{len(edges)} edges is too many to draw")
    return [_node(n, modules) for n in nodes], edges


def _module_tree(model: torch.nn.Module) -> tuple[list[dict], list[list[int]], bool]:
    """Return the module tree's (nodes, parent -> child edges, whether it was cut at MAX_NODES)."""
    named = list(model.named_modules())
    nodes, edges, index = [], [], {}
    for name, module in named[:MAX_NODES]:
        index[name] = len(nodes)
        nodes.append({"label": f"{name or 'model'}\n{_describe(module)}", "role": "module"})
        parent = name.rpartition(".")[0]
        if name and parent in index:
            edges.append([index[parent], index[name]])
    return nodes, edges, len(named) > MAX_NODES


def model_drawing(model: torch.nn.Module) -> dict[str, Any]:
    """Return a JSON-able drawing of `model`: its traced dataflow graph, else its module tree."""
    try:
        nodes, edges = _dataflow(model)
        kind, cut = "dataflow", False
    except Exception:  # noqa: BLE001 - any tracing failure means: draw the module tree instead
        nodes, edges, cut = _module_tree(model)
        kind = "module tree"
    text = str(model)
    return {"version": VERSION, "kind": kind, "nodes": nodes, "edges": edges, "truncated": cut,
            "text": text[:MAX_TEXT], "text_truncated": len(text) > MAX_TEXT}


def _quote(text: str) -> str:
    """Return `text` as a quoted DOT string: newlines become DOT line breaks, nothing else escapes."""
    text = "".join(c for c in text[:MAX_LABEL] if c == "\n" or c.isprintable())
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _checked(drawing: Mapping[str, Any]) -> tuple[str, list, list]:
    """Return (kind, nodes, edges) of a stored drawing; StoreError if it is not one."""
    if not isinstance(drawing, Mapping) or drawing.get("version") != VERSION:
        raise StoreError(f"not a model drawing of version {VERSION}")
    kind, nodes, edges = drawing.get("kind"), drawing.get("nodes"), drawing.get("edges")
    if kind not in KINDS or not isinstance(nodes, list) or not isinstance(edges, list):
        raise StoreError(f"a model drawing needs kind in {list(KINDS)}, a node list and an edge list")
    if len(nodes) > MAX_NODES or len(edges) > MAX_EDGES:
        raise StoreError(f"a model drawing has at most {MAX_NODES} nodes and {MAX_EDGES} edges; this one "
                         f"has {len(nodes)} and {len(edges)}")
    if not all(isinstance(n, Mapping) and isinstance(n.get("label"), str) for n in nodes):
        raise StoreError("every node of a model drawing needs a text label")
    ok = range(len(nodes))
    if not all(isinstance(e, list) and len(e) == 2 and all(type(i) is int and i in ok for i in e)
               for e in edges):
        raise StoreError("every edge of a model drawing is a pair of node numbers")
    return kind, nodes, edges


def drawing_dot(drawing: Mapping[str, Any]) -> str:
    """Return Graphviz DOT text for a stored drawing; StoreError if the drawing is malformed."""
    kind, nodes, edges = _checked(drawing)
    lines = ["digraph model {", f"  rankdir={KINDS[kind]};",
             '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10];']
    for i, node in enumerate(nodes):
        role = node.get("role")
        colour = ROLES.get(role, ROLES["other"]) if isinstance(role, str) else ROLES["other"]
        lines.append(f'  n{i} [label={_quote(node["label"])}, fillcolor="{colour}"];')
    lines.extend(f"  n{a} -> n{b};" for a, b in edges)
    lines.append("}")
    return "\n".join(lines)


__all__ = ["MAX_NODES", "MAX_TEXT", "drawing_dot", "model_drawing"]
