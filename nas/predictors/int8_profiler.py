"""Profile int8 kernels and fp32<->int8 transitions, from random per-layer policies of models.

The float profiler's counterpart (`nas.kernels.profiling`): each model is quantized (FX, random
calibration) under a few random policies, the kernels its int8 version runs that float profiling
does not cover are timed standalone, and a few int8 models whole, for their own correction.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from torch import nn

from nas.errors import HardwareError
from nas.hardware.identity import DEFAULT_THREADS
from nas.hardware.profile import DeviceProfile
from nas.kernels.kernel import Kernel
from nas.kernels.timing import Progress, measure_models, model_entry, profile_kernels, time_kernel
from nas.predictors.mixed_precision import INT8_SUPPORT, extract_kernels
from nas.predictors.quant_kernels import has_transitions, needs_int8_profile, quantize_for_prediction


def random_policies(model: nn.Module, n: int, seed: int) -> list[dict[str, str]]:
    """Return `n` seeded random per-layer policies for `model`, the first one all-int8."""
    from nas.compress.quantize import quantizable_layers

    rng = random.Random(seed)
    layers = quantizable_layers(model)
    out: list[dict[str, str]] = []
    for j in range(n):
        share = 1.0 if j == 0 else rng.random()  # mixes from mostly-fp32 to mostly-int8
        out.append({name: "int8" if rng.random() < share else "fp32" for name in layers})
    return out


def quantized_models(models: Sequence[Any], policies: int = 2,
                     seed: int = 0) -> list[tuple[str, nn.Module, tuple[int, ...]]]:
    """Return (name, FX int8 model, input_shape) for `policies` random policies of each model."""
    out = []
    for i, item in enumerate(models):
        name, model, shape = model_entry(item)
        for j, policy in enumerate(random_policies(model, policies, seed + 7919 * i)):
            if all(v == "fp32" for v in policy.values()):
                continue
            qmodel = quantize_for_prediction(model, policy, shape)
            out.append((f"{name or f'model{i}'}~q{j}", qmodel, shape))
    return out


def profile_int8(models: Sequence[Any], *, device: str = "cpu",
                 batch_sizes: Sequence[int] = (1, 32), time_budget_s: float = 60.0,
                 progress: Progress | None = None, threads: int | None = DEFAULT_THREADS,
                 whole_models: int = 8, policies: int = 2, seed: int = 0, repeats: int = 5
                 ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Return (kernel rows, whole-model rows) of int8 kernels and fp32<->int8 transitions.

    Each model is quantized under `policies` random per-layer policies (the first all-int8);
    the kernels its FX int8 version runs that float profiling does not cover (int8 ones,
    quantize / dequantize, fp32 ops on channels-last tensors) are timed standalone, then a
    few of the int8 models whole, for the int8 correction.
    """
    if device != "cpu":
        raise HardwareError(f"int8 kernels run on the CPU only; device={device!r} has none")
    report = progress or (lambda *a: None)
    qmodels = quantized_models(models, policies, seed)
    kernels = [k for _, q, shape in qmodels for k in extract_kernels(q, shape)
               if needs_int8_profile(k)]
    start = time.monotonic()
    left = lambda: time_budget_s - (time.monotonic() - start)  # noqa: E731
    report(0, None, f"{len(kernels)} int8-model kernels from {len(qmodels)} int8 models")
    rows = profile_kernels(kernels, device=device, batch_sizes=batch_sizes, threads=threads,
                           seed=seed, time_budget_s=0.7 * time_budget_s, repeats=repeats,
                           progress=lambda d, t, m: report(d, None, "int8 kernels: " + m),
                           support=INT8_SUPPORT)
    order = random.Random(seed).sample(range(len(qmodels)), min(whole_models, len(qmodels)))
    whole = measure_models([qmodels[i] for i in order], device=device, batch_sizes=batch_sizes,
                           threads=threads, time_budget_s=max(1.0, left()), repeats=repeats,
                           support=INT8_SUPPORT)
    for row in whole:
        if has_transitions(Kernel.from_json(k) for k in row["kernels"]):
            row["quantized"] = True  # an FX int8 model: the predictor's int8 correction learns from it
    report(len(rows), None, f"{len(rows)} int8 kernel and {len(whole)} int8 model timings")
    return rows, whole


