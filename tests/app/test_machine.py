"""Other processes' CPU use during a measurement: an idle wait reads (near) zero, a busy neighbour does not."""

import subprocess
import sys
import time

import pytest

from nnunet_pruning.app.machine import BUSY_CORES, OtherCpuLoad, busy_cpu_seconds

pytestmark = pytest.mark.skipif(busy_cpu_seconds() is None, reason="needs Linux /proc/stat")


def _spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def test_own_work_is_not_counted_as_other_load():
    """Whatever else the machine does (the e2e tests' background work may run beside this), the cores counted as
    "other" leave out what this process spent spinning (measured: on a crowded machine the spin gets less than
    a core)."""
    before, started, spun = busy_cpu_seconds(), time.perf_counter(), time.thread_time()
    with OtherCpuLoad() as load:
        _spin(1.0)
    wall = time.perf_counter() - started
    total = (busy_cpu_seconds() - before) / wall  # every process, this one included
    spin = (time.thread_time() - spun) / wall  # the cores this thread's spinning took
    assert spin > 0.3 and load.cores is not None
    assert load.cores <= total - spin + 0.1  # 0.1: /proc/stat counts in ticks


def test_a_busy_neighbour_is_reported():
    spin = "import time\nend = time.time() + 3\nwhile time.time() < end: pass"
    neighbour = subprocess.Popen([sys.executable, "-c", spin])
    try:
        time.sleep(0.5)  # let it start
        with OtherCpuLoad() as load:
            time.sleep(1.5)
    finally:
        neighbour.wait()
    assert load.cores > 0.7
    assert load.cores > BUSY_CORES and load.warning("the test").startswith(
        f"warning: other processes kept {load.cores:.2f} CPU cores busy during the test;")


def test_no_warning_when_unknown_or_idle():
    load = OtherCpuLoad()
    load.cores = None
    assert load.warning() is None
    load.cores = BUSY_CORES / 2
    assert load.warning() is None
