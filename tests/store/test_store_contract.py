"""The contract every store backend must pass; runs on a SQLite file and on PostgreSQL."""

from __future__ import annotations

import dataclasses
import json
import math
import pickle
from collections.abc import Iterator
from datetime import UTC

import pytest
import sqlalchemy as sa

from nas.errors import StoreError
from nas.store import Store, StudyRecord, StudySpec, TrialRecord, TrialState


def make_spec(name: str = "demo", fingerprint: str = "fp-1", **changes: object) -> StudySpec:
    spec = StudySpec(
        name=name, space_ref="search_spaces.convnet:space", space_fingerprint=fingerprint,
        space_description={"choices": {"width": [16, 32]}, "input_shape": [1, 8, 8]},
        searcher="evolution", searcher_settings={"population": 8, "tournament": 3},
        objectives=["accuracy:max", "latency_ms:min"], constraints=["params<=1e6"],
        evaluator={"name": "train", "dataset": "digits", "epochs": 2}, seed=7, budget=20,
    )
    return dataclasses.replace(spec, **changes)


def arch(width: int, kernel: int = 3) -> tuple[str, str]:
    doc = {"width": width, "blocks[0]/kernel": kernel}
    return f"a{width}k{kernel}", json.dumps(doc, sort_keys=True, separators=(",", ":"))


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = Store.open(store_url)
    yield s
    s.close()


def test_study_round_trip(store: Store) -> None:
    spec = make_spec(user_attrs={"command": "nas search ..."})
    created = store.create_study(spec)
    assert isinstance(created, StudyRecord)
    assert created.spec == spec
    assert created.created_at.tzinfo is not None and created.finished_at is None
    assert (created.n_complete, created.n_failed, created.n_running, created.n_pruned) == (0,) * 4
    got = store.get_study("demo")
    assert got == created
    store.finish_study(created.id)
    finished = store.get_study("demo")
    assert finished.finished_at is not None and finished.finished_at >= created.created_at
    store.create_study(make_spec("second", "fp-2"))
    assert [s.name for s in store.list_studies()] == ["demo", "second"]


def test_existing_study_needs_resume(store: Store) -> None:
    study = store.create_study(make_spec())
    store.start_trial(study.id, *arch(16))
    with pytest.raises(StoreError, match=r"study 'demo' exists \(1 trials\): pass --resume"):
        store.create_study(make_spec())
    again = store.create_study(make_spec(), load_if_exists=True)
    assert again.id == study.id and again.n_running == 1


def test_fingerprint_mismatch_names_both(store: Store) -> None:
    store.create_study(make_spec(fingerprint="old-fp"))
    with pytest.raises(StoreError, match="old-fp.*new-fp"):
        store.create_study(make_spec(fingerprint="new-fp"), load_if_exists=True)


def test_missing_study_lists_known_names(store: Store) -> None:
    with pytest.raises(StoreError, match="none yet"):
        store.get_study("nope")
    store.create_study(make_spec("alpha"))
    store.create_study(make_spec("beta"))
    with pytest.raises(StoreError, match="'nope'.*alpha, beta"):
        store.get_study("nope")
    with pytest.raises(StoreError, match="no study with id 999"):
        store.start_trial(999, *arch(16))


def test_bad_spec_is_refused(store: Store) -> None:
    with pytest.raises(StoreError, match="objectives"):
        store.create_study(make_spec(objectives="accuracy:max"))
    with pytest.raises(StoreError, match="budget"):
        store.create_study(make_spec(budget=-1))
    with pytest.raises(StoreError, match="searcher_settings.*'rng'"):
        store.create_study(make_spec(searcher_settings={"rng": object()}))
    assert store.list_studies() == []


