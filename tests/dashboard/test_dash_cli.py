"""`nas dashboard` through its installed entry point: a signal stops the Streamlit server it started.

A service manager or a shell script stops the dashboard with `kill -TERM PID` on the `nas` process
alone; the server is a child process and must not outlive it holding the port.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from nas.store import Store

NAS = Path(sys.executable).parent / "nas"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serving(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
            return r.read() == b"ok"
    except OSError:
        return False


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_to_nas_dashboard_stops_its_server_and_frees_the_port(tmp_path, signum, status):
    if not NAS.exists():
        pytest.skip(f"the nas entry point is not installed beside {sys.executable}")
    db = str(tmp_path / "results.db")
    Store.open(db).close()
    port = _free_port()
    # Its own session: the signal goes to the `nas` process only, as `kill -TERM PID` does.
    proc = subprocess.Popen([str(NAS), "dashboard", "--db", db, "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while not _serving(port):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, f"nas dashboard did not come up on port {port}"
            time.sleep(0.3)
        os.kill(proc.pid, signum)
        started = time.monotonic()
        _, err = proc.communicate(timeout=15)
        assert proc.returncode == status, err
        assert time.monotonic() - started < 10
        assert not _serving(port)
        with socket.socket() as s:  # the port can be served again
            # SO_REUSEADDR, as servers set it: it passes over our health checks' TIME_WAITs, not a listener
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", port))
            s.listen()
        assert not _group_alive(proc.pid)  # the Streamlit child is gone too
        lines = err.decode().strip().splitlines()
        assert lines and signal.Signals(signum).name in lines[-1] and "dashboard" in lines[-1]
    finally:
        if _group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
