"""Write the saved models that tests/test_saved_models.py loads: tiny sparse SimBa models of every
policy class, saved by sb3-sparse 0.1.0 (commit 9bbb558), so that later versions prove they still
load them bit-identically and still draw the same masks and weights from the same seed.

Run from the repository root: ``python tests/data/make_saved_models.py`` (seconds).
"""

from __future__ import annotations

import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from sb3_contrib import TQC, CrossQ
from stable_baselines3 import DDPG, SAC, TD3

import sb3_sparse  # noqa: F401  (registers the policies)

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent.parent))
from tests.data.saved_model_cases import CASES, image_env, observations  # noqa: E402

ALGORITHMS = {"SAC": SAC, "TD3": TD3, "DDPG": DDPG, "TQC": TQC, "CrossQ": CrossQ}


def main() -> None:
    torch.set_num_threads(1)
    predictions = {}
    for case in CASES:
        env = image_env() if case.pixels else gym.make("Pendulum-v1")
        algorithm = ALGORITHMS[case.algorithm]
        model = algorithm(case.policy, env, policy_kwargs=dict(case.policy_kwargs), seed=case.seed, **case.algorithm_kwargs)
        if case.train_steps:
            model.learn(case.train_steps)
        model.save(HERE / f"{case.name}.zip")
        obs = observations(env, case.seed)
        predictions[case.name] = model.predict(obs, deterministic=True)[0]
    np.savez(HERE / "saved_model_predictions.npz", **predictions)


if __name__ == "__main__":
    main()
