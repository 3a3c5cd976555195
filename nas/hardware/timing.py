"""Latency timers: robust medians on CPU (fixed threads) and CUDA (events), and A/B interleaving.

On a shared machine a single timing is noise; the median of many warm samples is the figure we
trust, and models that are compared are timed round-robin so that interference hits all alike.
"""

from __future__ import annotations

import contextlib
import math
import statistics
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from nas.errors import HardwareError
from nas.hardware.identity import DEFAULT_THREADS

Runnable = nn.Module | Callable[..., Any]
Shape = tuple[int, ...]


@dataclass
class Timing:
    """Summary of repeated latency samples, in milliseconds per forward pass."""

    median_ms: float
    iqr_ms: float
    n: int
    samples_ms: list[float] = field(default_factory=list)
    clock: str = "wall"  # "wall" (perf_counter, CUDA events) or "thread" (this thread's CPU time)

    def to_json(self) -> dict[str, Any]:
        """Return a plain, JSON-able dict."""
        return asdict(self)


def _summarise(samples: list[float], clock: str = "wall") -> Timing:
    if len(samples) >= 4:
        q = statistics.quantiles(samples, n=4, method="inclusive")
        iqr = q[2] - q[0]
    else:
        iqr = max(samples) - min(samples) if samples else 0.0
    return Timing(float(statistics.median(samples)), float(iqr), len(samples), list(samples),
                  clock)


def _resolve_clock(clock: str, dev: torch.device, threads_in_force: int) -> str:
    if clock not in ("auto", "wall", "thread"):
        raise HardwareError(f"clock={clock!r} is invalid; valid: 'auto', 'wall', 'thread'")
    if dev.type == "cuda":
        return "wall"
    if clock == "auto":
        return "thread" if threads_in_force == 1 else "wall"
    return clock


@contextlib.contextmanager
def cpu_threads(threads: int | None) -> Iterator[int]:
    """Yield the intra-op thread count in force, fixed to `threads`, restored on exit."""
    before = torch.get_num_threads()
    if threads is not None:
        if threads < 1:
            raise HardwareError(f"threads={threads} is invalid; give a positive count or None")
        torch.set_num_threads(threads)
    # Inter-op parallelism can be set only once per process (torch raises afterwards), and an
    # eager forward pass never uses it; we try for 1 and otherwise leave it alone.
    if torch.get_num_interop_threads() != 1:
        with contextlib.suppress(RuntimeError):
            torch.set_num_interop_threads(1)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


def _check_device(device: str) -> torch.device:
    if device == "cpu":
        return torch.device("cpu")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise HardwareError(f"device {device!r} requested but no CUDA GPU is available")
        return torch.device(device)
    raise HardwareError(f"device {device!r} is not supported; valid: 'cpu', 'cuda', 'cuda:N'")


def _prepare(model: Runnable, dev: torch.device) -> Runnable:
    if isinstance(model, nn.Module):
        model.eval()
        if dev.type == "cuda":
            model.to(dev)
    return model


def make_input(input_shape: Shape, batch_size: int, device: torch.device | str = "cpu",
               dtype: torch.dtype = torch.float32, seed: int = 0) -> torch.Tensor:
    """Return a seeded random input of shape (batch_size, *input_shape)."""
    if batch_size < 1:
        raise HardwareError(f"batch_size={batch_size} is invalid; it must be at least 1")
    if not input_shape or any(int(d) < 1 for d in input_shape):
        raise HardwareError(f"input_shape={tuple(input_shape)} is invalid; give positive dims "
                            "without the batch dimension, e.g. (3, 32, 32)")
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn((batch_size, *map(int, input_shape)), generator=gen)
    return x.to(device=device, dtype=dtype)


class _Sampler:
    """Times one runnable on one input; CPU samples may average `inner` calls."""

    def __init__(self, fn: Runnable, args: tuple[Any, ...], dev: torch.device,
                 min_sample_ms: float, clock: str = "wall") -> None:
        self.fn, self.args, self.dev = fn, args, dev
        self.min_sample_ms = min_sample_ms
        self.inner = 1
        # CPU time of this thread ignores the time other processes hold the core, which on a
        # shared machine is most of the noise; it is exact only with one intra-op thread.
        self.now = time.thread_time_ns if clock == "thread" else time.perf_counter_ns

    def warm(self, warmup: int) -> None:
        """Run `warmup` untimed calls and choose how many calls one sample averages."""
        for _ in range(max(1, warmup)):
            self.sample()
        one = self.sample()
        # Very short kernels are averaged over several calls so timer resolution is no issue.
        if one < self.min_sample_ms:
            self.inner = min(1000, max(1, math.ceil(self.min_sample_ms / max(one, 1e-4))))

    def sample(self) -> float:
        """Return the time of one call in ms (the mean of `inner` back-to-back calls)."""
        if self.dev.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            torch.cuda.synchronize(self.dev)
            start.record()
            for _ in range(self.inner):
                self.fn(*self.args)
            end.record()
            torch.cuda.synchronize(self.dev)
            return start.elapsed_time(end) / self.inner
        t0 = self.now()
        for _ in range(self.inner):
            self.fn(*self.args)
        return (self.now() - t0) / 1e6 / self.inner


