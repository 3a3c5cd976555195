"""Compiled models are plain PyTorch: equal to hand-written modules, scriptable, exportable, readable."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

from nas import space as S
from nas.compile.modules import Residual, Shallow
from search_spaces import convnet, mobilenet, nb201, resnet, vgg, vit

torch.set_num_threads(1)

FACTORIES: dict[str, Callable[[], S.Space]] = {
    "convnet": convnet.space, "resnet": resnet.space, "vgg": vgg.space,
    "mobilenet": mobilenet.space, "vit": vit.space,
    "nb201": lambda: nb201.space(cells_per_stage=1),
}


def copy_weights(src: nn.Module, dst: nn.Module) -> None:
    """Copy parameters and buffers in registration order (shapes must agree one by one)."""
    a, b = list(src.state_dict().values()), list(dst.state_dict().values())
    assert [t.shape for t in a] == [t.shape for t in b]
    with torch.no_grad():
        for s, d in zip(a, b, strict=True):
            d.copy_(s)


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def same_function(built: nn.Module, hand: nn.Module, shape: tuple[int, ...]) -> None:
    """Assert equal parameter counts, and equal outputs once the weights are copied."""
    assert n_params(built) == n_params(hand)
    copy_weights(built, hand)
    built.eval(), hand.eval()
    x = torch.randn(4, *shape)
    torch.testing.assert_close(built(x), hand(x))


class HandConvNet(nn.Module):
    """The convnet architecture CONVNET_ARCH written by hand."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU())
        self.block0 = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU())
        self.block1 = nn.Sequential(nn.Conv2d(16, 16, 5, padding=2), nn.BatchNorm2d(16), nn.GELU())
        self.fc = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = x + self.block0(x)
        x = x + self.block1(x)
        return self.fc(x.mean(dim=(2, 3)))


CONVNET_ARCH = {"width": 16, "layout": "deep", "blocks": 2, "blocks[0]/kernel": 3,
                "blocks[0]/act": "relu", "blocks[1]/kernel": 5, "blocks[1]/act": "gelu"}


def test_convnet_equals_hand_written() -> None:
    sp = convnet.space()
    same_function(sp.build(CONVNET_ARCH), HandConvNet(), sp.input_shape)


