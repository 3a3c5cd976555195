"""Bad input to the installed `nas` console script: one line on stderr, exit status 2, data untouched.

Every case runs the real entry point (`<venv>/bin/nas`) in a fresh process, in a folder of its own
holding a copy of one small results database built once for the module (a 3-trial convnet search on
`digits`, plus a study whose only trial FAILED). For each case:

* the exit status is 2, stderr is exactly one non-empty line, and no "Traceback" is printed;
* every SQLite database in the folder passes `PRAGMA integrity_check` and holds the same rows as
  before (a hash of every row of every table, sorted);
* for commands that only read, every file in the folder keeps its bytes and mtime and no file
  appears or disappears (SQLite's own `-wal`/`-shm` companions of a database opened read-only are
  allowed to appear, the `-wal` only empty); for commands that may write (`search`, `db upgrade`),
  no file appears or disappears and every file that is not a database keeps its bytes.

The cases run a few at a time in a thread pool started by a module fixture (each is a separate
process that spends most of its time importing torch), and each test checks its own case's outcome.
The signal tests at the end stop a real search with SIGINT / SIGTERM.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

NAS = str(Path(sys.executable).with_name("nas"))
CONV = "search_spaces.convnet:space"
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
IDX_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
CASE_TIMEOUT = 120  # seconds for one bad-input process (a few seconds when the input is refused)
POOL = 3  # cases run at once
ENV = {**os.environ, "COLUMNS": "200", "PYTHONUNBUFFERED": "1"}

FAILING_SPACE = '''"""A space whose op raises whichever option is chosen: its trials FAIL."""
import torch.nn as nn

from nas import space as S


class Boom(nn.Module):
    def forward(self, x):
        if self.training:
            raise RuntimeError("boom")
        return x


def space():
    body = S.sequential(S.flatten(), S.choice("op", {"boom": S.op(Boom), "bang": S.op(Boom)}), S.linear(10))
    return S.Space(body, input_shape=(1, 8, 8), name="failing")
'''


# ------------------------------------------------------------------------------------------------
# the fixture database
# ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Base:
    db: Path  # studies "base" (3 COMPLETE convnet trials) and "failing" (FAILED trials)
    failing_space: str  # path/to/failing.py:space
    failed_trial: int  # a FAILED trial of study "failing"


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Base:
    folder = tmp_path_factory.mktemp("bad_input_base")
    db = folder / "base.db"
    run = subprocess.run([NAS, "search", CONV, "--dataset", "digits", "--budget", "3", "--epochs", "1",
                          "--db", str(db), "--study", "base", "--seed", "0"],
                         cwd=folder, capture_output=True, text=True, timeout=600, env=ENV)
    assert run.returncode == 0, run.stdout + run.stderr
    (folder / "failing.py").write_text(FAILING_SPACE)
    failing_space = f"{folder / 'failing.py'}:space"
    # every trial fails, so the search itself ends with "no completed trial": only the rows matter
    failing = subprocess.run([NAS, "search", failing_space, "--dataset", "digits", "--budget", "1",
                              "--epochs", "1", "--db", str(db), "--study", "failing", "--seed", "0"],
                             cwd=folder, capture_output=True, text=True, timeout=600, env=ENV)
    with sqlite3.connect(db) as c:
        c.execute("pragma wal_checkpoint(truncate)")
        states = c.execute("select s.name, t.number, t.state from trials t"
                           " join studies s on s.id = t.study_id"
                           " order by s.name, t.number").fetchall()
    c.close()
    assert [(s, n, st) for s, n, st in states if s == "base"] == [("base", i, "COMPLETE") for i in range(3)]
    failed = [n for s, n, st in states if s == "failing" and st == "FAILED"]
    assert failed, f"{states}\n{failing.stdout}\n{failing.stderr}"
    for extra in ("base.db-wal", "base.db-shm"):
        (folder / extra).unlink(missing_ok=True)
    return Base(db, failing_space, failed[0])


# ------------------------------------------------------------------------------------------------
# snapshots of a case's folder
# ------------------------------------------------------------------------------------------------

def _is_sqlite(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(16) == b"SQLite format 3\x00"


def _db_state(path: Path, scratch: Path) -> tuple[str, dict[str, tuple[int, str]]]:
    """Return (integrity_check, {table: (rows, hash of its sorted rows)}) of a database, its WAL included.

    Read from a copy, so that reading it leaves no trace in the case's folder.
    """
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir(parents=True)
    copy = scratch / path.name
    shutil.copyfile(path, copy)
    wal = path.with_name(path.name + "-wal")
    if wal.exists():
        shutil.copyfile(wal, copy.with_name(copy.name + "-wal"))
    c = sqlite3.connect(copy)
    try:
        integrity = "; ".join(str(r[0]) for r in c.execute("pragma integrity_check").fetchall())
        tables = [r[0] for r in c.execute("select name from sqlite_master where type = 'table'")]
        hashes = {}
        for t in tables:
            rows = sorted(repr(r) for r in c.execute(f'select * from "{t}"').fetchall())
            hashes[t] = (len(rows), hashlib.sha256("\n".join(rows).encode()).hexdigest())
    except sqlite3.DatabaseError as e:
        integrity, hashes = f"unreadable: {e}", {}
    finally:
        c.close()
    shutil.rmtree(scratch)
    return integrity, hashes


@dataclass
class Snapshot:
    files: dict[str, tuple[int, str, int]]  # relative path -> (size, sha256, mtime_ns); folders: (-1, "", 0)
    dbs: dict[str, tuple[str, dict[str, tuple[int, str]]]]  # relative path -> _db_state


def _snapshot(folder: Path, scratch: Path) -> Snapshot:
    files: dict[str, tuple[int, str, int]] = {}
    dbs = {}
    for p in sorted(folder.rglob("*")):
        rel = str(p.relative_to(folder))
        if p.is_dir():
            files[rel] = (-1, "", 0)
            continue
        st = p.stat()
        files[rel] = (st.st_size, hashlib.sha256(p.read_bytes()).hexdigest(), st.st_mtime_ns)
    for rel in files:
        p = folder / rel
        if p.is_file() and not rel.endswith(("-wal", "-shm", "-journal")) and _is_sqlite(p):
            dbs[rel] = _db_state(p, scratch)
    return Snapshot(files, dbs)


# ------------------------------------------------------------------------------------------------
# the cases
# ------------------------------------------------------------------------------------------------

@dataclass
class Ctx:
    dir: Path  # the case's folder (the process's working directory)
    base: Base

    @property
    def db(self) -> str:
        return str(self.dir / "nas.db")


@dataclass
class Case:
    id: str
    args: Callable[[Ctx], list[str]]
    writes: bool = False  # a command that may write (search, db upgrade): bytes of databases may change
    setup: Callable[[Ctx], None] | None = None
    check: Callable[[Ctx, subprocess.CompletedProcess], None] | None = None  # further assertions
    copy_db: bool = True  # the fixture database copied to nas.db in the case's folder
    timeout: float = CASE_TIMEOUT


CASES: list[Case] = []


def case(id: str, args, **kw) -> None:
    assert id not in {c.id for c in CASES}, id
    CASES.append(Case(id, args, **kw))


def search(c: Ctx, *extra: str, space: str = CONV, dataset: str = "digits", budget: str = "1",
           epochs: str = "1", study: str = "new", db: str | None = None) -> list[str]:
    """A small search writing to the case's database copy (or `db`), a new study, with `extra` options."""
    return ["search", space, "--dataset", dataset, "--budget", budget, "--epochs", epochs,
            "--db", db or c.db, "--study", study, *extra]


