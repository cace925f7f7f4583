"""How many torch intra-op threads a run uses when nobody says.

torch's element-wise kernels (fused AdamW, LayerNorm, copies) wait for every one of their threads;
when more threads run than cores are free, a descheduled thread stalls the whole step (measured:
2x to 12x slower steps with torch's default of one thread per core on a busy machine). The
runner therefore starts from the cores this process may use divided by the runs started side by
side (:func:`default_num_threads`), and while it trains, follows the cores that other processes
leave free (:class:`FreeCores`, read from ``/proc/stat``; :class:`AdaptiveThreadsCallback`).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch as th

#: How many runs share the machine's cores, when a user starts several side by side.
CONCURRENT_RUNS_VARIABLE = "SB3_SPARSE_CONCURRENT_RUNS"
PROC_STAT = Path("/proc/stat")


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the system has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def default_num_threads() -> int:
    """
    torch intra-op threads for a run: the cores this process may use, divided by the runs sharing
    them (``SB3_SPARSE_CONCURRENT_RUNS``, 1 when unset; the sweep passes its own thread count).

    :return: at least 1
    """
    concurrent = max(1, int(os.environ.get(CONCURRENT_RUNS_VARIABLE, "1") or 1))
    return max(1, usable_cores() // concurrent)


def _own_cpu_seconds() -> float:
    """CPU seconds this process has used (user and system, all its threads)."""
    times = os.times()
    return times.user + times.system


class FreeCores:
    """
    The cores other processes leave free, measured between two calls: the machine's busy CPU time
    (``/proc/stat``) minus this process's own (``os.times``), per second of wall time.

    :param stat_path: the kernel's CPU statistics (Linux); where it cannot be read, nothing is measured
    """

    def __init__(self, stat_path: Path = PROC_STAT) -> None:
        self.stat_path = stat_path
        self.cores = usable_cores()
        self._ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self._last = self._sample()

    def _sample(self) -> tuple[float, float, float] | None:
        """(wall seconds, machine busy CPU seconds, own CPU seconds), or ``None`` without ``/proc/stat``."""
        try:
            fields = self.stat_path.read_text().split("\n", 1)[0].split()
        except OSError:
            return None
        if len(fields) < 5 or fields[0] != "cpu":
            return None
        ticks = [float(value) for value in fields[1:9]]
        busy = sum(ticks) - ticks[3] - (ticks[4] if len(ticks) > 4 else 0.0)  # all but idle and iowait
        return time.monotonic(), busy / self._ticks, _own_cpu_seconds()

    def measure(self) -> float | None:
        """
        Free cores since the previous call (or construction): ``cores - (machine busy - own) / wall``.

        :return: in [0, cores], or ``None`` where it cannot be measured or no time passed
        """
        sample, last = self._sample(), self._last
        self._last = sample
        if sample is None or last is None or sample[0] <= last[0]:
            return None
        wall = sample[0] - last[0]
        others = max(0.0, (sample[1] - last[1]) - (sample[2] - last[2])) / wall
        return min(float(self.cores), max(0.0, self.cores - others))


def threads_for(free_cores: float, maximum: int) -> int:
    """
    Threads for ``free_cores`` free cores: rounded down (a thread on a shared core stalls the
    others), at least 1, at most ``maximum``.
    """
    return max(1, min(maximum, int(free_cores + 0.1)))


def settle_threads(maximum: int | None = None, window: float = 0.25) -> int:
    """
    Measure the free cores over ``window`` seconds and set torch's threads to them.

    :param maximum: at most this many threads (``None``: :func:`default_num_threads`)
    :param window: seconds to measure over
    :return: the thread count set
    """
    maximum = maximum or default_num_threads()
    monitor = FreeCores()
    time.sleep(window)
    free = monitor.measure()
    threads = maximum if free is None else threads_for(free, maximum)
    th.set_num_threads(threads)
    return threads
