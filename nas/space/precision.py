"""Quantization policies as decisions (SimQ-NAS): one precision per quantizable layer, or one global.

A policy is part of the Architecture like any other decision, so every searcher, the store and the
dashboard handle it unchanged. A layer's decision is active only when the layer exists in the
architecture. Labels are static, `quant/<creation scope>/<kind><k>` (k counts the layers of that
kind created in that scope, in the space's traversal order), so encoders see them as any decision,
and a layer node used several times (a shared cell) has one precision, like its other decisions.
Only the built-in conv2d / depthwise_conv2d / linear layers are quantizable; layers inside a user's
`S.op` stay in fp32.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from nas.errors import SpaceError
from nas.space.hyper import Choice, join
from nas.space.nodes import Layer, Node

QUANTIZABLE = ("conv2d", "depthwise_conv2d", "linear")
PREFIX = "quant"


@dataclass(frozen=True)
class Quantization:
    """Which precisions a space may choose for its layers, and at what granularity."""

    options: tuple[str, ...]
    granularity: str = "layer"  # "layer": one decision per layer; "global": one for the model

    def __post_init__(self) -> None:
        if not self.options or not all(isinstance(o, str) for o in self.options):
            raise SpaceError(f"quantization options are precision names such as 'fp32', 'int8', "
                             f"got {list(self.options)}")
        if self.granularity not in ("layer", "global"):
            raise SpaceError(f"quantization granularity {self.granularity!r}: valid are 'layer', 'global'")

    def decisions(self, nodes: Iterable[Node]) -> dict[int, Choice]:
        """Return id(layer node) -> its precision decision, for the quantizable layers in `nodes`."""
        layers = [n for n in nodes if isinstance(n, Layer) and n.kind in QUANTIZABLE and n.factory is None]
        if self.granularity == "global":
            shared = Choice.at(PREFIX, list(self.options))
            return {id(n): shared for n in layers}
        seen: Counter[tuple[str, str]] = Counter()
        out = {}
        for n in layers:
            k = seen[(n.scope, n.hint)]
            seen[(n.scope, n.hint)] += 1
            out[id(n)] = Choice.at(join(PREFIX, join(n.scope, f"{n.hint}{k}")), list(self.options))
        return out


def per_layer(options: Sequence[str] = ("fp32", "int8")) -> Quantization:
    """Return a policy with one precision decision per quantizable layer (SimQ-NAS's choice)."""
    return Quantization(tuple(options), "layer")


def global_precision(options: Sequence[str] = ("fp32", "int8")) -> Quantization:
    """Return a policy with one precision for the whole model (coarse, for big spaces)."""
    return Quantization(tuple(options), "global")