def write(name: str, text: str) -> Callable[[Ctx], None]:
    def setup(c: Ctx) -> None:
        p = c.dir / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return setup


def mkdir(name: str) -> Callable[[Ctx], None]:
    return lambda c: (c.dir / name).mkdir(parents=True)


def absent(path: str) -> Callable[[Ctx, subprocess.CompletedProcess], None]:
    def check(c: Ctx, proc: subprocess.CompletedProcess) -> None:
        assert not Path(path).exists(), f"{path} was created"
    return check


# --- spaces ---------------------------------------------------------------------------------------
case("space-missing-file", lambda c: search(c, space="nope.py:space"), writes=True)
case("space-file-without-function", lambda c: search(c, space="nofn.py:space"), writes=True,
     setup=write("nofn.py", "def other():\n    return None\n"))
case("space-returns-non-space", lambda c: search(c, space="notspace.py:space"), writes=True,
     setup=write("notspace.py", "def space():\n    return 3\n"))
case("space-module-missing", lambda c: search(c, space="no_such_module_xyz:space"), writes=True)
case("space-file-syntax-error", lambda c: search(c, space="broken.py:space"), writes=True,
     setup=write("broken.py", "def space(:\n    return\n"))
case("space-arg-without-equals", lambda c: search(c, "--space-arg", "width"), writes=True)
case("space-arg-unknown", lambda c: search(c, "--space-arg", "nosuch=3"), writes=True)

