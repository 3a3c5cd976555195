"""Compile an assigned space into a plain `torch.nn.Module` (no nas code is needed to run it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from torch import nn

from nas.compile.builder import compile_node
from nas.space.hyper import Resolver

if TYPE_CHECKING:
    from nas.space.space import Space


def build(space: Space, arch: Mapping[str, Any]) -> nn.Module:
    """Return a fresh module for a validated architecture of `space` (identity if it is empty)."""
    module, _ = compile_node(space.root, Resolver(arch), space.input_shape, "")
    return module if module is not None else nn.Identity()


def output_shape(space: Space, arch: Mapping[str, Any]) -> tuple[int, ...]:
    """Return the output shape (without batch) of the architecture's model."""
    return compile_node(space.root, Resolver(arch), space.input_shape, "")[1]
