"""Is anything else using the CPU while we time? Timings taken beside another busy process are wrong.

:class:`OtherCpuLoad` reads the machine's busy CPU time (``/proc/stat``) and this process's own CPU time
(``os.times``) at the start and end of a measurement; the difference is what *other* processes used, in
cores. A thread reads both once per :data:`PEAK_SECONDS` between, so that a short burst (a build, another
test) shows as the busiest second even when the average over a long run hides it. This process's own
descendants (torch.compile's workers, an export pool) count as its own work, running or ended. Linux only;
elsewhere it reports ``None`` and warns of nothing.
"""

from __future__ import annotations

import os
import threading
import time

from nnunet_pruning.core.clock import cpu_model

__all__ = ["OtherCpuLoad", "busy_cpu_seconds", "cpu_model", "BUSY_CORES", "BUSY_PEAK_CORES", "PEAK_SECONDS"]

#: other processes using more than this many cores on average make a timing suspect
BUSY_CORES = 0.25
#: ... or more than this many in any one window of PEAK_SECONDS (a burst the average hides)
BUSY_PEAK_CORES = 0.75
PEAK_SECONDS = 1.0


def busy_cpu_seconds() -> float | None:
    """CPU seconds all processes of the machine have spent busy since boot (``None`` without ``/proc/stat``)."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    ticks = [int(v) for v in fields[1:]]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    steal = ticks[7] if len(ticks) > 7 else 0  # time the hypervisor gave to others: not ours to count
    return (sum(ticks[:8]) - idle - steal) / os.sysconf("SC_CLK_TCK")


def _descendants_cpu_seconds(root: int) -> float:
    """CPU seconds of ``root``'s live descendants (with what their own ended children used), from ``/proc``."""
    parents, seconds = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rpartition(")")[2].split()  # after "pid (comm)": comm may hold spaces
        except OSError:  # ended meanwhile
            continue
        parents[int(entry)] = int(fields[1])
        seconds[int(entry)] = sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
    children: dict[int, list[int]] = {}
    for pid, parent in parents.items():
        children.setdefault(parent, []).append(pid)
    total, todo = 0, list(children.get(root, []))
    while todo:
        pid = todo.pop()
        total += seconds[pid]
        todo += children.get(pid, [])
    return total / os.sysconf("SC_CLK_TCK")


def _own_cpu_seconds() -> float:
    """This process's CPU seconds, its ended children's and its running descendants'."""
    t = os.times()
    own = t.user + t.system + t.children_user + t.children_system
    try:
        return own + _descendants_cpu_seconds(os.getpid())
    except OSError:  # no /proc: busy_cpu_seconds is None too, and nothing is measured
        return own


class OtherCpuLoad:
    """Measures the cores other processes kept busy between :meth:`start` and :meth:`stop`.

    ``with OtherCpuLoad() as load: ...`` then ``load.cores`` (the average; ``None`` when unknown), ``load.peak``
    (the busiest window of ``window`` seconds; the whole run when it is shorter) and ``load.warning()``.
    """

    def __init__(self, window: float = PEAK_SECONDS):
        self.cores: float | None = None
        self.peak: float | None = None
        self.window = window
        self._start = self._last = None
        self._busiest = 0.0
        self._done = threading.Event()
        self._sampler: threading.Thread | None = None

    @staticmethod
    def _read() -> tuple:
        return busy_cpu_seconds(), _own_cpu_seconds(), time.perf_counter()

    @staticmethod
    def _other(before: tuple, after: tuple) -> float | None:
        """Cores other processes used between two readings (``None`` when unknown)."""
        (busy0, own0, wall0), (busy1, own1, wall1) = before, after
        if busy0 is None or busy1 is None or wall1 <= wall0:
            return None
        return max(0.0, ((busy1 - busy0) - (own1 - own0)) / (wall1 - wall0))

    def _sample(self) -> None:
        while not self._done.wait(self.window):
            self._record(self._read())

    def _record(self, now: tuple) -> None:
        """A reading at the end of a window."""
        self._busiest = max(self._busiest, self._other(self._last, now) or 0.0)
        self._last = now

    def start(self) -> "OtherCpuLoad":
        self._start = self._last = self._read()
        self._busiest = 0.0
        self._done.clear()
        if self._start[0] is not None:
            self._sampler = threading.Thread(target=self._sample, name="other-cpu-load", daemon=True)
            self._sampler.start()
        return self

    def stop(self) -> float | None:
        if self._sampler is not None:
            self._done.set()
            self._sampler.join()
            self._sampler = None
        return self._finish(self._read())

    def _finish(self, end: tuple) -> float | None:
        self.cores = self._other(self._start, end)
        if self.cores is None:
            self.peak = None
        else:
            # the last, partial window counts only when it is the whole run (a short one would read noisy)
            last = self._other(self._last, end) if self._last is self._start else None
            self.peak = max(self._busiest, last if last is not None else 0.0, self.cores)
        return self.cores

    def __enter__(self) -> "OtherCpuLoad":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def suspect(self) -> bool:
        """Whether other processes were busy enough to distort a timing: on average, or in one window."""
        return self.cores is not None and (self.cores > BUSY_CORES or (self.peak or 0.0) > BUSY_PEAK_CORES)

    def warning(self, what: str = "the timing") -> str | None:
        """One line when other processes were busy enough to distort ``what``, else ``None``."""
        if not self.suspect():
            return None
        burst = (f" (up to {self.peak:.2f} in one {self.window:g}-s window)"
                 if self.peak is not None and self.peak > BUSY_PEAK_CORES and self.peak > self.cores + 0.05 else "")
        return (f"warning: other processes kept {self.cores:.2f} CPU cores busy on average{burst} during {what}; "
                f"rerun on an idle machine for numbers you can trust")
