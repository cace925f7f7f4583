"""The sparse SimBa policies of TD3, DDPG, TQC and CrossQ in real training loops."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from sb3_contrib import ARS, TQC, CrossQ
from stable_baselines3 import DDPG, SAC, TD3
from stable_baselines3.common.callbacks import EvalCallback, StopTrainingOnRewardThreshold
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.noise import NormalActionNoise

from sb3_sparse import SparseSimBaCrossQPolicy, SparseSimBaPolicy, SparseSimBaTD3Policy, SparseSimBaTQCPolicy
from sb3_sparse.hyperparams import algorithm_kwargs
from sb3_sparse.sparsity import named_masks, pruned_weights_are_zero
from tests.conftest import TINY_SIMBA

ALGORITHMS = [TD3, DDPG, TQC, CrossQ]
POLICY_CLASSES = {
    SAC: SparseSimBaPolicy,
    TD3: SparseSimBaTD3Policy,
    DDPG: SparseSimBaTD3Policy,
    TQC: SparseSimBaTQCPolicy,
    CrossQ: SparseSimBaCrossQPolicy,
}
# Networks each algorithm trains or tracks: every one of them must keep its masks.
NETWORKS = {
    SAC: ("actor", "critic", "critic_target"),
    TD3: ("actor", "actor_target", "critic", "critic_target"),
    DDPG: ("actor", "actor_target", "critic", "critic_target"),
    TQC: ("actor", "critic", "critic_target"),
    CrossQ: ("actor", "critic"),
}


def make_model(algorithm, env="Pendulum-v1", seed=0, policy_kwargs=None, **kwargs):
    if algorithm in (TD3, DDPG):
        kwargs.setdefault("action_noise", NormalActionNoise(np.zeros(1), 0.1 * np.ones(1)))
    policy_kwargs = {**TINY_SIMBA, "actor_sparsity": 0.8, "critic_sparsity": 0.8, **(policy_kwargs or {})}
    defaults = dict(learning_starts=50, batch_size=32, gradient_steps=2, seed=seed)
    return algorithm("SparseSimBaPolicy", env, policy_kwargs=policy_kwargs, **{**defaults, **kwargs})


def all_masks(model, algorithm):
    return {
        f"{net}/{name}": mask.clone()
        for net in NETWORKS[algorithm]
        for name, _, mask in named_masks(getattr(model.policy, net))
    }


@pytest.mark.parametrize("algorithm", [*ALGORITHMS, SAC])
def test_policy_string_resolves_to_the_algorithms_policy(algorithm):
    assert algorithm.policy_aliases["SparseSimBaPolicy"] is POLICY_CLASSES[algorithm]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_masks_hold_through_training_save_load_and_resume(algorithm, tmp_path):
    model = make_model(algorithm)
    masks = all_masks(model, algorithm)
    # Actor and every critic are pruned; targets start with the same masks as their source.
    assert any(k.startswith("actor/") for k in masks) and any(k.startswith("critic/") for k in masks)
    for target in ("actor_target", "critic_target"):
        if target in NETWORKS[algorithm]:
            source = target.removesuffix("_target")
            assert all(torch.equal(masks[k], masks[k.replace(source, target, 1)]) for k in masks if k.startswith(source + "/"))

    model.learn(250)
    for net in NETWORKS[algorithm]:
        assert pruned_weights_are_zero(getattr(model.policy, net)), net
    assert all(torch.equal(masks[k], v) for k, v in all_masks(model, algorithm).items())

    model.save(tmp_path / "model.zip")
    loaded = algorithm.load(tmp_path / "model.zip", env=gym.make("Pendulum-v1"))
    assert type(loaded.policy) is POLICY_CLASSES[algorithm]
    for key, value in model.policy.state_dict().items():
        assert torch.equal(value, loaded.policy.state_dict()[key]), key
    loaded.learn(150, reset_num_timesteps=False)
    for net in NETWORKS[algorithm]:
        assert pruned_weights_are_zero(getattr(loaded.policy, net)), net
    assert all(torch.equal(masks[k], v) for k, v in all_masks(loaded, algorithm).items())
    assert float(loaded.policy.observation_normalizer.obs_count) == pytest.approx(250 + 150 + 1e-4)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_same_seed_same_masks(algorithm):
    first, again, other = (all_masks(make_model(algorithm, seed=seed), algorithm) for seed in (3, 3, 4))
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)


def test_ddpg_uses_one_critic_and_tqc_quantiles():
    assert len(make_model(DDPG).policy.critic.q_networks) == 1
    tqc = make_model(TQC, policy_kwargs=dict(n_quantiles=7, n_critics=3))
    quantiles = tqc.policy.critic(torch.zeros(4, 3), torch.zeros(4, 1))
    assert quantiles.shape == (4, 3, 7) and tqc.policy.critic.quantiles_total == 21


def test_unsupported_algorithms_name_the_supported_ones():
    supported = "SAC, TD3, DDPG, PPO, A2C, DQN, TQC, CrossQ, TRPO, MaskablePPO, QRDQN and RecurrentPPO"
    with pytest.raises(ValueError, match=f"does not support ARS: .* is for {supported}"):
        ARS("SparseSimBaPolicy", "Pendulum-v1")
    with pytest.raises(ValueError, match="SparseSimBaCnnPolicy does not support CrossQ"):
        CrossQ("SparseSimBaCnnPolicy", "Pendulum-v1")


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_bad_input_fails_at_construction(algorithm):
    with pytest.raises(ValueError, match=r"critic_sparsity must be in \[0, 1\), got 1.5"):
        make_model(algorithm, policy_kwargs=dict(critic_sparsity=1.5))


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", [SAC, *ALGORITHMS])
def test_small_sparse_simba_learns_pendulum(algorithm, tmp_path):
    """The Pendulum-v1 entry of each package hyperparameter file (small sparse networks, sparsity 0.8)
    passes a mean return of -400 within its budget (SAC's 6k steps, the others' 10k)."""
    algo = algorithm.__name__.lower()
    policy, n_timesteps, kwargs = algorithm_kwargs(algo, "Pendulum-v1", action_dim=1)
    assert n_timesteps == (6_000 if algorithm is SAC else 10_000)
    assert kwargs["policy_kwargs"]["critic_sparsity"] == kwargs["policy_kwargs"]["actor_sparsity"] == 0.8
    model = algorithm(policy, "Pendulum-v1", seed=0, **kwargs)
    stop = StopTrainingOnRewardThreshold(reward_threshold=-400, verbose=0)
    eval_callback = EvalCallback(
        Monitor(gym.make("Pendulum-v1")), eval_freq=1000, n_eval_episodes=10, callback_on_new_best=stop, log_path=str(tmp_path)
    )
    model.learn(n_timesteps, callback=eval_callback)
    best = max(float(np.mean(returns)) for returns in eval_callback.evaluations_results)
    assert best > -400, f"best mean return of {len(eval_callback.evaluations_results)} evaluations: {best:.1f}"
    for net in NETWORKS[algorithm]:
        assert pruned_weights_are_zero(getattr(model.policy, net)), net
