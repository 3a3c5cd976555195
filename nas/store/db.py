"""Engines, schema checks and migrations: everything that happens before the first query.

A database is one of: new (no tables) -> migrated on first use; current -> used as is; at an
older nas revision -> refused until `nas db upgrade`; newer than this nas, foreign (tables but no
nas schema), or not a database at all -> refused with a one-line StoreError saying what to do.
"""

from __future__ import annotations

import os
import random
import sqlite3
import time
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

from nas.errors import StoreError
from nas.store.codec import dumps
from nas.store.schema import SCHEMA_REVISION, VERSION_TABLE

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")
# The pip package of a missing database driver module, for the error that names it.
DRIVER_PACKAGES = {"MySQLdb": "mysqlclient", "pymysql": "pymysql", "psycopg2": "psycopg2-binary",
                   "psycopg": "psycopg[binary]", "pg8000": "pg8000", "cx_Oracle": "oracledb",
                   "pyodbc": "pyodbc"}
BUSY_TIMEOUT_S = 30.0
# Key of the PostgreSQL advisory lock that serializes concurrent first-use migrations.
_PG_MIGRATION_LOCK = 0x6E6173  # "nas"
# Execution option that makes a SQLite transaction take the write lock when it begins.
WRITE = "nas_write"
# Engines of this process. A forked child (multiprocessing's default on Linux) must not use
# the connections it inherited, which belong to the parent: it drops them from its pools and
# opens its own. This is the one piece of module state, and it only holds weak references.
_ENGINES: weakref.WeakSet[Engine] = weakref.WeakSet()


def _forget_inherited_connections() -> None:
    for engine in list(_ENGINES):
        engine.dispose(close=False)


os.register_at_fork(after_in_child=_forget_inherited_connections)


def normalize_url(url: str | os.PathLike[str]) -> str:
    """Return an SQLAlchemy URL; a plain path `foo.db` becomes `sqlite:///foo.db`."""
    text = os.fspath(url)
    if not text:
        raise StoreError("empty database URL: pass a path like nas.db or a URL like sqlite:///nas.db")
    return text if "://" in text else f"sqlite:///{text}"


def shown(url: str) -> str:
    """Return the URL as it may appear in messages: a SQLite file's path, or the password hidden."""
    try:
        path = sqlite_path(url)
        return str(path) if path is not None else sa.make_url(url).render_as_string(
            hide_password=True
        )
    except ArgumentError:
        return url


def sqlite_path(url: str) -> Path | None:
    """Return the file of a SQLite URL, or None for other backends and in-memory databases."""
    u = sa.make_url(url)
    if u.get_backend_name() != "sqlite" or u.database in (None, "", ":memory:"):
        return None
    return Path(u.database)