# --- objectives and constraints -----------------------------------------------------------------
case("objective-bad-direction", lambda c: search(c, "--objective", "accuracy:maximize"), writes=True)
case("objective-unknown-metric", lambda c: search(c, "--objective", "nosuchmetric:max"), writes=True)
case("objective-empty", lambda c: search(c, "--objective", ""), writes=True)
case("constraint-double-lt", lambda c: search(c, "--constraint", "params<<5"), writes=True)
case("constraint-not-a-number", lambda c: search(c, "--constraint", "params<=abc"), writes=True)
case("constraint-unknown-metric", lambda c: search(c, "--constraint", "nosuch<=3"), writes=True)

# --- numbers ----------------------------------------------------------------------------------------
case("budget-abc", lambda c: search(c, budget="abc"), writes=True)
case("budget-0", lambda c: search(c, budget="0"), writes=True)
case("budget-negative", lambda c: search(c, budget="-1"), writes=True)
case("epochs-0", lambda c: search(c, epochs="0"), writes=True)
case("lr-negative", lambda c: search(c, "--lr", "-1"), writes=True)
case("lr-nan", lambda c: search(c, "--lr", "nan"), writes=True)
case("batch-size-0", lambda c: search(c, "--batch-size", "0"), writes=True)
case("workers-0", lambda c: search(c, "--workers", "0"), writes=True)
case("search-latency-threads-0", lambda c: search(c, "--latency-threads", "0"), writes=True)
case("search-prune-1.5", lambda c: search(c, "--prune", "1.5"), writes=True)

# --- other search options -------------------------------------------------------------------------
case("searcher-unknown", lambda c: search(c, "--searcher", "nosuch"), writes=True)
case("resume-with-another-space", lambda c: search(c, "--space-arg", "widths=[8]", "--resume", study="base"),
     writes=True)


# --- data sets ------------------------------------------------------------------------------------
def _idx_bytes(shape: tuple[int, ...], data: np.ndarray) -> bytes:
    magic = bytes([0, 0, 8, len(shape)])
    return magic + b"".join(int(n).to_bytes(4, "big") for n in shape) + data.astype(np.uint8).tobytes()


def _idx_folder(dst: Path) -> None:
    """Fashion-MNIST's four gzip IDX files: Debian's copies when installed, else small synthetic ones."""
    dst.mkdir(parents=True)
    if all((FASHION_DIR / n).is_file() for n in IDX_FILES):
        for n in IDX_FILES:
            shutil.copyfile(FASHION_DIR / n, dst / n)
        return
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 300), ("t10k", 100)):
        (dst / f"{prefix}-images-idx3-ubyte.gz").write_bytes(
            gzip.compress(_idx_bytes((n, 28, 28), rng.integers(0, 256, (n, 28, 28)))))
        labels = _idx_bytes((n,), np.arange(n) % 10)
        (dst / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(labels))


def _truncated_idx(c: Ctx) -> None:
    _idx_folder(c.dir / "fashion")
    p = c.dir / "fashion" / "train-images-idx3-ubyte.gz"
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])


def _not_gzip_idx(c: Ctx) -> None:
    _idx_folder(c.dir / "fashion")
    p = c.dir / "fashion" / "train-images-idx3-ubyte.gz"
    p.write_bytes(gzip.decompress(p.read_bytes()))  # the right bytes, not compressed, under the .gz name


FASHION = ("--space-arg", "input_shape=[1,28,28]", "--max-train", "200")  # with --dataset fashion-mnist

