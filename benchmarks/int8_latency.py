"""Predicted vs measured latency of (architecture, per-layer int8 policy) pairs on this CPU.

Pairs come from the Fashion-MNIST VGG space with `S.per_layer(["fp32", "int8"])`: random
architectures, each with a random policy (every 8th all-fp32, every 8th all-int8, the rest
mixed with a random share of int8 layers). Each pair is quantized for real (FX, engine x86,
random calibration: latency does not depend on the ranges) and timed at batch 1 and 32 in two
independent interleaved passes (`compare_interleaved`, thread CPU time); the truth is the median
of both passes' samples and their agreement is the noise ceiling. The int8-aware predictor
decomposes each pair in two ways (quantize and read the converted graph: "convert"; replay the
backend's rules on the float trace: "analyse"); beside it, the float predictor of the same
profile, which ignores the policy (the baseline). Last, both decompositions are timed and
compared kernel for kernel.

    PYTHONPATH=. .venv/bin/python benchmarks/int8_latency.py            # ~4 min here
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from typing import Any

import numpy as np
import torch

from nas import space as S
from nas.compress.int8_backends import quiet_ao
from nas.compress.quantize import apply_policy, quantizable_layers
from nas.hardware import compare_interleaved, profile_path
from nas.hardware.profile import DeviceProfile
from nas.predictors import LatencyPredictor, latency_report, noise_ceiling
from nas.predictors.mixed_precision import extract_kernels
from nas.predictors.quant_analysis import agreement

COLUMNS = ("spearman", "within_10", "within_15", "mape", "bias")


def _policy(layers: list[str], i: int, rng: random.Random) -> dict[str, str]:
    if i % 8 == 0:
        return {n: "fp32" for n in layers}
    if i % 8 == 1:
        return {n: "int8" for n in layers}
    share = rng.uniform(0.2, 0.8)
    return {n: "int8" if rng.random() < share else "fp32" for n in layers}


def _pairs(n: int, seed: int) -> list[dict[str, Any]]:
    import search_spaces.vgg as vgg

    base = vgg.space()
    space = S.Space(base.root, base.input_shape, quantization=S.per_layer(["fp32", "int8"]))
    rng = random.Random(seed)
    calib = torch.randn((16, *space.input_shape), generator=torch.Generator().manual_seed(seed))
    out = []
    for i in range(n):
        arch = space.sample(seed * 100_003 + 1000 + i)
        model = space.build(arch).eval()
        policy = _policy(quantizable_layers(model), i, rng)
        with quiet_ao():
            qmodel = apply_policy(model, policy, example_input=calib[:1], calib=calib)
        share = sum(v == "int8" for v in policy.values()) / len(policy)
        group = "all-fp32" if share == 0 else "all-int8" if share == 1 else "mixed"
        out.append({"name": f"p{i}", "arch": arch, "model": model, "qmodel": qmodel,
                    "policy": policy, "group": group, "shape": tuple(space.input_shape)})
    return out


def _truth(pairs: list[dict[str, Any]], batch: int, repeats: int
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    models = {p["name"]: p["qmodel"] for p in pairs}
    kw = {"batch_size": batch, "threads": 1, "repeats": repeats, "warmup": 1}
    a = compare_interleaved(models, pairs[0]["shape"], **kw)
    b = compare_interleaved(models, pairs[0]["shape"], **kw)
    names = list(models)
    both = np.array([statistics.median(a[n].samples_ms + b[n].samples_ms) for n in names])
    return (both, np.array([a[n].median_ms for n in names]),
            np.array([b[n].median_ms for n in names]))


def _decomposition_cost(pairs: list[dict[str, Any]], path: str) -> dict[str, float]:
    """Milliseconds per architecture of each way to decompose, interleaved; their agreement."""
    quantized = [p for p in pairs if p["group"] != "all-fp32"]
    spent = {"float_trace": 0.0, "convert": 0.0, "analyse": 0.0}
    same = 0
    for p in quantized:
        t0 = time.perf_counter()
        extract_kernels(p["model"], p["shape"])
        t1 = time.perf_counter()
        converted = extract_kernels(p["model"], p["shape"], policy=p["policy"],
                                    int8_method="convert")
        t2 = time.perf_counter()
        analysed = extract_kernels(p["model"], p["shape"], policy=p["policy"],
                                   int8_method="analyse")
        t3 = time.perf_counter()
        spent["float_trace"] += t1 - t0
        spent["convert"] += t2 - t1
        spent["analyse"] += t3 - t2
        same += agreement(converted, analysed)
    out = {f"{k}_ms": v / len(quantized) * 1e3 for k, v in spent.items()}
    predictor = LatencyPredictor().fit(DeviceProfile.load(path))
    for p in quantized:  # warm the cache, then time the cached path
        predictor.predict(p["model"], p["shape"], 1, key=p["arch"].id, policy=p["policy"])
    t4 = time.perf_counter()
    for p in quantized:
        predictor.predict(p["model"], p["shape"], 1, key=p["arch"].id, policy=p["policy"])
    out["cached_prediction_ms"] = (time.perf_counter() - t4) / len(quantized) * 1e3
    out["same_kernels"] = same / len(quantized)
    return out


def _row(label: str, batch: int, rep: dict[str, float]) -> str:
    cells = " | ".join(f"{rep[c]:+.3f}" if c == "bias" else f"{rep[c]:.3f}" for c in COLUMNS)
    return f"| {label} | {batch} | {int(rep['n'])} | {cells} |"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its tables; return the exit code."""
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=64)
    ap.add_argument("--profile", default="", help="device profile JSON (default: this CPU's)")
    ap.add_argument("--repeats", type=int, default=5, help="samples per model per pass")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    path = args.profile or str(profile_path("cpu", 1))
    predictor = LatencyPredictor().fit(DeviceProfile.load(path))
    converter = LatencyPredictor(int8_method="convert").fit(DeviceProfile.load(path))
    start = time.monotonic()
    pairs = _pairs(args.pairs, args.seed)
    groups = ", ".join(f"{g} {sum(p['group'] == g for p in pairs)}"
                       for g in ("all-fp32", "all-int8", "mixed"))
    print(f"{len(pairs)} pairs ({groups}) quantized in {time.monotonic() - start:.0f} s; "
          f"profile {path}")
    print("\n| predictor | batch | n | Spearman ρ | within ±10% | within ±15% | MAPE | bias |")
    print("|---|---|---|---|---|---|---|---|")
    ceilings = []
    for b in (1, 32):
        truth, ma, mb = _truth(pairs, b, args.repeats)
        int8 = [converter.predict(p["model"], p["shape"], b, key=p["arch"].id,
                                  policy=p["policy"]) for p in pairs]
        analysed = [predictor.predict(p["model"], p["shape"], b, policy=p["policy"])
                    for p in pairs]
        flt = [predictor.predict(p["model"], p["shape"], b) for p in pairs]
        print(_row("int8-aware (convert)", b, latency_report(int8, truth)))
        print(_row("int8-aware (analyse)", b, latency_report(analysed, truth)))
        print(_row("float (ignores the policy)", b, latency_report(flt, truth)))
        for g in ("all-fp32", "all-int8", "mixed"):
            idx = [i for i, p in enumerate(pairs) if p["group"] == g]
            if len(idx) > 1:
                print(_row(f"int8-aware, {g} only", b,
                           latency_report([int8[i] for i in idx], truth[idx])))
        ceilings.append((b, noise_ceiling(ma, mb, 0.10), noise_ceiling(ma, mb, 0.15),
                         float(np.median(truth))))
    for b, c10, c15, med in ceilings:
        print(f"\nbatch {b}: noise ceiling (two interleaved passes agree) within ±10% {c10:.3f}, "
              f"±15% {c15:.3f}; median latency {med:.3f} ms")
    cost = _decomposition_cost(pairs, path)
    print("\nint8 decomposition per (architecture, policy), interleaved: "
          + ", ".join(f"{k} {v:.2f}" for k, v in cost.items()))
    print(f"total {time.monotonic() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
