"""RecurrentPPO with ``SparseSimBaPolicy``: SimBa encoder, then LSTM, then head, per network; masks
exact through training and save/load; dynamic topologies; diagnostics; learning on CartPole."""

import json
import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from sb3_contrib import RecurrentPPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.logger import configure
from torch import nn

from sb3_sparse import PlasticityCallback, train
from sb3_sparse.hyperparams import algorithm_kwargs, environment_settings
from sb3_sparse.policies.recurrent import SparseSimBaRecurrentPolicy
from sb3_sparse.run_directory import read_csv_rows
from sb3_sparse.sparsity import named_masks, pruned_weights_are_zero

SIZES = dict(actor_hidden_dim=16, critic_hidden_dim=32, critic_num_blocks=1, lstm_hidden_size=8)


def make_model(**policy_kwargs):
    return RecurrentPPO(
        "SparseSimBaPolicy", "CartPole-v1", n_steps=64, batch_size=32, n_epochs=2, seed=0,
        policy_kwargs=dict(SIZES, **policy_kwargs),
    )  # fmt: skip


def test_each_network_is_encoder_then_lstm_then_head_and_keeps_its_masks(tmp_path):
    model = make_model()
    policy = model.policy
    assert isinstance(policy, SparseSimBaRecurrentPolicy)
    assert (policy.lstm_actor.input_size, policy.lstm_critic.input_size) == (16, 32)  # each reads its own encoder
    assert policy.pi_features_extractor.input_stage.normalizer is policy.vf_features_extractor.input_stage.normalizer
    # Encoders (features_extractor is the policy's) and heads are masked; the LSTMs stay dense.
    masked = {name.split(".")[0] for name, _, _ in named_masks(policy)}
    assert (
        {"features_extractor", "vf_features_extractor"}
        <= masked
        <= {"features_extractor", "vf_features_extractor", "action_net", "value_net"}
    )
    assert not any(name.startswith("lstm") for name in masked)
    model.learn(256)
    assert pruned_weights_are_zero(policy)
    assert policy.observation_normalizer.obs_count > 256
    assert "policy LSTM (dense)" in policy.format_density_report()

    model.save(tmp_path / "model.zip")
    loaded = RecurrentPPO.load(tmp_path / "model.zip", env=gym.make("CartPole-v1"))
    for key, value in policy.state_dict().items():
        assert torch.equal(value, loaded.policy.state_dict()[key]), key
    observations = np.stack([gym.make("CartPole-v1").reset(seed=seed)[0] for seed in range(3)])
    starts = np.ones(3, dtype=bool)
    assert np.array_equal(
        model.predict(observations, episode_start=starts, deterministic=True)[0],
        loaded.predict(observations, episode_start=starts, deterministic=True)[0],
    )
    loaded.learn(128)
    assert pruned_weights_are_zero(loaded.policy)


def test_a_dynamic_topology_moves_the_encoders_masks():
    model = make_model(sparse_backend="masked", exact_masks=True, topology="set", topology_kwargs=dict(update_interval=3))
    before = {name: mask.clone() for name, _, mask in named_masks(model.policy)}
    model.learn(256)
    after = {name: mask for name, _, mask in named_masks(model.policy)}
    assert any(not torch.equal(before[name], after[name]) for name in before)
    assert all(int(before[name].sum()) == int(after[name].sum()) for name in before)
    assert pruned_weights_are_zero(model.policy)
    assert model.policy.topology_statistics().keys() == {"actor", "critic"}


def test_plasticity_diagnostics_read_the_recurrent_networks(tmp_path):
    model = make_model()
    model.set_logger(configure(str(tmp_path), ["csv"]))
    model.learn(128, callback=PlasticityCallback(freq=64, batch_size=32, interference_samples=4))
    rows = [row for row in read_csv_rows(tmp_path / "progress.csv") if row.get("plasticity/actor/srank")]
    assert len(rows) == 2
    for net in ("actor", "critic"):
        assert 1 <= float(rows[-1][f"plasticity/{net}/srank"]) <= 32
        assert math.isfinite(float(rows[-1][f"plasticity/{net}/dormant_ratio_0.0"]))


def test_lstm_arguments_are_checked_at_construction():
    with pytest.raises(ValueError, match="lstm_hidden_size must be"):
        make_model(lstm_hidden_size=0)
    with pytest.raises(ValueError, match="shared_lstm must be False, got True"):
        make_model(shared_lstm=True)


@pytest.mark.slow
def test_recurrent_ppo_learns_cartpole():
    """ppo_lstm.yml's CartPole-v1 entry (its 4 environments, 10k steps): measured 170.0 +/- 13.6."""
    torch.set_num_threads(1)
    policy, budget, kwargs = algorithm_kwargs("ppo_lstm", "CartPole-v1", action_dim=1)
    n_envs = environment_settings("ppo_lstm", "CartPole-v1").n_envs
    model = RecurrentPPO(policy, make_vec_env("CartPole-v1", n_envs=n_envs, seed=0), seed=0, **kwargs)
    model.learn(budget)
    mean_return, _ = evaluate_policy(model, gym.make("CartPole-v1"), n_eval_episodes=10)
    assert mean_return > 120, mean_return  # a random policy: about 22
    assert all(
        not isinstance(m, nn.LSTM) or m.weight_hh_l0.count_nonzero() == m.weight_hh_l0.numel() for m in model.policy.modules()
    )


def test_runner_trains_evaluates_and_saves_the_ppo_lstm_entry(tmp_path):
    """The runner's evaluations (each 2 episodes, the LSTM states carried through them) and final
    model, from ppo_lstm.yml with a short budget; the saved model's masks are exact."""
    run_dir = train.main(
        ["--algo", "ppo_lstm", "--env", "CartPole-v1", "-n", "512", "--eval-freq", "256", "--eval-episodes", "2",
         "--final-eval-episodes", "2", "--diagnostics-freq", "256", "--output-dir", str(tmp_path / "run"),
         "--no-progress-bar", "--verbose", "0", "-params", "n_steps:32", "n_epochs:2"]
    )  # fmt: skip
    result = json.loads((run_dir / "result.json").read_text())
    assert result["agent_steps"] >= 512 and result["nonzero_parameters"] < result["parameters"]
    assert len(read_csv_rows(run_dir / "evaluations.csv")) >= 2
    assert any(row.get("plasticity/actor/srank") for row in read_csv_rows(run_dir / "progress.csv"))
    model = RecurrentPPO.load(run_dir / "model.zip", device="cpu")
    assert isinstance(model.policy, SparseSimBaRecurrentPolicy) and pruned_weights_are_zero(model.policy)
    # Static masks: the loaded ones are those the same entry and seed draw at construction.
    policy, _, kwargs = algorithm_kwargs("ppo_lstm", "CartPole-v1", action_dim=1)
    drawn = {name: mask for name, _, mask in named_masks(RecurrentPPO(policy, "CartPole-v1", seed=0, **kwargs).policy)}
    loaded = {name: mask for name, _, mask in named_masks(model.policy)}
    assert drawn.keys() == loaded.keys() and all(torch.equal(drawn[name], loaded[name]) for name in drawn)