def extend_int8(profile: DeviceProfile, models: Sequence[Any], *, time_budget_s: float = 60.0,
                progress: Progress | None = None, whole_models: int = 8, policies: int = 2,
                seed: int = 0, repeats: int = 5) -> DeviceProfile:
    """Return `profile` with int8 rows (see `profile_int8`, `repeats` samples per timing) added;
    its float rows are kept."""
    ident = profile.identity
    threads = ident.threads if ident.kind == "cpu" else None
    batch_sizes = profile.meta.get("batch_sizes") or sorted(
        {int(r["batch_size"]) for r in profile.measurements}) or [1, 32]
    anchors = _anchors(profile, batch_sizes, seed)
    before = _retime(anchors, threads, repeats)
    rows, whole = profile_int8(models, device="cpu", batch_sizes=batch_sizes,
                               time_budget_s=time_budget_s, progress=progress, threads=threads,
                               whole_models=whole_models, policies=policies, seed=seed,
                               repeats=repeats)
    scale = _scale_to(anchors, before, _retime(anchors, threads, repeats))
    for r in rows:  # as if measured when the float rows were: one scale for the whole profile
        r["median_ms"] *= scale.get(int(r["batch_size"]), 1.0)
        r["iqr_ms"] = r["iqr_ms"] * scale.get(int(r["batch_size"]), 1.0)
    # a new int8 profile replaces an old one
    keep = [r for r in profile.measurements if not needs_int8_profile(Kernel.from_json(r))]
    old_models = [m for m in profile.models if not m.get("quantized")]
    meta = {**profile.meta, "int8": {"time_budget_s": time_budget_s, "policies": policies,
                                     "seed": seed, "n_models": len(models), "repeats": repeats,
                                     "anchor_scale": {str(b): v for b, v in scale.items()}}}
    return DeviceProfile(ident, keep + rows, old_models + whole, meta)


def _anchors(profile: DeviceProfile, batch_sizes: Sequence[int], seed: int,
             n: int = 12) -> list[dict[str, Any]]:
    """Return up to `n` float rows per batch size of `profile`, to time again."""
    rng = random.Random(seed)
    out = []
    for b in batch_sizes:
        rows = [r for r in profile.measurements if int(r["batch_size"]) == int(b)
                and r["kind"] in ("conv", "linear", "pool", "eltwise")
                and not needs_int8_profile(Kernel.from_json(r))]
        out += rng.sample(rows, min(n, len(rows)))
    return out


def _retime(anchors: list[dict[str, Any]], threads: int | None,
            repeats: int) -> list[float | None]:
    out: list[float | None] = []
    for r in anchors:
        res = time_kernel(Kernel.from_json(r), int(r["batch_size"]), device="cpu", threads=threads,
                          repeats=repeats)
        out.append(res[0] if res is not None else None)
    return out


def _scale_to(anchors: list[dict[str, Any]], before: list[float | None],
              after: list[float | None]) -> dict[int, float]:
    """Return per batch size the median of (profiled / now) over the anchors, in [0.5, 2].

    The float rows were measured in another session, under another load; timing some of them
    again around the int8 ones puts both on one scale (the correction ratios, taken within
    one interleaved run, need no such care).
    """
    ratios: dict[int, list[float]] = {}
    for r, t0, t1 in zip(anchors, before, after, strict=True):
        now = [t for t in (t0, t1) if t]
        if now and r["median_ms"] > 0:
            ratios.setdefault(int(r["batch_size"]), []).append(
                r["median_ms"] / float(np.median(now)))
    return {b: float(np.clip(np.median(v), 0.5, 2.0)) for b, v in ratios.items()}