def test_trial_round_trip(store: Store) -> None:
    study = store.create_study(make_spec())
    arch_id, arch_json = arch(32, 5)
    started = store.start_trial(study.id, arch_id, arch_json, worker="w1", host="h", device="cpu")
    assert isinstance(started, TrialRecord)
    assert (started.number, started.state, started.arch_id) == (0, TrialState.RUNNING, arch_id)
    assert started.architecture == json.loads(arch_json)
    assert started.finished_at is None and started.started_at.tzinfo == UTC
    done = store.finish_trial(
        started.id, TrialState.COMPLETE, metrics={"accuracy": 0.93, "latency_ms": 2, "params": 1e5},
        predicted=["latency_ms"], extra={"quantization": {"conv1": 8, "fc": 32}},
    )
    assert done.state is TrialState.COMPLETE
    assert done.metrics == {"accuracy": 0.93, "latency_ms": 2.0, "params": 1e5}
    assert isinstance(done.metrics["latency_ms"], float)
    assert done.predicted == ["latency_ms"] and done.error is None
    assert done.extra == {"quantization": {"conv1": 8, "fc": 32}}
    assert (done.worker, done.host, done.device) == ("w1", "h", "cpu")
    assert done.duration_s is not None and done.duration_s >= 0
    assert done.finished_at >= done.started_at
    assert store.get_trial(study.id, 0) == done
    assert store.trials(study.id) == [done]
    assert store.get_study("demo").n_complete == 1


def test_numbers_are_sequential_per_study(store: Store) -> None:
    a = store.create_study(make_spec("a", "fp-a"))
    b = store.create_study(make_spec("b", "fp-b"))
    numbers = [store.start_trial(a.id, *arch(w)).number for w in range(5)]
    numbers_b = [store.start_trial(b.id, *arch(w)).number for w in range(3)]
    assert numbers == [0, 1, 2, 3, 4] and numbers_b == [0, 1, 2]
    assert [t.number for t in store.trials(a.id)] == numbers


def test_failed_and_pruned_trials(store: Store) -> None:
    study = store.create_study(make_spec())
    t0, t1, t2 = (store.start_trial(study.id, *arch(w)) for w in (8, 16, 32))
    store.finish_trial(t0.id, TrialState.FAILED, error="CUDA out of memory")
    store.finish_trial(t1.id, TrialState.PRUNED, metrics={"accuracy": 0.2}, curve=[{"loss": 2}])
    failed = store.get_trial(study.id, 0)
    assert failed.state is TrialState.FAILED and failed.error == "CUDA out of memory"
    counts = store.get_study("demo")
    assert (counts.n_failed, counts.n_pruned, counts.n_running, counts.n_complete) == (1, 1, 1, 0)
    assert [t.number for t in store.trials(study.id, [TrialState.RUNNING])] == [2]
    both = store.trials(study.id, [TrialState.FAILED, TrialState.PRUNED])
    assert [t.number for t in both] == [0, 1]
    with pytest.raises(StoreError, match="no trial number 7"):
        store.get_trial(study.id, 7)
    assert t2.state is TrialState.RUNNING


def test_finish_is_checked(store: Store) -> None:
    study = store.create_study(make_spec())
    trial = store.start_trial(study.id, *arch(16))
    with pytest.raises(StoreError, match="not RUNNING"):
        store.finish_trial(trial.id, TrialState.RUNNING)
    with pytest.raises(StoreError, match="'DONE'"):
        store.finish_trial(trial.id, "DONE")  # type: ignore[arg-type]
    with pytest.raises(StoreError, match="'accuracy'.*'high'"):
        store.finish_trial(trial.id, TrialState.COMPLETE, metrics={"accuracy": "high"})
    with pytest.raises(StoreError, match=r"predicted metrics \['latency_ms'\]"):
        store.finish_trial(trial.id, TrialState.COMPLETE, metrics={"a": 1.0},
                           predicted=["latency_ms"])
    store.finish_trial(trial.id, TrialState.COMPLETE, metrics={"accuracy": 0.5})
    with pytest.raises(StoreError, match="already COMPLETE"):
        store.finish_trial(trial.id, TrialState.FAILED, error="late")
    with pytest.raises(StoreError, match="no trial with id 12345"):
        store.finish_trial(12345, TrialState.FAILED)
    assert store.get_trial(study.id, 0).metrics == {"accuracy": 0.5}


