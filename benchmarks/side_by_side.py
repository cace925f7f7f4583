"""Two trainings side by side on the machine's cores, with and without the runner's thread policy.

Each training is SB3's SAC with ``SparseSimBaPolicy`` at its default sizes (actor 128 x 1 block,
critic 512 x 2 blocks, 2 critics), sparsity 0.8, on Pendulum-v1 (an environment that costs
almost nothing, so the figure is the update's), one gradient step per agent step, batch 256. Each
training runs in its own process; the processes of a scenario build their models, then time
``model.learn`` in rounds that start together (a barrier), so the trainings really overlap.
Scenarios:

* alone: one training with the thread policy's count (``sb3_sparse.threads.default_num_threads``:
  every core this process may use);
* alone, ``cores // runs`` threads: the same on the share of the cores each training gets beside the others;
* side by side, torch's default: ``--runs`` trainings, each with torch's default intra-op threads
  (one per core: the cores are oversubscribed);
* side by side, thread policy: ``--runs`` trainings with ``SB3_SPARSE_CONCURRENT_RUNS`` set to
  the number of runs, so each takes ``cores // runs`` threads (what the runner does, and what the
  sweep does with ``--threads-per-run``).

Figure: ms per agent step (median over rounds, mean over the trainings of a scenario), and its
ratio to the lone training. Target (issue 19): side by side with the policy within 1.2x of alone.

    python benchmarks/side_by_side.py                   # about 6 minutes on 2 cores
    python benchmarks/side_by_side.py --rounds 3 --steps 5
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import statistics
import time
from dataclasses import dataclass
from multiprocessing.synchronize import Barrier
from typing import Any

from tqdm.auto import tqdm


@dataclass(frozen=True)
class Scenario:
    """
    :param name: how the table names it
    :param runs: trainings side by side
    :param threads: ``"default"`` (torch's own count), ``"policy"`` (the runner's) or a number
    """

    name: str
    runs: int
    threads: str


def train_and_time(index: int, scenario: Scenario, args: argparse.Namespace, barrier: Barrier, results: Any) -> None:
    """One training of a scenario: build, then time ``args.rounds`` rounds of ``args.steps`` agent steps."""
    if scenario.threads == "policy":
        os.environ["SB3_SPARSE_CONCURRENT_RUNS"] = str(scenario.runs)
    import torch as th
    from stable_baselines3 import SAC
    from timing import warm_model

    from sb3_sparse.threads import default_num_threads

    if scenario.threads == "policy":
        th.set_num_threads(default_num_threads())
    elif scenario.threads != "default":
        th.set_num_threads(int(scenario.threads))
    policy_kwargs = dict(actor_sparsity=0.8, critic_sparsity=0.8)
    model = warm_model(SAC, policy_kwargs, args.warmup, args.batch_size)
    model.learn(args.steps, reset_num_timesteps=False)  # untimed: the first gradient steps warm the allocator
    times = []
    for _ in range(args.rounds):
        barrier.wait()  # the trainings of a scenario start each round together
        start = time.perf_counter()
        model.learn(args.steps, reset_num_timesteps=False)
        times.append((time.perf_counter() - start) * 1e3 / args.steps)
    results.put((index, th.get_num_threads(), statistics.median(times)))


def run_scenario(scenario: Scenario, args: argparse.Namespace) -> tuple[int, float]:
    """Threads per training and ms per agent step (mean over the scenario's trainings)."""
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(scenario.runs), context.Queue()
    processes = [
        context.Process(target=train_and_time, args=(index, scenario, args, barrier, results))
        for index in range(scenario.runs)
    ]
    for process in processes:
        process.start()
    answers = []
    for _ in processes:
        while True:
            try:
                answers.append(results.get(timeout=5.0))
                break
            except Exception:  # queue.Empty: check that no training died instead of waiting forever
                dead = [process.exitcode for process in processes if process.exitcode not in (None, 0)]
                if dead:
                    raise RuntimeError(f"a training of '{scenario.name}' died (exit code {dead[0]})") from None
    for process in processes:
        process.join()
    return answers[0][1], statistics.mean(ms for _, _, ms in answers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=2, help="trainings side by side")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per training")
    parser.add_argument("--steps", type=int, default=10, help="agent steps (one gradient step each) per round")
    parser.add_argument("--warmup", type=int, default=300, help="random transitions collected before timing")
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args()

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"{platform.processor() or platform.machine()}, {cores} cores available, {args.runs} trainings side by side")
    share = max(1, (cores or 1) // args.runs)  # the threads each training gets under the policy
    scenarios = [
        Scenario("alone", 1, "policy"),
        Scenario(f"alone, {share} thread(s)", 1, str(share)),
        Scenario("side by side, torch's default", args.runs, "default"),
        Scenario("side by side, thread policy", args.runs, "policy"),
    ]
    figures = {}
    for scenario in tqdm(scenarios, desc="scenarios", leave=False):
        figures[scenario] = run_scenario(scenario, args)
    alone_ms = figures[scenarios[0]][1]
    alone_by_threads = {threads: ms for scenario, (threads, ms) in figures.items() if scenario.runs == 1}
    print(
        f"{'scenario':<32} {'trainings':>9} {'threads each':>12} {'ms/agent step':>14} {'vs alone':>9} "
        f"{'vs alone, same threads':>22} {'agent steps/s, all':>19}"
    )
    for scenario, (threads, ms) in figures.items():
        same = ms / alone_by_threads[threads] if threads in alone_by_threads else float("nan")
        print(
            f"{scenario.name:<32} {scenario.runs:>9} {threads:>12} {ms:>14.1f} {ms / alone_ms:>8.2f}x "
            f"{same:>21.2f}x {1e3 * scenario.runs / ms:>19.2f}"
        )
    policy_ms, default_ms = figures[scenarios[3]][1], figures[scenarios[2]][1]
    print(
        f"side by side with the thread policy: {policy_ms / alone_ms:.2f}x the lone training's step, "
        f"{policy_ms / alone_by_threads[figures[scenarios[3]][0]]:.2f}x a lone training's on the same threads "
        f"(target <= 1.2x); torch's default threads: {default_ms / policy_ms:.2f}x slower than the policy"
    )


if __name__ == "__main__":
    main()
