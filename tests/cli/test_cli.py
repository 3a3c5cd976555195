"""The `nas` command through its real entry point, as a user runs it."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nas.cli import main
from nas.errors import NasError

NAS = [sys.executable, "-c", "import sys; from nas.cli import main; sys.exit(main())"]
ROOT = Path(__file__).resolve().parents[2]


def nas(*args: str, check: bool = True, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run `nas` in this process through `main`, the function the console script calls.

    (A new interpreter per call would spend most of the suite importing torch; the tests that need a
    real process — kill -9, two writers at once, export without nas — start one.)
    """
    out, err = io.StringIO(), io.StringIO()
    old = os.getcwd()
    os.chdir(cwd or ROOT)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(args))
    finally:
        os.chdir(old)
    proc = subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())
    if check and proc.returncode != 0:
        raise AssertionError(f"nas {args} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def test_the_console_script_runs_a_search(tmp_path):
    exe = shutil.which("nas") or str(Path(sys.executable).parent / "nas")
    proc = subprocess.run([exe, *NB, "--budget", "3", "--db", str(tmp_path / "s.db")], capture_output=True,
                          text=True, timeout=600, env={**os.environ, "COLUMNS": "160"})
    assert proc.returncode == 0, proc.stderr
    assert "best architecture" in proc.stdout
    bad = subprocess.run([exe, "search", "nope.py:space"], capture_output=True, text=True, timeout=600)
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and "Traceback" not in bad.stderr
    debug = subprocess.run([exe, "search", "nope.py:space", "--debug"], capture_output=True, text=True,
                           timeout=600)
    assert debug.returncode != 0 and "Traceback" in debug.stderr


NB = ["search", "search_spaces.nb201:space", "--space-arg", "cells_per_stage=1", "--dataset", "nb201-cifar10"]


@pytest.fixture(scope="module")
def nb_db(tmp_path_factory) -> str:
    db = str(tmp_path_factory.mktemp("cli") / "nb.db")
    nas(*NB, "--budget", "12", "--db", db, "--study", "nb")
    return db


def test_search_prints_the_best_and_how_to_look_at_it(tmp_path):
    out = nas(*NB, "--budget", "5", "--db", str(tmp_path / "a.db"), "--study", "a").stdout
    assert "best architecture" in out and "nas show a" in out and "nas export a" in out


def test_studies_trials_best_show(nb_db):
    studies = json.loads(nas("studies", "--db", nb_db, "--format", "json").stdout)
    assert studies[0]["name"] == "nb" and studies[0]["complete"] == 12
    trials = json.loads(nas("trials", "nb", "--db", nb_db, "--format", "json").stdout)
    assert len(trials) == 12
    assert {"number", "state", "arch_id", "architecture", "metrics"} <= set(trials[0])
    assert set(trials[0]["architecture"]) == {"1<-0", "2<-0", "2<-1", "3<-0", "3<-1", "3<-2"}
    csv_text = nas("trials", "nb", "--db", nb_db, "--format", "csv").stdout
    assert csv_text.splitlines()[0].startswith("number,state,arch_id,architecture")
    assert len(csv_text.strip().splitlines()) == 13
    best = json.loads(nas("best", "nb", "--db", nb_db, "--format", "json").stdout)
    assert best[0]["metrics"]["accuracy"] == max(t["metrics"]["accuracy"] for t in trials)
    shown = nas("show", "nb", str(best[0]["number"]), "--db", nb_db, "--space",
                "search_spaces.nb201:space").stdout
    assert "accuracy" in shown and "Conv2d" in shown and "(cell)" in shown


def test_export_loads_and_runs_without_nas(nb_db, tmp_path):
    for fmt, name in [("torchscript", "m.pt"), ("onnx", "m.onnx"), ("state-dict", "m.safetensors"),
                      ("json", "m.json")]:
        nas("export", "nb", "0", "--format", fmt, "--out", str(tmp_path / name), "--db", nb_db,
            "--space", "search_spaces.nb201:space")
    check = (
        "import sys, torch, onnx\n"
        f"m = torch.jit.load({str(tmp_path / 'm.pt')!r}); y = m(torch.randn(2, 3, 32, 32))\n"
        "assert y.shape == (2, 10), y.shape\n"
        f"onnx.checker.check_model(onnx.load({str(tmp_path / 'm.onnx')!r}))\n"
        "assert not any(k == 'nas' or k.startswith('nas.') for k in sys.modules), 'nas was imported'\n"
    )
    subprocess.run([sys.executable, "-c", check], check=True, cwd=tmp_path, timeout=300)
    assert json.loads((tmp_path / "m.json").read_text())["1<-0"]


def test_trained_weights_are_exported(tmp_path):
    db = str(tmp_path / "d.db")
    nas("search", "search_spaces.convnet:space", "--space-arg", "widths=[8]", "--space-arg", "max_blocks=1",
        "--dataset", "digits", "--epochs", "2", "--budget", "1", "--db", db, "--study", "d")
    nas("export", "d", "0", "--format", "torchscript", "--out", str(tmp_path / "d.pt"), "--db", db,
        "--space", "search_spaces.convnet:space")
    trial = json.loads(nas("trials", "d", "--db", db, "--format", "json").stdout)[0]
    check = (
        "import torch; from nas.evaluate import load_dataset\n"
        "d = load_dataset('digits')\n"
        f"m = torch.jit.load({str(tmp_path / 'd.pt')!r}).eval()\n"
        "print(m(d.x_test).argmax(1).eq(d.y_test).float().mean().item())\n"
    )
    out = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True)
    # the exported file holds the trained weights: it reproduces the recorded test accuracy
    assert float(out.stdout) == pytest.approx(trial["metrics"]["test_accuracy"], abs=1e-6)


