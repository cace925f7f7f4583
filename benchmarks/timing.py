"""What the speed benchmarks share: timing SB3 gradient steps, their command-line options, the machine line."""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable
from typing import Any

import torch as th
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

import sb3_sparse  # noqa: F401  (registers the policy)


def time_gradient_steps(model: OffPolicyAlgorithm, steps: int, batch_size: int) -> float:
    """Milliseconds per gradient step over ``steps`` steps of ``model.train``."""
    start = time.perf_counter()
    model.train(gradient_steps=steps, batch_size=batch_size)
    return (time.perf_counter() - start) * 1e3 / steps


def gflops_rate(run: Callable[[], object], flops: float, repeats: int) -> float:
    """GFLOP/s of ``run``, a computation of ``flops`` operations: ``repeats`` timed calls after one untimed."""
    run()  # compilation, allocator warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        run()
    return flops * repeats / (time.perf_counter() - start) / 1e9


def warm_model(algorithm: type[OffPolicyAlgorithm], policy_kwargs: dict[str, Any], warmup: int, batch_size: int) -> Any:
    """A sparse SimBa model whose replay buffer holds ``warmup`` random Pendulum-v1 transitions, ready to train."""
    model = algorithm(
        "SparseSimBaPolicy", "Pendulum-v1", learning_starts=warmup, batch_size=batch_size, seed=0, policy_kwargs=policy_kwargs
    )
    model.learn(warmup)  # random warm-up only: fills the buffer and the observation statistics
    return model


def add_timing_arguments(parser: argparse.ArgumentParser, rounds: int = 7, steps: int = 5, warmup: int = 600) -> None:
    """Options of interleaved timing: rounds, steps per round, warm-up transitions, batch size, torch threads."""
    parser.add_argument("--rounds", type=int, default=rounds, help="interleaved timing rounds per model")
    parser.add_argument("--steps", type=int, default=steps, help="gradient steps per round")
    parser.add_argument("--warmup", type=int, default=warmup, help="random transitions collected before timing")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--num-threads", type=int, default=1, help="torch intra-op threads")


def use_threads(num_threads: int) -> None:
    """Set torch's intra-op threads and print the machine line every recorded table starts with."""
    th.set_num_threads(num_threads)
    print(f"{platform.processor() or platform.machine()}, torch {th.__version__}, {th.get_num_threads()} thread(s)")
