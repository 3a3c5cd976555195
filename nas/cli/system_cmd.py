"""Plumbing: `nas db upgrade` and `nas dashboard`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from nas.cli.common import DB_HELP, console
from nas.errors import NasError
from nas.store import Store, upgrade

db_app = typer.Typer(help="Manage the results database.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
    app.command("dashboard", help="Open the results dashboard (Streamlit, read-only).\n\n"
                                  "Example: nas dashboard --db nas.db --port 8501")(dashboard)


@db_app.command("upgrade",
                help="Migrate a database to the current schema.\n\nExample: nas db upgrade --db nas.db")
def db_upgrade(db: Annotated[str, typer.Option(help=DB_HELP)] = "nas.db") -> None:
    rev = upgrade(db)
    console.print(f"{db}: schema at revision {rev}")


def dashboard(db: Annotated[str, typer.Option(help=DB_HELP)] = "nas.db",
              port: Annotated[int, typer.Option(help="port to serve on")] = 8501,
              host: Annotated[str, typer.Option(help="address to bind (default: this machine only)")
                              ] = "127.0.0.1",
              ) -> None:
    Store.open(db, readonly=True).close()  # a clear error now rather than a traceback in the browser
    app = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"
    if not app.is_file():
        raise NasError(f"the dashboard app is missing ({app}); reinstall nas")
    console.print(f"dashboard on http://{host}:{port} over {db} (Ctrl-C to stop)")
    cmd = [sys.executable, "-m", "streamlit", "run", str(app), "--server.port", str(port),
           "--server.address", host, "--server.headless", "true", "--browser.gatherUsageStats", "false",
           "--", "--db", db]
    raise typer.Exit(subprocess.call(cmd))
