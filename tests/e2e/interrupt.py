"""Kill a long command at a point of its progress, as a user or a crash would, and run it again until it ends.

A point is the first output line that matches a pattern, plus a delay. SIGINT goes to the command's whole
process group, as Ctrl-C in a terminal does (nnU-Net's commands get it too); SIGKILL to the whole group is a
crash. Every attempt is recorded, so a test can assert the one line and exit status of each and the results
of the run that finally ends.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field

#: what an interrupted ``nnunet-pruning`` command prints last on stderr
INTERRUPTED_LINE = re.compile(r"^nnunet-pruning: interrupted \(SIGINT\): every finished step is kept; rerun the same "
                              r"command to go on from where it stopped$")


@dataclass
class Attempt:
    point: str
    sig: int | None
    hit: bool = False
    returncode: int | None = None
    stdout: str = ""
    stderr: str = ""


@dataclass
class Interruptions:
    """The attempts of one command: each point of ``points`` once, with its signal, then one run to the end."""

    attempts: list[Attempt] = field(default_factory=list)

    @property
    def final(self) -> Attempt:
        return self.attempts[-1]

    def problems(self) -> list[str]:
        """Every attempt that did not end as it must (empty: the table row passes)."""
        found = []
        for a in self.attempts[:-1]:
            what = f"{signal.Signals(a.sig).name} at {a.point!r}"
            if not a.hit:
                found.append(f"{what}: the point never came (exit {a.returncode})")
            elif a.sig == signal.SIGINT:
                last = a.stderr.strip().splitlines()[-1:] or [""]
                if a.returncode != 130 or not INTERRUPTED_LINE.match(last[0]) or "Traceback" in a.stderr:
                    found.append(f"{what}: exit {a.returncode}, stderr ends {a.stderr[-600:]!r}")
            elif a.returncode != -signal.SIGKILL:
                found.append(f"{what}: exit {a.returncode}")
        if self.final.returncode != 0:
            found.append(f"the final run: exit {self.final.returncode}: {(self.final.stdout + self.final.stderr)[-2000:]}")
        return found


def run_once(argv: list[str], env: dict, cwd: str, point: str | None = None, delay: float = 0.0,
             sig: int | None = None, timeout: float = 900) -> Attempt:
    """Run ``argv``; when a line of its stdout matches ``point``, wait ``delay`` s and send ``sig`` to its group."""
    attempt = Attempt(point or "(to the end)", sig)
    process = subprocess.Popen(argv, env=dict(env, PYTHONUNBUFFERED="1"), cwd=cwd, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    errors: list[str] = []
    reader = threading.Thread(target=lambda: errors.extend(process.stderr), daemon=True)
    reader.start()
    lines = []
    deadline = time.time() + timeout
    for line in process.stdout:
        lines.append(line)
        if point is not None and not attempt.hit and re.search(point, line):
            attempt.hit = True
            time.sleep(delay)
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                pass
        if time.time() > deadline:
            os.killpg(process.pid, signal.SIGKILL)
    attempt.returncode = process.wait(timeout=max(1.0, deadline - time.time()))
    reader.join(timeout=10)
    if sig == signal.SIGKILL:  # a crash leaves nothing running (nnU-Net's workers are in the same group)
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    attempt.stdout, attempt.stderr = "".join(lines), "".join(errors)
    return attempt


def interrupt_and_resume(argv: list[str], env: dict, cwd: str, points: list[tuple[str, float, int]]) -> Interruptions:
    """Each ``(pattern, delay, signal)`` point is hit in turn (the command run again after each); then the command
    runs to its end."""
    record = Interruptions()
    for pattern, delay, sig in points:
        record.attempts.append(run_once(argv, env, cwd, pattern, delay, sig))
    record.attempts.append(run_once(argv, env, cwd))
    return record
