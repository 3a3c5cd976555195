"""Draw a compiled model as Graphviz DOT text (Streamlit renders it in the browser)."""

from __future__ import annotations

import torch
from torch import fx

MAX_NODES = 400  # beyond this a drawing is unreadable; the module tree is shown instead

_ARGS = ("in_channels", "out_channels", "kernel_size", "stride", "groups", "in_features",
         "out_features", "num_features", "p", "normalized_shape", "embed_dim", "num_heads")


def _quote(text: str) -> str:
    # Backslashes are left alone: labels use DOT's own \n line breaks.
    return '"' + text.replace('"', '\\"') + '"'


def _describe(module: torch.nn.Module) -> str:
    """Return the module's class and its shape-defining arguments, e.g. 'Conv2d 16→32 k3'."""
    parts = [type(module).__name__]
    for name in _ARGS:
        value = getattr(module, name, None)
        if isinstance(value, (int, float, tuple)) and not isinstance(value, bool):
            parts.append(f"{name}={value[0] if isinstance(value, tuple) and len(set(value)) == 1 else value}")
    return "\\n".join([parts[0], " ".join(parts[1:])]) if len(parts) > 1 else parts[0]


def _node_label(node: fx.Node, modules: dict[str, torch.nn.Module]) -> tuple[str, str]:
    """Return (label, fill colour) for one FX node."""
    if node.op == "call_module":
        return f"{node.target}\\n{_describe(modules[str(node.target)])}", "lightblue"
    if node.op in ("call_function", "call_method"):
        name = getattr(node.target, "__name__", str(node.target))
        return name, "lightyellow"
    if node.op == "placeholder":
        return f"input: {node.target}", "palegreen"
    if node.op == "output":
        return "output", "palegreen"
    return f"{node.op}: {node.target}", "white"


def fx_dot(model: torch.nn.Module) -> str:
    """Return the model's traced dataflow graph as DOT; raises if torch.fx cannot trace it."""
    gm = fx.symbolic_trace(model)
    nodes = list(gm.graph.nodes)
    if len(nodes) > MAX_NODES:
        raise ValueError(f"{len(nodes)} nodes is too many to draw")
    modules = dict(gm.named_modules())
    lines = ["digraph model {", "  rankdir=TB;", '  node [shape=box, style="rounded,filled", '
             'fontname="Helvetica", fontsize=10];']
    for node in nodes:
        text, colour = _node_label(node, modules)
        lines.append(f"  {_quote(node.name)} [label={_quote(text)}, fillcolor={_quote(colour)}];")
        for arg in node.all_input_nodes:
            lines.append(f"  {_quote(arg.name)} -> {_quote(node.name)};")
    lines.append("}")
    return "\n".join(lines)


def tree_dot(model: torch.nn.Module) -> str:
    """Return the module tree (parent -> child) as DOT, for models torch.fx cannot trace."""
    lines = ["digraph model {", "  rankdir=LR;", '  node [shape=box, style="rounded,filled", '
             'fillcolor="lightblue", fontname="Helvetica", fontsize=10];']
    for name, module in list(model.named_modules())[:MAX_NODES]:
        node = name or "model"
        lines.append(f"  {_quote(node)} [label={_quote(node + chr(92) + 'n' + _describe(module))}];")
        if name:
            parent = name.rpartition(".")[0] or "model"
            lines.append(f"  {_quote(parent)} -> {_quote(node)};")
    lines.append("}")
    return "\n".join(lines)


def model_dot(model: torch.nn.Module) -> tuple[str, str]:
    """Return (DOT text, 'dataflow' or 'module tree'): the traced graph when torch.fx can trace it."""
    try:
        return fx_dot(model), "dataflow"
    except Exception:  # noqa: BLE001 - any tracing failure means: draw the module tree instead
        return tree_dot(model), "module tree"
