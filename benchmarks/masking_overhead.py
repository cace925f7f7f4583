"""Masking overhead of SparseSimBaPolicy: milliseconds per SAC gradient step, sparsity 0.0 vs 0.8.

Both models have the same dense compute; the sparse one also runs the optimizer hooks that
mask gradients before every actor and critic step (AdamW keeps pruned weights 0 by itself, so
no pass re-masks the weights after it). All models are timed in
interleaved rounds within one process, so machine noise hits them alike; the figure that
matters is the ratio of medians (target: at most 1.05) with the policy's default optimizer
(AdamW with ``fused=True``). The same pair with torch's for-loop AdamW (``fused=False``) is
timed too: exact-zero moments of pruned weights make its ``sqrt`` slow on x86 CPUs.

    python benchmarks/masking_overhead.py            # default sizes, about 4 minutes on 2 cores
    python benchmarks/masking_overhead.py --rounds 2 --steps 2 --critic-hidden-dim 64   # smoke run
    python benchmarks/masking_overhead.py --actor-hidden-dim 640 --critic-hidden-dim 2560 \
        --n-critics 1 --optimizers fused --rounds 5 --steps 2     # width scale 5 (~109M parameters)
"""

from __future__ import annotations

import argparse
import platform
import statistics

import torch as th
from stable_baselines3 import SAC
from timing import time_gradient_steps, warm_model

import sb3_sparse  # noqa: F401  (registers the policy)
from sb3_sparse.sparsity import pruned_weights_are_zero


def build_model(sparsity: float, fused: bool, args: argparse.Namespace) -> SAC:
    """A SAC model with a full replay buffer of random Pendulum-v1 transitions, ready to train."""
    policy_kwargs = dict(
        actor_hidden_dim=args.actor_hidden_dim,
        critic_hidden_dim=args.critic_hidden_dim,
        n_critics=args.n_critics,
        actor_sparsity=sparsity,
        critic_sparsity=sparsity,
        sparse_backend="masked",  # dense kernels on masked weights: the mode whose overhead is measured
        optimizer_class=th.optim.AdamW,
        # fused=True is what the policy picks by default; spelled out to time both.
        optimizer_kwargs=dict(weight_decay=1e-2, fused=fused),
    )
    return warm_model(SAC, policy_kwargs, args.warmup, args.batch_size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15, help="interleaved timing rounds per model")
    parser.add_argument("--steps", type=int, default=20, help="gradient steps per round")
    parser.add_argument("--warmup", type=int, default=1000, help="random transitions collected before timing")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--actor-hidden-dim", type=int, default=128)
    parser.add_argument("--critic-hidden-dim", type=int, default=512)
    parser.add_argument("--n-critics", type=int, default=2)
    parser.add_argument("--sparsity", type=float, default=0.8)
    parser.add_argument(
        "--optimizers", nargs="+", choices=("fused", "for-loop"), default=["fused", "for-loop"], help="AdamW variants to time"
    )
    args = parser.parse_args()

    fused_choices = [name == "fused" for name in args.optimizers]
    configs = [(fused, sparsity) for fused in fused_choices for sparsity in (0.0, args.sparsity)]
    models = {config: build_model(config[1], config[0], args) for config in configs}
    for model in models.values():  # one untimed round: allocator and thread pools warm up
        time_gradient_steps(model, 2, args.batch_size)
    timings: dict[tuple[bool, float], list[float]] = {config: [] for config in configs}
    for _ in range(args.rounds):
        for config, model in models.items():
            timings[config].append(time_gradient_steps(model, args.steps, args.batch_size))

    policies = [models[(fused, args.sparsity)].policy for fused in fused_choices]
    masks_hold = all(
        pruned_weights_are_zero(net) for policy in policies for net in (policy.actor, policy.critic, policy.critic_target)
    )
    policy = policies[0]
    n_params = sum(p.numel() for p in policy.actor.parameters()) + sum(p.numel() for p in policy.critic.parameters())
    print(
        f"SAC gradient step, Pendulum-v1 dims, actor {args.actor_hidden_dim}x1, "
        f"critic {args.critic_hidden_dim}x2 ({args.n_critics} critics), "
        f"{n_params:,} parameters, batch {args.batch_size}, AdamW"
    )
    print(
        f"torch {th.__version__}, {th.get_num_threads()} threads, {platform.machine()}, "
        f"{th.backends.cpu.get_cpu_capability()}; {args.rounds} rounds x {args.steps} steps, interleaved"
    )
    print(f"{'optimizer':<22}  {'sparsity':>8}  {'median ms/step':>14}  {'min ms/step':>11}")
    for (fused, sparsity), values in timings.items():
        name = "AdamW fused (default)" if fused else "AdamW for-loop"
        print(f"{name:<22}  {sparsity:>8.1f}  {statistics.median(values):>14.2f}  {min(values):>11.2f}")
    for fused in fused_choices:
        ratio = statistics.median(timings[(fused, args.sparsity)]) / statistics.median(timings[(fused, 0.0)])
        label = "fused (policy default)" if fused else "for-loop"
        target = "  (target <= 1.05)" if fused else ""
        print(f"masking overhead ratio, AdamW {label}: {ratio:.3f}{target}")
    print(f"pruned weights exactly 0 after timing (actor, critic, target): {masks_hold}")


if __name__ == "__main__":
    main()
