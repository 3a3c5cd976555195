"""The search loop: ask -> (constraints by estimate) -> evaluate -> store -> tell.

The store is written before the searcher hears a result, one transaction per trial, so a killed
run loses at most the trials that were running; `resume=True` marks those as interrupted, queues
their architectures again and rebuilds the searcher from the stored trials.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from typing import Any

from nas.errors import SearchError
from nas.evaluate import CachesWeights, Evaluator
from nas.objectives import Constraint, Objective, parse_constraints, parse_objectives
from nas.results.best import best_trials
from nas.results.weights import WEIGHTS_REF, StoreWeightCache, weights_key
from nas.run.assemble import check_metrics
from nas.run.executors import Job, JobResult, make_executor, result_of
from nas.search import Observation, Searcher, make_searcher
from nas.space import Architecture, Space
from nas.store import Store, StudyRecord, StudySpec, TrialRecord, TrialState

INTERRUPTED = "interrupted: the run died while this trial was running (queued again on resume)"
MAX_DUPLICATES = 1000  # proposals of already-evaluated architectures in a row before we stop


@dataclass
class Progress:
    """What a progress display needs after each trial."""

    done: int
    budget: int
    best: list[TrialRecord]
    last: TrialRecord | None
    skipped: int
    elapsed_s: float


@dataclass
class StudyResult:
    """The outcome of `search`: the study, its trials, and how to read the best of them."""

    study: StudyRecord
    trials: list[TrialRecord]
    objectives: list[Objective]
    constraints: list[Constraint] = field(default_factory=list)
    n_skipped: int = 0

    def best(self) -> list[TrialRecord]:
        """Return the best feasible trial, or the Pareto front for several objectives."""
        return best_trials(self.trials, self.objectives, self.constraints)


def search(space: Space, *, evaluator: Evaluator, searcher: str | Searcher = "random",
           objectives: Sequence[str] = ("accuracy:max",), constraints: Sequence[str] = (),
           budget: int = 20, storage: str = "nas.db", study: str | None = None, seed: int = 0,
           workers: int = 1, resume: bool = False, searcher_args: Mapping[str, Any] | None = None,
           space_ref: str = "", space_args: Mapping[str, Any] | None = None,
           estimate: Callable[[Architecture], Mapping[str, float]] | None = None,
           on_progress: Callable[[Progress], None] | None = None) -> StudyResult:
    """Run (or resume) a study and return its result; every trial lands in `storage` as it ends.

    `searcher` is a name (`random`, `smbo`, `optuna:tpe`, ...; `searcher_args` are its settings) or
    a searcher made beforehand for this space and these objectives and constraints.
    """
    if budget < 1:
        raise SearchError(f"budget={budget}: give the number of architectures to evaluate (>= 1)")
    objs, cons = parse_objectives(objectives), parse_constraints(constraints)
    check_metrics(evaluator, objs, cons)
    # Everything that can refuse the request does so before the study row is written.
    if isinstance(searcher, Searcher):
        s = _given_searcher(searcher, space, objs, cons, searcher_args)
        searcher, searcher_args = s.name, s.settings()
    else:
        s = make_searcher(searcher, space, [str(o) for o in objs], seed=seed,
                          constraints=[str(c) for c in cons], estimate=estimate,
                          **dict(searcher_args or {}))
    executor = make_executor(workers, space, space_ref, dict(space_args or {}))
    try:
        store = Store.open(storage)
        loop = _Loop(space, evaluator, store, objs, cons, budget, seed, on_progress)
        if isinstance(evaluator, CachesWeights):  # post-training quantization: train once per network
            evaluator.weight_cache = StoreWeightCache(store, space.fingerprint, loop.weights_key)
        record = store.create_study(StudySpec(
            name=study or f"{space.name or 'space'}-{searcher}-{seed}", space_ref=space_ref,
            space_fingerprint=space.fingerprint, space_description=space.describe(),
            searcher=searcher, searcher_settings=dict(searcher_args or {}),
            objectives=[str(o) for o in objs], constraints=[str(c) for c in cons],
            evaluator=evaluator.describe(), seed=seed, budget=budget,
            user_attrs={"space_args": dict(space_args or {})},
        ), load_if_exists=resume)
        loop.run(record, s, executor, workers)
    except BaseException:  # Ctrl-C, SIGTERM, a failing store: running trials are marked already
        executor.stop()
        raise
    executor.shutdown()
    trials = store.trials(record.id)
    return StudyResult(store.get_study(record.name), trials, objs, cons, s.n_skipped)


def _given_searcher(s: Searcher, space: Space, objs: Sequence[Objective], cons: Sequence[Constraint],
                    searcher_args: Mapping[str, Any] | None) -> Searcher:
    """Return a searcher instance given to `search` once it is known to fit the study."""
    if searcher_args:
        raise SearchError("searcher_args go with a searcher's name; a searcher instance has its settings")
    if s.space.fingerprint != space.fingerprint:
        raise SearchError(f"the {s.name} searcher was made for another space (fingerprint "
                          f"{s.space.fingerprint}, this search's space {space.fingerprint})")
    theirs = ([str(o) for o in s.objectives], [str(c) for c in s.constraints])
    ours = ([str(o) for o in objs], [str(c) for c in cons])
    if theirs != ours:
        raise SearchError(f"the {s.name} searcher optimises {theirs[0]} under {theirs[1]}; this search "
                          f"asks {ours[0]} under {ours[1]}: make it with the same objectives and constraints")
    if s.history or s.pending:
        raise SearchError(f"the {s.name} searcher has already been told {len(s.history)} trial(s); give a "
                          "fresh one (resume=True rebuilds it from the stored trials)")
    return s


class _Loop:
    """The state of one run of a study."""

    def __init__(self, space: Space, evaluator: Evaluator, store: Store, objectives: list[Objective],
                 constraints: list[Constraint], budget: int, seed: int,
                 on_progress: Callable[[Progress], None] | None) -> None:
        self.space, self.evaluator, self.store = space, evaluator, store
        self.objectives, self.constraints = objectives, constraints
        self.budget, self.seed, self.on_progress = budget, seed, on_progress
        self.host = socket.gethostname()
        description = evaluator.describe()
        self.device = str(description.get("device", "cpu"))
        self.weights_key = weights_key(description, seed)
        self.started = time.monotonic()
        self.requeue: list[Architecture] = []
        self.known: dict[str, TrialRecord] = {}
        self.counted = 0

    def run(self, record: StudyRecord, searcher: Searcher, executor: Any, workers: int) -> None:
        self.study = record
        self._restore(searcher)
        self._progress(None, searcher)  # a resumed study starts its display at what is done
        running: dict[Future, tuple[TrialRecord, Architecture]] = {}
        # Trials started here and not yet finished: an inline job runs inside submit, before its
        # future exists, so `running` alone would miss the trial a Ctrl-C interrupts.
        unfinished: dict[int, TrialRecord] = {}
        try:
            while True:
                while len(running) < workers and self.counted + len(running) < self.budget:
                    arch = self._next(searcher)
                    if arch is None:
                        break
                    trial = self.store.start_trial(record.id, arch.id, arch.to_json(), host=self.host,
                                                   device=self.device, worker=f"pid{os.getpid()}")
                    unfinished[trial.id] = trial
                    running[executor.submit(self._job(arch))] = (trial, arch)
                if not running:
                    break
                done, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for fut in done:
                    trial, arch = running.pop(fut)
                    del unfinished[trial.id]
                    self._finish(trial, arch, result_of(fut), searcher)
        except BaseException:
            for trial in unfinished.values():
                self.store.finish_trial(trial.id, TrialState.FAILED, error=INTERRUPTED)
            raise
        if self.counted >= self.budget or not running:
            self.store.finish_study(record.id)

    def _restore(self, searcher: Searcher) -> None:
        """Rebuild the searcher and the counters from what the store already holds (resume)."""
        running = self.store.trials(self.study.id, [TrialState.RUNNING])
        if running:
            self.store.fail_running(self.study.id, INTERRUPTED)
            self.requeue = [Architecture(t.architecture) for t in running]
        history = []
        for t in self.store.trials(self.study.id):
            if t.state == TrialState.FAILED and t.error == INTERRUPTED:
                continue
            self.known[t.arch_id] = t
            history.append(Observation(Architecture(t.architecture), t.metrics, str(t.state)))
        self.counted = sum(t.state in (TrialState.COMPLETE, TrialState.FAILED) for t in self.known.values())
        searcher.restore(history)

    def _next(self, searcher: Searcher) -> Architecture | None:
        """Return the next architecture to evaluate; already-evaluated ones are answered from the store."""
        for _ in range(MAX_DUPLICATES):
            arch = self.requeue.pop(0) if self.requeue else searcher.ask()
            prior = self.known.get(arch.id) or self.store.find_complete(self.study.id, arch.id)
            if prior is None:
                return arch
            searcher.tell(arch, prior.metrics, str(prior.state))
        return None  # the searcher keeps proposing known architectures: the space is exhausted

    def _job(self, arch: Architecture) -> Job:
        return Job(arch_json=arch.to_json(), evaluator=self.evaluator, seed=self.seed)

    def _finish(self, trial: TrialRecord, arch: Architecture, result: JobResult, searcher: Searcher) -> None:
        if result.error is None:
            extra = {**result.extra, "worker_pid": result.pid}
            # The trial's own weights (or, for a quantized policy, its structure's, trained under
            # the same key): stored before the trial that names them.
            owner = str(result.extra.get("weights_arch_id", arch.id))
            if result.weights is not None:
                self.store.put_weights(self.space.fingerprint, owner, self.weights_key, result.weights)
            if result.weights is not None or "weights_arch_id" in result.extra:
                extra[WEIGHTS_REF] = {"arch_id": owner, "key": self.weights_key}
            record = self.store.finish_trial(trial.id, TrialState.COMPLETE, metrics=result.metrics,
                                             predicted=result.predicted, curve=result.curve, extra=extra)
            self._check_objectives(record)
        else:
            record = self.store.finish_trial(trial.id, TrialState.FAILED, error=result.error,
                                             extra={"worker_pid": result.pid})
        self.known[arch.id] = record
        self.counted += 1
        searcher.tell(arch, record.metrics, str(record.state))
        self._progress(record, searcher)

    def _progress(self, last: TrialRecord | None, searcher: Searcher) -> None:
        if self.on_progress is not None:
            best = best_trials(list(self.known.values()), self.objectives, self.constraints)
            self.on_progress(Progress(self.counted, self.budget, best, last, searcher.n_skipped,
                                      time.monotonic() - self.started))

    def _check_objectives(self, record: TrialRecord) -> None:
        needed = [o.name for o in self.objectives] + [c.name for c in self.constraints]
        missing = [n for n in needed if n not in record.metrics]
        if missing:
            raise SearchError(
                f"{missing} are not metrics of evaluator {self.evaluator.describe().get('name', '?')}; "
                f"it gives {sorted(record.metrics)}"
            )
