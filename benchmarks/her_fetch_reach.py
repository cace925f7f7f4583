"""HER on FetchReach-v4, side by side, each with its own best-known settings: plain SB3's
``MultiInputPolicy`` with the RL Zoo's entry (rl_zoo3's sac.yml ``FetchReach-v1``: networks [64, 64],
learning rate 1e-3, ``normalize: true``, i.e. ``VecNormalize`` with gamma 0.95), against
``SparseSimBaMultiInputPolicy`` with the package's sac.yml ``FetchReach-v4`` entry (actor 64, critic
128 x 1 block, sparsity 0.8, learning rate 5e-4, no VecNormalize: the policy normalizes each key
itself). Both: SAC with HER (future, 4 goals), batch 256, gamma 0.95, 1,000 random steps first, the
same seed and budgets. Success rate of the deterministic policy over 20 episodes (the baseline's
observations through its VecNormalize statistics), and seconds. The process is pinned to one core
(``--core``) with one torch thread; needs the robotics and zoo extras. About 5 minutes.

    python benchmarks/her_fetch_reach.py
    python benchmarks/her_fetch_reach.py --budgets 2000 4000 8000
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch
import yaml
from stable_baselines3 import SAC, HerReplayBuffer
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

import sb3_sparse  # noqa: F401  (registers the policy names)
from sb3_sparse.hyperparams import algorithm_kwargs, zoo_eval
from sb3_sparse.robotics import ROBOTICS_EXTRA, register_robotics_envs, success_rate

ENV_ID = "FetchReach-v4"
ZOO_ENTRY = "FetchReach-v1"  # the zoo files the same task under its old id


def zoo_baseline(seed: int) -> tuple[SAC, VecNormalize | None]:
    """Plain SB3 SAC with the zoo's entry, its VecNormalize as the zoo makes it (gamma from the entry)."""
    import rl_zoo3

    entry: dict[str, Any] = yaml.safe_load((Path(rl_zoo3.__file__).parent / "hyperparams" / "sac.yml").read_text())[ZOO_ENTRY]
    env: DummyVecEnv | VecNormalize = DummyVecEnv([lambda: gym.make(ENV_ID)])
    normalization = VecNormalize(env, gamma=entry["gamma"]) if entry.get("normalize") else None
    keys = ("buffer_size", "ent_coef", "batch_size", "gamma", "learning_rate", "learning_starts")
    model = SAC(
        entry["policy"], normalization or env, replay_buffer_class=HerReplayBuffer, seed=seed,
        replay_buffer_kwargs=zoo_eval(entry["replay_buffer_kwargs"]), policy_kwargs=zoo_eval(entry["policy_kwargs"]),
        **{key: entry[key] for key in keys},
    )  # fmt: skip
    return model, normalization


def sparse_policy(seed: int) -> SAC:
    """SAC with the package's own entry."""
    policy, _, kwargs = algorithm_kwargs("sac", ENV_ID, action_dim=4)
    return SAC(policy, gym.make(ENV_ID), seed=seed, **kwargs)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budgets", type=int, nargs="+", default=[3000, 6000])
    parser.add_argument("--seed", type=int, default=0)
    allowed = sorted(os.sched_getaffinity(0))
    parser.add_argument("--core", type=int, default=allowed[-1], help=f"the core the process is pinned to ({allowed})")
    args = parser.parse_args(argv)
    if args.core not in allowed:
        parser.error(f"--core must be one of the cores this process may use, {allowed}; got {args.core}")
    if not register_robotics_envs():
        raise SystemExit(f"FetchReach needs gymnasium-robotics: {ROBOTICS_EXTRA}")
    os.sched_setaffinity(0, {args.core})
    torch.set_num_threads(1)
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, pinned to core {args.core}, 1 thread")
    print(f"{'policy (settings)':>44} {'agent steps':>11} {'success':>8} {'seconds':>8}")
    for budget in args.budgets:
        baseline, normalization = zoo_baseline(args.seed)
        for name, model in (("MultiInputPolicy (zoo's sac.yml)", baseline), ("SparseSimBaMultiInputPolicy (ours)", None)):
            model = model or sparse_policy(args.seed)
            start = time.perf_counter()
            model.learn(budget)
            seconds = time.perf_counter() - start
            rate = success_rate(model, ENV_ID, vec_normalize=normalization if model is baseline else None)
            print(f"{name:>44} {budget:>11,} {rate:>8.2f} {seconds:>8.0f}", flush=True)


if __name__ == "__main__":
    main()
