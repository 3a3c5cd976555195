"""Logit distortion of many variants of one layer's weight, running only the network's tail.

Pruning one layer leaves everything before it unchanged, so the activations entering the layer
are computed once; the layer is applied with K weight variants, the K outputs are stacked along
the batch, and only the nodes downstream of the layer (found on a ``torch.fx`` trace) run, once
for all K. Inputs that a downstream node takes from upstream (a residual's identity branch) are
repeated K times along the batch. A model fx cannot trace, or whose tail does not keep the batch
first, falls back to one full forward per variant.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import fx, nn
from torch.func import functional_call


def per_sample_distortion(out: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Return the mean squared logit error per sample, shape (K, N), for out of shape (K*N, ...)."""
    n = ref.shape[0]
    diff = out.reshape(-1, n, ref[0].numel()) - ref.reshape(1, n, -1)
    return diff.pow(2).mean(dim=2)


def reduce_distortion(per_sample: torch.Tensor, how: str) -> torch.Tensor:
    """Return the per-variant distortion: mean or worst case over the calibration samples."""
    return per_sample.mean(dim=1) if how == "mean" else per_sample.amax(dim=1)


def _map(value: Any, fn) -> Any:
    return fx.node.map_arg(value, fn)


@dataclass
class _Plan:
    """What one layer's variants need: the downstream nodes, and the upstream values they read."""

    name: str
    tail: list[fx.Node]  # nodes downstream of the layer (the layer's own calls included)
    upstream: dict[fx.Node, Any]  # values computed once, read by tail nodes
    batchy: set[fx.Node]  # upstream nodes that carry the batch dimension
    last_use: dict[fx.Node, fx.Node]  # tail node after which a tail value is dead
    repeated: dict[tuple[fx.Node, int], Any] = field(default_factory=dict)