# Alembic is imported only where a schema is created, moved or diagnosed: opening a current
# database (every worker, the dashboard, each CLI call) then skips half a second of imports.
def alembic_config() -> Config:
    """Return an Alembic Config pointing at the migrations inside the package (no alembic.ini)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision() -> str:
    """Return the newest schema revision this version of nas knows (tests check the scripts)."""
    return SCHEMA_REVISION


def _known_revision(rev: str) -> bool:
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    try:
        ScriptDirectory.from_config(alembic_config()).get_revision(rev)
    except CommandError:
        return False
    return True


def make_engine(url: str, *, readonly: bool = False) -> Engine:
    """Return an engine for `url`; SQLite gets WAL, a 30 s busy timeout and foreign keys."""
    try:
        u = sa.make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"cannot parse database URL {url!r}: {exc}") from exc
    kwargs: dict[str, Any] = {"json_serializer": dumps}
    try:
        if u.get_backend_name() == "sqlite":
            engine = _sqlite_engine(url, readonly, kwargs)
        else:
            if readonly and u.get_backend_name() == "postgresql":
                kwargs["execution_options"] = {"postgresql_readonly": True}
            engine = sa.create_engine(url, pool_pre_ping=True, **kwargs)
    except (NoSuchModuleError, ArgumentError) as exc:
        raise StoreError(
            f"cannot use database URL {shown(url)}: {exc}; "
            "use a path (nas.db), sqlite:///path or postgresql+psycopg://user@host/db"
        ) from exc
    except ImportError as exc:  # the URL's driver is not installed
        driver = exc.name or str(exc)
        raise StoreError(
            f"database URL {shown(url)} needs the Python driver {driver!r}, which is not installed: "
            f"pip install the package that provides it (e.g. {DRIVER_PACKAGES.get(driver, driver)}), "
            "or use postgresql+psycopg://user@host/db, which nas installs"
        ) from exc
    _ENGINES.add(engine)
    return engine


def _sqlite_engine(url: str, readonly: bool, kwargs: dict[str, Any]) -> Engine:
    path = sqlite_path(url)
    if readonly and path is not None:
        if not path.is_file():
            raise StoreError(
                f"no database at {path}: nothing to read; check --db or run a search first"
            )
        uri = f"{path.absolute().as_uri()}?mode=ro{_immutable(path)}"
        kwargs["creator"] = lambda: sqlite3.connect(
            uri, uri=True, timeout=BUSY_TIMEOUT_S, check_same_thread=False
        )
    else:
        kwargs["connect_args"] = {"timeout": BUSY_TIMEOUT_S}
    engine = sa.create_engine(url, **kwargs)

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself (below), so that writers can take the lock up front.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        cur.execute("PRAGMA foreign_keys = ON")
        if not readonly:
            # WAL lets readers (the dashboard) run while a search writes. NORMAL sync is safe
            # against a killed process; only a power cut can lose the last commits.
            _set_wal(cur)
            cur.execute("PRAGMA synchronous = NORMAL")
        cur.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A deferred transaction that reads and then writes can fail at once with SQLITE_BUSY
        # when another process wrote in between; BEGIN IMMEDIATE waits for the lock instead.
        immediate = conn.get_execution_options().get(WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _immutable(path: Path) -> str:
    """Return the URI flag that reads a database in a folder this user cannot write, or ''.

    Even a read-only WAL reader must create the `-shm` file beside the database; where it cannot,
    SQLite may read the file as immutable, which is exact only when no commit waits in the `-wal`.
    """
    if os.access(path.parent, os.W_OK):
        return ""
    wal = path.with_name(path.name + "-wal")
    if wal.is_file() and wal.stat().st_size > 0:
        raise StoreError(f"{path} is in a folder you cannot write and its last commits are still in "
                         f"{wal.name}: copy the folder somewhere writable to read it")
    return "&immutable=1"


def explain(url: str, exc: DBAPIError) -> StoreError:
    """Return a one-line StoreError for a failure to open or read `url`."""
    reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
    path = sqlite_path(url)
    if path is not None and "not a database" in reason:
        return StoreError(
            f"{path} is not an SQLite database ({reason}): pass a nas database or a new file "
            "with --db, or move that file away"
        )
    if path is not None and "unable to open" in reason:
        return StoreError(
            f"cannot open {path} ({reason}): check that its folder exists and is writable"
        )
    return StoreError(f"cannot use database {shown(url)}: {reason}")


def _state(conn: Connection) -> tuple[str, Any]:
    """Return (kind, detail): empty, current, old, newer (unknown revision) or foreign."""
    names = sorted(sa.inspect(conn).get_table_names())
    if not names:
        return "empty", None
    if VERSION_TABLE not in names:
        return "foreign", names
    revs = conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    rev = revs[0] if len(revs) == 1 else None
    if rev == head_revision():
        return "current", rev
    if rev is not None and not _known_revision(rev):
        return "newer", rev
    return "old", rev


def refusal(url: str, kind: str, detail: Any) -> StoreError:
    """Return the StoreError for a database that cannot be used as it is."""
    where, head = shown(url), head_revision()
    if kind == "foreign":
        listed = ", ".join(detail[:6]) + (", ..." if len(detail) > 6 else "")
        return StoreError(
            f"{where} belongs to another application (tables: {listed}) and has no nas schema: "
            "pass a new file or an empty database with --db"
        )
    if kind == "old":
        return StoreError(
            f"{where} holds nas results at schema revision {detail or 'base'}, but this nas "
            f"needs revision {head}: run `nas db upgrade --db {where}` (back it up first)"
        )
    if kind == "newer":
        return StoreError(
            f"{where} was written by a newer nas (schema revision {detail}, unknown here; this "
            f"nas knows up to {head}): upgrade nas, or use another --db"
        )
    return StoreError(f"{where} is an empty database: nothing to read; run a search first")


def migrate(engine: Engine, url: str, *, only_new: bool) -> str:
    """Bring the database to head under the write lock and return the revision.

    With only_new, a database another process migrated meanwhile is accepted as it is, and one
    at an older revision is refused (only `upgrade` moves existing results).
    """
    with engine.connect() as conn:
        conn.execution_options(**{WRITE: True})
        with conn.begin():
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
            kind, detail = _state(conn)
            if kind == "current":
                return detail
            if kind in ("foreign", "newer") or (kind == "old" and only_new):
                raise refusal(url, kind, detail)
            from alembic import command

            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    return head_revision()


def upgrade(url: str | os.PathLike[str]) -> str:
    """Migrate the database at `url` to the newest schema (creating it if new); return the revision."""
    url = normalize_url(url)
    engine = make_engine(url)
    try:
        return migrate(engine, url, only_new=False)
    except DBAPIError as exc:
        raise explain(url, exc) from exc
    finally:
        engine.dispose()


def _set_wal(cur: sqlite3.Cursor) -> None:
    """Switch a SQLite file to WAL, waiting while another process holds the lock.

    Changing the journal mode answers SQLITE_BUSY at once, without the busy handler, while a
    second process is creating the schema of the same new file; so wait and retry here.
    """
    if str(cur.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
        return
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            cur.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02 + random.random() * 0.05)


def open_engine(url: str, *, readonly: bool) -> Engine:
    """Return an engine on a database at the current revision, migrating a new one first."""
    engine = make_engine(url, readonly=readonly)
    try:
        with engine.connect() as conn:
            kind, detail = _state(conn)
        if kind == "empty" and not readonly:
            migrate(engine, url, only_new=True)
        elif kind != "current":
            raise refusal(url, kind, detail)
    except DBAPIError as exc:
        engine.dispose()
        raise explain(url, exc) from exc
    except StoreError:
        engine.dispose()
        raise
    return engine
