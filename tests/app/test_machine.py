"""Other processes' CPU use during a measurement: an idle wait reads (near) zero, a busy neighbour does not."""

import subprocess
import sys
import time

import pytest

from nnunet_pruning.app.machine import BUSY_CORES, BUSY_PEAK_CORES, OtherCpuLoad, busy_cpu_seconds

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


def _neighbour(seconds: float) -> None:
    """Another process spinning for ``seconds``: not this one's descendant (``sh`` starts it and exits at once)."""
    spin = f"import time\nend = time.time() + {seconds}\nwhile time.time() < end: pass"
    subprocess.run(["sh", "-c", f"{sys.executable} -S -c '{spin}' > /dev/null 2>&1 &"], check=True)


def test_a_busy_neighbour_is_reported():
    _neighbour(2.5)
    time.sleep(0.5)  # let it start
    with OtherCpuLoad() as load:
        time.sleep(1.5)
    time.sleep(0.6)  # let it end
    assert load.cores > 0.7 and load.peak >= load.cores
    assert load.cores > BUSY_CORES and load.warning("the test").startswith(
        f"warning: other processes kept {load.cores:.2f} CPU cores busy on average")
    assert load.warning("the test").endswith("during the test; rerun on an idle machine for numbers you can trust")


def test_a_short_burst_shows_as_the_busiest_window():
    """The average over a run hides a burst (a first inference benchmark, at 0.1 cores on average, timed forward
    passes 2x too slow): the busiest window does not. Readings (machine busy s, own s, wall s) as the sampler
    takes them: 4 windows of 1 s, others busy for 0.1, 0.9, 0.1 and 0.1 s, this process for 0.5 s in each."""
    load = OtherCpuLoad()
    load._start = load._last = (100.0, 10.0, 0.0)
    for busy, own, wall in ((100.6, 10.5, 1.0), (102.0, 11.0, 2.0), (102.6, 11.5, 3.0)):
        load._record((busy, own, wall))
    assert load._finish((103.2, 12.0, 4.0)) == pytest.approx(0.3)  # 1.2 s of others' work over 4 s
    assert load.peak == pytest.approx(0.9)
    assert load.suspect() and load.warning("the test") == (
        "warning: other processes kept 0.30 CPU cores busy on average (up to 0.90 in one 1-s window) during the test; "
        "rerun on an idle machine for numbers you can trust")


def test_a_run_shorter_than_a_window_has_its_average_as_peak():
    load = OtherCpuLoad()
    load._start = load._last = (100.0, 10.0, 0.0)
    assert load._finish((100.2, 10.1, 0.5)) == pytest.approx(0.2) and load.peak == pytest.approx(0.2)
    assert not load.suspect()


def test_the_sampler_reads_a_neighbour_in_its_windows():
    with OtherCpuLoad(window=0.25) as load:
        time.sleep(0.3)
        _neighbour(0.8)
        time.sleep(1.5)
    assert load.peak >= load.cores and load.peak > 0.6  # a quarter second of it kept a core busy


def test_own_child_processes_are_own_work_running_or_ended():
    """torch.compile's workers and nnU-Net's export pool are this process's doing, not a neighbour's: their CPU
    time counts as its own while they run, not only once waited for (a compiled benchmark warned of 1.22 cores in
    one second otherwise)."""
    from nnunet_pruning.app.machine import _own_cpu_seconds

    spin = "import time\nwhile time.process_time() < 1.0: pass"  # 1 s of CPU, however crowded the machine
    before = _own_cpu_seconds()
    child = subprocess.Popen([sys.executable, "-S", "-c", spin])
    time.sleep(0.6)
    running = _own_cpu_seconds() - before  # os.times() alone: ~0 (this process sleeps, the child is not reaped)
    child.wait()
    ended = _own_cpu_seconds() - before
    # the child's own clock reads >= 1 s; the kernel's counts of it are whole ticks (0.01 s), rounded down
    assert child.returncode == 0 and running > 0.1 and ended >= 0.95


def test_no_warning_when_unknown_or_idle():
    load = OtherCpuLoad()
    load.cores = None
    assert load.warning() is None
    load.cores = BUSY_CORES / 2
    assert load.warning() is None
    load.peak = BUSY_PEAK_CORES / 2
    assert load.warning() is None
    load.peak = BUSY_PEAK_CORES + 0.1  # a burst in one window, the average low
    assert load.suspect() and "up to 0.85 in one 1-s window" in load.warning()
