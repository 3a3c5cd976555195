"""A small convnet: shared width, per-block kernel and activation, deep or shallow block layout."""

from __future__ import annotations

from nas import space as S


def space(num_classes: int = 10, input_shape: tuple[int, ...] = (1, 8, 8),
          widths: tuple[int, ...] = (16, 32, 64), max_blocks: int = 3) -> S.Space:
    """Return the convnet space (the example of DESIGN.md); digits-sized input by default."""
    width = S.choice("width", list(widths))  # one decision, used by every block

    def block(i: int) -> S.Node:
        return S.sequential(
            S.conv2d(width, kernel_size=S.choice("kernel", [3, 5])),
            S.batch_norm(),
            S.choice("act", {"relu": S.relu(), "gelu": S.gelu()}),
        )

    body = S.sequential(
        stem=S.sequential(S.conv2d(width, kernel_size=3), S.batch_norm(), S.relu()),
        blocks=S.layout("layout", S.repeat("blocks", list(range(1, max_blocks + 1)), block)),
        head=S.sequential(S.global_avg_pool(), S.linear(num_classes)),
    )
    return S.Space(body, input_shape=tuple(input_shape), name="convnet")
