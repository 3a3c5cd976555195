"""Two processes writing one study at once lose nothing; trial numbers stay unique and gap-free."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

from nas.store import Store, StudySpec, TrialState

WRITER = Path(__file__).with_name("store_writer.py")
ROOT = Path(__file__).resolve().parents[2]
N = 50


def make_spec() -> StudySpec:
    return StudySpec("demo", "m:space", "fp", {}, "random", {}, ["accuracy:max"], [], {}, 0, 9)


def test_two_processes_write_one_study(store_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    go = tmp_path / "go"
    workers = ["w0", "w1"]
    procs = [
        subprocess.Popen(
            [sys.executable, str(WRITER), store_url, w, str(N), str(tmp_path / w), str(go)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        for w in workers
    ]
    deadline = time.monotonic() + 120
    while not all((tmp_path / w).exists() for w in workers) and time.monotonic() < deadline:
        time.sleep(0.01)
    go.touch()  # both open the (new, empty) database together: they race on the schema too
    for p in procs:
        out, _ = p.communicate(timeout=180)
        assert p.returncode == 0, out

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
        study = store.create_study(make_spec())
        store.start_trial(study.id, "parent-0", "{}")  # leaves a pooled connection behind
        child = multiprocessing.get_context("fork").Process(
            target=_forked_writer, args=(store, study.id, 10)
        )
        child.start()
        for i in range(1, 11):
            store.start_trial(study.id, f"parent-{i}", "{}")
        child.join(60)
        assert child.exitcode == 0
        assert [t.number for t in store.trials(study.id)] == list(range(21))
        assert store.get_study("demo").n_complete == 10
