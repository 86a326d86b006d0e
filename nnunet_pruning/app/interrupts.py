"""Ctrl-C and SIGTERM end a command of ours the same way: one line, exit 130 / 143, every finished step kept.

SIGTERM is turned into an exception where the process is (as Python does with SIGINT), so running nnU-Net
commands are stopped (``app/workspace.py``) and files are closed, exactly as for Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading

__all__ = ["Terminated", "INTERRUPTED_EXIT", "interrupted_message", "sigterm_as_interrupt", "report_interrupt"]

#: exit statuses of an interrupted command, as a shell reports a process killed by the signal
INTERRUPTED_EXIT = {"SIGINT": 130, "SIGTERM": 143}


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process is."""


_OWNER: list[int] = []


def _raise_terminated(signum, frame):
    if _OWNER and os.getpid() != _OWNER[-1]:  # a forked worker (nnU-Net's pools end theirs with SIGTERM): die quietly
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)
        return
    raise Terminated()


def _default_sigterm_in_child() -> None:
    """Right after a fork inside a command: SIGTERM back to the kernel's default, so the worker dies on it even when
    it never returns to Python (a fork of a process with threads can block on a lock forever)."""
    if _OWNER:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


os.register_at_fork(after_in_child=_default_sigterm_in_child)


@contextlib.contextmanager
def sigterm_as_interrupt():
    """While active (in the main thread), SIGTERM raises :class:`Terminated` in this process; a process forked
    meanwhile (a worker of nnU-Net's predictor) ends on SIGTERM as it would without us."""
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if main else None
    _OWNER.append(os.getpid())
    try:
        yield
    finally:
        _OWNER.pop()
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
