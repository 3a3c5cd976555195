"""A VGG-style plain stack: stages of conv-bn-relu, max pooling between stages, no skips.

Per stage (labels `stage{i}/...`): the width and the number of conv-bn-relu layers. Plain stacks
of convolutions are what layer-adaptive pruning is measured on. Global average pooling and one
linear layer make the classifier (it fits any input size).
"""

from __future__ import annotations

from nas import space as S
from nas.errors import SpaceError

WIDTHS = ((16, 32), (32, 64), (64, 128))


def conv_bn_relu(width: S.Choice, kernel_size: int = 3) -> S.Node:
    """Return one conv-bn-relu layer at `width`."""
    return S.sequential(conv=S.conv2d(width, kernel_size, bias=False), bn=S.batch_norm(),
                        relu=S.relu())


def space(num_classes: int = 10, input_shape: tuple[int, ...] = (1, 28, 28),
          widths: tuple[tuple[int, ...], ...] = WIDTHS, depths: tuple[int, ...] = (1, 2, 3)
          ) -> S.Space:
    """Return the VGG space: one stage per entry of `widths` (that stage's width options)."""
    if not widths or any(not w for w in widths):
        raise SpaceError(f"vgg space: widths={widths!r}; give one non-empty tuple per stage")
    stages: dict[str, S.Node] = {}
    for i, options in enumerate(widths):
        with S.scope(f"stage{i}"):
            width = S.choice("width", list(options))
            layers = S.repeat("layers", list(depths), lambda j, w=width: conv_bn_relu(w))
        parts = [layers] if i == len(widths) - 1 else [layers, S.max_pool2d(2)]
        stages[f"stage{i}"] = S.sequential(*parts)
    body = S.sequential(**stages, head=S.sequential(S.global_avg_pool(), S.linear(num_classes)))
    return S.Space(body, input_shape=tuple(input_shape), name="vgg")
