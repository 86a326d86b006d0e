"""Is anything else using the CPU while we time? Timings taken beside another busy process are wrong.

:class:`OtherCpuLoad` reads the machine's busy CPU time (``/proc/stat``) and this process's own CPU time
(``os.times``) at the start and end of a measurement; the difference is what *other* processes used, in
cores. Child processes count as "other" until they have ended and been waited for. Linux only; elsewhere
it reports ``None`` and warns of nothing.
"""

from __future__ import annotations

import os
import time

from nnunet_pruning.core.clock import cpu_model

__all__ = ["OtherCpuLoad", "busy_cpu_seconds", "cpu_model", "BUSY_CORES"]

#: other processes using more than this many cores on average make a timing suspect
BUSY_CORES = 0.25


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


def _own_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class OtherCpuLoad:
    """Measures the cores other processes kept busy between :meth:`start` and :meth:`stop`.

    ``with OtherCpuLoad() as load: ...`` then ``load.cores`` (``None`` when unknown) and ``load.warning()``.
    """

    def __init__(self):
        self.cores: float | None = None
        self._start = None

    def start(self) -> "OtherCpuLoad":
        self._start = (busy_cpu_seconds(), _own_cpu_seconds(), time.perf_counter())
        return self

    def stop(self) -> float | None:
        busy0, own0, wall0 = self._start
        busy1, own1, wall1 = busy_cpu_seconds(), _own_cpu_seconds(), time.perf_counter()
        if busy0 is None or busy1 is None or wall1 <= wall0:
            self.cores = None
        else:
            self.cores = max(0.0, ((busy1 - busy0) - (own1 - own0)) / (wall1 - wall0))
        return self.cores

    def __enter__(self) -> "OtherCpuLoad":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def warning(self, what: str = "the timing") -> str | None:
        """One line when other processes were busy enough to distort ``what``, else ``None``."""
        if self.cores is None or self.cores <= BUSY_CORES:
            return None
        return (f"warning: other processes kept {self.cores:.2f} CPU cores busy during {what}; rerun on an idle "
                f"machine for numbers you can trust")
