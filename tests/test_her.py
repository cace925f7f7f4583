"""Dict observations and HER: ``SparseSimBaMultiInputPolicy`` for SAC, TD3, DDPG and TQC on
gymnasium-robotics' FetchReach (the ``robotics`` extra), masks exact, save/load, and learning."""

import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from sb3_contrib import TQC
from stable_baselines3 import DDPG, SAC, TD3, HerReplayBuffer
from stable_baselines3.common.logger import configure
from stable_baselines3.common.noise import NormalActionNoise

from sb3_sparse import PlasticityCallback
from sb3_sparse.hyperparams import ALGORITHMS, algorithm_kwargs
from sb3_sparse.policies.input_stage import NormalizedInput
from sb3_sparse.robotics import register_robotics_envs, success_rate
from sb3_sparse.run_directory import read_csv_rows
from sb3_sparse.sparsity import pruned_weights_are_zero
from tests.conftest import TINY_SIMBA

pytestmark = pytest.mark.skipif(
    not register_robotics_envs(), reason="the robotics extra (gymnasium-robotics) is not installed"
)

HER = dict(replay_buffer_class=HerReplayBuffer, replay_buffer_kwargs=dict(goal_selection_strategy="future", n_sampled_goal=4))


def her_model(algorithm, learning_starts=100, batch_size=64, **kwargs):
    if algorithm in (TD3, DDPG):
        kwargs["action_noise"] = NormalActionNoise(np.zeros(4), 0.1 * np.ones(4))
    return algorithm(
        "SparseSimBaMultiInputPolicy", gym.make("FetchReach-v4"), learning_starts=learning_starts, batch_size=batch_size,
        buffer_size=10_000, seed=0, **HER, **kwargs,
    )  # fmt: skip


@pytest.mark.parametrize("algorithm", [SAC, TD3, DDPG, TQC])
def test_every_off_policy_algorithm_trains_with_her_on_dict_observations(algorithm, tmp_path):
    model = her_model(algorithm, policy_kwargs=dict(TINY_SIMBA))
    extractor = model.policy.actor.features_extractor
    assert isinstance(extractor, NormalizedInput) and extractor.features_dim == 10 + 3 + 3
    for name in ("critic", "critic_target"):  # one normalizer for every network
        assert getattr(model.policy, name).features_extractor.normalizer is extractor.normalizer
    model.learn(250)
    for name in ("actor", "critic", "critic_target"):
        assert pruned_weights_are_zero(getattr(model.policy, name)), name
    normalizer = model.policy.observation_normalizer
    assert normalizer.obs_count > 250  # every collected observation, each key
    # Keys in the space's order: achieved_goal (0:3), desired_goal (3:6), observation (6:16), whose
    # first three are the gripper's position, the achieved goal itself.
    assert torch.allclose(normalizer.obs_mean[0:3], normalizer.obs_mean[6:9])

    model.save(tmp_path / "model.zip")
    loaded = algorithm.load(tmp_path / "model.zip", env=gym.make("FetchReach-v4"))
    observation, _ = gym.make("FetchReach-v4").reset(seed=1)
    assert np.array_equal(
        model.predict(observation, deterministic=True)[0], loaded.predict(observation, deterministic=True)[0]
    )
    assert torch.equal(loaded.policy.observation_normalizer.obs_mean, normalizer.obs_mean)


def test_dict_observations_need_the_multi_input_policy():
    with pytest.raises(ValueError, match=r"got a Dict observation space \(keys .*\): use SparseSimBaMultiInputPolicy"):
        SAC("SparseSimBaPolicy", gym.make("FetchReach-v4"), **HER)
    # The MultiInput policy takes a flat Box too (SB3's default extractor for it: FlattenExtractor).
    assert (
        SAC(
            "SparseSimBaMultiInputPolicy", "Pendulum-v1", policy_kwargs=dict(TINY_SIMBA)
        ).policy.actor.features_extractor.features_dim
        == 3
    )


@pytest.mark.slow
def test_her_on_fetch_reach_succeeds_with_the_sparse_policy():
    """3,000 steps at learning rate 5e-4 (benchmarks/her_fetch_reach.py: plain SB3's MultiInputPolicy
    with the zoo's [64, 64] networks needs about 6,000 for the same success)."""
    torch.set_num_threads(1)
    model = her_model(
        SAC, learning_starts=1000, learning_rate=5e-4, batch_size=256, gamma=0.95, tau=0.05,
        policy_kwargs=dict(actor_hidden_dim=64, critic_hidden_dim=128, critic_num_blocks=1),
    )  # fmt: skip
    model.learn(3000)
    rate = success_rate(model, "FetchReach-v4", episodes=20)
    assert rate >= 0.9, rate


@pytest.mark.parametrize(("algo", "env_id"), [("sac", "FetchReach-v4"), ("tqc", "FetchPush-v4")])
def test_the_zoo_entries_build_her_models(algo, env_id):
    policy, _, kwargs = algorithm_kwargs(algo, env_id, action_dim=4)
    assert policy == "SparseSimBaMultiInputPolicy" and kwargs["replay_buffer_class"] is HerReplayBuffer
    kwargs.update(buffer_size=1000, learning_starts=10)
    model = ALGORITHMS[algo](policy, gym.make(env_id), **kwargs)
    assert isinstance(model.replay_buffer, HerReplayBuffer)
    assert model.policy.architecture.critic_sparsity == 0.8


def test_plasticity_diagnostics_read_dict_observations(tmp_path):
    model = her_model(SAC, policy_kwargs=dict(TINY_SIMBA))
    model.set_logger(configure(str(tmp_path), ["csv"]))
    model.learn(200, callback=PlasticityCallback(freq=100, batch_size=32, interference_samples=4))
    rows = [row for row in read_csv_rows(tmp_path / "progress.csv") if row.get("plasticity/critic/srank")]
    assert len(rows) == 2  # at steps 100 and 200
    for key in ("plasticity/actor/srank", "plasticity/critic/srank", "plasticity/critic/grad_interference"):
        assert math.isfinite(float(rows[-1][key])), key
