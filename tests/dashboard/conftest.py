"""The dashboard tests' database (filled once per session by real searches) and an AppTest runner."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

try:
    from tests.dashboard.fill import fill
except ModuleNotFoundError:  # a bare `pytest` run from tests/
    from nas.dashboard.fill import fill  # type: ignore[no-redef]

APP = Path(__file__).resolve().parents[2] / "nas" / "dashboard" / "app.py"


@pytest.fixture(scope="session")
def dashboard_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Return the path of a SQLite database filled by fill() (random, MCTS, NB201, hand-written)."""
    path = tmp_path_factory.mktemp("dashboard") / "results.db"
    fill(str(path))
    return str(path)


@pytest.fixture
def open_page(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., AppTest]]:
    """Yield open_page(db, page, flags=(), **query) -> the AppTest after running that page of the app."""

    def run(db: str, page: str = "views/studies.py", *, flags: tuple[str, ...] = (), **query: str) -> AppTest:
        # The app reads --db (and --trust-spaces) after `--`, as `nas dashboard` passes them.
        monkeypatch.setattr(sys, "argv", ["streamlit", "--", "--db", db, *flags])
        at = AppTest.from_file(str(APP), default_timeout=120)
        at.switch_page(page)
        for key, value in query.items():
            at.query_params[key] = value
        return at.run()

    yield run

