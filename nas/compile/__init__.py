"""Compile an assigned space into a plain `torch.nn.Module` (no nas code is needed to run it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import torch
from torch import nn

from nas.compile.builder import compile_node
from nas.space.hyper import Resolver
from nas.space.nodes import Node


class Compilable(Protocol):
    """What the compiler reads of a space (`nas.space.Space` is one; the compiler sits below it)."""

    root: Node
    input_shape: tuple[int, ...]

    def precision_decisions(self) -> dict[int, Any]: ...


def build(space: Compilable, arch: Mapping[str, Any]) -> nn.Module:
    """Return a fresh module for a validated architecture of `space` (identity if it is empty)."""
    module, _ = compile_node(space.root, Resolver(arch, space.precision_decisions()), space.input_shape, "")
    return module if module is not None else nn.Identity()


def quant_policy(space: Compilable, arch: Mapping[str, Any]) -> dict[str, str]:
    """Return {module name: precision} for the quantizable layers of the architecture's model."""
    ctx = Resolver(arch, space.precision_decisions())
    with torch.device("meta"):  # only the names are needed: skip allocating and initialising weights
        compile_node(space.root, ctx, space.input_shape, "")
    return dict(ctx.policy)
