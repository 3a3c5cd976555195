"""How fast the language draws, checks and builds architectures, and how fast the built models run.

For each built-in space: median time per architecture to sample, validate and build (over
`--archs` architectures; "by hand": constructing the hand-written equivalents of the same
architectures), the median number of layers (leaf modules), and the forward time of one
built model next to a hand-written equivalent (same weights copied over, outputs checked equal,
batch 32, timed interleaved, medians).

    PYTHONPATH=. .venv/bin/python benchmarks/compile_speed.py [--archs 50] [--repeats 15]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from search_spaces import convnet, mobilenet, nb201, resnet, vgg, vit

Arch = Mapping[str, Any]


def _cbr(c_in: int, c: int, k: int, stride: int = 1, bias: bool = False) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c, k, stride=stride, padding=k // 2, bias=bias), nn.BatchNorm2d(c)]


def _layout(x: torch.Tensor, blocks: nn.ModuleList, shallow: bool) -> torch.Tensor:
    if shallow:
        out = x
        for b in blocks:
            out = out + b(x)
        return out
    for b in blocks:
        x = x + b(x)
    return x


class HandConvNet(nn.Module):
    """The convnet space's architectures, written by hand."""

    def __init__(self, a: Arch, in_channels: int = 1, num_classes: int = 10) -> None:
        super().__init__()
        w = a["width"]
        self.stem = nn.Sequential(*_cbr(in_channels, w, 3, bias=True), nn.ReLU())
        self.blocks = nn.ModuleList(
            nn.Sequential(*_cbr(w, w, a[f"blocks[{j}]/kernel"], bias=True),
                          nn.ReLU() if a[f"blocks[{j}]/act"] == "relu" else nn.GELU())
            for j in range(a["blocks"]))
        self.shallow = a["layout"] == "shallow"
        self.fc = nn.Linear(w, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _layout(self.stem(x), self.blocks, self.shallow)
        return self.fc(x.mean(dim=(2, 3)))


class HandResNet(nn.Module):
    """The resnet space's architectures, written by hand."""

    def __init__(self, a: Arch, in_channels: int = 1, num_classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(*_cbr(in_channels, 16, 3), nn.ReLU())
        c, self.stages, self.shallow = 16, nn.ModuleList(), []
        for i in range(sum(k.endswith("/width") for k in a)):
            w = a[f"stage{i}/width"]
            transition = nn.Sequential(*_cbr(c, w, 3, 1 if i == 0 else 2), nn.ReLU())
            ks = [a[f"stage{i}/blocks[{j}]/kernel"] for j in range(a[f"stage{i}/blocks"])]
            blocks = nn.ModuleList(nn.Sequential(*_cbr(w, w, k), nn.ReLU(), *_cbr(w, w, k)) for k in ks)
            self.stages.append(nn.ModuleList([transition, blocks]))
            self.shallow.append(a[f"stage{i}/layout"] == "shallow")
            c = w
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for (transition, blocks), shallow in zip(self.stages, self.shallow, strict=True):
            x = torch.relu(_layout(transition(x), blocks, shallow))
        return self.fc(x.mean(dim=(2, 3)))


class HandVGG(nn.Module):
    """The vgg space's architectures, written by hand."""

    def __init__(self, a: Arch, in_channels: int = 1, num_classes: int = 10) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c, n = in_channels, sum(k.endswith("/width") for k in a)
        for i in range(n):
            for _ in range(a[f"stage{i}/layers"]):
                layers += [*_cbr(c, a[f"stage{i}/width"], 3), nn.ReLU()]
                c = a[f"stage{i}/width"]
            if i < n - 1:
                layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).mean(dim=(2, 3)))


class InvertedBottleneck(nn.Module):
    """MobileNetV2's block: expand 1x1, depthwise k x k, project 1x1; a skip when shapes allow."""

    def __init__(self, c_in: int, c: int, expand: int, k: int, stride: int) -> None:
        super().__init__()
        h = c_in * expand
        self.body = nn.Sequential(
            *_cbr(c_in, h, 1), nn.ReLU(),
            nn.Conv2d(h, h, k, stride=stride, padding=k // 2, groups=h, bias=False),
            nn.BatchNorm2d(h), nn.ReLU(), *_cbr(h, c, 1))
        self.skip = stride == 1 and c_in == c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) if self.skip else self.body(x)


