"""A small ViT: patch embedding, pre-norm transformer blocks, mean of the tokens, linear head.

Decisions: `patch` (the patch size, also the stride of the embedding conv), `dim` (the token
width, shared by every block: the residuals need it), `blocks`, and per block
`blocks[j]/heads` and `blocks[j]/mlp_ratio` (the MLP's hidden width is `S.dependent` on `dim` and
the ratio). Attention and the (C, H, W) -> (L, D) token reshape are user ops (`S.op`) built from
the two small TorchScript-friendly modules below. No position embedding, to keep the space
input-size agnostic; the patch conv's receptive fields carry position locally.
"""

from __future__ import annotations

import torch
from torch import nn

from nas import space as S
from nas.errors import SpaceError


class Tokens(nn.Module):
    """(N, C, H, W) -> (N, H*W, C): one token per position."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(2).transpose(1, 2)


class SelfAttention(nn.Module):
    """Multi-head self-attention over (N, L, D) tokens, returning only the attended values."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.attn(x, x, x, need_weights=False)
        return out


def tokens(in_shape: tuple[int, ...]) -> nn.Module:
    """Return the reshape of an image (C, H, W) into tokens (H*W, C)."""
    if len(in_shape) != 3:
        raise SpaceError(f"tokens needs an image (C, H, W) input, got shape {in_shape}")
    return Tokens()


def attention(in_shape: tuple[int, ...], heads: int) -> nn.Module:
    """Return self-attention over tokens of width in_shape[-1] with `heads` heads."""
    dim = in_shape[-1]
    if len(in_shape) != 2 or dim % heads:
        raise SpaceError(f"attention with {heads} heads needs tokens (L, D) with D divisible by "
                         f"heads, got shape {in_shape}")
    return SelfAttention(dim, heads)


def _times(dim: int, ratio: int) -> int:
    return dim * ratio


def transformer_block(dim: S.Choice, heads: tuple[int, ...], mlp_ratios: tuple[int, ...]) -> S.Node:
    """Return a pre-norm block: x + attn(ln(x)), then x + mlp(ln(x))."""
    hidden = S.dependent(_times, dim=dim, ratio=S.choice("mlp_ratio", list(mlp_ratios)))
    return S.sequential(
        attn=S.residual(S.sequential(ln=S.layer_norm(),
                                     attn=S.op(attention, heads=S.choice("heads", list(heads))))),
        mlp=S.residual(S.sequential(ln=S.layer_norm(), fc1=S.linear(hidden), act=S.gelu(),
                                    fc2=S.linear(dim))),
    )


def space(num_classes: int = 10, input_shape: tuple[int, ...] = (1, 28, 28),
          patches: tuple[int, ...] = (4, 7), dims: tuple[int, ...] = (32, 64),
          depths: tuple[int, ...] = (1, 2, 3, 4), heads: tuple[int, ...] = (1, 2, 4),
          mlp_ratios: tuple[int, ...] = (1, 2, 4)) -> S.Space:
    """Return the ViT space; every option in `heads` must divide every option in `dims`."""
    bad = [(d, h) for d in dims for h in heads if d % h]
    if bad:
        raise SpaceError(f"vit space: heads must divide the token width; {bad} do not (dim, heads)")
    patch = S.choice("patch", list(patches))
    dim = S.choice("dim", list(dims))
    body = S.sequential(
        embed=S.sequential(conv=S.conv2d(dim, kernel_size=patch, stride=patch, padding=0),
                           tokens=S.op(tokens)),
        blocks=S.repeat("blocks", list(depths), lambda j: transformer_block(dim, heads, mlp_ratios)),
        head=S.sequential(ln=S.layer_norm(), pool=S.global_avg_pool(), fc=S.linear(num_classes)),
    )
    return S.Space(body, input_shape=tuple(input_shape), name="vit")
