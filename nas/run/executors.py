"""Where trials run: inline in this process, or in a pool of worker processes.

A worker gets the architecture as JSON and the space as its reference (`module:function` and
arguments), because spaces hold user functions that do not travel between processes; each worker
rebuilds a space once. Results come back as plain data; only the main process writes the store.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import multiprocessing
import os
import signal
import sys
import traceback
import types
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any

from nas.errors import SearchError
from nas.evaluate import Evaluator, TrialFailed
from nas.space import Architecture, Space


@dataclass(frozen=True)
class Job:
    """One architecture to evaluate."""

    arch_json: str
    evaluator: Evaluator
    seed: int


@dataclass
class JobResult:
    """What came back: metrics and friends, or the error that failed the trial."""

    metrics: dict[str, float] = field(default_factory=dict)
    predicted: list[str] = field(default_factory=list)
    curve: list[dict] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    weights: bytes | None = None  # trained weights as safetensors bytes
    error: str | None = None
    pid: int = 0


def run_job(space: Space, job: Job) -> JobResult:
    """Return the result of evaluating one architecture; a failure becomes an error text, not a raise."""
    from nas.compile.drawing import model_drawing

    arch = Architecture.from_json(job.arch_json)
    built: list[Any] = []  # the first model the evaluator builds: drawn once the trial succeeds

    def build() -> Any:
        model = space.build(arch)
        if not built:
            built.append(model)
        return model

    try:
        result = job.evaluator.evaluate(build, arch, seed=job.seed)
    except TrialFailed as e:
        return JobResult(error=str(e), pid=os.getpid())
    except Exception as e:
        # Any exception from user code (a shape bug, a KeyError in a forward, an out-of-memory)
        # fails this trial with its reason; the search goes on. KeyboardInterrupt and SystemExit
        # are not Exceptions: they still stop the search.
        tail = traceback.format_exception_only(type(e), e)[-1].strip()
        return JobResult(error=tail, pid=os.getpid())
    extra = dict(result.extra)
    if built:  # tabular benchmarks never build: nothing to draw, nothing spent
        try:
            # Stored with the trial, so the dashboard shows the model without importing the
            # space's code; a model that cannot be drawn must not cost the trial.
            extra["model_drawing"] = model_drawing(built[0])
        except Exception:  # noqa: BLE001 - whatever the user's module does while being drawn
            pass
    return JobResult(metrics=dict(result.metrics), predicted=list(result.predicted),
                     curve=list(result.curve), extra=extra,
                     weights=_weights_bytes(result.state_dict), pid=os.getpid())


def _weights_bytes(state_dict: Mapping[str, Any] | None) -> bytes | None:
    if not state_dict:
        return None
    from safetensors.torch import save

    tensors = {k: v.detach().contiguous().cpu() for k, v in state_dict.items()}
    return save(tensors) if tensors else None


class InlineExecutor:
    """Runs each job at once in this process (the default: simplest, and best for one core)."""

    def __init__(self, space: Space) -> None:
        self.space = space

    def submit(self, job: Job) -> Future:
        fut: Future = Future()
        fut.set_result(run_job(self.space, job))
        return fut

    def shutdown(self) -> None:
        pass

    def stop(self) -> None:
        """Abandon running work at once (nothing runs in the background here)."""


def _init_worker() -> None:
    """Make a worker end with its parent, and leave Ctrl-C to the parent.

    A parent killed with -9 runs no clean-up: PR_SET_PDEATHSIG has the kernel kill the worker then,
    so no worker keeps training under PID 1. The terminal sends Ctrl-C to the whole process group;
    the parent decides what stops and marks the trials, so workers ignore it.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(OSError, AttributeError):  # Linux only
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG


def _run_in_worker(space_ref: str, args_json: str, fingerprint: str, job: Job) -> JobResult:
    import torch

    from nas.references import cached_space

    torch.set_num_threads(1)  # one core per worker: N workers must not fight over N cores
    space = cached_space(space_ref, args_json)
    if space.fingerprint != fingerprint:
        return JobResult(error=f"the worker built {space_ref} differently from the main process "
                               f"(fingerprint {space.fingerprint} != {fingerprint})", pid=os.getpid())
    return run_job(space, job)


@contextlib.contextmanager
def _without_main_module() -> Iterator[None]:
    """Start worker processes without re-running the parent's main script in them.

    spawn normally re-imports `__main__` in each child; a user's script without an
    `if __name__ == "__main__"` guard would then start searches recursively, and a host that swapped
    `__main__` (a notebook, Streamlit, a test runner) breaks the child. Workers need only importable
    code: the space comes by reference and the worker function lives in this module.
    """
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if main is not None:
            sys.modules["__main__"] = main


class ProcessExecutor:
    """Runs jobs in a pool of spawned worker processes."""

    def __init__(self, workers: int, space: Space, space_ref: str, space_args: Mapping[str, Any]) -> None:
        # spawn, not fork: forking a process that has started torch's thread pools can deadlock
        self.ctx, self.workers = multiprocessing.get_context("spawn"), workers
        self.pool = self._pool()
        self.space_ref, self.args_json = space_ref, json.dumps(dict(space_args), sort_keys=True)
        self.fingerprint = space.fingerprint

    def submit(self, job: Job) -> Future:
        if getattr(self.pool, "_broken", False):  # a worker died (e.g. killed for memory): start afresh
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool = self._pool()
        with _without_main_module():
            return self.pool.submit(_run_in_worker, self.space_ref, self.args_json, self.fingerprint, job)

    def _pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=self.workers, mp_context=self.ctx, initializer=_init_worker)

    def shutdown(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    def stop(self) -> None:
        """Stop at once: cancel queued jobs and end the worker processes (a stop signal arrived)."""
        self.pool.shutdown(wait=False, cancel_futures=True)
        workers = multiprocessing.active_children()  # this process's children: the pool's workers
        for p in workers:
            p.terminate()
        for p in workers:
            p.join(timeout=5)
            if p.is_alive():
                p.kill()


def result_of(future: Future) -> JobResult:
    """Return a job's result; a worker that died takes only its own trial down, as a failure."""
    try:
        return future.result()
    except BrokenProcessPool as e:
        return JobResult(error=f"the worker process died before finishing (out of memory?): {e}")


def make_executor(workers: int, space: Space, space_ref: str, space_args: Mapping[str, Any]
                  ) -> InlineExecutor | ProcessExecutor:
    """Return the executor for `workers` (1: inline; more: processes, which need `space_ref`)."""
    if workers < 1:
        raise SearchError(f"workers={workers}: give 1 (inline) or more worker processes")
    if workers == 1:
        return InlineExecutor(space)
    if not space_ref:
        raise SearchError(
            "workers > 1 needs the space as a reference ('path/file.py:function' or 'module:function') "
            "so that each worker process can rebuild it"
        )
    return ProcessExecutor(workers, space, space_ref, space_args)


__all__ = ["InlineExecutor", "Job", "JobResult", "ProcessExecutor", "make_executor", "result_of", "run_job"]
