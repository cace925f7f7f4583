"""SparseSimBaPolicy for the on-policy (PPO, A2C, TRPO, MaskablePPO) and value-based (DQN, QR-DQN)
algorithms in real training loops: masks exact through training, gradient clipping, save/load and
continued training, every action space, diagnostics, resets and clear errors."""

import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from sb3_contrib import QRDQN, TRPO, MaskablePPO
from sb3_contrib.common.wrappers import ActionMasker
from stable_baselines3 import A2C, DQN, PPO
from stable_baselines3.common.envs import BitFlippingEnv

from sb3_sparse import PlasticityCallback, ResetCallback
from sb3_sparse.policies import (
    SparseSimBaActorCriticPolicy,
    SparseSimBaDQNPolicy,
    SparseSimBaMaskablePolicy,
    SparseSimBaQRDQNPolicy,
)
from sb3_sparse.sparsity import named_masks, pruned_weights_are_zero
from tests.conftest import TINY_SIMBA

ON_POLICY = [PPO, A2C, TRPO, MaskablePPO]
VALUE_BASED = [DQN, QRDQN]
POLICY_CLASSES = {
    PPO: SparseSimBaActorCriticPolicy,
    A2C: SparseSimBaActorCriticPolicy,
    TRPO: SparseSimBaActorCriticPolicy,
    MaskablePPO: SparseSimBaMaskablePolicy,
    DQN: SparseSimBaDQNPolicy,
    QRDQN: SparseSimBaQRDQNPolicy,
}
# Every network of the policy that must keep its masks (value-based: the online network and its target).
TARGETS = {DQN: ("q_net", "q_net_target"), QRDQN: ("quantile_net", "quantile_net_target")}
SPARSE = dict(actor_sparsity=0.8, critic_sparsity=0.8)


class SyntheticEnv(gym.Env):
    """Random observations of any space (flat Box, or Atari-style channel-last uint8 frames), any
    action space, random rewards: 20-step episodes. MaskablePPO: the last action is never valid."""

    def __init__(self, action_space: spaces.Space, observation_space: spaces.Space | None = None) -> None:
        self.observation_space = observation_space or spaces.Box(-1.0, 1.0, (5,), np.float32)
        self.action_space = action_space
        self._steps = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._steps = 0
        return self.observation_space.sample(), {}

    def step(self, action):
        self._steps += 1
        return self.observation_space.sample(), float(self.np_random.normal()), False, self._steps >= 20, {}

    def action_masks(self) -> np.ndarray:
        mask = np.ones(int(self.action_space.n), dtype=bool)
        mask[-1] = False
        return mask


def frame_env():
    return SyntheticEnv(spaces.Discrete(3), spaces.Box(0, 255, (36, 36, 2), np.uint8))


def cartpole(algorithm):
    env = gym.make("CartPole-v1")
    return ActionMasker(env, lambda _: np.ones(2, dtype=bool)) if algorithm is MaskablePPO else env


def make_model(algorithm, env=None, seed=0, policy_kwargs=None, **kwargs):
    env = cartpole(algorithm) if env is None else env
    if algorithm in VALUE_BASED:
        sizes = {"critic_hidden_dim": TINY_SIMBA["critic_hidden_dim"], "critic_num_blocks": 1, "critic_sparsity": 0.8}
        defaults = dict(learning_starts=50, batch_size=32, train_freq=4, target_update_interval=50, seed=seed)
        if algorithm is QRDQN:
            sizes["n_quantiles"] = 5
    else:
        sizes = {**TINY_SIMBA, **SPARSE}
        defaults = dict(n_steps=64, seed=seed) if algorithm is A2C else dict(n_steps=64, batch_size=32, seed=seed)
    if algorithm is TRPO:
        defaults["cg_max_steps"] = 5
    return algorithm("SparseSimBaPolicy", env, policy_kwargs={**sizes, **(policy_kwargs or {})}, **{**defaults, **kwargs})


def networks(model):
    if type(model) in VALUE_BASED:
        return {name: getattr(model.policy, name) for name in TARGETS[type(model)]}
    return {"policy": model.policy}


def all_masks(model):
    return {f"{net}/{name}": mask.clone() for net, module in networks(model).items() for name, _, mask in named_masks(module)}


@pytest.mark.parametrize("algorithm", ON_POLICY + VALUE_BASED)
def test_policy_string_resolves_to_the_algorithms_policy(algorithm):
    assert algorithm.policy_aliases["SparseSimBaPolicy"] is POLICY_CLASSES[algorithm]


