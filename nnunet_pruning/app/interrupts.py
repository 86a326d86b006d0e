"""Ctrl-C and SIGTERM end a command of ours the same way: one line, exit 130 / 143, every finished step kept.

SIGTERM is turned into an exception where the process is (as Python does with SIGINT), so running nnU-Net
commands are stopped (``app/workspace.py``) and files are closed, exactly as for Ctrl-C.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading

__all__ = ["Terminated", "INTERRUPTED_EXIT", "interrupted_message", "sigterm_as_interrupt", "report_interrupt"]

#: exit statuses of an interrupted command, as a shell reports a process killed by the signal
INTERRUPTED_EXIT = {"SIGINT": 130, "SIGTERM": 143}


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process is."""


def _raise_terminated(signum, frame):
    raise Terminated()


@contextlib.contextmanager
def sigterm_as_interrupt():
    """While active (in the main thread), SIGTERM raises :class:`Terminated`."""
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if main else None
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def interrupted_message(name: str) -> str:
    return (f"nnunet-pruning: interrupted ({name}): every finished step is kept; rerun the same command to go on "
            f"from where it stopped")


def report_interrupt(error: KeyboardInterrupt) -> int:
    """Print the one line for an interruption; return its exit status."""
    name = "SIGTERM" if isinstance(error, Terminated) else "SIGINT"
    print(interrupted_message(name), file=sys.stderr, flush=True)
    return INTERRUPTED_EXIT[name]
