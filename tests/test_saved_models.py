"""Models saved by sb3-sparse 0.1.0 (tests/data, written by tests/data/make_saved_models.py) load
bit-identically, predict what they predicted then (to float32 rounding: kernels differ in the last
bits between CPU instruction sets), and a model built today from the same seed
draws the same masks (and, untrained, the same weights)."""

from pathlib import Path

import numpy as np
import pytest
import torch
from sb3_contrib import TQC, CrossQ
from stable_baselines3 import DDPG, SAC, TD3

import sb3_sparse  # noqa: F401  (registers the policies)
from sb3_sparse import pruned_weights_are_zero
from tests.data.saved_model_cases import CASES, image_env, observations

DATA = Path(__file__).parent / "data"
ALGORITHMS = {"SAC": SAC, "TD3": TD3, "DDPG": DDPG, "TQC": TQC, "CrossQ": CrossQ}


def make_env(case):
    import gymnasium as gym

    return image_env() if case.pixels else gym.make("Pendulum-v1")


@pytest.fixture
def one_thread():
    """The zips were made with one torch thread; orthogonal initializations (QR) differ in the last
    bits with another thread count, so a fresh build is compared under the same count."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_saved_model_of_0_1_0_loads_bit_identically(case, one_thread):
    algorithm = ALGORITHMS[case.algorithm]
    env = make_env(case)
    loaded = algorithm.load(DATA / f"{case.name}.zip", env=env, device="cpu")
    assert pruned_weights_are_zero(loaded.policy)
    expected = np.load(DATA / "saved_model_predictions.npz")[case.name]
    # The predictions to float32 rounding: CPU kernels differ in the last bits between instruction
    # sets (the pixel cases' convolutions on AVX-512 against the AVX2 machine that wrote the zips).
    np.testing.assert_allclose(
        loaded.predict(observations(env, case.seed), deterministic=True)[0], expected, rtol=0, atol=1e-5
    )

    built = algorithm(case.policy, env, policy_kwargs=dict(case.policy_kwargs), seed=case.seed, **case.algorithm_kwargs)
    saved_state, built_state = loaded.policy.state_dict(), built.policy.state_dict()
    assert list(built_state) == list(saved_state)  # the same tensors under the same names
    compared = [name for name in saved_state if case.train_steps == 0 or name.endswith("_mask") or "indices" in name]
    assert any(name.endswith("_mask") or "indices" in name for name in compared)
    for name in compared:
        assert torch.equal(built_state[name], saved_state[name]), name
