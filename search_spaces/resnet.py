"""A small ResNet: stages of residual basic blocks, each stage deep or shallow.

Per stage (labels `stage{i}/...`): the width, the number of blocks, the kernel of each block
(`stage{i}/blocks[j]/kernel`) and the layout (`stage{i}/layout`): *deep* chains the blocks, each
with its skip connection (x -> x + F_1(x) -> ...); *shallow* applies them side by side to the same
input (x + sum_k F_k(x)), as in "Make Deep Networks Shallow Again". A stage opens with a
transition conv (stride 2 after the first stage) to its width. Sized for Fashion-MNIST on a CPU.
"""

from __future__ import annotations

from nas import space as S
from nas.errors import SpaceError

WIDTHS = ((16, 24, 32), (32, 48, 64), (64, 96, 128))


def basic_block(width: S.Choice, kernels: tuple[int, ...]) -> S.Node:
    """Return F(x) of a basic block: conv-bn-relu-conv-bn at `width` (the layout adds the skip)."""
    kernel = S.choice("kernel", list(kernels))  # one decision per block, used by both convs
    return S.sequential(
        conv1=S.conv2d(width, kernel_size=kernel, bias=False), bn1=S.batch_norm(), relu=S.relu(),
        conv2=S.conv2d(width, kernel_size=kernel, bias=False), bn2=S.batch_norm(),
    )


def stage(i: int, widths: tuple[int, ...], depths: tuple[int, ...], kernels: tuple[int, ...]
          ) -> S.Node:
    """Return stage `i`: a transition to the chosen width, then the blocks in the chosen layout."""
    with S.scope(f"stage{i}"):
        width = S.choice("width", list(widths))
        blocks = S.repeat("blocks", list(depths), lambda j: basic_block(width, kernels))
        return S.sequential(
            transition=S.sequential(S.conv2d(width, 3, stride=1 if i == 0 else 2, bias=False),
                                    S.batch_norm(), S.relu()),
            blocks=S.layout("layout", blocks, ["deep", "shallow"]),
            relu=S.relu(),
        )


def space(num_classes: int = 10, input_shape: tuple[int, ...] = (1, 28, 28),
          widths: tuple[tuple[int, ...], ...] = WIDTHS, depths: tuple[int, ...] = (1, 2, 3),
          kernels: tuple[int, ...] = (3, 5), stem_width: int = 16) -> S.Space:
    """Return the ResNet space: one stage per entry of `widths` (the width options of that stage)."""
    if not widths or any(not w for w in widths):
        raise SpaceError(f"resnet space: widths={widths!r}; give one non-empty tuple per stage")
    body = S.sequential(
        stem=S.sequential(S.conv2d(stem_width, 3, bias=False), S.batch_norm(), S.relu()),
        **{f"stage{i}": stage(i, tuple(w), tuple(depths), tuple(kernels))
           for i, w in enumerate(widths)},
        head=S.sequential(S.global_avg_pool(), S.linear(num_classes)),
    )
    return S.Space(body, input_shape=tuple(input_shape), name="resnet")
