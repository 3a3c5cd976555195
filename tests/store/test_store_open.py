"""Opening databases: new, current, old, newer, foreign and garbage; and the migrations."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from nas.errors import StoreError
from nas.store import Store, upgrade
from nas.store.db import alembic_config, make_engine
from nas.store.schema import SCHEMA_REVISION, TABLES, VERSION_TABLE, Base


def _migrate_to(url: str, revision: str) -> None:
    """Put the database at `revision`, as an older nas would have left it."""
    engine = make_engine(url)
    with engine.begin() as conn:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    engine.dispose()


def _execute(url: str, *statements: str) -> None:
    engine = make_engine(url)
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(sa.text(statement))
    engine.dispose()


def test_schema_revision_is_the_migration_head() -> None:
    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == SCHEMA_REVISION


def test_new_database_gets_the_schema_that_models_declare(store_url: str) -> None:
    Store.open(store_url).close()
    engine = make_engine(store_url)
    with engine.connect() as conn:
        assert set(TABLES) | {VERSION_TABLE} <= set(sa.inspect(conn).get_table_names())
        opts = {"compare_type": True, "version_table": VERSION_TABLE}
        ctx = MigrationContext.configure(conn, opts=opts)
        assert compare_metadata(ctx, Base.metadata) == []
    engine.dispose()
    assert upgrade(store_url) == SCHEMA_REVISION  # idempotent on a current database


def test_old_database_needs_upgrade_and_keeps_its_results(store_url: str) -> None:
    _migrate_to(store_url, "0001")
    _execute(
        store_url,
        "INSERT INTO studies (name, space_ref, space_fingerprint, space_description, searcher, "
        "searcher_settings, objectives, constraints, evaluator, seed, budget, created_at, "
        "user_attrs) VALUES ('old', 'm:s', 'fp', '{}', 'random', '{}', '[\"accuracy:max\"]', "
        "'[]', '{}', 1, 5, '2026-01-01 00:00:00', '{}')",
    )
    with pytest.raises(StoreError, match=r"revision 0001.*needs revision 0002.*nas db upgrade"):
        Store.open(store_url)
    with pytest.raises(StoreError, match="nas db upgrade"):
        Store.open(store_url, readonly=True)
    assert upgrade(store_url) == SCHEMA_REVISION
    with Store.open(store_url) as store:
        assert store.get_study("old").objectives == ["accuracy:max"]
        store.put_weights("fp", "a", "k", b"w")  # a table added by 0002


def test_newer_database_is_refused(store_url: str) -> None:
    Store.open(store_url).close()
    _execute(store_url, f"UPDATE {VERSION_TABLE} SET version_num = 'f00d'")
    with pytest.raises(StoreError, match="newer nas.*f00d.*upgrade nas"):
        Store.open(store_url)
    with pytest.raises(StoreError, match="newer nas"):
        upgrade(store_url)


def test_foreign_database_is_refused(store_url: str) -> None:
    _execute(store_url, "CREATE TABLE users (id INTEGER PRIMARY KEY)",
             "CREATE TABLE orders (id INTEGER PRIMARY KEY)")
    for attempt in (lambda: Store.open(store_url), lambda: upgrade(store_url)):
        with pytest.raises(StoreError, match=r"another application \(tables: orders, users\)"):
            attempt()
    engine = make_engine(store_url)  # and nothing was added to it
    assert sorted(sa.inspect(engine).get_table_names()) == ["orders", "users"]
    engine.dispose()


def test_readonly_on_an_empty_database_is_refused(store_url: str) -> None:
    with pytest.raises(StoreError, match="nothing to read"):
        Store.open(store_url, readonly=True)


def test_garbage_file(tmp_path: Path) -> None:
    bad = tmp_path / "results.db"
    bad.write_bytes(b"this is a CSV, not a database\n" * 200)
    for readonly in (False, True):
        with pytest.raises(StoreError, match=f"{bad} is not an SQLite database") as info:
            Store.open(bad, readonly=readonly)
        assert "\n" not in str(info.value)
    with pytest.raises(StoreError, match="not an SQLite database"):
        upgrade(str(bad))
    assert bad.read_bytes().startswith(b"this is a CSV")


def test_readonly_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.db"
    with pytest.raises(StoreError, match=f"no database at {missing}"):
        Store.open(str(missing), readonly=True)
    assert not missing.exists()


def test_paths_mean_sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with Store.open("plain.db") as store:
        assert store.url == "sqlite:///plain.db"
    assert (tmp_path / "plain.db").is_file()
    assert upgrade("fresh.db") == SCHEMA_REVISION and (tmp_path / "fresh.db").is_file()
    with pytest.raises(StoreError, match="folder exists"):
        Store.open(str(tmp_path / "no" / "such" / "dir.db"))
    with pytest.raises(StoreError, match="cannot use database URL"):
        Store.open("nosuchdialect://x/y")


def test_sqlite_settings(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.db") as store:
        with store._engine.connect() as conn:  # noqa: SLF001  (the settings are the point)
            pragma = {p: conn.exec_driver_sql(f"PRAGMA {p}").scalar()
                      for p in ("journal_mode", "busy_timeout", "foreign_keys")}
    assert pragma == {"journal_mode": "wal", "busy_timeout": 30000, "foreign_keys": 1}
