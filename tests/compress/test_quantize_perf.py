"""Size and latency of quantized models are real: int8 storage, int8 kernels, faster at batch 16."""

from __future__ import annotations

import torch
from torch import nn

from nas.compress import apply_policy, int8_layers, quantizable_layers, torchscript_file_mb
from nas.hardware.timing import compare_interleaved


def three_conv(width: int) -> nn.Module:
    """A 3-conv net on 32x32 RGB (pooling early keeps it cheap on a shared 2-core machine)."""
    torch.manual_seed(0)
    w = width
    return nn.Sequential(
        nn.Conv2d(3, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(w, 2 * w, 3, padding=1), nn.BatchNorm2d(2 * w), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(2 * w, 4 * w, 3, padding=1), nn.BatchNorm2d(4 * w), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4 * w, 10),
    ).eval()


def inputs(n: int) -> torch.Tensor:
    return torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(1))


def test_all_int8_file_is_about_four_times_smaller_and_holds_int8_modules():
    torch.set_num_threads(1)
    model = three_conv(64)
    layers = quantizable_layers(model)
    x = inputs(8)  # calibration quality does not change the file size
    qmodel = apply_policy(model, dict.fromkeys(layers, "int8"), example_input=x[:1], calib=x)
    assert int8_layers(qmodel) == layers
    for name in layers:
        module = dict(qmodel.named_modules())[name]
        assert type(module).__module__.startswith(("torch.ao.nn.quantized",
                                                   "torch.ao.nn.intrinsic.quantized"))
        assert module.weight().dtype == torch.qint8
    fp32_mb, int8_mb = torchscript_file_mb(model, x[:1]), torchscript_file_mb(qmodel, x[:1])
    params_mb = sum(p.numel() for p in model.parameters()) * 4 / 1e6
    assert abs(fp32_mb - params_mb) < 0.1 * params_mb  # the number reflects the weights
    assert 3.3 < fp32_mb / int8_mb < 4.2
    # half the layers int8 -> in between
    policy = {n: ("int8" if i % 2 else "fp32") for i, n in enumerate(layers)}
    mixed = apply_policy(model, policy, example_input=x[:1], calib=x)
    assert int8_mb < torchscript_file_mb(mixed, x[:1]) < fp32_mb


def test_bf16_cast_file_is_about_half_the_fp32_file():
    model = three_conv(64)
    layers = quantizable_layers(model)
    x = inputs(2)
    cast = apply_policy(model, dict.fromkeys(layers, "bf16"), example_input=x[:1], calib=x,
                        backend="cast")
    ratio = torchscript_file_mb(model, x[:1]) / torchscript_file_mb(cast, x[:1])
    assert 1.8 < ratio < 2.1


def test_all_int8_runs_faster_than_fp32_at_batch_16():
    model = three_conv(32)
    layers = quantizable_layers(model)
    x = inputs(16)
    qmodel = apply_policy(model, dict.fromkeys(layers, "int8"), example_input=x[:1], calib=x)
    # one thread, this thread's CPU clock, round-robin: other processes' load hits both alike
    timings = compare_interleaved({"fp32": model, "int8": qmodel}, (3, 32, 32), batch_size=16,
                                  threads=1, repeats=9, warmup=2)
    fp32_ms, int8_ms = timings["fp32"].median_ms, timings["int8"].median_ms
    # loose bound: about 2.4x on this AVX2-only (no VNNI) CPU
    assert fp32_ms / int8_ms > 1.3, f"fp32 {fp32_ms:.2f} ms vs int8 {int8_ms:.2f} ms"
