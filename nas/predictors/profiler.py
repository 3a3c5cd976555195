"""Profile a device: time standalone kernels, then sample more where the predictor errs most.

nn-Meter's idea, within a time budget: measure the kernels the given models use, fit the
predictor, measure configurations near the ones it predicts worst, refit, until time runs out.
A few whole models are timed too, for the predictor's end-to-end correction.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
from torch import nn

from nas.errors import HardwareError
from nas.hardware.identity import identify
from nas.hardware.profile import DeviceProfile
from nas.hardware.timing import compare_interleaved, measure
from nas.predictors.kernel_ops import BUILDABLE, build_kernel
from nas.predictors.kernels import Kernel, extract_kernels
from nas.predictors.latency import LatencyPredictor
from nas.predictors.quant_kernels import is_quantized_model

PRECISIONS = ("fp32", "int8")

Progress = Callable[[int, int | None, str], Any]
_FACTORS = (0.5, 0.75, 1.25, 1.5, 2.0)


def _kernel(obj: Kernel | dict[str, Any]) -> Kernel:
    if isinstance(obj, Kernel):
        return obj
    if isinstance(obj, dict) and "kind" in obj:
        return Kernel(obj["kind"], dict(obj.get("config", {})))
    raise HardwareError(f"kernel config {obj!r} is invalid; give a Kernel or "
                        "{'kind': ..., 'config': {...}}")


def _time_kernel(kernel: Kernel, b: int, device: str, threads: int | None,
                 repeats: int) -> tuple[float, float, int] | None:
    try:
        mod, xs = build_kernel(kernel, b)
        t = measure(mod, xs, batch_size=b, device=device, threads=threads, warmup=1,
                    repeats=repeats, min_sample_ms=0.3)
    except (RuntimeError, ValueError, KeyError, TypeError, IndexError):
        return None  # a perturbed configuration that torch rejects is simply skipped
    return t.median_ms, t.iqr_ms, t.n


def profile_kernels(kernel_configs: Iterable[Kernel | dict[str, Any]], *, device: str = "cpu",
                    batch_sizes: Sequence[int] = (1, 32), time_budget_s: float | None = None,
                    progress: Progress | None = None, threads: int | None = None,
                    repeats: int = 5, seed: int | None = None) -> list[dict[str, Any]]:
    """Return measurement rows (store `measurements` columns) of standalone kernels.

    Kernels are deduplicated; unbuildable kinds ("other") are skipped; stops at the budget.
    With a `seed` the order is shuffled, so a budget cut spreads over all models.
    """
    device_id = identify(device, threads).device_id
    seen: set[str] = set()
    todo: list[Kernel] = []
    for obj in kernel_configs:
        k = _kernel(obj)
        if k.kind in BUILDABLE and k.key() not in seen:
            seen.add(k.key())
            todo.append(k)
    if seed is not None:
        random.Random(seed).shuffle(todo)
    total = len(todo) * len(batch_sizes)
    start, rows, done = time.monotonic(), [], 0
    for k in todo:
        for b in batch_sizes:
            if time_budget_s is not None and time.monotonic() - start > time_budget_s:
                return rows
            res = _time_kernel(k, int(b), device, threads, repeats)
            done += 1
            if res is not None:
                rows.append({"device_id": device_id, "kind": k.kind, "config": k.config,
                             "batch_size": int(b), "median_ms": res[0], "iqr_ms": res[1],
                             "repeats": res[2], "device": device})
            if progress is not None:
                progress(done, total, f"{k.kind} b={b}")
    return rows


# ---- perturbation for adaptive sampling ---------------------------------------------------

def _scale(v: int, f: float, lo: int = 1) -> int:
    return max(lo, int(round(v * f)))


def _out(n: int, k: int, s: int, p: Any, d: int) -> int:
    if isinstance(p, str):  # "same" (stride 1) or "valid"
        return n if p == "same" else (n - d * (k - 1) - 1) // s + 1
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def _perturb_conv(c: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    c = dict(c)
    what = rng.choice(["cin", "cout", "hw", "k", "stride", "both"])
    f = rng.choice(_FACTORS)
    depthwise = c["groups"] > 1 and c["groups"] == c["cin"] == c["cout"]
    if depthwise and what in ("cin", "cout", "both"):
        c["cin"] = c["cout"] = c["groups"] = _scale(c["cin"], f)
    elif what in ("cin", "both") and c["groups"] == 1:
        c["cin"] = _scale(c["cin"], f)
    if what in ("cout", "both") and not depthwise and c["groups"] == 1:
        c["cout"] = _scale(c["cout"], f)
    if what == "hw":
        c["h"], c["w"] = _scale(c["h"], f, 2), _scale(c["w"], f, 2)
    if what == "k" and not isinstance(c["padding"], str):
        k = rng.choice([1, 3, 5, 7])
        c["k"], c["padding"] = [k, k], [k // 2 * c["dilation"][0]] * 2
    if what == "stride" and not isinstance(c["padding"], str):
        s = rng.choice([1, 2])
        c["stride"] = [s, s]
    c["ho"] = _out(c["h"], c["k"][0], c["stride"][0], c["padding"] if isinstance(
        c["padding"], str) else c["padding"][0], c["dilation"][0])
    c["wo"] = _out(c["w"], c["k"][1], c["stride"][1], c["padding"] if isinstance(
        c["padding"], str) else c["padding"][1], c["dilation"][1])
    return c


def _perturb(kernel: Kernel, rng: random.Random) -> Kernel | None:
    c, f = dict(kernel.config), rng.choice(_FACTORS)
    if kernel.kind == "conv":
        c = _perturb_conv(c, rng)
    elif kernel.kind == "linear":
        key = rng.choice(["fin", "fout", "tokens"])
        c[key] = _scale(c[key], f)
    elif kernel.kind == "mha":
        if rng.random() < 0.5:
            c["embed"] = _scale(c["embed"] // c["heads"], f) * c["heads"]
        else:
            c["tokens"] = c["src_tokens"] = _scale(c["tokens"], f)
    elif kernel.kind in ("act", "norm", "pool", "softmax", "reduce", "view") and c.get("shape"):
        c["shape"] = [_scale(c["shape"][0], f), *c["shape"][1:]]
        if kernel.kind == "norm" and c["type"] == "gn" and c["shape"][0] % c["groups"]:
            return None
    elif kernel.kind in ("eltwise", "cat"):
        c["shapes"] = [[s[0], _scale(s[1], f), *s[2:]] if len(s) > 1 and s[1] > 1 else s
                       for s in c["shapes"]]
        if "out" in c and len(c["out"]) > 1 and c["out"][1] > 1:
            c["out"] = [c["out"][0], _scale(c["out"][1], f), *c["out"][2:]]
    else:
        return None
    return Kernel(kernel.kind, c)


# ---- the device profile -------------------------------------------------------------------

def _unpack(item: Any) -> tuple[str | None, nn.Module, tuple[int, ...]]:
    if len(item) == 3:
        return str(item[0]), item[1], tuple(item[2])
    if len(item) == 2:
        return None, item[0], tuple(item[1])
    raise HardwareError("profile_device models must be (module, input_shape) or "
                        f"(name, module, input_shape); got a tuple of {len(item)}")


def measure_models(models: Sequence[Any], *, device: str = "cpu",
                   batch_sizes: Sequence[int] = (1, 32), threads: int | None = None,
                   repeats: int = 5, time_budget_s: float | None = None) -> list[dict[str, Any]]:
    """Return whole-model rows {name, batch_size, median_ms, iqr_ms, repeats, kernel_sum_ms,
    input_shape, kernels}.

    Each model is timed interleaved with its own standalone kernels: `kernel_sum_ms` (their
    summed medians) shares the machine's load of that moment with `median_ms`, so the ratio
    of the two is what the model adds to its kernels, not how busy the machine was.
    """
    out: list[dict[str, Any]] = []
    start = time.monotonic()
    for i, item in enumerate(models):
        if time_budget_s is not None and time.monotonic() - start > time_budget_s:
            break
        name, model, shape = _unpack(item)
        kernels = extract_kernels(model, shape)
        quantized = is_quantized_model(model)
        counts: dict[str, int] = {}
        unique: dict[str, Kernel] = {}
        for k in kernels:
            if k.kind in BUILDABLE:
                counts[k.key()] = counts.get(k.key(), 0) + 1
                unique.setdefault(k.key(), k)
        for b in batch_sizes:
            runs: dict[str, Any] = {"__model__": model}
            inputs: dict[str, Any] = {"__model__": shape}
            try:
                for key, k in unique.items():
                    runs[key], inputs[key] = build_kernel(k, int(b))
            except (RuntimeError, ValueError, KeyError, TypeError, IndexError):
                break  # a kernel with no standalone version: no load-neutral ratio for it
            t = compare_interleaved(runs, inputs, batch_size=int(b), device=device,
                                    threads=threads, warmup=1, repeats=repeats)
            ksum = sum(counts[key] * t[key].median_ms for key in unique)
            whole = t["__model__"]
            row = {"name": name or f"model{i}", "batch_size": int(b),
                   "median_ms": whole.median_ms, "iqr_ms": whole.iqr_ms,
                   "repeats": whole.n, "kernel_sum_ms": ksum, "input_shape": list(shape),
                   "kernels": [k.to_json() for k in kernels]}
            if quantized:  # an FX int8 model: its own whole-model correction
                row["quantized"] = True
            out.append(row)
    return out


class _Adaptive:
    """Chooses kernel configurations near those the current predictor gets most wrong."""

    def __init__(self, rows: list[dict[str, Any]], seed: int) -> None:
        self.rng = random.Random(seed)
        self.anchors = [Kernel(r["kind"], dict(r["config"])) for r in rows]
        self.weights = [1.0] * len(self.anchors)
        self.seen = {k.key() for k in self.anchors}

    def propose(self, n: int) -> list[Kernel]:
        """Return up to n new configurations, perturbed from high-error anchors."""
        out: list[Kernel] = []
        for _ in range(n * 5):
            if len(out) >= n or not self.anchors:
                break
            anchor = self.rng.choices(self.anchors, weights=self.weights)[0]
            cand = _perturb(anchor, self.rng)
            if cand is not None and cand.key() not in self.seen:
                self.seen.add(cand.key())
                out.append(cand)
        return out

    def learn(self, kernel: Kernel, error: float) -> None:
        """Record a measured candidate's prediction error; it becomes an anchor."""
        self.anchors.append(kernel)
        self.weights.append(error + 0.02)