def _inputs(model: Runnable, input_shape: Shape | tuple[torch.Tensor, ...], batch_size: int,
            dev: torch.device, dtype: torch.dtype) -> tuple[Any, ...]:
    if isinstance(input_shape, tuple) and input_shape and isinstance(input_shape[0], torch.Tensor):
        return tuple(t.to(dev) for t in input_shape)
    return (make_input(tuple(input_shape), batch_size, dev, dtype),)


def measure(model: Runnable, input_shape: Shape | tuple[torch.Tensor, ...], *,
            batch_size: int = 1, device: str = "cpu", dtype: torch.dtype = torch.float32,
            warmup: int = 5, repeats: int = 30, threads: int | None = DEFAULT_THREADS,
            min_sample_ms: float = 0.2, clock: str = "auto") -> Timing:
    """Return the Timing (median, IQR, samples in ms) of `model` on a random batch.

    `input_shape` excludes the batch dimension; a tuple of tensors is used as the inputs as-is.
    On CPU `threads` intra-op threads are used (`DEFAULT_THREADS`, as profiles and predictions
    are made; None keeps torch's current count). `clock="auto"` times this thread's CPU time when
    one CPU thread is used (immune to other processes on a shared machine), else wall time.
    """
    if repeats < 1:
        raise HardwareError(f"repeats={repeats} is invalid; it must be at least 1")
    dev = _check_device(device)
    fn = _prepare(model, dev)
    args = _inputs(model, input_shape, batch_size, dev, dtype)
    with cpu_threads(threads if dev.type == "cpu" else None) as used, torch.inference_mode():
        how = _resolve_clock(clock, dev, used)
        sampler = _Sampler(fn, args, dev, min_sample_ms if dev.type == "cpu" else 0.0, how)
        sampler.warm(warmup)
        samples = [sampler.sample() for _ in range(repeats)]
    return _summarise(samples, how)


def measure_latency(model: Runnable, input_shape: Shape, *, batch_size: int = 1,
                    device: str = "cpu", dtype: torch.dtype = torch.float32, warmup: int = 5,
                    repeats: int = 30, threads: int | None = DEFAULT_THREADS,
                    clock: str = "auto") -> float:
    """Return the median latency in ms of one forward pass of `model` at `batch_size`."""
    return measure(model, input_shape, batch_size=batch_size, device=device, dtype=dtype,
                   warmup=warmup, repeats=repeats, threads=threads, clock=clock).median_ms


def compare_interleaved(models: Mapping[str, Runnable],
                        input_shape: Shape | Mapping[str, Shape], *, batch_size: int = 1,
                        device: str = "cpu", dtype: torch.dtype = torch.float32,
                        warmup: int = 3, repeats: int = 20, threads: int | None = DEFAULT_THREADS,
                        min_sample_ms: float = 0.2, clock: str = "auto",
                        warm_turn: bool = True) -> dict[str, Timing]:
    """Return a Timing per model, sampled round-robin so that machine noise hits all alike.

    `input_shape` is one shape for all models or a mapping from model name to its shape.
    With `warm_turn` each turn runs the model once untimed first: the other models evict its
    weights from the caches, and a served model runs warm.
    """
    if not models:
        raise HardwareError("compare_interleaved needs at least one model; got an empty mapping")
    dev = _check_device(device)
    shapes = {name: (input_shape[name] if isinstance(input_shape, Mapping) else input_shape)
              for name in models}
    samples: dict[str, list[float]] = {name: [] for name in models}
    names = list(models)
    with cpu_threads(threads if dev.type == "cpu" else None) as used, torch.inference_mode():
        how = _resolve_clock(clock, dev, used)
        samplers = {}
        for name in names:
            fn = _prepare(models[name], dev)
            args = _inputs(fn, tuple(shapes[name]), batch_size, dev, dtype)
            samplers[name] = _Sampler(fn, args, dev, min_sample_ms if dev.type == "cpu" else 0.0,
                                      how)
            samplers[name].warm(warmup)
        for r in range(repeats):
            # Rotate the order each round so no model always runs right after the same one.
            for name in names[r % len(names):] + names[: r % len(names)]:
                if warm_turn:
                    samplers[name].fn(*samplers[name].args)
                samples[name].append(samplers[name].sample())
    return {name: _summarise(s, how) for name, s in samples.items()}
