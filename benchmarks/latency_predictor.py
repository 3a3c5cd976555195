"""Benchmark the latency predictor on this CPU against a FLOPs-linear baseline.

Profiles the device within a time budget from architectures sampled from built-in spaces, then
predicts held-out architectures (other seeds) at batch 1 and 32. Ground truth is the median of
two independent interleaved measurement passes; their agreement is the noise ceiling.

    PYTHONPATH=. .venv/bin/python benchmarks/latency_predictor.py --budget 120
"""

from __future__ import annotations

import argparse
import importlib
import math
import sys
import time
from typing import Any

import numpy as np
import torch

from nas.hardware import compare_interleaved, identify
from nas.predictors import (
    LatencyPredictor,
    extract_kernels,
    flops_baseline,
    kernel_cost,
    latency_report,
    noise_ceiling,
    profile_device,
)

METRICS = ("within_5", "within_10", "within_15", "mape", "rmse", "bias", "spearman", "kendall")


def _sample(space_names: list[str], per_space: int, first_seed: int,
            exclude: set[str]) -> list[tuple[str, torch.nn.Module, tuple[int, ...], str]]:
    out = []
    for name in space_names:
        sp = importlib.import_module(f"search_spaces.{name}").space()
        seed, got = first_seed, 0
        while got < per_space and seed < first_seed + 50 * per_space:
            arch = sp.sample(seed)
            seed += 1
            if arch.id in exclude:
                continue
            exclude.add(arch.id)
            out.append((f"{name}:{arch.id[:8]}", sp.build(arch).eval(), tuple(sp.input_shape),
                        name))
            got += 1
    return out


def _flops(model: torch.nn.Module, shape: tuple[int, ...], batch: int) -> float:
    return sum(kernel_cost(k, batch)[0] for k in extract_kernels(model, shape)
               if k.kind != "call")


def _truth(tests: list, batch: int, threads: int, repeats: int,
           anchors: list) -> tuple[np.ndarray, ...]:
    """Return (truth, pass A, pass B) for `tests` and the truth for `anchors`, all interleaved."""
    everything = tests + anchors
    models = {n: m for n, m, _, _ in everything}
    shapes = {n: s for n, _, s, _ in everything}
    kw = {"batch_size": batch, "threads": threads, "repeats": repeats, "warmup": 1}
    a = compare_interleaved(models, shapes, **kw)
    b = compare_interleaved(models, shapes, **kw)
    names = [n for n, _, _, _ in tests]
    ma = np.array([a[n].median_ms for n in names])
    mb = np.array([b[n].median_ms for n in names])
    both = {n: float(np.median(a[n].samples_ms + b[n].samples_ms)) for n in models}
    return (np.array([both[n] for n in names]), ma, mb,
            np.array([both[n] for n, _, _, _ in anchors]))


def _drift(profile: Any, anchors: list, anchor_ms: np.ndarray, batch: int) -> float:
    """Return how much slower the profiled whole models run now than when profiled (median ratio).

    Thread-CPU time still grows when neighbours share the caches, so a profile made at one load
    and ground truth timed at another differ by a common factor; printed, never applied.
    """
    then = {m["name"]: m["median_ms"] for m in profile.models if m["batch_size"] == batch}
    ratios = [now / then[n] for (n, _, _, _), now in zip(anchors, anchor_ms, strict=True)
              if then.get(n)]
    return float(np.median(ratios)) if ratios else float("nan")


def _print_table(results: dict[str, dict[str, float]], ceilings: dict[int, float]) -> None:
    cols = list(results)
    print("\n| metric | " + " | ".join(cols) + " |")
    print("|---|" + "---|" * len(cols))
    for m in METRICS:
        cells = []
        for c in cols:
            v = results[c][m]
            cells.append(f"{v:.3f}" if m not in ("rmse",) else f"{v:.2f} ms")
        print(f"| {m} | " + " | ".join(cells) + " |")
    print("| n | " + " | ".join(str(int(results[c]["n"])) for c in cols) + " |")
    print("\nnoise ceiling (two interleaved passes agree within ±10%): "
          + ", ".join(f"batch {b}: {v:.3f}" for b, v in ceilings.items()))


