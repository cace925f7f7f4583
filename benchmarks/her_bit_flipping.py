"""DQN with HER on SB3's 2-bit BitFlippingEnv after 500 steps, per seed, with the sparse MultiInput
policy and SB3's own: the setting of SB3's test_callbacks.py::test_eval_success_logging (see
docs/compatibility.rst). Prints the success rate of deterministic evaluation episodes per seed.

    python benchmarks/her_bit_flipping.py --seeds 0 1 2
"""

import argparse

import numpy as np
import torch
from stable_baselines3 import DQN, HerReplayBuffer
from stable_baselines3.common.envs import BitFlippingEnv
from stable_baselines3.common.vec_env import DummyVecEnv

import sb3_sparse  # noqa: F401  (registers the sparse policy names)


def success_rate(model: DQN, steps: int = 200) -> float:
    """Deterministic episodes on two environments, as SB3's EvalCallback runs them."""
    env = DummyVecEnv([lambda: BitFlippingEnv(n_bits=2)] * 2)
    observation, successes = env.reset(), []
    for _ in range(steps):
        observation, _, done, infos = env.step(model.predict(observation, deterministic=True)[0])
        successes += [info.get("is_success", 0.0) for finished, info in zip(done, infos, strict=True) if finished]
    return float(np.mean(successes))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--timesteps", type=int, default=500)
    args = parser.parse_args()
    torch.set_num_threads(1)
    for policy in ("SparseSimBaMultiInputPolicy", "MultiInputPolicy"):
        rates = []
        for seed in args.seeds:
            model = DQN(policy, BitFlippingEnv(n_bits=2), replay_buffer_class=HerReplayBuffer, learning_starts=100, seed=seed)
            rates.append(success_rate(model.learn(args.timesteps)))
        print(f"{policy:30s} " + "  ".join(f"seed {seed}: {rate:.2f}" for seed, rate in zip(args.seeds, rates, strict=True)))


if __name__ == "__main__":
    main()