class TailRunner:
    """Evaluates weight variants of one layer at a time on a fixed calibration batch."""

    def __init__(self, model: nn.Module, calib: torch.Tensor, max_batch: int = 256,
                 reference: torch.Tensor | None = None):
        self.model = model
        self.calib = calib
        self.max_batch = max_batch
        with torch.no_grad():
            # distortion is measured against ``reference`` (e.g. the dense model's logits while
            # a partly pruned model is pruned further), by default against the model's own
            self.ref = model(calib) if reference is None else reference
        self.graph = self._trace(model)
        self._plan: _Plan | None = None

    @staticmethod
    def _trace(model: nn.Module) -> fx.GraphModule | None:
        try:
            gm = fx.symbolic_trace(model)
        except Exception:  # noqa: BLE001 - any tracing failure means "use the slow path"
            return None
        placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
        return gm if len(placeholders) == 1 else None

    def distortions(self, name: str, weights: Sequence[torch.Tensor], how: str) -> torch.Tensor:
        """Return the distortion (mean or worst per-sample logit MSE) of each weight variant."""
        n = self.calib.shape[0]
        chunk = max(1, self.max_batch // n)
        out = []
        with torch.no_grad():
            for start in range(0, len(weights), chunk):
                group = list(weights[start : start + chunk])
                logits = self._fast(name, group) if self.graph is not None else None
                if logits is None:
                    logits = torch.cat([self._full(name, w) for w in group])
                out.append(reduce_distortion(per_sample_distortion(logits, self.ref), how))
        self._plan = None
        return torch.cat(out) if out else torch.zeros(0)

    def _full(self, name: str, weight: torch.Tensor) -> torch.Tensor:
        return functional_call(self.model, {f"{name}.weight": weight}, (self.calib,))

    def _fast(self, name: str, weights: list[torch.Tensor]) -> torch.Tensor | None:
        n, k = self.calib.shape[0], len(weights)
        try:
            if self._plan is None or self._plan.name != name:
                self._plan = self._prepare(name)
            logits = self._run(self._plan, weights)
        except (RuntimeError, TypeError, ValueError, IndexError, KeyError):
            logits = None
        if not isinstance(logits, torch.Tensor) or logits.shape[0] != k * n:
            self.graph = None  # the tail does not batch cleanly: stay on the slow path
            return None
        return logits

    def _prepare(self, name: str) -> _Plan:
        gm = self.graph
        nodes = list(gm.graph.nodes)
        batchy: set[fx.Node] = set()
        tail: list[fx.Node] = []
        desc: set[fx.Node] = set()
        for node in nodes:
            ins = node.all_input_nodes
            if node.op == "placeholder" or any(i in batchy for i in ins):
                batchy.add(node)
            hit = node.op == "call_module" and node.target == name
            if node.op != "output" and (hit or any(i in desc for i in ins)):
                desc.add(node)
                tail.append(node)
        needed = {i for node in tail + nodes[-1:] for i in node.all_input_nodes if i not in desc}
        last_use = {i: node for node in nodes for i in node.all_input_nodes}
        env: dict[fx.Node, Any] = {}
        modules = dict(gm.named_modules())
        for node in nodes:
            if node in desc or node.op == "output":
                continue
            args, kwargs = _map(node.args, env.__getitem__), _map(node.kwargs, env.__getitem__)
            env[node] = self.calib if node.op == "placeholder" else _eval(node, args, kwargs, modules, gm)
            for i in node.all_input_nodes:  # free what neither the prefix nor the tail reads again
                if last_use.get(i) is node and i not in needed:
                    env.pop(i, None)
        upstream = {i: env[i] for i in needed}
        output = nodes[-1]
        tail_last = {i: node for node in tail for i in node.all_input_nodes if i in desc}
        tail_last = {i: node for i, node in tail_last.items() if i not in output.all_input_nodes}
        return _Plan(name, tail, upstream, batchy & needed, tail_last)

    def _run(self, plan: _Plan, weights: list[torch.Tensor]) -> Any:
        gm, n, k = self.graph, self.calib.shape[0], len(weights)
        modules = dict(gm.named_modules())
        module = modules[plan.name]
        env: dict[fx.Node, Any] = {}

        def read(i: fx.Node) -> Any:
            if i in env:
                return env[i]
            key = (i, k)
            if key not in plan.repeated:
                v = plan.upstream[i]
                ok = i in plan.batchy and isinstance(v, torch.Tensor) and v.dim() > 0
                ok = ok and v.shape[0] == n
                # upstream activations enter the tail once per variant, stacked on the batch
                plan.repeated[key] = v.repeat(k, *([1] * (v.dim() - 1))) if ok else v
            return plan.repeated[key]

        for node in plan.tail:
            args, kwargs = _map(node.args, read), _map(node.kwargs, read)
            if node.op == "call_module" and node.target == plan.name:
                parts = args[0].chunk(k)
                env[node] = torch.cat(
                    [
                        functional_call(module, {"weight": w}, (p, *args[1:]))
                        for w, p in zip(weights, parts, strict=True)
                    ]
                )
            else:
                env[node] = _eval(node, args, kwargs, modules, gm)
            for i in node.all_input_nodes:  # K copies of an activation add up: free early
                if plan.last_use.get(i) is node:
                    env.pop(i, None)
        output = list(gm.graph.nodes)[-1]
        return _map(output.args[0], read)


def _eval(node: fx.Node, args, kwargs, modules: dict[str, nn.Module], gm: fx.GraphModule) -> Any:
    if node.op == "call_module":
        return modules[node.target](*args, **kwargs)
    if node.op == "call_function":
        return node.target(*args, **kwargs)
    if node.op == "call_method":
        return getattr(args[0], node.target)(*args[1:], **kwargs)
    if node.op == "get_attr":
        value: Any = gm
        for part in node.target.split("."):
            value = getattr(value, part)
        return value
    raise TypeError(f"unexpected fx node {node.op}")
