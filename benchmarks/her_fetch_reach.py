"""HER on FetchReach-v4, side by side: plain SB3's ``MultiInputPolicy`` (the zoo's her.yml networks,
[64, 64]) against ``SparseSimBaMultiInputPolicy`` (actor 64, critic 128 x 1 block, sparsity 0.8),
SAC with the zoo's HER settings at learning rate 5e-4 (1e-3 was unstable for the plain policy), the
same seed and budgets: success rate of the deterministic policy over 20 episodes, and seconds.
One torch thread; needs the robotics extra. About 4 minutes on one CPU core.

    python benchmarks/her_fetch_reach.py
    python benchmarks/her_fetch_reach.py --budgets 2000 4000 8000
"""

from __future__ import annotations

import argparse
import platform
import time

import gymnasium as gym
import torch
from stable_baselines3 import SAC, HerReplayBuffer

import sb3_sparse  # noqa: F401  (registers the policy names)
from sb3_sparse.robotics import ROBOTICS_EXTRA, register_robotics_envs, success_rate

POLICIES = {
    "MultiInputPolicy": dict(net_arch=[64, 64]),
    "SparseSimBaMultiInputPolicy": dict(actor_hidden_dim=64, critic_hidden_dim=128, critic_num_blocks=1),
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budgets", type=int, nargs="+", default=[3000, 6000])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not register_robotics_envs():
        raise SystemExit(f"FetchReach needs gymnasium-robotics: {ROBOTICS_EXTRA}")
    torch.set_num_threads(1)
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, 1 thread, seed {args.seed}")
    print(f"{'policy':>28} {'agent steps':>11} {'success':>8} {'seconds':>8}")
    for budget in args.budgets:
        for policy, policy_kwargs in POLICIES.items():
            model = SAC(
                policy, gym.make("FetchReach-v4"), replay_buffer_class=HerReplayBuffer,
                replay_buffer_kwargs=dict(goal_selection_strategy="future", n_sampled_goal=4), learning_rate=5e-4,
                buffer_size=1_000_000, batch_size=256, gamma=0.95, tau=0.05, learning_starts=1000, seed=args.seed,
                policy_kwargs=policy_kwargs,
            )  # fmt: skip
            start = time.perf_counter()
            model.learn(budget)
            seconds = time.perf_counter() - start
            rate = success_rate(model, "FetchReach-v4")
            print(f"{policy:>28} {budget:>11,} {rate:>8.2f} {seconds:>8.0f}", flush=True)


if __name__ == "__main__":
    main()
