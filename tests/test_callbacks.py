"""PlasticityCallback and ResetCallback in real SB3 training loops."""

import csv
import math

import numpy as np
import pytest
import torch
from sb3_contrib import ARS, TQC, CrossQ
from stable_baselines3 import DDPG, SAC, TD3
from stable_baselines3.common.logger import configure
from stable_baselines3.common.noise import NormalActionNoise

from sb3_sparse.callbacks import PlasticityCallback, ResetCallback
from sb3_sparse.sparsity import named_masks, pruned_weights_are_zero
from tests.conftest import TINY_SIMBA

TAUS = (0.0, 0.1, 0.2)
METRICS = [f"dormant_ratio_{tau}" for tau in TAUS] + ["srank", "feature_norm", "param_norm", "grad_norm", "grad_interference"]
EXPECTED_KEYS = [f"plasticity/{net}/{metric}" for net in ("actor", "critic") for metric in METRICS] + [
    f"sparsity/{net}/density" for net in ("actor", "critic")
]
SPARSE = dict(**TINY_SIMBA, actor_sparsity=0.8, critic_sparsity=0.8)
TINY_MLP = dict(net_arch=[16, 16])


def make_model(algorithm=SAC, policy="SparseSimBaPolicy", policy_kwargs=None, seed=0, **kwargs):
    if policy_kwargs is None:  # a copy: SB3 writes into the dict it is given (use_sde)
        policy_kwargs = dict(SPARSE if policy == "SparseSimBaPolicy" else TINY_MLP)
    if algorithm in (TD3, DDPG):
        kwargs.setdefault("action_noise", NormalActionNoise(np.zeros(1), 0.1 * np.ones(1)))
    defaults = dict(learning_starts=50, batch_size=32, gradient_steps=2, seed=seed)
    return algorithm(policy, "Pendulum-v1", policy_kwargs=policy_kwargs, **{**defaults, **kwargs})


def read_csv(path):
    with open(path) as file:
        return list(csv.DictReader(file))


@pytest.mark.parametrize(
    "algorithm, policy",
    [
        (SAC, "SparseSimBaPolicy"),
        (SAC, "MlpPolicy"),
        (TD3, "SparseSimBaPolicy"),
        (DDPG, "SparseSimBaPolicy"),
        (TQC, "SparseSimBaPolicy"),
        (CrossQ, "SparseSimBaPolicy"),
        (TD3, "MlpPolicy"),
    ],
)
def test_every_key_reaches_the_csv_log(algorithm, policy, tmp_path):
    model = make_model(algorithm, policy)
    model.set_logger(configure(str(tmp_path), ["csv"]))
    callback = PlasticityCallback(freq=100, batch_size=64, interference_samples=8)
    model.learn(200, callback=callback)
    rows = [row for row in read_csv(tmp_path / "progress.csv") if row.get("plasticity/actor/srank")]
    assert len(rows) == 2  # at steps 100 and 200
    for key in EXPECTED_KEYS:
        values = [float(row[key]) for row in rows]
        assert all(math.isfinite(value) for value in values), (key, values)
    last = rows[-1]
    for net in ("actor", "critic"):
        assert (
            0.0
            <= float(last[f"plasticity/{net}/dormant_ratio_0.0"])
            <= float(last[f"plasticity/{net}/dormant_ratio_0.2"])
            <= 1
        )
        assert 1 <= float(last[f"plasticity/{net}/srank"]) <= 64
        assert float(last[f"plasticity/{net}/grad_norm"]) > 0  # training ran between the two logs
        assert -1 <= float(last[f"plasticity/{net}/grad_interference"]) <= 1
    expected_density = 0.2 if policy == "SparseSimBaPolicy" else 1.0
    assert float(last["sparsity/critic/density"]) == pytest.approx(expected_density, abs=0.02)


def test_crossq_batch_renorm_critic_logs_nan_interference(tmp_path):
    """The exact Gram covers Linear and LayerNorm only: BatchRenorm gets NaN, not a wrong number."""
    model = make_model(CrossQ, "MlpPolicy")
    callback = PlasticityCallback(freq=100, batch_size=32, interference_samples=4)
    model.learn(100, callback=callback)
    values = callback.log_diagnostics()
    assert math.isnan(values["plasticity/critic/grad_interference"])
    assert math.isfinite(values["plasticity/critic/srank"])


