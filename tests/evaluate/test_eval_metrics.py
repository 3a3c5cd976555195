"""Model metrics: parameter and FLOP counts by hand, serialised size, latency."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nas.evaluate import count_flops, count_params, model_size_mb
from nas.hardware import measure_latency


def test_params_equal_a_hand_count(small_cnn):
    model = small_cnn()
    by_hand = (16 * 1 * 9 + 16) + (32 * 16 * 9 + 32) + (32 * 16 * 10 + 10)
    assert count_params(model) == by_hand == 9930
    tied = nn.Sequential(nn.Linear(4, 4), nn.ReLU())
    tied.append(tied[0])  # the same layer twice: its parameters count once
    assert count_params(tied) == 20


def test_flops_of_a_linear_are_two_in_out():
    assert count_flops(nn.Linear(30, 7), (30,)) == 2 * 30 * 7
    assert count_flops(nn.Linear(30, 7, bias=False), (30,)) == 2 * 30 * 7


def test_flops_of_a_conv_net_and_mode_restored(small_cnn):
    model = small_cnn().train()
    conv1 = 2 * 16 * 1 * 9 * 8 * 8
    conv2 = 2 * 32 * 16 * 9 * 8 * 8
    fc = 2 * 512 * 10
    assert count_flops(model, (1, 8, 8)) == conv1 + conv2 + fc
    assert model.training


def test_size_is_the_safetensors_bytes():
    layer = nn.Linear(100, 100)
    payload = (100 * 100 + 100) * 4
    size = model_size_mb(layer)
    assert payload / 1e6 < size < (payload + 1000) / 1e6
    assert model_size_mb(layer.half()) < 0.6 * size
    emb = nn.Embedding(1000, 10)
    head = nn.Linear(10, 1000, bias=False)
    head.weight = emb.weight  # tied weights are stored once
    assert model_size_mb(nn.Sequential(emb, head)) == pytest.approx(model_size_mb(emb), rel=0.01)


def test_latency_through_the_hardware_package(small_cnn):
    ms = measure_latency(small_cnn(), (1, 8, 8), batch_size=2, device="cpu")
    assert 0 < ms < 1000
    assert isinstance(ms, float)


def test_counts_follow_the_model_device(small_cnn):
    model = small_cnn()
    if torch.cuda.is_available():
        model = model.cuda()
    assert count_flops(model, (1, 8, 8)) > 0
