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
    """A stop signal arrived. A BaseException, so that no `except Exception` in user code swallows it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
        self.status = 128 + signum
        self.message = INTERRUPTED.replace("interrupted", f"stopped by {signal.Signals(signum).name}", 1)


def _raise_stopped(signum: int, frame: object) -> None:
    raise Stopped(signum)


@contextlib.contextmanager
def handling(signums: tuple[int, ...], handler: object) -> Iterator[None]:
    """Give `signums` to `handler` (a function, or signal.SIG_IGN) for the block; restore them after."""
    previous = {s: signal.signal(s, handler) for s in signums}
    try:
        yield
    finally:
        for s, old in previous.items():
            signal.signal(s, old)


def stop_on(*signums: int) -> contextlib.AbstractContextManager[None]:
    """Raise `Stopped` in the main thread when one of `signums` arrives, for the block."""
    return handling(signums, _raise_stopped)
