"""size_mb is one thing for float and int8 models: the weights as stored (real FX int8 modules)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nas.compress import apply_policy, quantizable_layers
from nas.evaluate import count_params, model_size_mb
from nas.evaluate.model_metrics import stored_weights
from tests.compress.test_quantize_perf import three_conv  # width 24: about 54k parameters


def quantized(model: nn.Module, int8: list[str], shape: tuple[int, ...]) -> nn.Module:
    """`model` with the layers named in `int8` on int8 kernels (FX, x86), the rest fp32."""
    x = torch.randn(16, *shape, generator=torch.Generator().manual_seed(1))
    policy = {n: ("int8" if n in int8 else "fp32") for n in quantizable_layers(model)}
    return apply_policy(model, policy, example_input=x[:1], calib=x, backend="fx-x86")


def payload(model: nn.Module) -> int:
    return sum(t.nbytes for t in stored_weights(model).values())


@pytest.fixture(scope="module")
def model() -> nn.Module:
    return three_conv(24)


def test_float_size_is_four_bytes_per_parameter(model):
    params = count_params(model)
    assert params > 50_000
    # BatchNorm running statistics and the safetensors header are the small rest
    assert model_size_mb(model) == pytest.approx(4 * params / 1e6, rel=0.03)


def test_all_int8_is_about_one_byte_per_parameter(model):
    qmodel = quantized(model, quantizable_layers(model), (3, 16, 16))
    per_param = model_size_mb(qmodel) * 1e6 / count_params(model)
    assert 1.0 < per_param < 1.3, per_param


def test_size_falls_with_every_layer_made_int8(model):
    layers = quantizable_layers(model)
    sizes = [model_size_mb(quantized(model, layers[:k], (3, 16, 16))) for k in range(len(layers) + 1)]
    assert sizes == sorted(sizes, reverse=True) and len(set(sizes)) == len(sizes), sizes
    half = model_size_mb(quantized(model, layers[::2], (3, 16, 16)))
    assert sizes[-1] < half < sizes[0]


def _two_layer_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 16)).eval()


def test_int8_bytes_are_weights_biases_and_every_scale_and_zero_point():
    qmodel = quantized(_two_layer_net(), ["0", "3"], (3, 8, 8))
    qparams = 4 + 8  # an fp32 scale and an int64 zero point per quantized activation
    conv = 8 * 3 * 3 * 3 + 8 * (8 + 8) + 8 * 4 + qparams  # int8 weight, per-channel qparams, fp32 bias
    linear = 16 * 288 + 16 * (8 + 8) + 16 * 4 + qparams
    assert payload(qmodel) == qparams + conv + linear  # the input's qparams, then each layer's
    names = set(stored_weights(qmodel))
    assert {"0.weight", "0.weight.q_scales", "3._packed_params._packed_params.0.q_scales"} <= names


def test_a_per_tensor_int8_weight_has_one_scale_and_zero_point():
    net = _two_layer_net()
    x = torch.randn(16, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    qmodel = apply_policy(net, {"0": "int8:pt-sym", "3": "fp32"}, example_input=x[:1], calib=x,
                          backend="fx-x86")
    weights = stored_weights(qmodel)
    assert weights["0.weight"].dtype == torch.int8
    assert weights["0.weight.q_scale"].numel() == weights["0.weight.q_zero_point"].numel() == 1


def test_a_quantized_module_under_two_names_is_stored_once():
    qmodel = quantized(_two_layer_net(), ["0", "3"], (3, 8, 8))
    before = payload(qmodel)
    qmodel.add_module("again", qmodel.get_submodule("3"))
    assert payload(qmodel) == before
