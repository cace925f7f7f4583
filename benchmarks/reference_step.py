"""The reference SAC's gradient step against SB3's SAC on the same sparse SimBa policy.

ReferenceSAC (sb3_sparse.reference) freezes the critic during the actor loss, so it skips the
critic weight gradients that SB3's SAC computes there and throws away; both do otherwise the same
matrix work. Each pair of models (same policy, same replay buffer) is timed in interleaved
rounds within one process, with an explicit number of torch threads; the figure is the ratio of
median milliseconds per gradient step, ReferenceSAC / SAC (below 1: the reference step is faster).

    python benchmarks/reference_step.py                      # default size (sparsity 0.8) and width 5 (0.9)
    python benchmarks/reference_step.py --sizes base --rounds 2 --steps 2    # smoke run
"""

from __future__ import annotations

import argparse
import statistics

import torch as th
from stable_baselines3 import SAC
from timing import add_timing_arguments, time_gradient_steps, use_threads, warm_model
from tqdm.auto import tqdm

import sb3_sparse  # noqa: F401  (registers the policy)
from sb3_sparse.presets import size_preset
from sb3_sparse.reference import ReferenceSAC

# name -> (size preset, sparsity): the paper's default networks, and its largest at 0.9 (sparse execution on a CPU).
SIZES = {"base": ("base", 0.8), "width5": ("width5", 0.9)}


def build(algorithm: type[SAC], size: str, args: argparse.Namespace) -> SAC:
    """A model with a replay buffer of random Pendulum-v1 transitions (humanoid-sized dims are not needed here)."""
    preset, sparsity = SIZES[size]
    policy_kwargs = dict(
        size_preset(preset),
        actor_sparsity=sparsity,
        critic_sparsity=sparsity,
        n_critics=1,
        optimizer_class=th.optim.AdamW,
        optimizer_kwargs=dict(weight_decay=1e-2),
    )
    return warm_model(algorithm, policy_kwargs, args.warmup, args.batch_size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", choices=list(SIZES), default=list(SIZES))
    add_timing_arguments(parser)
    args = parser.parse_args()
    use_threads(args.num_threads)
    print(f"{'size':<8} {'sparsity':>8} {'SAC ms':>10} {'Reference ms':>13} {'ratio':>7}")
    for size in args.sizes:
        models = {"sac": build(SAC, size, args), "reference": build(ReferenceSAC, size, args)}
        for model in models.values():  # untimed: allocator and thread pools warm up
            time_gradient_steps(model, 1, args.batch_size)
        times: dict[str, list[float]] = {name: [] for name in models}
        for _ in tqdm(range(args.rounds), desc=size, leave=False):
            for name, model in models.items():
                times[name].append(time_gradient_steps(model, args.steps, args.batch_size))
        sac, reference = statistics.median(times["sac"]), statistics.median(times["reference"])
        print(f"{size:<8} {SIZES[size][1]:>8} {sac:>10.1f} {reference:>13.1f} {reference / sac:>7.3f}")


if __name__ == "__main__":
    main()
