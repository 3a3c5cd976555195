"""The NAS-Bench-201 space: one 4-node cell (6 edges x 5 ops, 15,625 cells) in NB201's macro skeleton.

Skeleton (Dong & Yang, 2020): stem conv 3x3 (16) + BN; three stages of `cells_per_stage` copies of
the one cell at widths 16, 32, 64, with a residual reduction block (stride 2) between stages; BN +
ReLU, global average pool, linear. The cell's six decisions are labelled "1<-0" ... "3<-2" at top
scope and shared by every copy (one `S.graph` node used in every position), as in the benchmark.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from nas import space as S
from nas.errors import SpaceError
from nas.evaluate.nb201 import EDGES, OPS, nb201_arch_str

WIDTHS = (16, 32, 64)


class ReLUConvBN(nn.Module):
    """NB201's `nor_conv`: ReLU, convolution without bias, batch norm; keeps the channel count."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> None:
        super().__init__()
        self.relu = nn.ReLU()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride,
                              padding=kernel_size // 2, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(self.relu(x)))


def nor_conv(in_shape: tuple[int, ...], kernel_size: int) -> nn.Module:
    """Return a channel-preserving ReLU-conv-BN for an input of `in_shape` (C, H, W)."""
    # A factory of the input shape: the one cell is used at widths 16, 32 and 64.
    return ReLUConvBN(in_shape[0], in_shape[0], kernel_size)


def _ops() -> dict[str, S.Node]:
    ops = {
        "none": S.zero(),
        "skip_connect": S.identity(),
        "nor_conv_1x1": S.op(nor_conv, kernel_size=1),
        "nor_conv_3x3": S.op(nor_conv, kernel_size=3),
        "avg_pool_3x3": S.avg_pool2d(3, stride=1, padding=1),
    }
    return {name: ops[name] for name in OPS}  # NB201's own order of the ops


def make_cell() -> S.Graph:
    """Return the cell: node j sums the ops on every edge j<-i; node 3 is the output."""
    ops = _ops()  # one description of each op for all six edges (each use still builds its own)
    e = {label: S.choice(label, ops) for label in EDGES}  # labels the NB201 evaluator reads

    @S.graph
    def cell(x0: S.Value) -> S.Value:
        x1 = e["1<-0"](x0)
        x2 = e["2<-0"](x0) + e["2<-1"](x1)
        return e["3<-0"](x0) + e["3<-1"](x1) + e["3<-2"](x2)

    return cell


def reduction(width: int) -> S.Node:
    """Return NB201's residual reduction block (stride 2) to `width` channels."""
    return S.parallel(
        S.sequential(S.relu(), S.conv2d(width, 3, stride=2, bias=False), S.batch_norm(),
                     S.relu(), S.conv2d(width, 3, bias=False), S.batch_norm()),
        S.sequential(S.avg_pool2d(2), S.conv2d(width, 1, bias=False)),
    )


def space(num_classes: int = 10, input_shape: tuple[int, ...] = (3, 32, 32),
          cells_per_stage: int = 5) -> S.Space:
    """Return the NAS-Bench-201 space (5^6 = 15,625 architectures); CIFAR-10-sized by default."""
    if not isinstance(cells_per_stage, int) or cells_per_stage < 1:
        raise SpaceError(f"nb201 space: cells_per_stage={cells_per_stage!r}; give an integer >= 1")
    cell = make_cell()  # one node, used in every position: every copy shares the six decisions
    stages: dict[str, S.Node] = {}
    for i, width in enumerate(WIDTHS):
        if i > 0:
            stages[f"reduce{i}"] = reduction(width)
        stages[f"stage{i}"] = S.sequential(*[cell] * cells_per_stage)
    body = S.sequential(
        stem=S.sequential(S.conv2d(WIDTHS[0], 3, bias=False), S.batch_norm()),
        **stages,
        head=S.sequential(S.batch_norm(), S.relu(), S.global_avg_pool(), S.linear(num_classes)),
    )
    return S.Space(body, input_shape=tuple(input_shape), name="nb201")


def to_nb201_string(arch: Mapping[str, str]) -> str:
    """Return NAS-Bench-201's cell string (e.g. '|nor_conv_3x3~0|+|...|') for an architecture."""
    return nb201_arch_str(arch)