def _parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", type=float, default=90.0, help="profiling seconds (<= 1200)")
    ap.add_argument("--spaces", default="resnet,mobilenet,vit,vgg")
    ap.add_argument("--profile-per-space", type=int, default=12)
    ap.add_argument("--test-per-space", type=int, default=50)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=15,
                    help="samples per model per ground-truth pass (one sample scatters by 10-20%% "
                         "here: with 9 two passes agreed within 10%% for 70%% of models, with 25 "
                         "for 97%%)")
    ap.add_argument("--profile-repeats", type=int, default=5, help="samples per profiled timing")
    ap.add_argument("--batches", default="1,32")
    ap.add_argument("--save", default="", help="write the profile JSON here ('-' = default)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if not 0 < args.budget <= 1200:
        ap.error(f"--budget {args.budget} must be in (0, 1200] seconds")
    return args


def _evaluate(b: int, tests: list, prof_models: list, profile: Any, variants: dict,
              args: argparse.Namespace, results: dict[str, dict[str, float]]) -> float:
    """Fill `results` for batch b; return the noise ceiling."""
    kernels = {n: extract_kernels(m, s) for n, m, s, _ in tests}
    t1 = time.monotonic()
    truth, ma, mb, anchor_ms = _truth(tests, b, args.threads, args.repeats, prof_models)
    print(f"batch {b}: ground truth for {len(tests)} models in {time.monotonic() - t1:.0f} s; "
          f"the profiled models now take {_drift(profile, prof_models, anchor_ms, b):.3f}x "
          "their profiled time (1.0 = the machine's load has not changed)")
    # The profiled models, timed again beside the test set, give the machine's speed now: the
    # predictor rescaled by their measured/predicted median shows what drift since profiling
    # costs (no test model is used for it).
    plain = variants["predictor"]
    now = np.median(anchor_ms / np.array([plain.predict(m, s, b) for _, m, s, _ in prof_models]))
    print(f"batch {b}: the profiled models now run at {now:.3f}x the predictor's estimate "
          "(the 'rescaled' column multiplies by it)")
    for name, pred in variants.items():
        t2 = time.perf_counter()
        if name == "predictor":  # the public path, timed: trace + regressors
            p = [pred.predict(m, s, b) for _, m, s, _ in tests]
        else:  # the same kernels, traced once
            p = [pred.predict_kernels(kernels[n], b) for n, _, _, _ in tests]
        results[f"{name} b{b}"] = latency_report(p, truth)
        results[f"{name} b{b}"]["ms_per_prediction"] = (time.perf_counter() - t2) / len(p) * 1e3
        if name == "predictor":
            results[f"rescaled b{b}"] = latency_report(np.asarray(p) * now, truth)
            for sp in sorted({t[3] for t in tests}):
                idx = [i for i, t in enumerate(tests) if t[3] == sp]
                r = latency_report([p[i] for i in idx], truth[idx])
                print(f"  {sp:10s} within_10={r['within_10']:.2f} "
                      f"spearman={r['spearman']:.3f} mape={r['mape']:.3f} bias={r['bias']:+.3f}")
    train = [m for m in profile.models if m["batch_size"] == b]
    names = {n: (mm, s) for n, mm, s, _ in prof_models}
    if len(train) < 2:
        print(f"batch {b}: fewer than 2 whole-model timings; no FLOPs baseline")
    else:
        f_train = [_flops(*names[m["name"]], b) for m in train]
        f_test = [sum(kernel_cost(k, b)[0] for k in kernels[n] if k.kind != "call")
                  for n, _, _, _ in tests]
        fb = flops_baseline(f_train, [m["median_ms"] for m in train], f_test)
        results[f"FLOPs b{b}"] = latency_report(np.maximum(fb, 1e-3), truth)
    return noise_ceiling(ma, mb)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; return the process exit code."""
    args = _parse(argv)
    torch.manual_seed(args.seed)
    spaces = args.spaces.split(",")
    batches = [int(b) for b in args.batches.split(",")]
    ident = identify("cpu", args.threads)
    print(f"device {ident.device_id} ({ident.name}, {ident.logical_cores} cores, "
          f"{args.threads} thread(s)); spaces {spaces}")
    seen: set[str] = set()
    prof_models = _sample(spaces, args.profile_per_space, args.seed, seen)
    tests = _sample(spaces, args.test_per_space, args.seed + 10_000, seen)
    t0 = time.monotonic()
    profile = profile_device([(n, m, s) for n, m, s, _ in prof_models], batch_sizes=batches,
                             time_budget_s=args.budget, threads=args.threads,
                             whole_models=len(prof_models), seed=args.seed,
                             repeats=args.profile_repeats)
    print(f"profiled {len(profile.measurements)} kernel timings, {len(profile.models)} "
          f"whole-model timings in {time.monotonic() - t0:.0f} s")
    if args.save:
        print("profile saved to", profile.save(None if args.save == "-" else args.save))
    variants = {"predictor": LatencyPredictor(seed=args.seed).fit(profile),
                "no-correction": LatencyPredictor(correction=False, seed=args.seed).fit(profile),
                "with-lookup": LatencyPredictor(lookup=True, seed=args.seed).fit(profile)}
    results: dict[str, dict[str, float]] = {}
    ceilings = {b: _evaluate(b, tests, prof_models, profile, variants, args, results)
                for b in batches}
    _print_table(results, ceilings)
    for b in batches:
        print(f"batch {b}: {results[f'predictor b{b}']['ms_per_prediction']:.2f} ms per first "
              "prediction (traced); cached repeats are dictionary lookups")
    ok = all(results[f"predictor b{b}"]["spearman"] >= 0.95 for b in batches)
    ok = ok and (32 not in batches or results["predictor b32"]["within_10"] >= 0.9)
    print("targets met" if ok else "targets NOT met (see table)")
    return 0 if not math.isnan(results[f"predictor b{batches[0]}"]["mape"]) else 1


if __name__ == "__main__":
    sys.exit(main())
