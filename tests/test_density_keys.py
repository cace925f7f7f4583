"""One meaning per density key, for every family, in the logs of a plain ``learn()`` (no callback given)."""

import csv

import gymnasium as gym
import pytest
from sb3_contrib import QRDQN, RecurrentPPO
from stable_baselines3 import DQN, PPO, SAC, TD3
from stable_baselines3.common.envs import FakeImageEnv
from stable_baselines3.common.logger import configure

from sb3_sparse.callbacks import PlasticityCallback, sparsity_values
from sb3_sparse.sparsity import overall_density
from tests.conftest import TINY_SIMBA

SPARSE = dict(critic_sparsity=0.8)


def _frames(discrete):
    return FakeImageEnv(screen_height=36, screen_width=36, n_channels=1, discrete=discrete, channel_first=True)


def _pendulum():
    return gym.make("Pendulum-v1", max_episode_steps=20)  # episodes end, so SB3 writes off-policy logs


OFF_POLICY = dict(learning_starts=16, buffer_size=100, batch_size=8, seed=0)  # seeded: an episode ends within the budget
FAMILIES = {
    "sac": lambda: SAC("SparseSimBaPolicy", _pendulum(), policy_kwargs=dict(TINY_SIMBA, **SPARSE), **OFF_POLICY),
    "td3": lambda: TD3("SparseSimBaPolicy", _pendulum(), policy_kwargs=dict(TINY_SIMBA, **SPARSE), **OFF_POLICY),
    "dqn": lambda: DQN("SparseSimBaPolicy", "CartPole-v1", policy_kwargs=dict(critic_hidden_dim=32, **SPARSE), **OFF_POLICY),
    "qrdqn": lambda: QRDQN(
        "SparseSimBaPolicy", "CartPole-v1", policy_kwargs=dict(critic_hidden_dim=32, n_quantiles=5, **SPARSE), **OFF_POLICY
    ),
    "ppo": lambda: PPO(
        "SparseSimBaPolicy", "CartPole-v1", n_steps=32, batch_size=16, seed=0, policy_kwargs=dict(TINY_SIMBA, **SPARSE)
    ),
    "recurrent_ppo": lambda: RecurrentPPO(
        "SparseSimBaPolicy",
        "CartPole-v1",
        n_steps=32,
        batch_size=16,
        policy_kwargs=dict(TINY_SIMBA, lstm_hidden_size=8, **SPARSE),
    ),
    "sac_pixels": lambda: SAC(
        "SparseSimBaCnnPolicy", _frames(False), policy_kwargs=dict(TINY_SIMBA, feature_dim=16, **SPARSE), **OFF_POLICY
    ),
    "dqn_nature_cnn": lambda: DQN(
        "SparseSimBaCnnPolicy", _frames(True), policy_kwargs=dict(critic_hidden_dim=32, feature_dim=16, **SPARSE), **OFF_POLICY
    ),
    "ppo_nature_cnn": lambda: PPO(
        "SparseSimBaCnnPolicy",
        _frames(True),
        n_steps=32,
        batch_size=16,
        policy_kwargs=dict(TINY_SIMBA, feature_dim=16, **SPARSE),
    ),
}


@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_family_logs_the_density_of_what_critic_sparsity_prunes(family, tmp_path):
    model = FAMILIES[family]()
    model.set_logger(configure(str(tmp_path), ["csv"]))
    model.learn(64, log_interval=1)
    rows = list(csv.DictReader((tmp_path / "progress.csv").open()))
    assert rows and all(row["sparsity/critic/density"] for row in rows)  # every row SB3 wrote has it
    logged = float(rows[-1]["sparsity/critic/density"])
    pruned = model.policy.pruned_networks()
    assert logged == pytest.approx(overall_density(pruned["critic"]))
    # critic_sparsity=0.8 over what it prunes (with a dense encoder counted in, DQN's was 0.46-0.49).
    assert logged == pytest.approx(0.2, abs=0.03)
    encoder = "encoder" in pruned
    assert encoder == family.endswith(("pixels", "nature_cnn"))
    if encoder:  # the image encoder apart: dense at the default encoder_sparsity 0
        assert float(rows[-1]["sparsity/encoder/density"]) == 1.0
    assert ("sparsity/actor/density" in rows[-1]) == (family not in ("dqn", "qrdqn", "dqn_nature_cnn"))


def test_the_plasticity_callback_logs_the_same_values_and_topology_keys_are_named_apart(tmp_path):
    model = SAC(
        "SparseSimBaPolicy", "Pendulum-v1", **OFF_POLICY,
        policy_kwargs=dict(TINY_SIMBA, critic_sparsity=0.8, topology="rigl", topology_kwargs=dict(update_interval=5)),
    )  # fmt: skip
    callback = PlasticityCallback(freq=40, batch_size=8, interference_samples=0)
    model.set_logger(configure(str(tmp_path), ["csv"]))
    model.learn(80, callback=callback)
    values = sparsity_values(model.policy)
    assert callback.log_diagnostics()["sparsity/critic/density"] == values["sparsity/critic/density"]
    assert "topology/critic/density" not in values
    mask_density, density = values["topology/critic/mask_density"], values["sparsity/critic/density"]
    assert density == pytest.approx(0.2, abs=0.01)  # a sparsity is over all the parameters of what it prunes
    assert mask_density == pytest.approx(0.154, abs=0.01) and mask_density < density  # over the weights it masks
    assert values["topology/critic/updates"] >= 1
