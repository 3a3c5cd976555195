"""A throw-away PostgreSQL server for the tests, and a `store_url` fixture over both backends.

`postgres_url` (session scope) runs initdb + pg_ctl in a temporary folder (as the unprivileged
user `nasci` when running as root, since initdb refuses root) and yields a URL to it. Without the
server binaries the PostgreSQL tests are skipped, except in CI (`CI` set), where they fail.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_USER = "nasci"


def _pg_bin() -> Path | None:
    """Return the folder holding initdb and pg_ctl, or None if there is none."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(f"{folder}/initdb") and os.path.exists(f"{folder}/pg_ctl"):
            return Path(folder)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_server_user(args: list[str]) -> list[str]:
    """Return `args` wrapped to run as `nasci` when we are root (creating the user if needed)."""
    if os.geteuid() != 0:
        return args
    if subprocess.run(["id", PG_USER], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "-m", PG_USER], check=True, capture_output=True)
    return ["runuser", "-u", PG_USER, "--", *args]


def _run(args: list[str], what: str) -> None:
    done = subprocess.run(_as_server_user(args), capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed ({done.returncode}): {done.stderr or done.stdout}")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """Yield the URL of a fresh PostgreSQL server (database `postgres`, user `postgres`)."""
    folder = _pg_bin()
    if folder is None:
        reason = "PostgreSQL server binaries (initdb, pg_ctl) not found on PATH or /usr/lib/postgresql"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must run the PostgreSQL tests (apt-get install postgresql)")
        pytest.skip(reason)
    tmp = Path(tempfile.mkdtemp(prefix="nas-pg-"))
    if os.geteuid() == 0:
        _as_server_user(["true"])  # make sure the user exists before chown
        shutil.chown(tmp, PG_USER)
    data, port = tmp / "data", _free_port()
    _run([f"{folder}/initdb", "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
          "--no-sync"], "initdb")
    # Durability is pointless for a throw-away server; these settings make the tests faster.
    opts = (f"-p {port} -k {tmp} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=60")
    ctl = f"{folder}/pg_ctl"
    _run([ctl, "-D", str(data), "-o", opts, "-l", str(tmp / "log"), "-w", "-t", "60", "start"],
         "pg_ctl start")
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(_as_server_user([ctl, "-D", str(data), "stop", "-m", "immediate"]),
                       capture_output=True, timeout=60)
        shutil.rmtree(tmp, ignore_errors=True)


def _dsn(server_url: str) -> str:
    return server_url.replace("postgresql+psycopg://", "postgresql://")


def fresh_postgres_schema(server_url: str) -> tuple[str, str]:
    """Create an empty schema on the server; return (a URL whose default schema it is, its name).

    A schema per test instead of a database: CREATE DATABASE takes seconds here, this ~20 ms.
    """
    import psycopg

    name = f"nas_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_dsn(server_url), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    return f"{server_url}?options=-csearch_path%3D{name}", name


def drop_postgres_schema(server_url: str, name: str) -> None:
    """Drop a schema made by fresh_postgres_schema with everything in it."""
    import psycopg

    with psycopg.connect(_dsn(server_url), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Yield the URL of a new, empty database: a SQLite file, then a PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'nas.db'}"
        return
    server = request.getfixturevalue("postgres_url")
    url, name = fresh_postgres_schema(server)
    try:
        yield url
    finally:
        drop_postgres_schema(server, name)