@pytest.mark.parametrize("policy", ["SparseSimBaPolicy", "MlpPolicy"])
def test_training_is_identical_with_and_without_the_callback(policy):
    def train(callback):
        model = make_model(SAC, policy)
        model.learn(250, callback=callback)
        return model

    plain = train(None)
    callback = PlasticityCallback(freq=60, batch_size=64, interference_samples=8)
    watched = train(callback)
    assert callback.last_actor_cosines is not None  # it did measure, 4 times
    for (name, a), b in zip(plain.policy.state_dict().items(), watched.policy.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    assert watched.policy.training is plain.policy.training
    assert watched.policy.actor.training is plain.policy.actor.training
    assert np.array_equal(plain.replay_buffer.observations, watched.replay_buffer.observations)


def test_interference_matrices_are_saved(tmp_path):
    model = make_model(SAC)
    model.learn(120, callback=PlasticityCallback(freq=60, interference_samples=5, save_interference_dir=tmp_path))
    files = sorted(tmp_path.glob("interference_*.npy"))
    assert [f.name for f in files] == ["interference_120.npy", "interference_60.npy"]
    matrix = np.load(files[0])
    assert matrix.shape == (5, 5)
    np.testing.assert_allclose(np.diag(matrix), 1.0)
    np.testing.assert_allclose(matrix, matrix.T)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(freq=0), "freq must be an integer >= 1, got 0"),
        (dict(batch_size=1), "batch_size must be an integer >= 2, got 1"),
        (dict(interference_samples=1), "interference_samples must be 0 .off. or >= 2, got 1"),
        (dict(taus=(0.1, 1.5)), r"taus must be thresholds in \[0, 1\), got \(0.1, 1.5\)"),
        (dict(srank_delta=-0.1), r"srank_delta must be in \[0, 1\), got -0.1"),
    ],
)
def test_plasticity_callback_rejects_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PlasticityCallback(**kwargs)


def test_plasticity_callback_needs_a_replay_or_rollout_buffer():
    model = ARS("LinearPolicy", "Pendulum-v1", n_delta=2)
    with pytest.raises(ValueError, match=r"needs an algorithm with a replay buffer .* or a rollout buffer .*, got ARS"):
        model.learn(400, callback=PlasticityCallback())


def test_reset_reinitializes_keeps_masks_and_clears_optimizer_state():
    model = make_model(SAC)
    model.learn(100)
    policy = model.policy
    masks = {name: mask.clone() for name, _, mask in named_masks(policy)}
    before = {name: p.detach().clone() for name, p in policy.named_parameters()}
    statistics = policy.observation_normalizer.obs_mean.clone()
    assert policy.critic.optimizer.state and policy.actor.optimizer.state
    callback = ResetCallback(interval=1000, networks=("critic",))
    callback.init_callback(model)
    callback.reset()
    assert not policy.critic.optimizer.state and policy.actor.optimizer.state  # only the critic's
    changed = {name for name, p in policy.named_parameters() if not torch.equal(p, before[name])}
    assert changed and all(name.startswith(("critic.", "critic_target.")) for name in changed)
    assert any(name.startswith("critic.q_networks.0.encoder.blocks.0") for name in changed)
    assert {name: mask for name, _, mask in named_masks(policy)}.keys() == masks.keys()
    assert all(torch.equal(mask, masks[name]) for name, _, mask in named_masks(policy))
    assert pruned_weights_are_zero(policy.critic)
    for a, b in zip(policy.critic.parameters(), policy.critic_target.parameters(), strict=True):
        assert torch.equal(a, b)  # the target starts from the reset network
    assert torch.equal(policy.observation_normalizer.obs_mean, statistics)
    model.learn(100, reset_num_timesteps=False)  # training goes on with the masks in place
    assert pruned_weights_are_zero(policy.critic) and pruned_weights_are_zero(policy.actor)


def test_reset_of_chosen_layers_only():
    model = make_model(SAC)
    model.learn(100)
    critic = model.policy.critic
    before = {name: p.detach().clone() for name, p in critic.named_parameters()}
    callback = ResetCallback(interval=1000, networks=("critic",), layers=[r"q_networks\.\d+\.value"])
    callback.init_callback(model)
    callback.reset()
    changed = {name for name, p in critic.named_parameters() if not torch.equal(p, before[name])}
    assert changed == {f"q_networks.{i}.value.{kind}" for i in (0, 1) for kind in ("weight", "bias")}
    for q_network in critic.q_networks:  # the heads' own initialization: orthogonal rows, zero bias
        head = q_network.value
        torch.testing.assert_close(head.weight @ head.weight.T, torch.eye(1))
        assert torch.equal(head.bias, torch.zeros_like(head.bias))


def test_resets_fire_every_interval_during_training():
    model = make_model(SAC)
    callback = ResetCallback(interval=60, networks=("actor", "critic"))
    model.learn(200, callback=callback)
    assert callback.num_resets == 3
    assert all(pruned_weights_are_zero(net) for net in (model.policy.actor, model.policy.critic, model.policy.critic_target))


def test_reset_callback_rejects_bad_input():
    with pytest.raises(ValueError, match="interval must be an integer >= 1, got 0"):
        ResetCallback(interval=0)
    with pytest.raises(ValueError, match=r"subset of \('actor', 'critic'\), got \('policy',\)"):
        ResetCallback(interval=10, networks=("policy",))
    model = make_model(SAC)
    with pytest.raises(ValueError, match=r"layers \['nothing'\] match no submodule; names are \['features_extractor'"):
        model.learn(10, callback=ResetCallback(interval=10, layers=["nothing"]))