def _basic(c: int, k: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c, c, k, padding=k // 2, bias=False), nn.BatchNorm2d(c), nn.ReLU(),
                         nn.Conv2d(c, c, k, padding=k // 2, bias=False), nn.BatchNorm2d(c))


def _transition(c_in: int, c: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c, 3, stride=stride, padding=1, bias=False),
                         nn.BatchNorm2d(c), nn.ReLU())


class HandResNet(nn.Module):
    """RESNET_ARCH by hand: stage0 deep (2 blocks), stage1 shallow (3 blocks), stage2 deep (1)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = _transition(1, 16, 1)
        self.t0, self.b0 = _transition(16, 24, 1), nn.ModuleList([_basic(24, 3), _basic(24, 5)])
        self.t1, self.b1 = _transition(24, 32, 2), nn.ModuleList([_basic(32, 5), _basic(32, 3),
                                                                  _basic(32, 3)])
        self.t2, self.b2 = _transition(32, 64, 2), nn.ModuleList([_basic(64, 3)])
        self.fc = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.t0(self.stem(x))
        for block in self.b0:
            x = x + block(x)
        x = self.t1(torch.relu(x))
        x = x + self.b1[0](x) + self.b1[1](x) + self.b1[2](x)
        x = self.t2(torch.relu(x))
        x = x + self.b2[0](x)
        return self.fc(torch.relu(x).mean(dim=(2, 3)))


RESNET_ARCH = {
    "stage0/width": 24, "stage0/layout": "deep", "stage0/blocks": 2,
    "stage0/blocks[0]/kernel": 3, "stage0/blocks[1]/kernel": 5,
    "stage1/width": 32, "stage1/layout": "shallow", "stage1/blocks": 3,
    "stage1/blocks[0]/kernel": 5, "stage1/blocks[1]/kernel": 3, "stage1/blocks[2]/kernel": 3,
    "stage2/width": 64, "stage2/layout": "deep", "stage2/blocks": 1, "stage2/blocks[0]/kernel": 3,
}


def test_resnet_equals_hand_written() -> None:
    sp = resnet.space()
    same_function(sp.build(RESNET_ARCH), HandResNet(), sp.input_shape)


def test_deep_and_shallow_layouts_have_equal_parameters_and_shallow_sums_the_blocks() -> None:
    sp = resnet.space()
    deep = sp.build({**RESNET_ARCH, "stage1/layout": "deep"})
    shallow = sp.build(RESNET_ARCH)
    assert n_params(deep) == n_params(shallow)
    layer = shallow.stage1.blocks
    assert isinstance(layer, Shallow) and len(layer.blocks) == 3
    assert isinstance(deep.stage1.blocks[0], Residual)
    layer.eval()
    x = torch.randn(2, 32, 14, 14)
    with torch.no_grad():
        expected = x + sum(block(x) for block in layer.blocks)
        torch.testing.assert_close(layer(x), expected)
        chained = x
        for block in layer.blocks:  # the same blocks, chained, are the deep layout's function
            chained = chained + block(chained)
        copy_weights(shallow, deep)
        deep.eval()
        torch.testing.assert_close(deep.stage1.blocks(x), chained)
        assert not torch.allclose(chained, expected)


def test_mobilenet_expanded_width_depends_on_previous_width_and_ratio() -> None:
    sp = mobilenet.space()
    for seed in range(5):
        arch = sp.sample(seed)
        model = sp.build(arch)
        for i in range(1, 4):
            conv = getattr(model, f"stage{i}")[0].expand.conv
            assert conv.in_channels == arch[f"stage{i - 1}/width"]
            assert conv.out_channels == arch[f"stage{i - 1}/width"] * arch[f"stage{i}/blocks[0]/expand"]


NAMES = {
    "convnet": ["stem", "conv", "bn", "blocks", "head", "fc"],
    "resnet": ["stem", "stage0", "transition", "conv1", "bn2", "head"],
    "vgg": ["stage0", "layers", "conv", "bn", "relu", "pool", "head"],
    "mobilenet": ["stem", "stage1", "expand", "depthwise", "dwconv", "project", "head"],
    "vit": ["embed", "tokens", "blocks", "attn", "mlp", "fc1", "fc2", "ln", "head"],
    "nb201": ["stem", "stage0", "cell", "e1_from_0", "e3_from_2", "reduce1", "head"],
}


@pytest.mark.parametrize("name", list(FACTORIES))
def test_printed_model_reads_like_hand_written_pytorch(name: str) -> None:
    sp = FACTORIES[name]()
    arch = sp.sample(1)
    text = str(sp.build(arch))
    for sub in NAMES[name]:
        assert f"({sub}): " in text, f"{name}: no submodule named {sub!r} in\n{text}"


@pytest.mark.parametrize("name", list(FACTORIES))
def test_torchscript_matches_eager(name: str) -> None:
    sp = FACTORIES[name]()
    model = sp.build(sp.sample(2)).eval()
    scripted = torch.jit.script(model)
    x = torch.randn(2, *sp.input_shape)
    with torch.no_grad():
        torch.testing.assert_close(scripted(x), model(x))


@pytest.mark.parametrize("name", ["nb201", "vit"])
def test_torch_export_matches_eager(name: str) -> None:
    sp = FACTORIES[name]()
    model = sp.build(sp.sample(3)).eval()
    x = torch.randn(2, *sp.input_shape)
    exported = torch.export.export(model, (x,))
    with torch.no_grad():
        torch.testing.assert_close(exported.module()(x), model(x))


@pytest.mark.parametrize("name", [pytest.param("resnet", marks=pytest.mark.slow), "vit"])
def test_onnx_export_is_a_valid_model(name: str, tmp_path) -> None:
    import onnx

    sp = FACTORIES[name]()
    model = sp.build(sp.sample(4)).eval()
    path = tmp_path / f"{name}.onnx"
    torch.onnx.export(model, (torch.randn(2, *sp.input_shape),), str(path), dynamo=True)
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    assert {n.op_type for n in proto.graph.node} & {"Conv", "MatMul", "Gemm"}


def test_nb201_parameter_counts_match_the_benchmark_table() -> None:
    from nas.evaluate.nb201 import NB201Evaluator, NB201Table

    table = NB201Table.load("/work/shared/benchmarks/nb201")
    evaluator = NB201Evaluator(table=table)
    sp = nb201.space()  # the full skeleton: 5 cells per stage
    for seed in range(4):
        arch = sp.sample(seed)
        row = table.lookup(nb201.to_nb201_string(arch))
        assert n_params(sp.build(arch)) == round(row["params_M_cifar10-valid"] * 1e6)
        # the evaluator reads the space's labels as they are
        assert evaluator.evaluate(None, arch).metrics["params"] == n_params(sp.build(arch))