case("dataset-unknown", lambda c: search(c, dataset="mnist-3d"), writes=True)
case("fashion-missing-dir", lambda c: search(c, *FASHION, "--data-dir", "/nonexistent",
                                             dataset="fashion-mnist"), writes=True)
case("fashion-truncated-gzip", lambda c: search(c, *FASHION, "--data-dir", str(c.dir / "fashion"),
                                                dataset="fashion-mnist"), writes=True, setup=_truncated_idx)
case("fashion-not-gzip", lambda c: search(c, *FASHION, "--data-dir", str(c.dir / "fashion"),
                                          dataset="fashion-mnist"), writes=True, setup=_not_gzip_idx)
case("nb201-empty-data-dir", lambda c: search(c, "--data-dir", str(c.dir / "empty"),
                                              space="search_spaces.nb201:space", dataset="nb201-cifar10"),
     writes=True, setup=mkdir("empty"))

# --- database URLs and files ----------------------------------------------------------------------
PG_BAD_PORT = "postgresql://u@127.0.0.1:99999/x"
MYSQL = "mysql://u@localhost/x"
NOT_A_DB = "these are my notes, not a database\n"
NONEXISTENT_DB = "/nonexistent/dir/x.db"


def _foreign_db(c: Ctx) -> None:
    with sqlite3.connect(c.dir / "foreign.db") as con:
        con.execute("create table customers (id integer primary key, name text)")
        con.execute("insert into customers (name) values ('ada')")
    con.close()


