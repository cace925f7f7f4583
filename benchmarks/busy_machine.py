"""The runner nobody configured, on an idle machine and on one whose every core is busy.

Each scenario runs ``python -m sb3_sparse.train`` (the README's main job: ReferenceSAC with small
sparse SimBa networks on Pendulum-v1) for ``--timesteps`` agent steps in a fresh process and times
it, wall clock, from start to exit. "Busy" starts one CPU-bound process per usable core (a pure
Python loop) before the run and stops them after it, so every core has other work all along.
Scenarios:

* idle, thread policy: the runner's default (no ``--num-threads``): the free cores, followed
  while training (:mod:`sb3_sparse.threads`);
* busy, thread policy: the same with the cores busy;
* idle / busy, one thread per core: ``--num-threads <cores>``, which is torch's own default
  (what the runner did before the thread policy followed the free cores).

Figures: seconds per run and the busy/idle ratio of each policy. Target (issue 31): the default's
busy/idle ratio within ~3x (a fair share of 2 cores beside 2 busy processes is ~2x).

    python benchmarks/busy_machine.py                      # about 8 minutes on 2 cores
    python benchmarks/busy_machine.py --timesteps 1500 --rounds 1
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BURNER = "while True:\n    pass\n"


def run_once(timesteps: int, num_threads: int | None, busy: bool, output: Path) -> float:
    """Seconds one runner process takes, with ``len(cores)`` CPU burners beside it when ``busy``."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    burners = [subprocess.Popen([sys.executable, "-c", BURNER]) for _ in range(cores if busy else 0)]
    command = [sys.executable, "-m", "sb3_sparse.train", "-n", str(timesteps), "--output-dir", str(output)]
    command += ["--eval-episodes", "2", "--final-eval-episodes", "2", "--no-progress-bar", "--verbose", "0", "--restart"]
    command += ["-params", f"learning_starts:{timesteps // 2}"]
    if num_threads is not None:
        command += ["--num-threads", str(num_threads)]
    try:
        time.sleep(0.5 if busy else 0.0)  # the burners are running before the run measures its free cores
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        return time.perf_counter() - start
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timesteps", type=int, default=2000, help="agent steps per run (half of them warm-up)")
    parser.add_argument("--rounds", type=int, default=2, help="runs per scenario (median reported)")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    print(f"{platform.processor() or platform.machine()}, {cores} usable cores, {time.strftime('%Y-%m-%d')}")
    policies = {"thread policy (default)": None, f"{cores} threads (torch's default)": cores}
    seconds: dict[tuple[str, bool], list[float]] = {}
    with tempfile.TemporaryDirectory() as folder:
        for round_index in range(args.rounds):
            for name, threads in policies.items():
                for busy in (False, True):
                    elapsed = run_once(args.timesteps, threads, busy, Path(folder) / "run")
                    seconds.setdefault((name, busy), []).append(elapsed)
                    print(f"  round {round_index + 1}: {name}, {'busy' if busy else 'idle'}: {elapsed:.1f} s", flush=True)
    print(f"\n{args.timesteps:,} agent steps of `python -m sb3_sparse.train` (median of {args.rounds}):")
    print(f"{'threads':34s} {'idle s':>8s} {'busy s':>8s} {'busy/idle':>10s}")
    for name in policies:
        idle = statistics.median(seconds[(name, False)])
        busy = statistics.median(seconds[(name, True)])
        print(f"{name:34s} {idle:8.1f} {busy:8.1f} {busy / idle:9.2f}x")


if __name__ == "__main__":
    main()