@pytest.mark.parametrize("sparse_backend", ["masked", "csr"])
@pytest.mark.parametrize("algorithm", ON_POLICY + VALUE_BASED)
def test_masks_hold_through_training_save_load_and_resume(algorithm, sparse_backend, tmp_path):
    model = make_model(algorithm, policy_kwargs=dict(sparse_backend=sparse_backend))
    masks = all_masks(model)
    if sparse_backend == "masked":  # csr layers store their nonzero weights only: no masks to hold
        assert masks
        if algorithm in VALUE_BASED:  # the target has the online network's masks
            online, target = TARGETS[algorithm]
            assert all(
                torch.equal(v, masks[k.replace(online, target, 1)]) for k, v in masks.items() if k.startswith(online + "/")
            )
    model.learn(300)
    for net, module in networks(model).items():
        assert pruned_weights_are_zero(module), net
    assert all(torch.equal(masks[k], v) for k, v in all_masks(model).items())
    assert model.policy.observation_normalizer.has_statistics

    model.save(tmp_path / "model.zip")
    loaded = algorithm.load(tmp_path / "model.zip", env=cartpole(algorithm))
    assert type(loaded.policy) is POLICY_CLASSES[algorithm]
    for key, value in model.policy.state_dict().items():
        assert torch.equal(value, loaded.policy.state_dict()[key]), key
    observations = torch.as_tensor(np.random.default_rng(0).normal(size=(8, 4)), dtype=torch.float32)
    with torch.no_grad():
        assert torch.equal(model.policy._predict(observations, True), loaded.policy._predict(observations, True))
    count = float(loaded.policy.observation_normalizer.obs_count)
    loaded.learn(200, reset_num_timesteps=False)
    for net, module in networks(loaded).items():
        assert pruned_weights_are_zero(module), net
    assert all(torch.equal(masks[k], v) for k, v in all_masks(loaded).items())
    assert float(loaded.policy.observation_normalizer.obs_count) > count  # statistics still follow the data


@pytest.mark.parametrize(
    "action_space",
    [spaces.Box(-1, 1, (2,)), spaces.Discrete(3), spaces.MultiDiscrete([3, 2]), spaces.MultiBinary(3)],
    ids=["Box", "Discrete", "MultiDiscrete", "MultiBinary"],
)
@pytest.mark.parametrize("algorithm", [PPO, A2C])
def test_on_policy_takes_every_action_space(algorithm, action_space):
    model = make_model(algorithm, env=SyntheticEnv(action_space))
    model.learn(128)
    assert pruned_weights_are_zero(model.policy)
    action, _ = model.predict(np.zeros(5, np.float32), deterministic=True)
    assert action_space.contains(action.astype(action_space.dtype))


def test_maskable_ppo_never_takes_a_masked_action():
    model = make_model(MaskablePPO, env=SyntheticEnv(spaces.Discrete(4)))
    model.learn(128)
    actions = [
        model.predict(np.full(5, v, np.float32), action_masks=np.array([1, 1, 1, 0], bool))[0] for v in np.linspace(-1, 1, 20)
    ]
    assert 3 not in actions and pruned_weights_are_zero(model.policy)


@pytest.mark.parametrize("algorithm", [PPO, DQN])
def test_gradient_clipping_sees_the_masked_gradient(algorithm):
    """The masks apply as backward accumulates each gradient, before the algorithm clips its norm."""
    model = make_model(algorithm, policy_kwargs=dict(normalize_observations=False))
    policy = model.policy
    observations = torch.randn(16, 4)
    if algorithm is PPO:
        _, log_prob, _ = policy.evaluate_actions(observations, torch.zeros(16))
        loss = -(log_prob.mean() + policy.predict_values(observations).mean())
    else:
        loss = policy.q_net(observations).square().mean()
    loss.backward()
    masked = list(named_masks(policy if algorithm is PPO else policy.q_net))
    assert masked
    for name, parameter, mask in masked:
        assert parameter.grad is not None and torch.all(parameter.grad[mask == 0] == 0), name
        assert torch.any(parameter.grad[mask == 1] != 0), name


def test_sparsity_splits_into_the_policy_and_value_networks():
    model = make_model(PPO, policy_kwargs=dict(actor_sparsity=0.9, critic_sparsity=0.5))
    densities = model.policy.densities
    for role, sparsity, network in (("actor", 0.9, "policy"), ("critic", 0.5, "value")):
        shapes = {name: p.numel() for name, p in model.policy._networks()[role].named_parameters()}
        kept = sum(densities[role][name] * count for name, count in shapes.items())
        # The ER budget keeps N - floor(S N) of each tensor (erdos_renyi_densities).
        budget = sum(count - math.floor(sparsity * count) for count in shapes.values())
        assert kept == pytest.approx(budget), network
        assert "head.weight" in densities[role], "the head is in the network's budget"
    assert densities["actor"]["head.weight"] < 1  # 16 -> 2 at 0.9: pruned (the 32 -> 1 value head is ER-dense)
    assert "policy" in model.policy.format_density_report() and "value" in model.policy.format_density_report()
    assert not any("log_std" in name for name, _, _ in named_masks(make_model(PPO, env="Pendulum-v1").policy))


