"""Kernel extraction (with the fusion that runs at inference) and standalone kernel builders."""

import random

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nas.errors import HardwareError
from nas.kernels.kernel import Kernel
from nas.kernels.perturb import perturb as _perturb
from nas.predictors import build_kernel, extract_kernels, kernel_cost, kernel_features


class Block(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.b1 = nn.BatchNorm2d(c)
        self.r = nn.ReLU(inplace=True)
        self.c2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.b2 = nn.BatchNorm2d(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.b2(self.c2(self.r(self.b1(self.c1(x)))))
        return F.relu(out + x)


class Net(nn.Module):
    def __init__(self, c: int = 8) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, c, 3, stride=2, padding=1), nn.BatchNorm2d(c),
                                  nn.ReLU())
        self.block = Block(c)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(nn.Linear(c, 32), nn.GELU(), nn.Dropout(0.1), nn.Linear(32, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.block(self.stem(x))), 1))


def test_conv_bn_relu_residual_linear_kernels():
    ks = extract_kernels(Net(8), (3, 16, 16))
    work = [k for k in ks if k.kind != "call"]
    assert [k.kind for k in work] == ["conv", "conv", "conv", "eltwise", "act", "pool", "view",
                                      "linear", "linear"]
    stem, c1, c2, add, relu, pool, flat, fc1, fc2 = work
    assert stem.config | {} == {"cin": 3, "cout": 8, "k": [3, 3], "stride": [2, 2],
                                "padding": [1, 1], "dilation": [1, 1], "groups": 1,
                                "bias": True, "h": 16, "w": 16, "ho": 8, "wo": 8,
                                "bn": True, "act": "relu"}
    assert (c1.config["bn"], c1.config["act"], c1.config["h"]) == (True, "relu", 8)
    assert (c2.config["bn"], c2.config["act"]) == (True, None)  # the add comes before the relu
    assert add.config["op"] == "add" and add.config["shapes"] == [[1, 8, 8, 8]] * 2
    assert relu.config == {"fn": "relu", "shape": [8, 8, 8]}
    assert pool.config["type"] == "adaptive_avg" and pool.config["out"] == [1, 1]
    assert flat.config["op"] == "flatten"
    assert fc1.config == {"fin": 8, "fout": 32, "tokens": 1, "bias": True, "act": "gelu"}
    assert fc2.config["act"] is None
    # Net, stem Sequential, Block, fc Sequential, and the eval-mode Dropout: module calls
    assert sum(k.kind == "call" for k in ks) == 5


class Tokens(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.pos = nn.Parameter(torch.zeros(1, 6, 16))
        self.ln = nn.LayerNorm(16)
        self.mha = nn.MultiheadAttention(16, 4, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.pos
        y = self.ln(x)
        a = torch.softmax(y @ y.transpose(1, 2), dim=-1)
        return x + self.mha(y, y, y, need_weights=False)[0] + a @ y


def test_attention_and_parameters_are_recognised():
    ks = [k for k in extract_kernels(Tokens(), (6, 16)) if k.kind != "call"]
    kinds = [k.kind for k in ks]
    assert kinds == ["eltwise", "norm", "view", "matmul", "softmax", "mha", "eltwise",
                     "matmul", "eltwise"]
    assert ks[0].config["batched"] == [True, False]  # the position embedding does not grow
    assert ks[5].config == {"embed": 16, "heads": 4, "tokens": 6, "src_tokens": 6,
                            "need_weights": False}
    assert ks[3].config["shapes"] == [[1, 6, 16], [1, 16, 6]]


@pytest.mark.parametrize("batch", [1, 3])
def test_every_extracted_kernel_builds_and_runs(batch):
    for model, shape in [(Net(8), (3, 16, 16)), (Tokens(), (6, 16))]:
        for k in extract_kernels(model, shape):
            mod, xs = build_kernel(k, batch)
            with torch.inference_mode():
                out = mod(*xs)
            if k.kind != "call":
                assert xs[0].shape[0] == batch
            if k.kind == "conv":
                assert out.shape == (batch, k.config["cout"], k.config["ho"], k.config["wo"])
            flops, moved = kernel_cost(k, batch)
            assert flops > 0 and moved > 0
            assert kernel_features(k, batch).ndim == 1


def test_perturbed_configurations_stay_valid():
    rng = random.Random(0)
    conv = Kernel("conv", extract_kernels(Net(8), (3, 16, 16))[0].config)
    dw = Kernel("conv", dict(conv.config, cin=8, cout=8, groups=8))
    for base in (conv, dw):
        for _ in range(8):
            k = _perturb(base, rng)
            mod, xs = build_kernel(k, 1)
            with torch.inference_mode():
                out = mod(*xs)
            assert out.shape[1:] == (k.config["cout"], k.config["ho"], k.config["wo"])
            if base is dw:
                assert k.config["groups"] == k.config["cin"] == k.config["cout"]


def test_extract_kernels_rejects_bad_input():
    with pytest.raises(HardwareError, match="nn.Module"):
        extract_kernels(lambda x: x, (3,))
    with pytest.raises(HardwareError, match="input_shape"):
        extract_kernels(nn.Linear(3, 3), (0,))


class TransposedTokens(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.ln = nn.LayerNorm(8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = x.flatten(2).transpose(1, 2)  # (N, C, H, W) -> a strided (N, HW, C) view
        return t + self.ln(t)


def test_non_contiguous_inputs_are_recorded_and_rebuilt():
    ks = [k for k in extract_kernels(TransposedTokens(), (8, 4, 4)) if k.kind != "call"]
    assert [k.kind for k in ks] == ["view", "view", "norm", "eltwise"]
    norm, add = ks[2], ks[3]
    assert norm.config == {"type": "ln", "shape": [16, 8], "noncontig": True}
    assert add.config["noncontig"] is True
    _, xs = build_kernel(norm, 2)
    assert xs[0].shape == (2, 16, 8) and not xs[0].is_contiguous()
    _, xs = build_kernel(Kernel("norm", {"type": "ln", "shape": [16, 8]}), 2)
    assert xs[0].is_contiguous()