class HandMobileNet(nn.Module):
    """The mobilenet space's architectures, written by hand."""

    def __init__(self, a: Arch, in_channels: int = 1, num_classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(*_cbr(in_channels, 16, 3), nn.ReLU())
        blocks, c = [], 16
        for i, (_, stride) in enumerate(mobilenet.STAGES):
            w = a[f"stage{i}/width"]
            for j in range(a[f"stage{i}/blocks"]):
                p = f"stage{i}/blocks[{j}]/"
                blocks.append(InvertedBottleneck(c, w, a[p + "expand"], a[p + "kernel"],
                                                 stride if j == 0 else 1))
                c = w
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(*_cbr(c, 128, 1), nn.ReLU())
        self.fc = nn.Linear(128, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.head(self.blocks(self.stem(x))).mean(dim=(2, 3)))


class Block(nn.Module):
    """A pre-norm transformer block."""

    def __init__(self, d: int, heads: int, ratio: int) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.ln2 = nn.LayerNorm(d)
        self.fc1, self.fc2 = nn.Linear(d, d * ratio), nn.Linear(d * ratio, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.ln1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.fc2(torch.nn.functional.gelu(self.fc1(self.ln2(x))))


class HandViT(nn.Module):
    """The vit space's architectures, written by hand."""

    def __init__(self, a: Arch, in_channels: int = 1, num_classes: int = 10) -> None:
        super().__init__()
        d, p = a["dim"], a["patch"]
        self.embed = nn.Conv2d(in_channels, d, p, stride=p)
        self.blocks = nn.Sequential(*(Block(d, a[f"blocks[{j}]/heads"], a[f"blocks[{j}]/mlp_ratio"])
                                      for j in range(a["blocks"])))
        self.ln = nn.LayerNorm(d)
        self.fc = nn.Linear(d, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.embed(x).flatten(2).transpose(1, 2))
        return self.fc(self.ln(x).mean(dim=1))


class Zero(nn.Module):
    """NAS-Bench-201's 'none' op."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


def nb201_op(name: str, c: int) -> nn.Module:
    """Return one of NAS-Bench-201's five ops at `c` channels."""
    if name.startswith("nor_conv"):
        return nn.Sequential(nn.ReLU(), *_cbr(c, c, int(name[-1])))
    return {"none": Zero(), "skip_connect": nn.Identity(),
            "avg_pool_3x3": nn.AvgPool2d(3, 1, 1, count_include_pad=False)}[name]


class InferCell(nn.Module):
    """NAS-Bench-201's cell as its authors wrote it: node j sums the ops of edges j<-i."""

    def __init__(self, a: Arch, c: int, edge_order: list[str]) -> None:
        super().__init__()
        self.order = edge_order  # edges are registered in the compiled model's order (same weights)
        self.ops = nn.ModuleList(nb201_op(a[e], c) for e in edge_order)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ops = {e: op for e, op in zip(self.order, self.ops, strict=True)}
        x1 = ops["1<-0"](x)
        x2 = ops["2<-0"](x) + ops["2<-1"](x1)
        return ops["3<-0"](x) + ops["3<-1"](x1) + ops["3<-2"](x2)


class Reduction(nn.Module):
    """NAS-Bench-201's residual reduction block."""

    def __init__(self, c_in: int, c: int) -> None:
        super().__init__()
        self.conv_a = nn.Sequential(nn.ReLU(), *_cbr(c_in, c, 3, 2))
        self.conv_b = nn.Sequential(nn.ReLU(), *_cbr(c, c, 3))
        self.down = nn.Sequential(nn.AvgPool2d(2), nn.Conv2d(c_in, c, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_b(self.conv_a(x)) + self.down(x)


class HandNB201(nn.Module):
    """NAS-Bench-201's network for one cell, written by hand."""

    def __init__(self, a: Arch, edge_order: list[str], cells: int = 5, num_classes: int = 10) -> None:
        super().__init__()
        layers: list[nn.Module] = [*_cbr(3, 16, 3)]
        for i, c in enumerate(nb201.WIDTHS):
            if i:
                layers.append(Reduction(c // 2, c))
            layers += [InferCell(a, c, edge_order) for _ in range(cells)]
        self.features = nn.Sequential(*layers, nn.BatchNorm2d(64), nn.ReLU())
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).mean(dim=(2, 3)))


def _edge_order(built: nn.Module) -> list[str]:
    names = [n for n, _ in built.stage0.cell0.named_children()]  # e.g. 'e2_from_1'
    return [n[1:].replace("_from_", "<-") for n in names]


HAND: dict[str, Callable[[Arch, nn.Module], nn.Module]] = {
    "convnet": lambda a, b: HandConvNet(a), "resnet": lambda a, b: HandResNet(a),
    "vgg": lambda a, b: HandVGG(a), "mobilenet": lambda a, b: HandMobileNet(a),
    "vit": lambda a, b: HandViT(a), "nb201": lambda a, b: HandNB201(a, _edge_order(b)),
}
SPACES = {"convnet": convnet.space, "resnet": resnet.space, "vgg": vgg.space,
          "mobilenet": mobilenet.space, "vit": vit.space, "nb201": nb201.space}


def _median_ms(fn: Callable[[], Any], items: list[Any]) -> tuple[float, list[Any]]:
    times, outs = [], []
    for item in items:
        t = time.perf_counter()
        outs.append(fn(item))
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3, outs


def copy_weights(src: nn.Module, dst: nn.Module) -> None:
    """Copy parameters and buffers in registration order (shapes must agree one by one)."""
    a, b = list(src.state_dict().values()), list(dst.state_dict().values())
    if [t.shape for t in a] != [t.shape for t in b]:
        raise ValueError(f"{type(dst).__name__} does not mirror the compiled model's layers")
    with torch.no_grad():
        for s, d in zip(a, b, strict=True):
            d.copy_(s)


def forward_times(built: nn.Module, hand: nn.Module, shape: tuple[int, ...], repeats: int
                  ) -> tuple[float, float]:
    """Return the median forward times (ms) of the two models, measured interleaved."""
    copy_weights(built, hand)
    built.eval(), hand.eval()
    x = torch.randn(32, *shape, generator=torch.Generator().manual_seed(0))
    times: dict[int, list[float]] = {0: [], 1: []}
    with torch.no_grad():
        torch.testing.assert_close(built(x), hand(x), rtol=1e-4, atol=1e-4)
        for r in range(repeats + 2):  # two warm-up rounds
            pair = (built, hand) if r % 2 == 0 else (hand, built)  # alternate who goes first
            for m in pair:
                t = time.perf_counter()
                m(x)
                if r >= 2:
                    times[0 if m is built else 1].append(time.perf_counter() - t)
    return statistics.median(times[0]) * 1e3, statistics.median(times[1]) * 1e3


def n_layers(model: nn.Module) -> int:
    """Return the number of leaf modules (convs, norms, activations, pools, linears...)."""
    return sum(1 for m in model.modules() if not list(m.children()))


def bench(name: str, archs: int, repeats: int) -> dict[str, Any]:
    """Return one row of the table for space `name`."""
    sp = SPACES[name]()
    sp.build(sp.sample(0))  # warm-up: imports, the meta-device kernels of user ops
    t_sample, drawn = _median_ms(sp.sample, list(range(archs)))
    t_validate, _ = _median_ms(sp.validate, [dict(a) for a in drawn])
    t_build, t_hand, models = [], [], []
    for a in drawn:  # interleaved with constructing the same modules by hand
        t = time.perf_counter()
        models.append(sp.build(a))
        t_build.append(time.perf_counter() - t)
        t = time.perf_counter()
        HAND[name](a, models[-1])
        t_hand.append(time.perf_counter() - t)
    arch = drawn[0]
    built = models[0]
    fwd, fwd_hand = forward_times(built, HAND[name](arch, built), sp.input_shape, repeats)
    return {"space": name, "sample": t_sample, "validate": t_validate,
            "build": statistics.median(t_build) * 1e3, "hand_build": statistics.median(t_hand) * 1e3,
            "layers": statistics.median(n_layers(m) for m in models),
            "max_layers": max(n_layers(m) for m in models),
            "fwd": fwd, "fwd_hand": fwd_hand, "arch_layers": n_layers(built)}


def main() -> None:
    """Print the table."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--archs", type=int, default=50, help="architectures per space (default 50)")
    p.add_argument("--repeats", type=int, default=15, help="timed forward passes per model")
    p.add_argument("--spaces", nargs="*", default=list(SPACES), choices=list(SPACES))
    args = p.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, 1 thread, {args.archs} architectures per space, "
          f"forward: batch 32, median of {args.repeats} interleaved runs")
    head = (f"{'space':<10}{'sample ms':>10}{'validate ms':>12}{'build ms':>10}{'by hand':>9}{'layers':>8}"
            f"{'(max)':>7} | {'fwd arch':>8}{'compiled ms':>12}{'hand ms':>9}{'ratio':>7}")
    print(head)
    print("-" * len(head))
    for name in args.spaces:
        r = bench(name, args.archs, args.repeats)
        print(f"{r['space']:<10}{r['sample']:>10.2f}{r['validate']:>12.2f}{r['build']:>10.1f}"
              f"{r['hand_build']:>9.1f}"
              f"{r['layers']:>8.0f}{r['max_layers']:>7} | {r['arch_layers']:>8}{r['fwd']:>12.2f}"
              f"{r['fwd_hand']:>9.2f}{r['fwd'] / r['fwd_hand']:>7.2f}", flush=True)


if __name__ == "__main__":
    main()
