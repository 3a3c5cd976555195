"""How steady are whole-model latencies on this machine, per space, from one pass to the next?

The latency benchmark's noise ceiling compares two interleaved passes taken back to back. This
script takes several such passes of the same held-out models in a row and prints, per space, how
far a model's pass medians spread (max / min) and how many models stay within ±10% of their own
median in every pass: when that share is low, no predictor can be checked to ±10% here.

    python benchmarks/latency_stability.py --per-space 6 --batch 32 --passes 4
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from latency_predictor import _sample  # noqa: E402

from nas.hardware import compare_interleaved  # noqa: E402
from nas.predictors import noise_ceiling  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Run the passes and print the table; return the process exit code."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spaces", default="resnet,mobilenet,vit,vgg")
    ap.add_argument("--per-space", type=int, default=6, help="models per space")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--passes", type=int, default=4, help="interleaved passes, one after another")
    ap.add_argument("--repeats", type=int, default=9, help="samples per model per pass")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=10_000, help="first sampling seed (the latency "
                    "benchmark's held-out models start at 10,000)")
    args = ap.parse_args(argv)
    if args.passes < 2 or args.per_space < 1:
        ap.error("--passes must be >= 2 and --per-space >= 1")
    models = _sample(args.spaces.split(","), args.per_space, args.seed, set())
    kw = {"batch_size": args.batch, "threads": args.threads, "repeats": args.repeats, "warmup": 1}
    passes = []
    for i in range(args.passes):
        t0 = time.monotonic()
        timing = compare_interleaved({n: m for n, m, _, _ in models},
                                     {n: s for n, _, s, _ in models}, **kw)
        passes.append(np.array([timing[n].median_ms for n, _, _, _ in models]))
        print(f"pass {i + 1}/{args.passes}: {time.monotonic() - t0:.0f} s", flush=True)
    ms = np.stack(passes)  # (passes, models)
    spread = ms.max(0) / ms.min(0)
    steady = np.all(np.abs(ms / np.median(ms, 0) - 1) <= 0.10, axis=0)
    print(f"\nbatch {args.batch}, {args.passes} passes of {args.repeats} samples, {args.threads} "
          f"thread(s)\n")
    print("| space | models | spread max/min, median | worst | within ±10% of own median in every "
          "pass | passes 1-2 agree ±10% | passes 1-last agree ±10% |")
    print("|---|---|---|---|---|---|---|")
    for sp in [*args.spaces.split(","), "all"]:
        idx = [i for i, t in enumerate(models) if sp in ("all", t[3])]
        print(f"| {sp} | {len(idx)} | {np.median(spread[idx]):.2f} | {spread[idx].max():.2f} | "
              f"{steady[idx].mean():.0%} | {noise_ceiling(ms[0, idx], ms[1, idx]):.0%} | "
              f"{noise_ceiling(ms[0, idx], ms[-1, idx]):.0%} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
