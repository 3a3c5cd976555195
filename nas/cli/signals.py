"""Stopping on a signal: Ctrl-C (SIGINT) and SIGTERM end a command cleanly, with 130 and 143.

SIGTERM is turned into an exception in the main thread, so the search loop's own clean-up runs
(running trials are marked, worker processes are stopped) exactly as it does for Ctrl-C.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator

INTERRUPTED_STATUS = 128 + signal.SIGINT  # 130, as a shell reports Ctrl-C
INTERRUPTED = ("interrupted: completed trials are saved and running ones marked; a search continues "
               "with the same command and --resume")


class Stopped(BaseException):
    """SIGTERM arrived. A BaseException, so that no `except Exception` in user code swallows it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.status = 128 + signum
        self.message = INTERRUPTED.replace("interrupted", f"stopped by {signal.Signals(signum).name}", 1)


@contextlib.contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """Raise `Stopped` in the main thread when SIGTERM arrives, for the duration of the block."""
    def stop(signum: int, frame: object) -> None:
        raise Stopped(signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