@pytest.mark.parametrize("args, message", [
    (["search", "nope.py:space"], "the file nope.py does not exist"),
    (["search", "search_spaces.convnet:nothing"], "has no function 'nothing'"),
    (["search", "search_spaces.convnet:space", "--objective", "accuracy:up"], "write name:max or name:min"),
    (["search", "search_spaces.convnet:space", "--constraint", "params<<5"], "write name<=number"),
    (["search", "search_spaces.convnet:space", "--objective", "test_accuracy:max"], "leaks the test set"),
    (["search", "search_spaces.convnet:space", "--dataset", "mnist-3d"], "unknown data set 'mnist-3d'"),
    (["search", "search_spaces.convnet:space", "--db", "postgresql+psycopg://x@127.0.0.1:1/none"], "error"),
    (["trials", "nothing", "--db", "MISSING.db"], "error"),
])
def test_user_errors_are_one_line_without_traceback(args, message, tmp_path):
    proc = nas(*args, check=False, cwd=tmp_path)
    assert proc.returncode != 0
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0, proc.stderr


def test_not_a_space_and_debug_shows_the_traceback(tmp_path):
    (tmp_path / "bad.py").write_text("def space():\n    return 3\n")
    proc = nas("search", "bad.py:space", check=False, cwd=tmp_path)
    assert proc.returncode == 2 and "returned int, not a nas.space.Space" in proc.stderr
    with pytest.raises(NasError, match="returned int"):  # --debug lets the exception through
        nas("search", "bad.py:space", "--debug", check=False, cwd=tmp_path)


def test_foreign_database_and_study_with_another_space(tmp_path, nb_db):
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as c:
        c.execute("create table customers (id integer)")
    proc = nas("studies", "--db", str(foreign), check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "nas" in proc.stderr
    other = nas("search", "search_spaces.convnet:space", "--db", nb_db, "--study", "nb", "--resume",
                check=False)
    assert other.returncode == 2 and "fingerprint" in other.stderr


def test_two_searches_write_one_database_at_once(tmp_path):
    db = str(tmp_path / "two.db")
    procs = [subprocess.Popen([*NAS, *NB, "--budget", "30", "--db", db, "--study", f"s{i}", "--seed", str(i)],
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for i in range(2)]
    assert all(p.wait(timeout=600) == 0 for p in procs)
    with sqlite3.connect(db) as c:
        rows = c.execute("select study_id, count(*), count(distinct number) from trials "
                         "where state='COMPLETE' group by study_id").fetchall()
    assert [r[1:] for r in rows] == [(30, 30), (30, 30)]


@pytest.mark.postgres
def test_search_on_postgresql(postgres_url, tmp_path):
    from tests.pg import drop_postgres_schema, fresh_postgres_schema

    url, schema = fresh_postgres_schema(postgres_url)
    try:
        nas(*NB, "--budget", "6", "--db", url, "--study", "pg")
        trials = json.loads(nas("trials", "pg", "--db", url, "--format", "json").stdout)
        assert [t["number"] for t in trials] == list(range(6))
    finally:
        drop_postgres_schema(postgres_url, schema)


def test_kill_9_then_resume_loses_nothing(tmp_path):
    db = tmp_path / "crash.db"
    args = ["search", "search_spaces.convnet:space", "--space-arg", "widths=[8]", "--dataset", "digits",
            "--epochs", "1", "--budget", "6", "--db", str(db), "--study", "crash", "--seed", "2"]
    proc = subprocess.Popen([*NAS, *args], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    done = _wait_for_complete(db, 2, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = _complete_trials(db)
    assert len(before) >= done
    nas(*args, "--resume")
    after = _complete_trials(db)
    assert before.items() <= after.items()  # every completed trial is still there, unchanged
    assert len(after) == 6  # the study finished with the budget it was given
    with sqlite3.connect(db) as c:
        states = dict(c.execute("select state, count(*) from trials group by state").fetchall())
        finished = c.execute("select finished_at from studies").fetchone()[0]
    assert states.get("RUNNING", 0) == 0 and finished is not None


def _complete_trials(db: Path) -> dict[int, str]:
    with sqlite3.connect(db) as c:
        return dict(c.execute("select number, metrics from trials where state='COMPLETE'").fetchall())


def _wait_for_complete(db: Path, n: int, proc: subprocess.Popen) -> int:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the search ended before it could be killed"
        if db.exists():
            try:
                k = len(_complete_trials(db))
            except sqlite3.OperationalError:
                k = 0
            if k >= n:
                return k
        time.sleep(0.2)
    raise AssertionError("no trials completed in time")