def test_heads_get_sb3s_orthogonal_gains_and_encoders_keep_simbas_initialization():
    torch.manual_seed(0)
    policy = make_model(PPO, policy_kwargs=dict(actor_sparsity=0.0, critic_sparsity=0.0)).policy
    action_weight = policy.action_net.weight
    # Orthogonal rows scaled by 0.01: W W^T = 0.01^2 I (2 actions x 16 features).
    assert torch.allclose(action_weight @ action_weight.T, 1e-4 * torch.eye(2), atol=1e-9)
    assert torch.allclose(policy.value_net.weight.norm(), torch.tensor(1.0))
    assert policy.mlp_extractor.policy_net.final_norm.weight.eq(1).all()  # not touched by ortho_init
    unchanged = make_model(PPO, policy_kwargs=dict(ortho_init=False, actor_sparsity=0.0, critic_sparsity=0.0)).policy
    assert not torch.allclose(unchanged.action_net.weight @ unchanged.action_net.weight.T, 1e-4 * torch.eye(2), atol=1e-9)


def test_plasticity_callback_reads_on_policy_and_value_based_networks():
    ppo_callback = PlasticityCallback(freq=100, batch_size=32, interference_samples=4)
    make_model(PPO).learn(256, callback=ppo_callback)
    values = ppo_callback.log_diagnostics()
    for net in ("actor", "critic"):
        assert 0 <= values[f"plasticity/{net}/dormant_ratio_0.1"] <= 1
        assert values[f"plasticity/{net}/srank"] >= 1 and values[f"plasticity/{net}/grad_norm"] > 0
        assert values[f"sparsity/{net}/density"] == pytest.approx(0.2, abs=0.02)
        assert np.isnan(values[f"plasticity/{net}/grad_interference"])  # no per-sample losses for PPO
    for algorithm in VALUE_BASED:
        callback = PlasticityCallback(freq=100, batch_size=32, interference_samples=8)
        make_model(algorithm).learn(300, callback=callback)
        values = callback.log_diagnostics()
        assert values["plasticity/critic/grad_norm"] > 0 and not any(key.startswith("plasticity/actor") for key in values)
        assert -1 <= values["plasticity/critic/grad_interference"] <= 1  # the Q-network's squared TD errors


@pytest.mark.parametrize("algorithm", [PPO, DQN])
def test_reset_keeps_masks_and_targets(algorithm):
    model = make_model(algorithm)
    model.learn(300)
    masks = all_masks(model)
    before = {name: p.detach().clone() for name, p in model.policy.named_parameters()}
    callback = ResetCallback(interval=10_000, networks=("critic",))
    callback.init_callback(model)
    callback.reset()
    changed = [name for name, p in model.policy.named_parameters() if not torch.equal(p, before[name])]
    assert changed and all(("value" in name) if algorithm is PPO else name.startswith("q_net") for name in changed)
    assert all(torch.equal(masks[k], v) for k, v in all_masks(model).items())
    assert all(pruned_weights_are_zero(module) for module in networks(model).values())
    if algorithm is DQN:
        target = model.policy.q_net_target.state_dict()
        assert all(torch.equal(v, target[k]) for k, v in model.policy.q_net.state_dict().items())


def test_reset_of_a_missing_network_is_refused():
    with pytest.raises(ValueError, match=r"SparseSimBaDQNPolicy has no actor network: networks must be among \('critic',\)"):
        ResetCallback(interval=10, networks=("actor",)).init_callback(make_model(DQN))


def test_qrdqn_quantiles_and_dqn_q_values():
    observations = torch.zeros(3, 4)
    assert make_model(DQN).policy.q_net(observations).shape == (3, 2)
    assert make_model(QRDQN).policy.quantile_net(observations).shape == (3, 5, 2)


def test_bad_input_fails_at_construction():
    with pytest.raises(ValueError, match="does not support gSDE: use_sde must be False"):
        SparseSimBaMaskablePolicy(spaces.Box(-1, 1, (3,)), spaces.Discrete(2), lambda _: 1e-3, use_sde=True)
    with pytest.raises(TypeError, match=r"unknown policy_kwargs 'actor_sparsity' \(did you mean 'critic_sparsity'\?\)"):
        make_model(DQN, policy_kwargs=dict(actor_sparsity=0.5))
    with pytest.raises(ValueError, match=r"net_arch and \[.*'critic_hidden_dim'.*\] both set the sizes"):
        make_model(PPO, policy_kwargs=dict(net_arch=[64, 64], critic_hidden_dim=8))
    with pytest.raises(ValueError, match=r"actor_topology='gmp' changes the number of weights.* got 'csr'"):
        make_model(A2C, policy_kwargs=dict(actor_topology="gmp", sparse_backend="csr"))
    with pytest.raises(ValueError, match=r"critic_sparsity must be in \[0, 1\), got 1.5"):
        make_model(QRDQN, policy_kwargs=dict(critic_sparsity=1.5))
    with pytest.raises(ValueError, match="n_quantiles must be"):
        make_model(QRDQN, policy_kwargs=dict(n_quantiles=0))
    with pytest.raises(ValueError, match="needs a Discrete action space, got Box"):
        SparseSimBaDQNPolicy(spaces.Box(-1, 1, (3,)), spaces.Box(-1, 1, (1,)), lambda _: 1e-3)
    with pytest.raises(ValueError, match=r"got a Dict observation space .* use SparseSimBaMultiInputPolicy"):
        PPO("SparseSimBaPolicy", BitFlippingEnv(n_bits=4))


