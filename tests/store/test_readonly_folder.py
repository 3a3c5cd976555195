"""A database on a read-only folder (a shared read-only mount) can still be read.

A reader of a WAL database must create the `-shm` file beside it, which a read-only folder
forbids; nas then opens the file as immutable, or says why it cannot. The folder is a real
read-only tmpfs mount (root may write anywhere else, but not there).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from nas.store import Store, StudySpec

NAS = str(Path(sys.executable).with_name("nas"))


def _mount(folder: Path, *options: str) -> bool:
    return subprocess.run(["mount", *options, str(folder)], capture_output=True).returncode == 0


@pytest.fixture
def mount_point():
    folder = Path(tempfile.mkdtemp(prefix="nas-ro-"))
    if os.geteuid() != 0 or not _mount(folder, "-t", "tmpfs", "-o", "size=16m", "tmpfs"):
        folder.rmdir()
        pytest.skip("cannot mount a tmpfs here (needs root in a namespace that allows it)")
    yield folder
    subprocess.run(["umount", str(folder)], capture_output=True)
    folder.rmdir()


def _study(db: Path) -> None:
    with Store.open(str(db)) as store:
        store.create_study(StudySpec(name="shared", space_ref="", space_fingerprint="fp",
                                     space_description={}, searcher="random", searcher_settings={},
                                     objectives=["accuracy:max"], constraints=[], evaluator={}, seed=0,
                                     budget=1))


def _studies(db: Path) -> subprocess.CompletedProcess:
    return subprocess.run([NAS, "studies", "--db", str(db), "--format", "json"], capture_output=True,
                          text=True, timeout=120)


def test_a_wal_database_on_a_read_only_folder_is_read(mount_point):
    db = mount_point / "team.db"
    _study(db)
    assert not Path(f"{db}-shm").exists() or Path(f"{db}-wal").stat().st_size == 0
    Path(f"{db}-shm").unlink(missing_ok=True)  # as a checkpointed database arrives: the file alone
    assert _mount(mount_point, "-o", "remount,ro")
    proc = _studies(db)
    assert proc.returncode == 0, proc.stderr
    assert '"shared"' in proc.stdout


def test_uncheckpointed_commits_on_a_read_only_folder_are_a_clear_error(mount_point):
    db = mount_point / "team.db"
    _study(db)
    Path(f"{db}-wal").write_bytes(b"\0" * 64)  # commits that an immutable reader would not see
    assert _mount(mount_point, "-o", "remount,ro")
    proc = _studies(db)
    assert proc.returncode == 2 and "copy the folder somewhere writable" in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