def test_find_complete_dedupes(store: Store) -> None:
    study = store.create_study(make_spec())
    other = store.create_study(make_spec("other"))
    a16, a32 = arch(16), arch(32)
    failed = store.start_trial(study.id, *a16)
    store.finish_trial(failed.id, TrialState.FAILED, error="boom")
    assert store.find_complete(study.id, a16[0]) is None
    ok = store.start_trial(study.id, *a16)
    store.finish_trial(ok.id, TrialState.COMPLETE, metrics={"accuracy": 0.9})
    found = store.find_complete(study.id, a16[0])
    assert found is not None and found.number == 1 and found.metrics == {"accuracy": 0.9}
    assert store.find_complete(study.id, a32[0]) is None
    assert store.find_complete(other.id, a16[0]) is None  # per study


def test_one_arch_id_one_architecture(store: Store) -> None:
    study = store.create_study(make_spec())
    arch_id, arch_json = arch(16)
    store.start_trial(study.id, arch_id, arch_json)
    # The same document written differently is the same architecture.
    assert store.start_trial(study.id, arch_id, json.dumps(json.loads(arch_json), indent=2)).number
    with pytest.raises(StoreError, match=f"architecture {arch_id}.*differs"):
        store.start_trial(study.id, arch_id, arch(64)[1])
    with pytest.raises(StoreError, match="not valid JSON"):
        store.start_trial(study.id, "x", "{width: 16")


def test_fail_running_marks_leftovers(store: Store) -> None:
    study = store.create_study(make_spec())
    trials = [store.start_trial(study.id, *arch(w)) for w in (8, 16, 32)]
    store.finish_trial(trials[0].id, TrialState.COMPLETE, metrics={"accuracy": 0.7})
    assert store.fail_running(study.id, "interrupted: resumed by nas search --resume") == 2
    states = [(t.state, t.error) for t in store.trials(study.id)]
    assert states == [(TrialState.COMPLETE, None)] + [
        (TrialState.FAILED, "interrupted: resumed by nas search --resume")] * 2
    assert all(t.finished_at is not None for t in store.trials(study.id))
    assert store.fail_running(study.id, "again") == 0
    assert store.start_trial(study.id, *arch(64)).number == 3


def test_curves(store: Store) -> None:
    study = store.create_study(make_spec())
    t0, t1, t2 = (store.start_trial(study.id, *arch(w)) for w in (8, 16, 32))
    points = [{"train_loss": 2.0, "loss": 2.1, "accuracy": 0.3},
              {"train_loss": 1.0, "loss": 1.2, "accuracy": 0.6}]
    store.finish_trial(t0.id, TrialState.COMPLETE, metrics={"accuracy": 0.6}, curve=points)
    assert store.curve(t0.id) == [{"epoch": i, **p} for i, p in enumerate(points)]
    sparse = [{"epoch": 4, "loss": 1}, {"epoch": 9, "loss": 0.5}]
    store.finish_trial(t1.id, TrialState.COMPLETE, curve=sparse)
    assert store.curve(t1.id) == [{"epoch": 4, "loss": 1.0}, {"epoch": 9, "loss": 0.5}]
    assert store.curve(t2.id) == []
    with pytest.raises(StoreError, match="repeats epoch 1"):
        store.finish_trial(t2.id, TrialState.COMPLETE, curve=[{"epoch": 1}, {"epoch": 1}])
    assert store.get_trial(study.id, 2).state is TrialState.RUNNING  # nothing half-written


def test_nan_and_inf_survive(store: Store) -> None:
    study = store.create_study(make_spec())
    trial = store.start_trial(study.id, *arch(16))
    store.finish_trial(
        trial.id, TrialState.COMPLETE,
        metrics={"loss": math.nan, "latency_ms": math.inf, "gain": -math.inf, "accuracy": 0.1},
        curve=[{"loss": math.nan}], extra={"note": math.nan},
    )
    got = store.get_trial(study.id, 0)
    assert math.isnan(got.metrics["loss"]) and got.metrics["accuracy"] == 0.1
    assert got.metrics["latency_ms"] == math.inf and got.metrics["gain"] == -math.inf
    assert math.isnan(store.curve(trial.id)[0]["loss"])
    assert got.extra == {"note": "NaN"}  # free-form JSON keeps the documented string


