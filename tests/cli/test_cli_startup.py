"""The quick commands import no torch: `nas --help` and the readers of a store start in a moment."""

from __future__ import annotations

import subprocess
import sys

from nas.store import Store, StudySpec, TrialState

PROBE = """
import contextlib, io, sys
from nas.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    status = main(sys.argv[2:])
heavy = sorted(m for m in sys.argv[1].split(",") if m in sys.modules)
print(status, ",".join(heavy))
"""


def test_help_and_the_readers_import_no_torch(tmp_path):
    db = str(tmp_path / "s.db")
    with Store.open(db) as store:
        study = store.create_study(StudySpec(
            name="s", space_ref="", space_fingerprint="fp", space_description={}, searcher="random",
            searcher_settings={}, objectives=["accuracy:max"], constraints=[], evaluator={}, seed=0,
            budget=1))
        t = store.start_trial(study.id, "a", '{"width": 8}', host="h", device="cpu", worker="w")
        store.finish_trial(t.id, TrialState.COMPLETE, metrics={"accuracy": 0.5})
    readers = "torch,sklearn,optuna,pandas,streamlit"
    for args, banned in (
            (["--help"], readers + ",sqlalchemy,numpy"),  # the help needs neither the store nor numpy
            (["studies", "--db", db], readers), (["trials", "s", "--db", db], readers),
            (["best", "s", "--db", db], readers), (["show", "s", "0", "--db", db], readers)):
        out = subprocess.run([sys.executable, "-c", PROBE, banned, *args], capture_output=True, text=True,
                             timeout=120, cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        assert out.stdout.split() == ["0"], f"nas {' '.join(args)} imported {out.stdout}"
