"""Results you can trust: a database is data, weights belong to their trial, files are never clobbered.

Each test runs the installed `nas` entry point in a real process over a real SQLite file.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from nas.results.weights import trial_weights
from nas.store import Store

NAS = str(Path(sys.executable).with_name("nas"))
ROOT = Path(__file__).resolve().parents[2]
CONVNET = "search_spaces.convnet:space"


def nas(*args: str, cwd: Path = ROOT, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run the installed `nas` console script."""
    return subprocess.run([NAS, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd,
                          env={**os.environ, "COLUMNS": "200"})


def search(db: Path, study: str, *more: str, space: str = CONVNET) -> subprocess.CompletedProcess:
    proc = nas("search", space, "--dataset", "digits", "--budget", "2", "--seed", "0", "--db", str(db),
               "--study", study, *more)
    assert proc.returncode == 0, proc.stderr
    return proc


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    return lines[0]


@pytest.fixture(scope="module")
def two_studies(tmp_path_factory) -> Path:
    """One database, two studies of the same space trained 1 and 2 epochs."""
    db = tmp_path_factory.mktemp("trust") / "two.db"
    search(db, "one", "--epochs", "1")
    search(db, "two", "--epochs", "2")
    return db


def _poison(db: Path, marker: Path) -> None:
    con = sqlite3.connect(db)
    attrs = json.dumps({"space_args": {"command": f"id > {marker}"}})
    con.execute("UPDATE studies SET space_ref = 'os:system', user_attrs = ? WHERE name = 'one'", (attrs,))
    con.commit()
    con.close()


def test_no_command_runs_code_a_database_names(two_studies, tmp_path):
    db, marker = tmp_path / "copy.db", tmp_path / "ran"
    shutil.copy(two_studies, db)
    _poison(db, marker)
    shown = nas("show", "one", "0", "--db", str(db))
    assert shown.returncode == 0, shown.stderr
    assert "blocks" in shown.stdout  # the decisions, from the database alone
    for args in (["export", "one", "0", "--format", "torchscript", "--out", str(tmp_path / "m.pt")],
                 ["prune", "one", "0", "--sparsity", "0.5"]):
        line = one_line_error(nas(*args, "--db", str(db)))
        assert "--space" in line and "--trust-db" in line
    assert not marker.exists()
    # Said on the command line, the user's own space is used, with the stored (data) arguments.
    clean = tmp_path / "clean.db"
    shutil.copy(two_studies, clean)
    ok = nas("show", "one", "0", "--db", str(clean), "--space", CONVNET)
    assert ok.returncode == 0 and "Conv2d" in ok.stdout, ok.stderr
    # ...and --trust-db is what it says: the database's own reference is imported and called.
    nas("show", "one", "0", "--db", str(db), "--trust-db")
    assert marker.exists()


def test_each_export_is_its_own_trials_weights(two_studies, tmp_path):
    store = Store.open(str(two_studies), readonly=True)
    hashes = {}
    for name in ("one", "two"):
        out = tmp_path / f"{name}.safetensors"
        proc = nas("export", name, "0", "--format", "state-dict", "--out", str(out), "--db", str(two_studies),
                   "--space", CONVNET)
        assert proc.returncode == 0, proc.stderr
        assert "fresh weights" not in proc.stdout
        study = store.get_study(name)
        trial = store.get_trial(study.id, 0)
        own = trial_weights(store, study, trial)
        assert own is not None and trial.extra["weights_ref"]["arch_id"] == trial.arch_id
        from safetensors.torch import load

        exported, stored = load(out.read_bytes()), load(own)
        assert exported.keys() == stored.keys()
        assert all(bool((exported[k] == stored[k]).all()) for k in stored)
        hashes[name] = sha(own)
    # same space, same seed, same first architecture: only the epochs differ, and so do the weights
    one, two = (store.get_trial(store.get_study(n).id, 0) for n in ("one", "two"))
    assert one.arch_id == two.arch_id
    assert hashes["one"] != hashes["two"]


def test_a_failed_trial_exports_no_other_trials_weights(two_studies, tmp_path):
    db = tmp_path / "failed.db"
    shutil.copy(two_studies, db)
    con = sqlite3.connect(db)
    con.execute("UPDATE trials SET state = 'FAILED', error = 'diverged' WHERE number = 0 AND study_id = "
                "(SELECT id FROM studies WHERE name = 'one')")
    con.commit()
    con.close()
    line = one_line_error(nas("export", "one", "0", "--format", "state-dict", "--out", str(tmp_path / "w"),
                              "--db", str(db), "--space", CONVNET))
    assert "FAILED" in line and "diverged" in line
    assert not (tmp_path / "w").exists()


def test_export_never_overwrites_the_database_or_an_existing_file(two_studies, tmp_path):
    db = tmp_path / "keep.db"
    shutil.copy(two_studies, db)
    before = sha(db.read_bytes())
    assert "database" in one_line_error(nas("export", "one", "0", "--format", "json", "--out", str(db),
                                            "--db", str(db)))
    assert sha(db.read_bytes()) == before
    out = tmp_path / "arch.json"
    out.write_text("mine")
    assert "--force" in one_line_error(nas("export", "one", "0", "--format", "json", "--out", str(out),
                                           "--db", str(db)))
    assert out.read_text() == "mine"
    assert nas("export", "one", "0", "--format", "json", "--out", str(out), "--db", str(db),
               "--force").returncode == 0
    assert json.loads(out.read_text())["blocks"] >= 1
    missing = tmp_path / "no" / "such" / "dir" / "m.json"
    assert "does not exist" in one_line_error(nas("export", "one", "0", "--format", "json", "--out",
                                                  str(missing), "--db", str(db)))


def test_resume_refuses_changed_settings_and_stores_a_larger_budget(two_studies, tmp_path):
    db = tmp_path / "resume.db"
    shutil.copy(two_studies, db)
    line = one_line_error(nas("search", CONVNET, "--dataset", "digits", "--budget", "2", "--seed", "0",
                              "--db", str(db), "--study", "one", "--epochs", "3", "--resume"))
    assert "evaluator" in line and "--study" in line
    for changed in (["--objective", "params:min"], ["--searcher", "evolution"], ["--seed", "1"]):
        args = ["search", CONVNET, "--dataset", "digits", "--budget", "2", "--seed", "0", "--epochs", "1",
                "--db", str(db), "--study", "one", "--resume", *changed]
        assert "other settings" in one_line_error(nas(*args))
    grown = nas("search", CONVNET, "--dataset", "digits", "--budget", "3", "--seed", "0", "--epochs", "1",
                "--db", str(db), "--study", "one", "--resume")
    assert grown.returncode == 0, grown.stderr
    study = Store.open(str(db), readonly=True).get_study("one")
    assert study.budget == 3 and study.n_complete == 3


POISON = '''
from torch import nn
from nas import space as S


class Bad(nn.Module):
    def __init__(self, error):
        super().__init__()
        self.error = error

    def forward(self, x):
        raise {"key": KeyError, "index": IndexError, "assert": AssertionError,
               "attr": AttributeError}[self.error]("poisoned forward")


def space(num_classes=10, input_shape=(1, 8, 8)):
    body = S.sequential(
        S.choice("op", {"ok": S.identity(), "key": S.op(Bad, error="key"), "index": S.op(Bad, error="index"),
                        "assert": S.op(Bad, error="assert"), "attr": S.op(Bad, error="attr")}),
        S.flatten(), S.linear(num_classes))
    return S.Space(body, input_shape=input_shape)
'''


def test_an_exception_in_a_user_forward_fails_only_its_trial(tmp_path):
    (tmp_path / "poison.py").write_text(POISON)
    db = tmp_path / "p.db"
    args = ["search", "poison.py:space", "--dataset", "digits", "--budget", "5", "--epochs", "1",
            "--searcher", "random", "--db", str(db), "--study", "p"]
    first = nas(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    store = Store.open(str(db), readonly=True)
    trials = store.trials(store.get_study("p").id)
    failed = [t for t in trials if str(t.state) == "FAILED"]
    assert len(trials) == 5 and {t.architecture["op"] for t in failed} == {"key", "index", "assert", "attr"}
    assert all("poisoned forward" in t.error for t in failed)
    again = nas(*args, "--resume", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