def _truncated_db(c: Ctx) -> None:
    data = Path(c.db).read_bytes()
    (c.dir / "half.db").write_bytes(data[: len(data) // 2])


case("search-db-postgres-bad-port", lambda c: search(c, db=PG_BAD_PORT), writes=True)
case("studies-db-mysql-no-driver", lambda c: ["studies", "--db", MYSQL])
case("studies-db-text-file", lambda c: ["studies", "--db", str(c.dir / "notes.txt")],
     setup=write("notes.txt", NOT_A_DB))
case("search-db-text-file", lambda c: search(c, db=str(c.dir / "notes.txt")),
     writes=True, setup=write("notes.txt", NOT_A_DB))
case("search-db-folder", lambda c: search(c, db=str(c.dir / "folder")),
     writes=True, setup=mkdir("folder"))
case("studies-db-foreign", lambda c: ["studies", "--db", str(c.dir / "foreign.db")], setup=_foreign_db)
case("trials-db-truncated", lambda c: ["trials", "base", "--db", str(c.dir / "half.db")], setup=_truncated_db)
for _cmd, _rest in (("studies", []), ("trials", ["base"]), ("best", ["base"]), ("show", ["base", "0"]),
                    ("export", ["base", "0", "--format", "json", "--out", "m.json"]),
                    ("prune", ["base", "0", "--space", CONV])):
    case(f"{_cmd}-db-nonexistent-dir", lambda c, cmd=_cmd, rest=_rest: [cmd, *rest, "--db", NONEXISTENT_DB],
         check=absent("/nonexistent"))
case("db-upgrade-text-file", lambda c: ["db", "upgrade", "--db", str(c.dir / "notes.txt")], writes=True,
     setup=write("notes.txt", NOT_A_DB))

# --- study names and trial lookups ----------------------------------------------------------------
case("trials-unknown-study", lambda c: ["trials", "nosuch", "--db", c.db])
case("best-unknown-study", lambda c: ["best", "nosuch", "--db", c.db])
case("show-unknown-study", lambda c: ["show", "nosuch", "0", "--db", c.db])
case("export-unknown-study", lambda c: ["export", "nosuch", "0", "--format", "json", "--out", "m.json",
                                        "--db", c.db])
case("prune-unknown-study", lambda c: ["prune", "nosuch", "0", "--space", CONV, "--db", c.db])
case("show-trial-out-of-range", lambda c: ["show", "base", "99", "--db", c.db, "--space", CONV])
# "--" lets -1 through as the TRIAL argument rather than an unknown option
case("show-trial-negative", lambda c: ["show", "--db", c.db, "--space", CONV, "base", "--", "-1"])
case("export-trial-out-of-range", lambda c: ["export", "base", "99", "--format", "json", "--out", "m.json",
                                             "--db", c.db, "--space", CONV])
case("export-trial-negative", lambda c: ["export", "--format", "json", "--out", "m.json", "--db", c.db,
                                         "--space", CONV, "base", "--", "-1"])
case("prune-trial-out-of-range", lambda c: ["prune", "base", "99", "--space", CONV, "--db", c.db])
case("prune-trial-negative", lambda c: ["prune", "--space", CONV, "--db", c.db, "base", "--", "-1"])
case("trials-state-unknown", lambda c: ["trials", "base", "--state", "BOGUS", "--db", c.db])

# --- exports and prunes ---------------------------------------------------------------------------
def export(c: Ctx, *extra: str, trial: str = "0") -> list[str]:
    return ["export", "base", trial, "--db", c.db, "--space", CONV, *extra]


case("export-format-xml", lambda c: export(c, "--format", "xml", "--out", "m.xml"))
case("export-out-missing-folder", lambda c: export(c, "--format", "torchscript",
                                                   "--out", str(c.dir / "missing" / "m.pt")))
case("export-out-is-the-db-force", lambda c: export(c, "--format", "torchscript", "--out", c.db, "--force"))
case("export-out-exists-without-force", lambda c: export(c, "--format", "torchscript", "--out", "keep.pt"),
     setup=write("keep.pt", "precious\n"))
case("export-failed-trial-torchscript",
     lambda c: ["export", "failing", str(c.base.failed_trial), "--format", "torchscript", "--out", "m.pt",
                "--db", c.db, "--space", c.base.failing_space])
case("prune-sparsity-1.5", lambda c: ["prune", "base", "0", "--sparsity", "1.5", "--space", CONV,
                                      "--db", c.db])
case("prune-out-missing-folder", lambda c: ["prune", "base", "0", "--space", CONV, "--db", c.db,
                                            "--out", str(c.dir / "missing" / "p.pt")])
case("prune-failed-trial", lambda c: ["prune", "failing", str(c.base.failed_trial), "--db", c.db,
                                      "--space", c.base.failing_space])

# --- typos ----------------------------------------------------------------------------------------
case("typo-command", lambda c: ["serch"])
case("typo-option", lambda c: ["search", "x", "--budgte", "5", "--db", c.db], writes=True)
case("trials-without-study", lambda c: ["trials", "--db", c.db])


# --- a database naming code to run ----------------------------------------------------------------
def _os_system_study(c: Ctx) -> None:
    """Make study base's stored space `os:system`, called with a command that would leave a marker."""
    marker = c.dir / "pwned"
    with sqlite3.connect(c.db) as con:
        con.execute("update studies set space_ref = 'os:system', user_attrs = ? where name = 'base'",
                    (json.dumps({"space_args": {"command": f"touch {marker}"}}),))
    con.close()
    for extra in ("-wal", "-shm"):
        Path(c.db + extra).unlink(missing_ok=True)


def _no_code_ran(c: Ctx, proc: subprocess.CompletedProcess, hint: str = "--space") -> None:
    assert not (c.dir / "pwned").exists(), "the space named by the database was run"
    assert hint in proc.stderr, proc.stderr


# (`show` without --space prints the model text stored with the trial and runs nothing: test_trust.py)
case("show-db-names-os-system-space-missing", lambda c: ["show", "base", "0", "--db", c.db,
                                                        "--space", "nope.py:space"],
     setup=_os_system_study, check=lambda c, proc: _no_code_ran(c, proc, hint="nope.py"))
case("export-db-names-os-system", lambda c: ["export", "base", "0", "--format", "torchscript",
                                             "--out", "m.pt", "--db", c.db],
     setup=_os_system_study, check=_no_code_ran)
case("prune-db-names-os-system", lambda c: ["prune", "base", "0", "--db", c.db],
     setup=_os_system_study, check=_no_code_ran)

# --- latency, profile, dashboard ------------------------------------------------------------------
case("latency-arch-invalid", lambda c: ["latency", CONV, "--arch", '{"width": 7}'], copy_db=False)
case("profile-samples-0", lambda c: ["profile", "--samples", "0", "--time-budget", "0.05",
                                     "--out", str(c.dir / "p.json"), "--db", c.db], writes=True)
case("dashboard-port-out-of-range", lambda c: ["dashboard", "--db", c.db, "--port", "99999"], timeout=45)


# ------------------------------------------------------------------------------------------------
# running them
# ------------------------------------------------------------------------------------------------

@dataclass
class Outcome:
    argv: list[str]
    proc: subprocess.CompletedProcess
    before: Snapshot
    after: Snapshot
    ctx: Ctx
    timed_out: bool = False


def _run(case_: Case, ctx: Ctx, before: Snapshot, scratch: Path) -> Outcome:
    argv = [NAS, *case_.args(ctx)]
    p = subprocess.Popen(argv, cwd=ctx.dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=ENV, start_new_session=True)
    timed_out = False
    try:
        out, err = p.communicate(timeout=case_.timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
    finally:
        try:
            os.killpg(p.pid, signal.SIGKILL)  # anything it left behind (a server, a worker)
        except ProcessLookupError:
            pass
    proc = subprocess.CompletedProcess(argv, p.returncode, out, err)
    return Outcome(argv, proc, before, _snapshot(ctx.dir, scratch), ctx, timed_out)


@pytest.fixture(scope="module")
def outcomes(base, tmp_path_factory):
    """Start every case (a few at a time); {case id: Future[Outcome]}."""
    pool = ThreadPoolExecutor(max_workers=POOL)
    futures: dict[str, Future] = {}
    scratch_root = tmp_path_factory.mktemp("bad_input_scratch")
    for i, case_ in enumerate(CASES):
        folder = tmp_path_factory.mktemp(re.sub(r"[^A-Za-z0-9]+", "_", case_.id), numbered=True)
        ctx = Ctx(folder, base)
        if case_.copy_db:
            shutil.copyfile(base.db, ctx.db)
        if case_.setup is not None:
            case_.setup(ctx)
        before = _snapshot(folder, scratch_root / f"before{i}")
        futures[case_.id] = pool.submit(_run, case_, ctx, before, scratch_root / f"after{i}")
    yield futures
    pool.shutdown(wait=True, cancel_futures=True)


def _cmdline(argv: list[str]) -> str:
    return shlex.join(["nas", *argv[1:]])


@pytest.mark.parametrize("case_", CASES, ids=[c.id for c in CASES])
def test_bad_input(case_: Case, outcomes):
    o: Outcome = outcomes[case_.id].result()
    proc = o.proc
    where = (f"\n$ {_cmdline(o.argv)}\nexit {proc.returncode}\nstdout: {proc.stdout[-2000:]!r}"
             f"\nstderr: {proc.stderr[-2000:]!r}")
    print(f"$ {_cmdline(o.argv)}\n-> {proc.returncode}: {proc.stderr.strip()}")  # shown by pytest -rP
    assert not o.timed_out, f"still running after {case_.timeout} s" + where
    assert proc.returncode == 2, "exit status" + where
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].strip(), "stderr is not exactly one non-empty line" + where
    assert "Traceback" not in proc.stdout and "Traceback" not in proc.stderr, "a traceback" + where
    _assert_unchanged(case_, o, where)
    if case_.check is not None:
        case_.check(o.ctx, proc)


def _assert_unchanged(case_: Case, o: Outcome, where: str) -> None:
    before, after = o.before, o.after
    for rel, (integrity, hashes) in after.dbs.items():
        was = before.dbs[rel][0] if rel in before.dbs else "ok"  # a case's damaged database stays as damaged
        assert integrity in ("ok", was), f"{rel}: integrity_check says {integrity}" + where
        if rel in before.dbs:
            was_rows = before.dbs[rel][1]
            changed = {t: f"{was_rows.get(t, (0,))[0]} -> {hashes.get(t, (0,))[0]} rows"
                       for t in sorted(set(hashes) | set(was_rows)) if hashes.get(t) != was_rows.get(t)}
            assert not changed, f"{rel}: rows changed: {changed}" + where
    # SQLite's companions of a database that was opened (read-only leaves them): allowed, the WAL empty
    companions = {f"{rel}{s}" for rel in before.dbs for s in ("-wal", "-shm")}
    new = sorted(set(after.files) - set(before.files) - companions)
    gone = sorted(set(before.files) - set(after.files) - companions)
    assert not new and not gone, f"files appeared {new} / disappeared {gone}" + where
    for rel in companions & set(after.files):
        if rel.endswith("-wal") and rel not in before.files:
            assert after.files[rel][0] == 0, f"{rel} holds {after.files[rel][0]} bytes of writes" + where
    for rel, (size, digest, mtime) in before.files.items():
        if rel in companions or size < 0:
            continue
        if case_.writes and rel in before.dbs:
            continue  # a writing command may touch the file; its rows were compared above
        a_size, a_digest, a_mtime = after.files[rel]
        assert (a_size, a_digest) == (size, digest), f"{rel}: its bytes changed" + where
        assert a_mtime == mtime, f"{rel}: its mtime changed" + where


def test_there_are_enough_cases():
    assert len(CASES) >= 60


# ------------------------------------------------------------------------------------------------
# signals
# ------------------------------------------------------------------------------------------------

def _trial_states(db: Path) -> dict[str, int]:
    if not db.exists():
        return {}
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return dict(con.execute("select state, count(*) from trials group by state").fetchall())
        finally:
            con.close()
    except sqlite3.Error:
        return {}


def _proc_table() -> dict[int, tuple[int, str, str]]:
    """{pid: (ppid, state, starttime)} of every process, from /proc."""
    table = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        rest = stat[stat.rindex(")") + 2:].split()
        table[int(d.name)] = (int(rest[1]), rest[0], rest[19])
    return table


def _descendants(pid: int) -> dict[int, str]:
    """{pid: starttime} of the processes under `pid`."""
    table = _proc_table()
    found: dict[int, str] = {}
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        for p, (ppid, _state, start) in table.items():
            if ppid == parent and p not in found:
                found[p] = start
                frontier.append(p)
    return found


def _alive(procs: dict[int, str]) -> list[int]:
    table = _proc_table()
    return [p for p, start in procs.items() if p in table and table[p][2] == start and table[p][1] != "Z"]


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("sig, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)],
                         ids=["SIGINT", "SIGTERM"])
def test_a_stopped_search_exits_cleanly(sig, status, workers, tmp_path):
    db = tmp_path / "stop.db"
    argv = [NAS, "search", CONV, "--dataset", "digits", "--budget", "50", "--epochs", "30", "--db", str(db),
            "--study", "stop", "--workers", str(workers)]
    out, err = (tmp_path / "stdout").open("w"), (tmp_path / "stderr").open("w")
    p = subprocess.Popen(argv, cwd=tmp_path, stdout=out, stderr=err, env=ENV, start_new_session=True)
    children: dict[int, str] = {}
    try:
        deadline = time.monotonic() + 120
        while True:
            assert p.poll() is None, f"the search ended ({p.returncode}) before it could be stopped"
            assert time.monotonic() < deadline, "no trial started within 120 s"
            children.update(_descendants(p.pid))
            states = _trial_states(db)
            if states.get("RUNNING", 0) + states.get("COMPLETE", 0) >= 1:
                break
            time.sleep(0.2)
        time.sleep(1.0)
        children.update(_descendants(p.pid))
        os.kill(p.pid, sig)
        try:
            code = p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{sig.name}: the search was still running 60 s later")
        deadline = time.monotonic() + 5  # its workers get a few seconds to go
        while _alive(children) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = _alive(children)
    finally:
        out.close()
        err.close()
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        for pid in _alive(children):  # nothing of this test outlives it
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    stderr = (tmp_path / "stderr").read_text()
    stdout = (tmp_path / "stdout").read_text()
    where = (f"\n$ {_cmdline(argv)}\n{sig.name} -> exit {code}\nstdout: {stdout[-1000:]!r}"
             f"\nstderr: {stderr[-2000:]!r}")
    assert code == status, "exit status" + where
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].strip(), "stderr is not exactly one non-empty line" + where
    assert "Traceback" not in stderr and "Traceback" not in stdout, "a traceback" + where
    states = _trial_states(db)
    assert states, "no trials in the database" + where
    assert states.get("RUNNING", 0) == 0, f"trials left RUNNING: {states}" + where
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        assert con.execute("pragma integrity_check").fetchone()[0] == "ok"
    finally:
        con.close()
    if workers > 1:
        assert children, "no worker processes seen" + where
    assert not left, f"processes still alive 5 s after the search ended: {left}" + where
