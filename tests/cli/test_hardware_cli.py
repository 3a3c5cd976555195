"""Hardware-aware search from the command line: profile, predict, constrain, re-measure."""

from __future__ import annotations

import json
import sqlite3

from tests.cli.test_cli import nas


def test_profile_then_a_latency_constrained_search_whose_front_is_remeasured(tmp_path):
    profile, db = tmp_path / "cpu.json", str(tmp_path / "hw.db")
    out = nas("profile", "--space", "search_spaces.convnet:space", "--samples", "3", "--batch", "1",
              "--time-budget", "0.25", "--repeats", "3", "--out", str(profile), "--db", db).stdout
    assert profile.is_file() and "raw measurements" in out
    saved = json.loads(profile.read_text())
    assert saved["meta"]["repeats"] == 3 and {r["repeats"] for r in saved["measurements"]} == {3}
    with sqlite3.connect(db) as c:
        (rows,) = c.execute("select count(*) from measurements").fetchone()
        device = json.loads(c.execute("select device from measurements limit 1").fetchone()[0])
    assert rows > 0 and device["kind"] == "cpu"  # the device identity is stored with each row

    arch = '{"blocks":1,"blocks[0]/act":"relu","blocks[0]/kernel":3,"layout":"deep","width":16}'
    line = nas("latency", "search_spaces.convnet:space", "--arch", arch, "--profile", str(profile),
               "--measure").stdout
    assert "predicted" in line and "measured" in line

    res = nas("search", "search_spaces.convnet:space", "--space-arg", "widths=[8,16]", "--dataset", "digits",
              "--epochs", "1", "--budget", "3", "--objective", "accuracy:max", "--constraint",
              "latency_ms<=50", "--profile", str(profile), "--db", db, "--study", "hw").stdout
    assert "final front re-measured" in res and "meets latency_ms<=50" in res
    trials = json.loads(nas("trials", "hw", "--db", db, "--format", "json").stdout)
    assert all("latency_ms" in t["predicted"] for t in trials)  # predicted, not timed, during the search
    best = json.loads(nas("best", "hw", "--db", db, "--format", "json").stdout)
    assert all(t["metrics"]["latency_ms_measured"] <= 50 for t in best)  # the store keeps both figures


def test_missing_profile_is_a_clear_error_before_training(tmp_path):
    proc = nas("search", "search_spaces.convnet:space", "--constraint", "latency_ms<=5", "--profile",
               str(tmp_path / "none.json"), "--db", str(tmp_path / "x.db"), check=False)
    assert proc.returncode == 2 and "run `nas profile" in proc.stderr


def test_latency_figures_use_one_thread_and_its_profile_by_default(tmp_path):
    # Without --profile a search predicts from this device's 1-thread profile, the figure it measures.
    from nas.hardware import profile_path

    proc = nas("search", "search_spaces.convnet:space", "--constraint", "latency_ms<=5", "--db",
               str(tmp_path / "x.db"), "--latency-threads", "3", check=False)
    assert proc.returncode == 2 and profile_path("cpu", 3).name in proc.stderr
    assert "-3t-" in profile_path("cpu", 3).name
    bad = nas("search", "search_spaces.convnet:space", "--latency-threads", "0", "--db",
              str(tmp_path / "y.db"), check=False)
    assert bad.returncode == 2 and "'--latency-threads': 0" in bad.stderr  # refused before torch loads
    bad = nas("profile", "--repeats", "0", "--out", str(tmp_path / "p.json"), check=False)
    assert bad.returncode == 2 and "--repeats 0" in bad.stderr


def test_trained_candidates_are_measured_with_the_requested_threads():
    import torch

    from nas.evaluate.train_evaluator import TrainEvaluator

    ev = TrainEvaluator("digits")
    assert ev.latency_threads == 1 and ev.describe()["latency_threads"] == 1
    before = torch.get_num_threads()
    from nas.hardware import measure_latency

    ms = measure_latency(torch.nn.Linear(64, 10), (64,), threads=1)
    assert ms > 0 and torch.get_num_threads() == before  # fixed while measuring, then restored
