"""MobileNetV2-style inverted bottlenecks, with dependent hyperparameters for the expanded width.

A block: 1x1 expansion conv to `prev_width * expand` channels, a depthwise k x k conv (stride 2 in
a stage's first block where the stage says so), a 1x1 projection to the stage's width, with batch
norms and ReLUs; blocks after a stage's first keep the shape and get a skip connection. The
expanded width is `S.dependent(...)` on two decisions (the previous width and the block's
expansion ratio), so it is never a decision of its own. Labels: `stage{i}/width`,
`stage{i}/blocks`, `stage{i}/blocks[j]/expand`, `stage{i}/blocks[j]/kernel`.
"""

from __future__ import annotations

from typing import Any

from nas import space as S
from nas.errors import SpaceError

# (width options, stride) per stage; three stride-2 stages take 28x28 down to 4x4.
STAGES: tuple[tuple[tuple[int, ...], int], ...] = (
    ((16, 24), 1), ((24, 32), 2), ((32, 48), 2), ((48, 64), 2),
)


def _times(width: int, expand: int) -> int:
    return width * expand


def inverted_bottleneck(in_width: Any, width: Any, stride: int, expands: tuple[int, ...],
                        kernels: tuple[int, ...]) -> S.Node:
    """Return one block from `in_width` (a value or a decision) to `width` channels."""
    expand = S.choice("expand", list(expands))
    hidden = S.dependent(_times, width=in_width, expand=expand)
    return S.sequential(
        expand=S.sequential(S.conv2d(hidden, 1, bias=False), S.batch_norm(), S.relu()),
        depthwise=S.sequential(S.depthwise_conv2d(S.choice("kernel", list(kernels)), stride=stride,
                                                  bias=False), S.batch_norm(), S.relu()),
        project=S.sequential(S.conv2d(width, 1, bias=False), S.batch_norm()),
    )


def stage(i: int, in_width: Any, options: tuple[int, ...], stride: int, depths: tuple[int, ...],
          expands: tuple[int, ...], kernels: tuple[int, ...]) -> tuple[S.Node, S.Choice]:
    """Return stage `i` and its width decision (the next stage's input width)."""
    with S.scope(f"stage{i}"):
        width = S.choice("width", list(options))

        def block(j: int) -> S.Node:
            if j == 0:  # changes width and maybe resolution: no skip connection
                return inverted_bottleneck(in_width, width, stride, expands, kernels)
            return S.residual(inverted_bottleneck(width, width, 1, expands, kernels))

        return S.repeat("blocks", list(depths), block), width


def space(num_classes: int = 10, input_shape: tuple[int, ...] = (1, 28, 28),
          stages: tuple[tuple[tuple[int, ...], int], ...] = STAGES, depths: tuple[int, ...] = (1, 2, 3),
          expands: tuple[int, ...] = (1, 3, 6), kernels: tuple[int, ...] = (3, 5),
          stem_width: int = 16, head_width: int = 128) -> S.Space:
    """Return the MobileNetV2-style space; `stages` lists (width options, stride) per stage."""
    if not stages or any(not opts or s not in (1, 2) for opts, s in stages):
        raise SpaceError(f"mobilenet space: stages={stages!r}; give ((width options), stride 1|2) "
                         "per stage")
    if min(depths, default=0) < 1:
        raise SpaceError(f"mobilenet space: depths={depths!r}; every stage needs at least one block")
    parts: dict[str, S.Node] = {}
    in_width: Any = stem_width
    for i, (options, stride) in enumerate(stages):
        parts[f"stage{i}"], in_width = stage(i, in_width, tuple(options), stride, tuple(depths),
                                             tuple(expands), tuple(kernels))
    body = S.sequential(
        stem=S.sequential(S.conv2d(stem_width, 3, bias=False), S.batch_norm(), S.relu()),
        **parts,
        head=S.sequential(S.conv2d(head_width, 1, bias=False), S.batch_norm(), S.relu(),
                          S.global_avg_pool(), S.linear(num_classes)),
    )
    return S.Space(body, input_shape=tuple(input_shape), name="mobilenet")
