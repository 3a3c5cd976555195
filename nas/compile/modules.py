"""The few torch modules the compiler adds to PyTorch's own; each is TorchScript- and export-friendly."""

from __future__ import annotations

from typing import List  # noqa: UP035 - TorchScript needs typing.List

import torch
from torch import nn


class Residual(nn.Module):
    """x + body(x)."""

    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Parallel(nn.Module):
    """Branches on one input, merged by sum or by concatenation along the channel dimension."""

    def __init__(self, branches: list[nn.Module], merge: str) -> None:
        super().__init__()
        self.branches = nn.ModuleList(branches)
        self.concat = merge == "concat"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs: List[torch.Tensor] = []  # noqa: UP006 - TorchScript needs typing.List
        for branch in self.branches:
            outs.append(branch(x))
        if self.concat:
            return torch.cat(outs, dim=1)
        out = outs[0]
        for o in outs[1:]:
            out = out + o
        return out


class Shallow(nn.Module):
    """x + sum_k block_k(x): the shallow layout of "Make Deep Networks Shallow Again"."""

    def __init__(self, blocks: list[nn.Module]) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        for block in self.blocks:
            out = out + block(x)
        return out


class Zero(nn.Module):
    """Zeros shaped like the input (an edge that carries nothing)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


class GlobalAvgPool(nn.Module):
    """Mean over the spatial positions, (N, C, H, W) -> (N, C)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))


class TokenMean(nn.Module):
    """Mean over the tokens, (N, L, D) -> (N, D)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=1)
