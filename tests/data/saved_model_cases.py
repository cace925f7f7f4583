"""The saved-model cases of tests/test_saved_models.py (written by make_saved_models.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

TINY = dict(actor_hidden_dim=8, actor_num_blocks=1, critic_hidden_dim=8, critic_num_blocks=1)


@dataclass(frozen=True)
class SavedModelCase:
    name: str
    algorithm: str
    policy: str
    policy_kwargs: dict[str, Any]
    seed: int
    algorithm_kwargs: dict[str, Any] = field(default_factory=dict)
    train_steps: int = 0
    pixels: bool = False


class ImageEnv(gym.Env):
    """Random 3 x 16 x 16 frames and a 2-D continuous action."""

    observation_space = gym.spaces.Box(0, 255, (3, 16, 16), np.uint8)
    action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        return self.observation_space.sample(), {}

    def step(self, action):
        return self.observation_space.sample(), 0.0, False, False, {}


def image_env() -> gym.Env:
    return ImageEnv()


def observations(env: gym.Env, seed: int, count: int = 8) -> np.ndarray:
    space = env.observation_space
    space.seed(seed)
    return np.stack([space.sample() for _ in range(count)])


SPARSE = dict(TINY, actor_sparsity=0.5, critic_sparsity=0.6)
CASES = [
    SavedModelCase(
        "sac_trained", "SAC", "SparseSimBaPolicy", SPARSE, 3, dict(learning_starts=100, buffer_size=1000), train_steps=300
    ),
    SavedModelCase("sac_csr", "SAC", "SparseSimBaPolicy", dict(SPARSE, sparse_backend="csr", n_critics=1), 4),
    SavedModelCase("sac_exact", "SAC", "SparseSimBaPolicy", dict(SPARSE, exact_masks=True, mask_seed=123), 5),
    SavedModelCase("td3", "TD3", "SparseSimBaPolicy", SPARSE, 6),
    SavedModelCase("ddpg_csr", "DDPG", "SparseSimBaPolicy", dict(SPARSE, sparse_backend="csr"), 7),
    SavedModelCase("tqc", "TQC", "SparseSimBaPolicy", dict(SPARSE, n_quantiles=5), 8),
    SavedModelCase("crossq", "CrossQ", "SparseSimBaPolicy", SPARSE, 9),
    SavedModelCase(
        "sac_pixels",
        "SAC",
        "SparseSimBaCnnPolicy",
        dict(TINY, actor_sparsity=0.5, critic_sparsity=0.6, feature_dim=8, encoder_sparsity=0.5),
        10,
        dict(buffer_size=100),
        pixels=True,
    ),
    SavedModelCase(
        "td3_pixels",
        "TD3",
        "SparseSimBaCnnPolicy",
        dict(TINY, actor_sparsity=0.5, critic_sparsity=0.6, feature_dim=8),
        11,
        dict(buffer_size=100),
        pixels=True,
    ),
]
