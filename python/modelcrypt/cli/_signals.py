"""SIGTERM and SIGHUP (kill, docker stop, systemd, a closed terminal) end a command the way Ctrl-C
does: the operation is cancelled where it stands, its temporary output removed, and the previous
destination left as it was. The handler raises Terminated, a KeyboardInterrupt, so every cleanup
path that handles Ctrl-C (the core cancels at its next progress check, Python's BaseException
handlers remove temporary trees) handles these too."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


class Terminated(KeyboardInterrupt):
    """The command was asked to stop by a signal other than SIGINT."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name


def _stop(signum: int, frame) -> None:
    for sig in SIGNALS:  # a second signal must not interrupt the cleanup the first one started
        signal.signal(sig, signal.SIG_IGN)
    raise Terminated(signum)


@contextlib.contextmanager
def signals_cancel() -> Iterator[None]:
    """While the block runs, SIGTERM/SIGHUP raise Terminated; the previous handlers come back after.
    Outside the main thread (the CLI's main() called from a worker thread) nothing is installed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in SIGNALS}
    ignored = {sig for sig, handler in previous.items() if handler is signal.SIG_IGN}  # e.g. under nohup
    for sig in SIGNALS:
        if sig not in ignored:
            signal.signal(sig, _stop)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
