"""Per-layer quantization policies on a small CNN trained on scikit-learn digits (real data)."""

from __future__ import annotations

import itertools
import operator

import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn

from nas.compress import (
    apply_policy,
    default_backend,
    int8_layers,
    layer_precisions,
    make_backend,
    policy_options,
    quantizable_layers,
)
from nas.errors import CompressionError

LAYERS = ["stem.0", "block.0", "conv3", "head"]


class DigitsNet(nn.Module):
    """conv+bn+relu, conv+bn+relu+pool, conv+functional relu, linear; `head` registered first so
    that forward order and registration order differ."""

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(32, 10)
        self.stem = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU())
        self.block = nn.Sequential(nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
                                   nn.MaxPool2d(2))
        self.conv3 = nn.Conv2d(32, 32, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block(self.stem(x))
        x = torch.relu(self.conv3(x))
        return self.head(F.adaptive_avg_pool2d(x, 1).flatten(1))


@pytest.fixture(scope="module")
def digits() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    data = load_digits()
    x = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(data.target)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    x, y = x[order], y[order]
    return x[:1300], y[:1300], x[1300:], y[1300:]


@pytest.fixture(scope="module")
def trained(digits) -> DigitsNet:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    xtr, ytr, _, _ = digits
    model = DigitsNet()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _epoch in range(6):
        for i in range(0, len(xtr), 64):
            opt.zero_grad()
            F.cross_entropy(model(xtr[i:i + 64]), ytr[i:i + 64]).backward()
            opt.step()
    return model.eval()


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def quantize(model, policy, digits, **kw):
    xtr = digits[0]
    return apply_policy(model, policy, example_input=xtr[:1], calib=xtr, **kw)


def test_layers_are_listed_in_forward_order(trained):
    assert quantizable_layers(trained) == LAYERS
    assert [n for n, m in trained.named_modules() if isinstance(m, nn.Linear)] == ["head"]


@pytest.mark.parametrize("int8", [LAYERS, ["conv3"], ["stem.0", "head"], ["block.0", "conv3"]])
def test_policy_maps_to_exactly_the_layers_it_names(trained, digits, int8):
    policy = {n: ("int8" if n in int8 else "fp32") for n in LAYERS}
    qmodel = quantize(trained, policy, digits)
    assert int8_layers(qmodel) == int8
    assert layer_precisions(qmodel) == policy


def test_all_fp32_policy_gives_the_float_models_outputs(trained, digits):
    qmodel = quantize(trained, dict.fromkeys(LAYERS, "fp32"), digits)
    x = digits[2]
    with torch.no_grad():
        assert torch.equal(qmodel(x), trained(x))
    assert int8_layers(qmodel) == []


def test_all_int8_stays_close_to_fp32_on_real_data(trained, digits):
    _, _, xva, yva = digits
    qmodel = quantize(trained, dict.fromkeys(LAYERS, "int8"), digits)
    acc32, acc8 = accuracy(trained, xva, yva), accuracy(qmodel, xva, yva)
    assert acc32 > 0.9, "the float model should have learned digits"
    assert acc8 >= acc32 - 0.02
    with torch.no_grad():
        ref, out = trained(xva), qmodel(xva)
    assert float((ref.argmax(1) == out.argmax(1)).float().mean()) >= 0.97
    assert float((out - ref).abs().max()) < 0.1 * float(ref.abs().max())


def test_mixed_policy_keeps_fp32_layers_float_and_stays_accurate(trained, digits):
    _, _, xva, yva = digits
    policy = {"stem.0": "fp32", "block.0": "int8", "conv3": "int8", "head": "fp32"}
    qmodel = quantize(trained, policy, digits)
    modules = dict(qmodel.named_modules())
    assert not type(modules["stem.0"]).__module__.startswith("torch.ao.nn.intrinsic.quantized")
    assert type(modules["head"]) is nn.Linear
    assert accuracy(qmodel, xva, yva) >= accuracy(trained, xva, yva) - 0.02


def _transitions(qmodel) -> tuple[list[str], int]:
    nodes = list(qmodel.graph.nodes)
    quant = [n for n in nodes if n.op == "call_function" and n.target is torch.quantize_per_tensor]
    dequant = [n for n in nodes if n.op == "call_method" and n.target == "dequantize"]
    return [str(n.args[0].target) for n in quant], len(dequant)


def test_int8_regions_have_one_entry_and_one_exit(trained, digits):
    # all int8: quantize once at the input, dequantize once at the output; pooling and flatten
    # between layers run on int8 tensors
    qmodel = quantize(trained, dict.fromkeys(LAYERS, "int8"), digits)
    assert _transitions(qmodel) == (["x"], 1)
    # only conv3 int8: the max-pool before it stays fp32 (the quantize sits after it), so the
    # fp32 layers never see an activation rounded to int8
    policy = {**dict.fromkeys(LAYERS, "fp32"), "conv3": "int8"}
    qmodel = quantize(trained, policy, digits)
    assert _transitions(qmodel) == (["block.3"], 1)


@pytest.mark.parametrize("mode", ["pc-sym", "pc-asym", "pt-sym", "pt-asym"])
def test_weight_modes_set_the_weight_quantization_scheme(trained, digits, mode):
    policy = {**dict.fromkeys(LAYERS, "int8"), "block.0": f"int8:{mode}"}
    qmodel = quantize(trained, policy, digits)
    weight = dict(qmodel.named_modules())["block.0"].weight()
    if mode.startswith("pc"):
        assert weight.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric)
        zero_points = weight.q_per_channel_zero_points()
    else:
        assert weight.qscheme() in (torch.per_tensor_affine, torch.per_tensor_symmetric)
        zero_points = torch.tensor([weight.q_zero_point()])
    assert bool((zero_points == 0).all()) == mode.endswith("-sym")
    assert int8_layers(qmodel) == LAYERS
    _, _, xva, yva = digits
    assert accuracy(qmodel, xva, yva) >= accuracy(trained, xva, yva) - 0.03


