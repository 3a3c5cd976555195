"""Time kernels standalone and models whole (interleaved with their own kernels) on one device.

What can be timed is a `KernelSupport`: how a model decomposes into kernels, which kinds can be
built standalone and how. `FLOAT_SUPPORT` knows fp32 models; int8 code supplies its own
(`nas.predictors.mixed_precision.INT8_SUPPORT`), so the timing here stays precision-blind.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from torch import nn

from nas.errors import HardwareError
from nas.hardware.identity import DEFAULT_THREADS, identify
from nas.hardware.timing import compare_interleaved, measure
from nas.kernels.build import BUILDABLE, build_kernel
from nas.kernels.kernel import Kernel
from nas.kernels.trace import extract_kernels

Progress = Callable[[int, int | None, str], Any]  # (done, total or None, message)
# what torch raises for a configuration it cannot run (a perturbed one, or a kind with no module)
_BUILD_ERRORS = (RuntimeError, ValueError, KeyError, TypeError, IndexError)


@dataclass(frozen=True)
class KernelSupport:
    """The kernels a profiler can handle: how a model decomposes into them, which kinds build
    standalone, and how one is built (module, inputs) at a batch size."""

    decompose: Callable[[nn.Module, tuple[int, ...]], list[Kernel]]
    kinds: frozenset[str]
    build: Callable[[Kernel, int], tuple[nn.Module, tuple]]


FLOAT_SUPPORT = KernelSupport(decompose=extract_kernels, kinds=BUILDABLE, build=build_kernel)


def as_kernel(obj: Kernel | dict[str, Any]) -> Kernel:
    """Return `obj` as a Kernel: a Kernel, or a {"kind", "config"} dict."""
    if isinstance(obj, Kernel):
        return obj
    if isinstance(obj, dict) and "kind" in obj:
        return Kernel.from_json(obj)
    raise HardwareError(f"kernel config {obj!r} is invalid; give a Kernel or "
                        "{'kind': ..., 'config': {...}}")


def time_kernel(kernel: Kernel, batch_size: int, *, device: str = "cpu",
                threads: int | None = DEFAULT_THREADS, repeats: int = 5,
                support: KernelSupport = FLOAT_SUPPORT) -> tuple[float, float, int] | None:
    """Return (median ms, IQR ms, samples) of `kernel` run standalone, or None if it cannot run."""
    try:
        mod, xs = support.build(kernel, batch_size)
        t = measure(mod, xs, batch_size=batch_size, device=device, threads=threads, warmup=1,
                    repeats=repeats, min_sample_ms=0.3)
    except _BUILD_ERRORS:
        return None  # a perturbed configuration that torch rejects is simply skipped
    return t.median_ms, t.iqr_ms, t.n


def profile_kernels(kernel_configs: Iterable[Kernel | dict[str, Any]], *, device: str = "cpu",
                    batch_sizes: Sequence[int] = (1, 32), time_budget_s: float | None = None,
                    progress: Progress | None = None, threads: int | None = DEFAULT_THREADS,
                    repeats: int = 5, seed: int | None = None,
                    support: KernelSupport = FLOAT_SUPPORT) -> list[dict[str, Any]]:
    """Return measurement rows (store `measurements` columns) of standalone kernels.

    Kernels are deduplicated; kinds `support` cannot build ("other") are skipped; stops at the
    budget. With a `seed` the order is shuffled, so a budget cut spreads over all models.
    """
    device_id = identify(device, threads).device_id
    seen: set[str] = set()
    todo: list[Kernel] = []
    for obj in kernel_configs:
        k = as_kernel(obj)
        if k.kind in support.kinds and k.key() not in seen:
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
            res = time_kernel(k, int(b), device=device, threads=threads, repeats=repeats,
                              support=support)
            done += 1
            if res is not None:
                rows.append({"device_id": device_id, "kind": k.kind, "config": k.config,
                             "batch_size": int(b), "median_ms": res[0], "iqr_ms": res[1],
                             "repeats": res[2], "device": device})
            if progress is not None:
                progress(done, total, f"{k.kind} b={b}")
    return rows


def model_entry(item: Any) -> tuple[str | None, nn.Module, tuple[int, ...]]:
    """Return (name or None, module, input_shape) of a (module, input_shape) or (name, module,
    input_shape) entry of a profiler's model list."""
    if len(item) == 3:
        return str(item[0]), item[1], tuple(item[2])
    if len(item) == 2:
        return None, item[0], tuple(item[1])
    raise HardwareError("profile_device models must be (module, input_shape) or "
                        f"(name, module, input_shape); got a tuple of {len(item)}")


def measure_models(models: Sequence[Any], *, device: str = "cpu",
                   batch_sizes: Sequence[int] = (1, 32), threads: int | None = DEFAULT_THREADS,
                   repeats: int = 5, time_budget_s: float | None = None,
                   support: KernelSupport = FLOAT_SUPPORT) -> list[dict[str, Any]]:
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
        name, model, shape = model_entry(item)
        kernels = support.decompose(model, shape)
        counts: dict[str, int] = {}
        unique: dict[str, Kernel] = {}
        for k in kernels:
            if k.kind in support.kinds:
                counts[k.key()] = counts.get(k.key(), 0) + 1
                unique.setdefault(k.key(), k)
        for b in batch_sizes:
            runs: dict[str, Any] = {"__model__": model}
            inputs: dict[str, Any] = {"__model__": shape}
            try:
                for key, k in unique.items():
                    runs[key], inputs[key] = support.build(k, int(b))
            except _BUILD_ERRORS:
                break  # a kernel with no standalone version: no load-neutral ratio for it
            t = compare_interleaved(runs, inputs, batch_size=int(b), device=device,
                                    threads=threads, warmup=1, repeats=repeats)
            ksum = sum(counts[key] * t[key].median_ms for key in unique)
            whole = t["__model__"]
            out.append({"name": name or f"model{i}", "batch_size": int(b),
                        "median_ms": whole.median_ms, "iqr_ms": whole.iqr_ms,
                        "repeats": whole.n, "kernel_sum_ms": ksum, "input_shape": list(shape),
                        "kernels": [k.to_json() for k in kernels]})
    return out