def profile_device(models: Sequence[Any], *, device: str = "cpu",
                   batch_sizes: Sequence[int] = (1, 32), time_budget_s: float = 120.0,
                   progress: Progress | None = None, threads: int | None = None,
                   whole_models: int = 8, seed: int = 0,
                   precisions: Sequence[str] = ("fp32",), repeats: int = 5) -> DeviceProfile:
    """Return a DeviceProfile: model kernels, adaptive extra samples and a few whole models.

    `repeats` samples per timing: on a shared machine one sample scatters by 10-20%, so more
    repeats buy a steadier profile at the price of fewer configurations within the budget.

    With "int8" in `precisions` the models are also quantized under random per-layer
    policies and their int8 kernels and fp32<->int8 transitions are profiled
    (`predictors.int8_profiler.profile_int8`, 40% of the budget).
    """
    if time_budget_s <= 0:
        raise HardwareError(f"time_budget_s={time_budget_s} is invalid; give seconds > 0")
    if repeats < 1:
        raise HardwareError(f"repeats={repeats} is invalid; give at least 1 sample per timing")
    bad = [p for p in precisions if p not in PRECISIONS]
    if bad or "fp32" not in precisions:
        raise HardwareError(f"precisions={list(precisions)} is invalid; valid: ('fp32',) or "
                            "('fp32', 'int8')")
    if "int8" in precisions:
        prof = profile_device(models, device=device, batch_sizes=batch_sizes,
                              time_budget_s=0.6 * time_budget_s, progress=progress,
                              threads=threads, whole_models=whole_models, seed=seed,
                              repeats=repeats)
        from nas.predictors.int8_profiler import extend_int8

        return extend_int8(prof, models, time_budget_s=0.4 * time_budget_s, progress=progress,
                           whole_models=whole_models, seed=seed, repeats=repeats)
    ident = identify(device, threads)
    kernels: list[Kernel] = []
    for item in models:
        _, model, shape = _unpack(item)
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
    sampler = _Adaptive(rows, seed)
    round_no = 0
    while rows and left() > 2.0:
        predictor = LatencyPredictor(lookup=False, correction=False, seed=seed).fit(rows + extra)
        cands = sampler.propose(12)
        if not cands:
            break
        for cand in cands:
            if left() <= 1.0:
                break
            new = profile_kernels([cand], device=device, batch_sizes=batch_sizes,
                                  threads=threads, repeats=repeats)
            errors = [abs(np.log(r["median_ms"] / predictor.predict_kernel(cand, r["batch_size"])))
                      for r in new]
            extra.extend(new)
            if errors:
                sampler.learn(cand, float(max(errors)))
        round_no += 1
        report(len(extra), None, f"adaptive round {round_no}: {len(extra)} extra samples")
    return extra