def test_weights_cache(store: Store) -> None:
    assert store.get_weights("fp", "a1", "final") is None
    blob = bytes(range(256)) * 4096  # 1 MiB, every byte value
    store.put_weights("fp", "a1", "final", blob)
    store.put_weights("fp", "a1", "epoch2", b"\x00")
    assert store.get_weights("fp", "a1", "final") == blob
    store.put_weights("fp", "a1", "final", b"newer")
    assert store.get_weights("fp", "a1", "final") == b"newer"
    assert store.get_weights("fp", "a1", "epoch2") == b"\x00"
    assert store.get_weights("other-fp", "a1", "final") is None
    with pytest.raises(StoreError, match="must be bytes"):
        store.put_weights("fp", "a1", "final", "text")  # type: ignore[arg-type]


def test_measurements(store: Store) -> None:
    rows = [
        {"device_id": "cpu-x86", "kind": "conv2d", "config": {"cin": 16, "k": 3},
         "batch_size": 8, "median_ms": 1.25, "iqr_ms": 0.1, "repeats": 30,
         "device": {"name": "Xeon", "threads": 1}},
        {"device_id": "cpu-x86", "kind": "model", "config": {"arch_id": "a1"},
         "batch_size": 1, "median_ms": 4.5},
        {"device_id": "cuda-0", "kind": "conv2d", "batch_size": 8, "median_ms": 0.2},
    ]
    assert store.add_measurements(rows) == 3
    assert store.add_measurements([]) == 0
    got = store.measurements(device_id="cpu-x86")
    assert [m["kind"] for m in got] == ["conv2d", "model"]
    first = {k: v for k, v in got[0].items() if k not in ("id", "created_at")}
    assert first == rows[0]
    assert got[1]["iqr_ms"] is None and got[1]["device"] == {}
    assert [m["device_id"] for m in store.measurements(kind="conv2d")] == ["cpu-x86", "cuda-0"]
    assert len(store.measurements()) == 3
    with pytest.raises(StoreError, match="measurement 1.*lacks \\['median_ms'\\]"):
        store.add_measurements([rows[2], {"device_id": "d", "kind": "k", "batch_size": 1}])
    with pytest.raises(StoreError, match="median_ms = nan"):
        store.add_measurements([{**rows[2], "median_ms": math.nan}])
    assert len(store.measurements()) == 3  # a bad batch writes nothing


def test_reopen_and_readonly(store_url: str) -> None:
    with Store.open(store_url) as writer:
        study = writer.create_study(make_spec())
        trial = writer.start_trial(study.id, *arch(16))
        writer.finish_trial(trial.id, TrialState.COMPLETE, metrics={"accuracy": 0.8})
    with Store.open(store_url, readonly=True) as reader:
        assert reader.readonly
        assert reader.get_study("demo").n_complete == 1
        assert reader.trials(study.id)[0].metrics == {"accuracy": 0.8}
        with pytest.raises(StoreError, match="read-only"):
            reader.start_trial(study.id, *arch(32))
        with pytest.raises(StoreError, match="read-only"):
            reader.put_weights("fp", "a", "k", b"")
        # and the connection itself refuses writes (what the dashboard relies on)
        with pytest.raises(sa.exc.DBAPIError, match="(?i)read-only|readonly"):
            with reader._engine.begin() as conn:  # noqa: SLF001
                conn.execute(sa.text("DELETE FROM trials"))
    with Store.open(store_url) as again:
        assert again.start_trial(study.id, *arch(32)).number == 1


def test_store_pickles_as_its_url(store: Store) -> None:
    study = store.create_study(make_spec())
    copy = pickle.loads(pickle.dumps(store))
    try:
        assert copy is not store and copy.url == store.url and not copy.readonly
        assert copy.start_trial(study.id, *arch(16)).number == 0
        assert store.start_trial(study.id, *arch(32)).number == 1
    finally:
        copy.close()
