"""What the CLI prints is safe to read and to paste: escapes spelled out, commands shell-quoted, tables
that fit 80 columns, a resumed study's progress, a space found from any folder, TorchScript's limits.

Each test runs the installed `nas` entry point in a real process (COLUMNS decides rich's width).
"""

from __future__ import annotations

import os
import shlex
import sqlite3
import subprocess
import sys
from pathlib import Path

from nas.store import Store

NAS = str(Path(sys.executable).with_name("nas"))
NB = ["search", "search_spaces.nb201:space", "--space-arg", "cells_per_stage=1", "--dataset", "nb201-cifar10"]


def nas(*args: str, cwd: Path, columns: int = 80) -> subprocess.CompletedProcess:
    return subprocess.run([NAS, *args], capture_output=True, text=True, timeout=600, cwd=cwd,
                          env={**os.environ, "COLUMNS": str(columns)})


def test_names_are_quoted_escaped_and_tables_fit_80_columns(tmp_path):
    db = str(tmp_path / "n.db")
    first = nas(*NB, "--budget", "3", "--db", db, "--study", "my study", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    hint = next(line for line in first.stdout.splitlines() if line.startswith("look closer:"))
    argv = shlex.split(hint.removeprefix("look closer:"))  # pastes as one argument per word
    assert argv[:3] == ["nas", "show", "my study"] and argv[argv.index("--space") + 1] == NB[1]
    for args in (["studies", "--db", db], ["best", "my study", "--db", db],
                 ["trials", "my study", "--db", db]):
        out = nas(*args, cwd=tmp_path).stdout
        assert "…" not in out and "e+" not in out, out  # no cut headers, no 2.437e+... figures
        table = [line for line in out.splitlines() if not line.startswith("trial ")]  # JSON: one line
        assert max(len(line) for line in table) <= 80, out
    # a name holding a terminal escape and a newline is printed spelled out, never raw
    with sqlite3.connect(db) as con:
        con.execute("UPDATE studies SET name = ? WHERE name = 'my study'", ("red\x1b[31m\nname",))
    con.close()
    for args in (["studies", "--db", db], ["trials", "nothing", "--db", db]):
        proc = nas(*args, cwd=tmp_path)
        assert "\x1b" not in proc.stdout + proc.stderr and "\\x1b" in proc.stdout + proc.stderr


def test_a_resumed_study_shows_its_progress_from_what_is_done(tmp_path):
    db = str(tmp_path / "r.db")
    assert nas(*NB, "--budget", "3", "--db", db, "--study", "r", cwd=tmp_path).returncode == 0
    again = nas(*NB, "--budget", "3", "--db", db, "--study", "r", "--resume", cwd=tmp_path, columns=120)
    assert again.returncode == 0, again.stderr
    assert "3/3" in again.stdout and "0/3" not in again.stdout


SPACE = '''
from torch import nn
from nas import space as S


class Gen(nn.Module):
    def forward(self, x):
        return sum(t for t in [x])  # a generator expression: TorchScript cannot compile it


def space(num_classes=10, input_shape=(1, 8, 8)):
    return S.Space(S.sequential(S.op(Gen), S.flatten(), S.linear(num_classes)), input_shape=input_shape)
'''


def test_a_relative_space_file_is_stored_whole_and_torchscript_limits_are_explained(tmp_path):
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    work.mkdir()
    elsewhere.mkdir()
    (work / "gen.py").write_text(SPACE)
    db = str(tmp_path / "g.db")
    ran = nas("search", "gen.py:space", "--dataset", "digits", "--epochs", "1", "--budget", "1", "--db", db,
              "--study", "g", cwd=work)
    assert ran.returncode == 0, ran.stderr
    assert Store.open(db, readonly=True).get_study("g").space_ref == f"{work / 'gen.py'}:space"
    shown = nas("show", "g", "0", "--db", db, "--trust-db", cwd=elsewhere)
    assert shown.returncode == 0 and "Gen()" in shown.stdout, shown.stderr
    out = elsewhere / "m.pt"
    failed = nas("export", "g", "0", "--format", "torchscript", "--out", str(out), "--db", db, "--trust-db",
                 cwd=elsewhere)
    assert failed.returncode == 2 and "onnx, state-dict or json" in failed.stderr, failed.stderr
    assert len(failed.stderr.strip().splitlines()) == 1 and not out.exists()
    ok = nas("export", "g", "0", "--format", "state-dict", "--out", str(out), "--db", db, "--trust-db",
             cwd=elsewhere)
    assert ok.returncode == 0 and out.stat().st_size > 0, ok.stderr