CNN_KWARGS = dict(critic_hidden_dim=32, critic_num_blocks=1, critic_sparsity=0.8, encoder_sparsity=0.9, feature_dim=64)


def make_cnn_model(algorithm, **kwargs):
    policy_kwargs = dict(CNN_KWARGS)
    if algorithm in VALUE_BASED:
        defaults = dict(learning_starts=30, buffer_size=500, batch_size=16, train_freq=4, target_update_interval=20)
    else:
        policy_kwargs.update(actor_hidden_dim=16, actor_num_blocks=1, actor_sparsity=0.8)
        defaults = dict(n_steps=32) if algorithm is A2C else dict(n_steps=32, batch_size=16)
    return algorithm("SparseSimBaCnnPolicy", frame_env(), policy_kwargs=policy_kwargs, seed=0, **{**defaults, **kwargs})


@pytest.mark.parametrize("algorithm", [PPO, A2C, MaskablePPO, DQN, QRDQN])
def test_cnn_policy_trains_on_frames_keeps_masks_and_loads(algorithm, tmp_path):
    model = make_cnn_model(algorithm)
    masks = all_masks(model)
    assert any("cnn." in name for name in masks), "the convolutions are pruned"
    model.learn(120)
    for net, module in networks(model).items():
        assert pruned_weights_are_zero(module), net
    assert all(torch.equal(masks[k], v) for k, v in all_masks(model).items())
    model.save(tmp_path / "model.zip")
    loaded = algorithm.load(tmp_path / "model.zip", env=frame_env())
    for key, value in model.policy.state_dict().items():
        assert torch.equal(value, loaded.policy.state_dict()[key]), key
    loaded.learn(60, reset_num_timesteps=False)
    assert all(pruned_weights_are_zero(module) for module in networks(loaded).values())
    assert "NatureCNN" in loaded.policy.format_density_report()


@pytest.mark.parametrize("algorithm", [PPO, DQN])
def test_convolutions_get_the_kernel_aware_erdos_renyi_densities(algorithm):
    """ERK: a (n_out, n_in, k_h, k_w) kernel keeps eps (n_in + n_out + k_h + k_w) / (n_in n_out k_h k_w) of its
    weights, one eps for the whole encoder (solved so the encoder keeps N - floor(S N) of each tensor in total)."""
    policy = make_cnn_model(algorithm).policy
    encoder = policy.features_extractor if algorithm is PPO else policy.q_net.features_extractor
    masks = {name: mask for name, _, mask in named_masks(encoder)}
    parameters = dict(encoder.named_parameters())
    ratios = {}
    for name, parameter in parameters.items():
        if parameter.dim() == 4:
            n_out, n_in, k_h, k_w = parameter.shape
            ratios[name] = (n_in + n_out + k_h + k_w) / (n_in * n_out * k_h * k_w)
    assert len(ratios) == 3 and set(ratios) <= set(masks)
    pruned = [name for name in parameters if name in masks]
    kept_budget = sum(p.numel() - math.floor(0.9 * p.numel()) for p in parameters.values())
    dense_count = sum(p.numel() for name, p in parameters.items() if name not in masks)
    raw = {name: sum(parameters[name].shape) / parameters[name].numel() for name in pruned}
    epsilon = (kept_budget - dense_count) / sum(raw[name] * parameters[name].numel() for name in pruned)
    for name, ratio in ratios.items():
        density = float(masks[name].float().mean())
        assert density == pytest.approx(epsilon * ratio, abs=0.03), name  # Bernoulli draws around the ERK density


def test_cnn_policy_refuses_flat_observations_and_normalization():
    with pytest.raises(AssertionError, match="You should use NatureCNN only with images"):  # SB3's own check
        PPO("SparseSimBaCnnPolicy", "CartPole-v1")
    with pytest.raises(ValueError, match="normalize_observations must be False"):
        DQN("SparseSimBaCnnPolicy", frame_env(), policy_kwargs=dict(normalize_observations=True))
