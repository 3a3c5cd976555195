"""`nas prune STUDY TRIAL`: a trained trial pruned from the command line, in-process through `main`."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from nas.evaluate import load_dataset
from tests.cli.test_cli import nas as run_nas

ROOT = Path(__file__).resolve().parents[2]
VGG = ("--space", "search_spaces.vgg:space")  # the study's space, named as a user names it
NB201_TABLE = ROOT.parent / "shared" / "benchmarks" / "nb201" / "nb201_combined.csv.gz"


def nas(*args: str) -> subprocess.CompletedProcess:
    """Return the exit status and output of `nas ARGS`, run in this process; failures are returned."""
    return run_nas(*args, check=False)


def ok(*args: str) -> str:
    return run_nas(*args).stdout


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> tuple[str, dict]:
    """A one-trial digits study trained for one epoch; returns (db, its trial as JSON)."""
    torch.set_num_threads(1)
    db = str(tmp_path_factory.mktemp("prune_cli") / "d.db")
    ok("search", "search_spaces.vgg:space", "--space-arg", "input_shape=[1,8,8]",
       "--space-arg", "widths=[[16],[32]]", "--space-arg", "depths=[1]", "--dataset", "digits",
       "--epochs", "1", "--budget", "1", "--db", db, "--study", "d")
    trial = json.loads(ok("trials", "d", "--db", db, "--format", "json"))[0]
    return db, trial


def _digest(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_json_report_and_the_store_is_left_alone(study):
    db, trial = study
    before = _digest(db)
    report = json.loads(ok("prune", "d", *VGG, "0", "--sparsity", "0.8", "--method", "dp",
                           "--calib-samples", "64", "--format", "json", "--db", db))
    assert _digest(db) == before  # opened read-only: the result is not written back
    # met to within a bucket, also where the DP's per-layer guard meets a non-monotone curve
    assert report["sparsity"] == pytest.approx(0.8, abs=2e-3)
    # the stored weights were loaded: the dense model reproduces the recorded accuracy
    assert report["accuracy"] == pytest.approx(trial["metrics"]["accuracy"], abs=1e-6)
    assert 0.0 <= report["pruned_accuracy"] <= 1.0
    assert set(report["allocation"]) == {"stage0.layers.0.conv", "stage1.layers.0.conv", "head.fc"}
    assert report["kept"] == round((1 - report["sparsity"]) * report["total"])


def test_table_output_names_accuracy_sparsity_and_layers(study):
    db, _ = study
    out = ok("prune", "d", *VGG, "0", "--sparsity", "0.5", "--method", "lamp", "--db", db)
    assert "validation accuracy" in out and "sparsity 0.5" in out
    assert "stage1.layers.0.conv" in out and "head.fc" in out


def test_out_files_load_without_masks(study, tmp_path):
    db, _ = study
    pt, st = tmp_path / "p.pt", tmp_path / "p.safetensors"
    report = json.loads(ok("prune", "d", *VGG, "0", "--sparsity", "0.7", "--method", "global",
                           "--finetune-epochs", "1", "--out", str(pt), "--format", "json", "--db", db))
    ok("prune", "d", *VGG, "0", "--sparsity", "0.7", "--method", "global", "--finetune-epochs", "1",
       "--out", str(st), "--db", db)
    data = load_dataset("digits")
    scripted = torch.jit.load(str(pt)).eval()
    with torch.no_grad():
        acc = scripted(data.x_val).argmax(1).eq(data.y_val).float().mean().item()
    assert acc == pytest.approx(report["pruned_accuracy"], abs=1e-6)
    state = load_file(str(st))
    assert not any(k.endswith(("_orig", "_mask")) for k in state)  # masks made permanent
    weights = [state[f"{n}.weight"] for n in report["allocation"]]
    zeros = sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights)
    assert zeros == pytest.approx(0.7, abs=2e-3)


@pytest.mark.skipif(not NB201_TABLE.is_file(), reason=f"the NAS-Bench-201 table is not at {NB201_TABLE}")
def test_a_tabular_study_has_no_weights_to_prune(tmp_path):
    db = str(tmp_path / "nb.db")
    ok("search", "search_spaces.nb201:space", "--space-arg", "cells_per_stage=1",
       "--dataset", "nb201-cifar10", "--budget", "1", "--db", db, "--study", "nb")
    proc = nas("prune", "nb", "0", "--db", db)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and "no trained weights" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("args, words", [
    (["--sparsity", "1.0"], "sparsity 1.0"),
    (["--sparsity", "0"], "sparsity 0"),
    (["--method", "magic"], "'magic' is unknown"),
])
def test_bad_requests_are_one_line_errors(study, args, words):
    db, _ = study
    proc = nas("prune", "d", *VGG, "0", *args, "--db", db)
    assert proc.returncode == 2 and proc.stderr.startswith("error: ")
    assert words in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_unknown_trial_is_an_error(study):
    db, _ = study
    proc = nas("prune", "d", *VGG, "7", "--db", db)
    assert proc.returncode == 2 and "7" in proc.stderr


def test_structured_reports_measured_latency_and_the_cost_model(study):
    db, trial = study
    profiles = sorted((ROOT / "hardware" / "profiles").glob("cpu-*.json"))
    if not profiles:
        pytest.skip("no committed CPU device profile")
    report = json.loads(ok("prune", "d", *VGG, str(trial["number"]), "--structured", "--sparsity", "0.3",
                           "--latency", "predicted", "--profile", str(profiles[0]),
                           "--format", "json", "--db", db))
    assert report["method"] == "channels-dp" and report["prune_latency_cost"] == "predictor"
    assert report["latency_ms"] > 0 and report["latency_ms_dense"] > 0  # measured
    assert report["latency_ms_predicted"] <= report["latency_budget_ms"] + 1e-6
    assert set(report["prune_channels"]) == set(report["allocation"])
    text = ok("prune", "d", *VGG, str(trial["number"]), "--structured", "--sparsity", "0.3",
              "--latency", "measured", "--db", db)
    assert "ms measured" in text and "measured table" in text and "channels kept" in text


def test_structured_with_an_unknown_latency_source_is_an_error(study):
    db, _ = study
    proc = nas("prune", "d", *VGG, "0", "--structured", "--latency", "guessed", "--db", db)
    assert proc.returncode == 2 and "latency='guessed' is unknown" in proc.stderr


def test_a_channel_pruned_search_keeps_the_measured_pruned_latency(tmp_path):
    # A latency objective with --prune-structured: the figure is the pruned model's, measured,
    # never the dense architecture's prediction, and the front is not re-timed as dense models.
    db = str(tmp_path / "s.db")
    out = ok("search", "search_spaces.vgg:space", "--space-arg", "input_shape=[1,8,8]",
             "--space-arg", "widths=[[16],[32]]", "--space-arg", "depths=[1]", "--dataset", "digits",
             "--epochs", "1", "--budget", "1", "--objective", "accuracy:max", "--objective",
             "latency_ms:min", "--prune", "0.5", "--prune-structured", "--db", db, "--study", "p")
    assert "re-measured" not in out
    (t,) = json.loads(ok("trials", "p", "--db", db, "--format", "json"))
    assert "latency_ms" not in t["predicted"]
    assert t["metrics"]["latency_ms"] == pytest.approx(t["metrics"]["latency_ms_dense"]
                                                       * t["metrics"]["latency_ratio"])
