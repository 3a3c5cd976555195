"""Plumbing: `nas db upgrade` and `nas dashboard`."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from nas.cli.common import DB_HELP, console, open_store
from nas.cli.signals import Stopped, handling, stop_on
from nas.errors import NasError

db_app = typer.Typer(help="Manage the results database.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
    app.command("dashboard", help="Open the results dashboard (Streamlit, read-only). It runs no code "
                                  "that the database names unless given --trust-spaces.\n\n"
                                  "Example: nas dashboard --db nas.db --port 8501")(dashboard)


@db_app.command("upgrade",
                help="Migrate a database to the current schema.\n\nExample: nas db upgrade --db nas.db")
def db_upgrade(db: Annotated[str, typer.Option(help=DB_HELP)] = "nas.db") -> None:
    from nas.store import upgrade  # SQLAlchemy and Alembic load only when a command uses them

    rev = upgrade(db)
    console.print(f"{db}: schema at revision {rev}")


TRUST_SPACES_HELP = ("import and run the space code that the database names, to offer TorchScript/ONNX "
                     "downloads; only for databases you trust")
STOP_GRACE_S = 10.0  # Streamlit stops within a second of a signal; after this it is killed


def serve(cmd: list[str]) -> int:
    """Run the server command until it exits or SIGTERM/SIGINT stops it; return the exit status.

    A signal is passed on to the server and waited for, so stopping `nas dashboard` frees the port
    (the server is a child process: it would otherwise outlive us and keep serving).
    """
    stops = (signal.SIGTERM, signal.SIGINT)
    proc: subprocess.Popen | None = None
    try:
        with stop_on(*stops):
            proc = subprocess.Popen(cmd)
            return proc.wait()
    except Stopped as stop:
        with handling(stops, signal.SIG_IGN):  # a second Ctrl-C must not cut the shutdown short
            if proc is not None:
                proc.send_signal(stop.signum)
                try:
                    proc.wait(timeout=STOP_GRACE_S)
                except subprocess.TimeoutExpired:
                    proc.kill()
        name = signal.Signals(stop.signum).name
        print(f"nas dashboard: stopped by {name}; the Streamlit server is shut down", file=sys.stderr)
        return stop.status
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()


def dashboard(db: Annotated[str, typer.Option(help=DB_HELP)] = "nas.db",
              port: Annotated[int, typer.Option(min=1, max=65535, help="port to serve on")] = 8501,
              host: Annotated[str, typer.Option(help="address to bind (default: this machine only)")
                              ] = "127.0.0.1",
              trust_spaces: Annotated[bool, typer.Option("--trust-spaces", "--trust-db",
                                                         help=TRUST_SPACES_HELP)] = False,
              ) -> None:
    open_store(db, readonly=True).close()  # a clear error now rather than a traceback in the browser
    app = Path(__file__).resolve().parents[1] / "dashboard" / "app.py"
    if not app.is_file():
        raise NasError(f"the dashboard app is missing ({app}); reinstall nas")
    console.print(f"dashboard on http://{host}:{port} over {db} (Ctrl-C to stop)")
    cmd = [sys.executable, "-m", "streamlit", "run", str(app), "--server.port", str(port),
           "--server.address", host, "--server.headless", "true", "--browser.gatherUsageStats", "false",
           "--", "--db", db, *(["--trust-spaces"] if trust_spaces else [])]
    # SystemExit, not typer.Exit: the status (143 for SIGTERM, 130 for Ctrl-C, else the server's)
    # must reach the shell, and `nas.cli.main` runs typer in non-standalone mode.
    raise SystemExit(serve(cmd))