def test_qnnpack_engine_for_arm_cpus_quantizes_too(trained, digits):
    previous = torch.backends.quantized.engine
    try:
        qmodel = quantize(trained, dict.fromkeys(LAYERS, "int8"), digits, backend="fx-qnnpack")
        assert torch.backends.quantized.engine == "qnnpack"
        assert int8_layers(qmodel) == LAYERS
        _, _, xva, yva = digits
        assert accuracy(qmodel, xva, yva) >= accuracy(trained, xva, yva) - 0.02
    finally:
        torch.backends.quantized.engine = previous


def test_calibration_takes_pairs_and_stops_at_calib_samples(trained, digits):
    xtr, ytr = digits[0], digits[1]
    endless = itertools.repeat((xtr[:32], ytr[:32]))  # a DataLoader-like stream that never ends
    qmodel = apply_policy(trained, dict.fromkeys(LAYERS, "int8"), example_input=xtr[:1],
                          calib=endless, calib_samples=64)
    assert int8_layers(qmodel) == LAYERS


def test_the_callers_model_is_left_untouched(digits):
    model = DigitsNet().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    quantize(model, dict.fromkeys(LAYERS, "int8"), digits)
    quantize(model, dict.fromkeys(LAYERS, "bf16"), digits, backend="cast")
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_cast_backend_casts_exactly_the_named_layers(trained, digits):
    policy = {"stem.0": "fp32", "block.0": "bf16", "conv3": "fp16", "head": "bf16"}
    qmodel = quantize(trained, policy, digits, backend="cast")
    assert layer_precisions(qmodel) == policy
    assert int8_layers(qmodel) == []
    xva = digits[2]
    with torch.no_grad():
        ref, out = trained(xva), qmodel(xva)
    assert out.dtype == torch.float32
    assert not torch.equal(out, ref)  # the casts really happened
    assert float((out - ref).abs().max()) < 0.05 * float(ref.abs().max())
    # a backend object works as well as its name
    again = quantize(trained, policy, digits, backend=make_backend("cast"))
    with torch.no_grad():
        assert torch.equal(again(xva), out)


def test_options_and_default_backend():
    assert policy_options("fx-x86")[:2] == ["fp32", "int8"]
    assert "int8:pt-asym" in policy_options("fx-qnnpack")
    assert policy_options("cast") == ["fp32", "fp16", "bf16"]
    expected = "cast" if torch.cuda.is_available() else "fx-x86"
    assert default_backend() == expected


