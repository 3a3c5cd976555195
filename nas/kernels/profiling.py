"""Profile a device's fp32 kernels: time standalone kernels, then sample more where the model errs most.

nn-Meter's idea, within a time budget: measure the kernels the given models use, fit the kernel
latency model, measure configurations near the ones it predicts worst, refit, until time runs out.
A few whole models are timed too, for the predictor's end-to-end correction.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from nas.errors import HardwareError
from nas.hardware.identity import DEFAULT_THREADS, identify
from nas.hardware.profile import DeviceProfile
from nas.kernels.kernel import Kernel
from nas.kernels.model import KernelLatencyModel
from nas.kernels.perturb import perturb
from nas.kernels.timing import Progress, measure_models, model_entry, profile_kernels
from nas.kernels.trace import extract_kernels


class AdaptiveSampler:
    """Chooses kernel configurations near those the current model gets most wrong."""

    def __init__(self, rows: list[dict[str, Any]], seed: int) -> None:
        self.rng = random.Random(seed)
        self.anchors = [Kernel.from_json(r) for r in rows]
        self.weights = [1.0] * len(self.anchors)
        self.seen = {k.key() for k in self.anchors}

    def propose(self, n: int) -> list[Kernel]:
        """Return up to n new configurations, perturbed from high-error anchors."""
        out: list[Kernel] = []
        for _ in range(n * 5):
            if len(out) >= n or not self.anchors:
                break
            anchor = self.rng.choices(self.anchors, weights=self.weights)[0]
            cand = perturb(anchor, self.rng)
            if cand is not None and cand.key() not in self.seen:
                self.seen.add(cand.key())
                out.append(cand)
        return out

    def learn(self, kernel: Kernel, error: float) -> None:
        """Record a measured candidate's prediction error; it becomes an anchor."""
        self.anchors.append(kernel)
        self.weights.append(error + 0.02)


def check_budget(time_budget_s: float, repeats: int) -> None:
    """Raise HardwareError unless a profile has seconds to spend and at least one sample per timing."""
    if time_budget_s <= 0:
        raise HardwareError(f"time_budget_s={time_budget_s} is invalid; give seconds > 0")
    if repeats < 1:
        raise HardwareError(f"repeats={repeats} is invalid; give at least 1 sample per timing")


def profile_float(models: Sequence[Any], *, device: str = "cpu",
                  batch_sizes: Sequence[int] = (1, 32), time_budget_s: float = 120.0,
                  progress: Progress | None = None, threads: int | None = DEFAULT_THREADS,
                  whole_models: int = 8, seed: int = 0, repeats: int = 5) -> DeviceProfile:
    """Return a DeviceProfile of fp32 `models`: their kernels, adaptive extra samples and a few
    whole models.

    `repeats` samples per timing: on a shared machine one sample scatters by 10-20%, so more
    repeats buy a steadier profile at the price of fewer configurations within the budget.
    """
    check_budget(time_budget_s, repeats)
    ident = identify(device, threads)
    kernels: list[Kernel] = []
    for item in models:
        _, model, shape = model_entry(item)
        kernels.extend(extract_kernels(model, shape))
    # The budget is measuring time; tracing (shapes only, on the meta device) comes first.
    start = time.monotonic()
    left = lambda: time_budget_s - (time.monotonic() - start)  # noqa: E731
    report = progress or (lambda *a: None)
    report(0, None, f"{len(kernels)} kernels from {len(models)} models")
    rows = profile_kernels(kernels, device=device, batch_sizes=batch_sizes, threads=threads,
                           seed=seed, repeats=repeats,
                           time_budget_s=max(0.0, 0.55 * time_budget_s - (time_budget_s - left())),
                           progress=lambda d, t, m: report(d, None, "kernels: " + m))
    # whole models in a seeded random order: callers often group models by space, and the
    # budget may cut the list short
    order = random.Random(seed).sample(range(len(models)), min(whole_models, len(models)))
    chosen = [models[i] for i in order]
    whole = measure_models(chosen, device=device, batch_sizes=batch_sizes, repeats=repeats,
                           threads=threads, time_budget_s=max(1.0, left() - 0.2 * time_budget_s))
    report(len(rows), None, f"{len(rows)} kernel and {len(whole)} whole-model timings")
    rows += _adaptive_rounds(rows, left, device, threads, batch_sizes, seed, report, repeats)
    meta = {"time_budget_s": time_budget_s, "elapsed_s": round(time.monotonic() - start, 1),
            "batch_sizes": list(batch_sizes), "seed": seed, "n_models": len(models),
            "repeats": repeats}
    return DeviceProfile(ident, rows, whole, meta)


def _adaptive_rounds(rows: list[dict[str, Any]], left: Callable[[], float], device: str,
                     threads: int | None, batch_sizes: Sequence[int], seed: int,
                     report: Progress, repeats: int) -> list[dict[str, Any]]:
    """Return extra rows measured near the worst-predicted configurations until time is up."""
    extra: list[dict[str, Any]] = []
    sampler = AdaptiveSampler(rows, seed)
    round_no = 0
    while rows and left() > 2.0:
        model = KernelLatencyModel(seed=seed).fit(rows + extra)
        cands = sampler.propose(12)
        if not cands:
            break
        for cand in cands:
            if left() <= 1.0:
                break
            new = profile_kernels([cand], device=device, batch_sizes=batch_sizes,
                                  threads=threads, repeats=repeats)
            errors = [abs(np.log(r["median_ms"] / model.predict_kernel(cand, r["batch_size"])))
                      for r in new]
            extra.extend(new)
            if errors:
                sampler.learn(cand, float(max(errors)))
        round_no += 1
        report(len(extra), None, f"adaptive round {round_no}: {len(extra)} extra samples")
    return extra
