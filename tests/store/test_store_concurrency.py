"""Processes writing one study at once lose nothing; trial numbers stay unique and gap-free."""

from __future__ import annotations

import multiprocessing
import time
from multiprocessing.synchronize import Barrier

from nas.store import Store, StudySpec, TrialState

N = 50
# fork (Linux's default) starts the writers in milliseconds; spawned interpreters would spend
# seconds importing SQLAlchemy on this shared machine before the first write.
CTX = multiprocessing.get_context("fork")


def make_spec(budget: int = 2 * N) -> StudySpec:
    return StudySpec("race", "m:space", "fp", {}, "random", {}, ["accuracy:max"], [], {}, 0,
                     budget)


def _writer(url: str, worker: str, start: Barrier) -> None:
    start.wait(60)  # together, so that they race on the new schema, the study and each number
    store = Store.open(url)
    study = store.create_study(make_spec(), load_if_exists=True)
    for i in range(N):
        trial = store.start_trial(study.id, f"{worker}-{i}", f'{{"i": {i}}}', worker=worker)
        store.finish_trial(trial.id, TrialState.COMPLETE, metrics={"i": i},
                           curve=[{"loss": 1.0 / (i + 1)}, {"loss": 0.5 / (i + 1)}])
        time.sleep(0.005)  # a pause between trials, as real ones have: the writers must interleave
    store.close()


def test_two_processes_write_one_study(store_url: str) -> None:
    workers = ["w0", "w1"]
    start = CTX.Barrier(len(workers))
    procs = [CTX.Process(target=_writer, args=(store_url, w, start)) for w in workers]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]

    with Store.open(store_url, readonly=True) as store:
        study = store.get_study("race")
        trials = store.trials(study.id)
        assert study.n_complete == 2 * N and study.n_trials == 2 * N
        assert [t.number for t in trials] == list(range(2 * N))
        assert all(t.state is TrialState.COMPLETE for t in trials)
        for w in workers:
            mine = [t for t in trials if t.worker == w]
            assert sorted(t.metrics["i"] for t in mine) == [float(i) for i in range(N)]
            assert all(t.architecture == {"i": int(t.metrics["i"])} for t in mine)
            assert all(len(store.curve(t.id)) == 2 for t in mine[:5])
        # The writers really overlapped: each got numbers before the other's last one.
        last = {w: max(t.number for t in trials if t.worker == w) for w in workers}
        first = {w: min(t.number for t in trials if t.worker == w) for w in workers}
        assert first["w0"] < last["w1"] and first["w1"] < last["w0"]


def _forked_writer(store: Store, study_id: int, n: int) -> None:
    # The inherited pool must be empty: the parent's connections are not ours to use.
    if store._engine.pool.checkedin() != 0:  # noqa: SLF001
        raise SystemExit(3)
    for i in range(n):
        trial = store.start_trial(study_id, f"child-{i}", "{}", worker="child")
        store.finish_trial(trial.id, TrialState.COMPLETE, metrics={"i": i})


def test_forked_child_opens_its_own_connections(store_url: str) -> None:
    with Store.open(store_url) as store:
        study = store.create_study(make_spec(9))
        store.start_trial(study.id, "parent-0", "{}")  # leaves a pooled connection behind
        child = CTX.Process(target=_forked_writer, args=(store, study.id, 10))
        child.start()
        for i in range(1, 11):
            store.start_trial(study.id, f"parent-{i}", "{}")
        child.join(60)
        assert child.exitcode == 0
        assert [t.number for t in store.trials(study.id)] == list(range(21))
        assert store.get_study("race").n_complete == 10
