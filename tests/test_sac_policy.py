"""SparseSimBaPolicy inside real SB3 SAC training loops (tiny networks, short runs)."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from stable_baselines3 import SAC
from stable_baselines3.common.callbacks import EvalCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor

import sb3_sparse
from sb3_sparse import ObservationNormalizerCallback, SparseSimBaPolicy, SparseSimBaTD3Policy
from sb3_sparse.sparsity import density_report, named_masks, pruned_weights_are_zero
from tests.conftest import TINY_SIMBA


def sparse_sac(env="Pendulum-v1", seed=0, **overrides) -> SAC:
    policy_kwargs = dict(
        TINY_SIMBA,
        actor_sparsity=0.8,
        critic_sparsity=0.8,
        optimizer_class=torch.optim.AdamW,
        optimizer_kwargs=dict(weight_decay=1e-2),
    )
    policy_kwargs.update(overrides.pop("policy_kwargs", {}))
    kwargs = dict(learning_starts=50, batch_size=32, gradient_steps=2, seed=seed, policy_kwargs=policy_kwargs)
    kwargs.update(overrides)
    return SAC("SparseSimBaPolicy", env, **kwargs)


def networks(model: SAC) -> dict[str, torch.nn.Module]:
    return {"actor": model.policy.actor, "critic": model.policy.critic, "critic_target": model.policy.critic_target}


def masks_of(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: mask.clone() for name, _, mask in named_masks(module)}


def assert_masks_hold(model: SAC, expected_masks: dict[str, dict[str, torch.Tensor]]) -> None:
    for net_name, net in networks(model).items():
        assert pruned_weights_are_zero(net), f"a pruned weight of {net_name} is not 0"
        current = masks_of(net)
        assert current.keys() == expected_masks[net_name].keys()
        assert all(torch.equal(current[k], expected_masks[net_name][k]) for k in current), f"{net_name} masks changed"


def test_registered_with_sac():
    assert SAC.policy_aliases["SparseSimBaPolicy"] is SparseSimBaPolicy
    assert sb3_sparse.SparseSimBaPolicy is SparseSimBaPolicy


def test_masks_hold_through_training_save_load_and_resume(tmp_path):
    model = sparse_sac()
    initial_masks = {name: masks_of(net) for name, net in networks(model).items()}
    kept_before = {name: [row.kept for row in density_report(net)] for name, net in networks(model).items()}
    # Every critic has masks (on all its residual kernels), the target has the critic's.
    assert len(initial_masks["critic"]) == 2 * 2 and len(initial_masks["actor"]) >= 2
    assert all(torch.equal(initial_masks["critic"][k], initial_masks["critic_target"][k]) for k in initial_masks["critic"])

    model.learn(300)
    assert model._n_updates == 2 * (300 - 50)
    assert_masks_hold(model, initial_masks)
    assert {name: [row.kept for row in density_report(net)] for name, net in networks(model).items()} == kept_before
    # Pruned weights trained for 500 steps under AdamW: their optimizer moments never left 0.
    for net in (model.policy.actor, model.policy.critic):
        for _, parameter, mask in named_masks(net):
            state = net.optimizer.state[parameter]
            assert not state["exp_avg"][mask == 0].any() and not state["exp_avg_sq"][mask == 0].any()

    path = tmp_path / "sac_sparse.zip"
    model.save(path)
    loaded = SAC.load(path, env=gym.make("Pendulum-v1"))
    assert_masks_hold(loaded, initial_masks)
    for key, value in model.policy.state_dict().items():
        assert torch.equal(value, loaded.policy.state_dict()[key]), key
    assert loaded.policy.architecture == model.policy.architecture
    stats_before = loaded.policy.observation_normalizer.obs_count.clone()

    loaded.learn(200, reset_num_timesteps=False)
    assert_masks_hold(loaded, initial_masks)
    assert float(loaded.policy.observation_normalizer.obs_count) == pytest.approx(float(stats_before) + 200)
    # Training went on: the loaded critic changed.
    assert any(
        not torch.equal(p, q) for p, q in zip(model.policy.critic.parameters(), loaded.policy.critic.parameters(), strict=True)
    )


def test_same_seed_same_masks_different_seed_different_masks():
    def all_masks(seed):
        model = sparse_sac(seed=seed)
        return {f"{net}/{k}": v for net, module in networks(model).items() for k, v in masks_of(module).items()}

    first, again, other = all_masks(1), all_masks(1), all_masks(2)
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)
    # An explicit mask_seed fixes the masks whatever the model seed.
    fixed = [masks_of(sparse_sac(seed=s, policy_kwargs=dict(mask_seed=7)).policy.critic) for s in (1, 2)]
    assert all(torch.equal(fixed[0][k], fixed[1][k]) for k in fixed[0])


def test_observation_statistics_follow_collected_transitions_only():
    env = make_vec_env("Pendulum-v1", n_envs=2, seed=0)
    model = sparse_sac(env, learning_starts=40, gradient_steps=1)
    model.learn(100)  # 50 vector steps, 2 envs: 40 random warm-up transitions included
    normalizer = model.policy.observation_normalizer
    assert float(normalizer.obs_count) == pytest.approx(100 + 1e-4)
    # The replay buffer holds exactly the observations the policy acted on.
    acted_on = model.replay_buffer.observations[: model.replay_buffer.pos].reshape(-1, 3)
    np.testing.assert_allclose(normalizer.obs_mean.numpy(), acted_on.mean(axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(normalizer.obs_var.numpy(), acted_on.var(axis=0), rtol=1e-4)

    snapshot = {k: v.clone() for k, v in model.policy.state_dict().items() if ".normalizer." in k}
    model.predict(env.reset(), deterministic=True)
    model.predict(env.reset(), deterministic=False)
    evaluate_policy(model, env, n_eval_episodes=1)
    model.train(gradient_steps=3, batch_size=16)
    for key, value in model.policy.state_dict().items():
        if ".normalizer." in key:
            assert torch.equal(value, snapshot[key]), f"{key} changed outside data collection"
    # Actor, critics and target read one shared normalizer (each has its own input stage, as SB3's extractors).
    policy = model.policy
    normalizer = policy.actor.features_extractor.normalizer
    assert policy.critic.features_extractor.normalizer is normalizer is policy.critic_target.features_extractor.normalizer


def test_normalization_is_applied_to_inputs():
    model = sparse_sac()
    model.learn(60)
    obs = torch.as_tensor(model.replay_buffer.observations[:8, 0])
    normalizer = model.policy.observation_normalizer
    expected = (obs - normalizer.obs_mean.float()) / torch.sqrt(normalizer.obs_var.float() + 1e-8)
    torch.testing.assert_close(model.policy.actor.extract_features(obs, model.policy.actor.features_extractor), expected)


def test_explicit_normalizer_callback_and_eval_callback_do_not_double_count(tmp_path):
    model = sparse_sac(learning_starts=30)
    eval_callback = EvalCallback(Monitor(gym.make("Pendulum-v1")), eval_freq=40, n_eval_episodes=1, log_path=str(tmp_path))
    model.learn(80, callback=[ObservationNormalizerCallback(), eval_callback])
    assert float(model.policy.observation_normalizer.obs_count) == pytest.approx(80 + 1e-4)
    assert len(eval_callback.evaluations_results) == 2


def test_other_policies_get_no_normalizer_callback():
    model = SAC("MlpPolicy", "Pendulum-v1", learning_starts=20, policy_kwargs=dict(net_arch=[8]))
    model.learn(40)
    assert not isinstance(model._init_callback(None), ObservationNormalizerCallback)
    assert not hasattr(model.policy, "observation_normalizer")


def test_training_on_never_updated_statistics_fails_loudly():
    model = sparse_sac()
    env = model.get_env()
    obs = env.reset()
    for _ in range(10):  # a hand-written loop that forgets the statistics
        action = np.array([env.action_space.sample()])
        next_obs, reward, done, info = env.step(action)
        model.replay_buffer.add(obs, next_obs, action, reward, done, info)
        obs = next_obs
    with pytest.raises(RuntimeError, match="update_observation_statistics"):
        model.train(gradient_steps=1, batch_size=4)


def test_without_normalization_policy_uses_raw_observations():
    model = sparse_sac(policy_kwargs=dict(normalize_observations=False))
    assert model.policy.observation_normalizer is None
    model.learn(80)
    with pytest.raises(RuntimeError, match="normalize_observations=False"):
        model.policy.update_observation_statistics(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="normalize_observations=True"):
        model.learn(10, callback=ObservationNormalizerCallback())


def test_policy_save_and_load_alone(tmp_path):
    model = sparse_sac(policy_kwargs=dict(n_critics=1, exact_masks=True))
    model.learn(80)
    model.policy.save(tmp_path / "policy.pth")
    policy = SparseSimBaPolicy.load(tmp_path / "policy.pth")
    assert policy.architecture == model.policy.architecture and len(policy.critic.q_networks) == 1
    for key, value in model.policy.state_dict().items():
        assert torch.equal(value, policy.state_dict()[key]), key
    obs = np.zeros((1, 3), dtype=np.float32)
    assert np.allclose(policy.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0])


@pytest.mark.parametrize(
    ("policy_kwargs", "message"),
    [
        (dict(actor_sparsity=1.0), r"actor_sparsity must be in \[0, 1\), got 1.0"),
        (dict(critic_sparsity=1.2), r"critic_sparsity must be in \[0, 1\), got 1.2"),
        (dict(critic_sparsity=-0.1), r"critic_sparsity must be in \[0, 1\), got -0.1"),
        (dict(actor_hidden_dim=0), "actor_hidden_dim must be an integer >= 1, got 0"),
        (dict(critic_hidden_dim=-5), "critic_hidden_dim must be an integer >= 1, got -5"),
        (dict(actor_num_blocks=-1), "actor_num_blocks must be an integer >= 0, got -1"),
        (dict(critic_num_blocks=1.5), "critic_num_blocks must be an integer >= 0, got 1.5"),
        (dict(n_critics=0), "n_critics must be an integer >= 1, got 0"),
        (dict(mask_seed=-3), "mask_seed must be None or an integer >= 0, got -3"),
        (dict(normalize_observations="yes"), "normalize_observations must be True or False, got 'yes'"),
    ],
)
def test_bad_policy_kwargs_fail_at_construction(policy_kwargs, message):
    with pytest.raises(ValueError, match=message):
        SAC("SparseSimBaPolicy", "Pendulum-v1", policy_kwargs=policy_kwargs)


def test_unknown_policy_kwarg_is_not_ignored():
    with pytest.raises(TypeError, match="unknown policy_kwargs 'hidden_dims'"):
        SAC("SparseSimBaPolicy", "Pendulum-v1", policy_kwargs=dict(hidden_dims=[64, 64]))


def test_gsde_trains_with_the_sparse_mean_head_and_is_refused_where_sb3_has_none():
    model = SAC(
        "SparseSimBaPolicy", "Pendulum-v1", use_sde=True, learning_starts=20, batch_size=16, policy_kwargs=dict(TINY_SIMBA)
    )
    model.learn(60)
    assert model.policy.actor.use_sde and model.policy.actor.get_std().shape == (16, 1)
    assert pruned_weights_are_zero(model.policy)
    with pytest.raises(ValueError, match="with use_sde=True, exact_log_prob must be False"):
        SAC("SparseSimBaPolicy", "Pendulum-v1", use_sde=True, policy_kwargs=dict(TINY_SIMBA, exact_log_prob=True))
    with pytest.raises(ValueError, match="does not support gSDE: use_sde must be False"):
        SparseSimBaTD3Policy(spaces.Box(-1, 1, (3,)), spaces.Box(-1, 1, (1,)), lambda _: 1e-3, use_sde=True)


@pytest.mark.parametrize(
    ("observation_space", "action_space", "message"),
    [
        (spaces.Dict({"a": spaces.Box(-1, 1, (3,))}), spaces.Box(-1, 1, (2,)), "Dict observation space.*MultiInputPolicy"),
        (spaces.Box(-1, 1, (3,)), spaces.Discrete(2), "Box \\(continuous\\) action space, got Discrete"),
    ],
)
def test_unsupported_spaces_fail_at_construction(observation_space, action_space, message):
    with pytest.raises(ValueError, match=message):
        SparseSimBaPolicy(observation_space, action_space, lambda _: 1e-3)