@pytest.mark.parametrize(
    ("policy", "backend", "needles"),
    [
        ({**dict.fromkeys(LAYERS, "int8"), "fc": "int8"}, "fx-x86", ["unknown ['fc']", "head"]),
        (dict.fromkeys(LAYERS[:3], "int8"), "fx-x86", ["missing ['head']", "stem.0"]),
        ({**dict.fromkeys(LAYERS, "int8"), "conv3": "int4"}, "fx-x86", ["'conv3'", "'int4'",
                                                                      "int8:pc-sym"]),
        (dict.fromkeys(LAYERS, "bf16"), "fx-x86", ["'bf16'", "fx-x86"]),
        (dict.fromkeys(LAYERS, "int8"), "cast", ["'int8'", "'fp16'"]),
        (dict.fromkeys(LAYERS, "int8"), "tensorrt", ["'tensorrt'", "fx-qnnpack", "cast"]),
    ],
)
def test_bad_policies_name_the_fault_and_the_valid_choices(trained, digits, policy, backend,
                                                           needles):
    with pytest.raises(CompressionError) as info:
        quantize(trained, policy, digits, backend=backend)
    for needle in needles:
        assert needle in str(info.value)


def test_bad_calibration_and_devices_are_reported(trained, digits):
    policy = dict.fromkeys(LAYERS, "int8")
    x = digits[0]
    with pytest.raises(CompressionError, match="no samples"):
        apply_policy(trained, policy, example_input=x[:1], calib=x[:0])
    with pytest.raises(CompressionError, match="expected tensors"):
        apply_policy(trained, policy, example_input=x[:1], calib=["not a tensor"])
    with pytest.raises(CompressionError, match="calib_samples=0"):
        apply_policy(trained, policy, example_input=x[:1], calib=x, calib_samples=0)
    with pytest.raises(CompressionError, match="CPU only.*'meta'"):
        apply_policy(trained, policy, example_input=x[:1].to("meta"), calib=x)


class Untraceable(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, 4)
        self.b = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:  # data-dependent control flow: torch.fx cannot trace it
            x = -x
        return self.b(self.a(x))


def test_untraceable_models_fail_clearly_on_fx_and_work_with_cast():
    model = Untraceable().eval()
    assert quantizable_layers(model) == ["a", "b"]
    x = torch.randn(8, 4)
    with pytest.raises(CompressionError, match="trace"):
        apply_policy(model, {"a": "int8", "b": "fp32"}, example_input=x[:1], calib=x)
    cast = apply_policy(model, {"a": "bf16", "b": "fp32"}, example_input=x[:1], calib=x,
                        backend="cast")
    assert layer_precisions(cast) == {"a": "bf16", "b": "fp32"}


class Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(1, 8, 3, padding=1)
        self.b = nn.Conv2d(8, 8, 3, padding=1)
        self.c = nn.Conv2d(8, 8, 3, padding=1)
        self.fc = nn.Linear(8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.a(x))
        y = x + self.b(x)
        z = y + self.c(y)
        return self.fc(z.mean(dim=(2, 3)))


@pytest.mark.parametrize(("c", "int8_adds", "float_adds"), [("int8", 2, 0), ("fp32", 1, 1)])
def test_an_add_is_int8_exactly_when_both_inputs_are(digits, c, int8_adds, float_adds):
    torch.manual_seed(0)
    model = Residual().eval()
    qmodel = quantize(model, {"a": "int8", "b": "int8", "c": c, "fc": "int8"}, digits)
    targets = [n.target for n in qmodel.graph.nodes if n.op == "call_function"]
    assert targets.count(torch.ops.quantized.add) == int8_adds
    assert targets.count(operator.add) == float_adds
    assert int8_layers(qmodel) == ["a", "b", "fc"] if c == "fp32" else ["a", "b", "c", "fc"]
    x = digits[2][:64]
    with torch.no_grad():
        ref, out = model(x), qmodel(x)
    assert float((out - ref).abs().max()) < 0.1 * float(ref.abs().max())


def test_a_model_built_from_a_project_space_quantizes_end_to_end():
    from search_spaces import resnet

    space = resnet.space()
    model = space.build(space.sample(0)).eval()
    x = torch.randn(16, *space.input_shape, generator=torch.Generator().manual_seed(0))
    layers = quantizable_layers(model)
    qmodel = apply_policy(model, dict.fromkeys(layers, "int8"), example_input=x[:1], calib=x)
    assert int8_layers(qmodel) == layers
    assert _transitions(qmodel)[1] == 1  # one int8 region: residual adds and pooling stay int8
