"""Stream AC(lambda): ObGD and traces against hand-computed values, the streaming statistics,
SparseInit against static masks, and real streaming runs with save, load and continue."""

import json
import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3.common.env_util import make_vec_env

from sb3_sparse import StreamAC, pruned_weights_are_zero
from sb3_sparse.sparsity import named_masks, sparse_init_
from sb3_sparse.stream_ac import ObGD, StreamACPolicy
from sb3_sparse.stream_ac.networks import RewardScaler, WelfordStatistics

TINY = dict(hidden_dim=16)


def test_obgd_traces_and_bounded_steps_on_a_tiny_network():
    # v(x) = w . x with w = (1, 2); the value's traces accumulate grad(-v) = -x.
    network = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        network.weight.copy_(torch.tensor([[1.0, 2.0]]))
    optimizer = ObGD(network.parameters(), lr=1.0, gamma=0.5, lamda=0.5, kappa=2.0)

    def transition(x, delta, reset=False):
        optimizer.zero_grad()
        (-network(torch.tensor(x))).sum().backward()
        return optimizer.step(delta, reset=reset)

    # z = (-0.5, 1), |z|_1 = 1.5, M = 1 * 2 * max(0.5, 1) * 1.5 = 3 > 1: step 1/3.
    step = transition([0.5, -1.0], delta=0.5)
    assert step == pytest.approx(1 / 3)
    torch.testing.assert_close(network.weight, torch.tensor([[1 + 1 / 12, 2 - 1 / 6]]))
    # z = 0.25 (-0.5, 1) + (-1, -1) = (-1.125, -0.75), M = 2 * 3 * 1.875 = 11.25: w += (3 / 11.25) z.
    step = transition([1.0, 1.0], delta=-3.0, reset=True)
    assert step == pytest.approx(1 / 11.25)
    torch.testing.assert_close(network.weight, torch.tensor([[1 + 1 / 12 - 0.3, 2 - 1 / 6 - 0.2]]))
    assert not optimizer.state[network.weight]["eligibility_trace"].any()  # reset at the episode's end

    # A small step is not bounded: M = 0.1 * 2 * 1 * 1.5 = 0.3 <= 1, step = lr.
    small = ObGD(network.parameters(), lr=0.1, gamma=0.5, lamda=0.5, kappa=2.0)
    before = network.weight.detach().clone()
    small.zero_grad()
    (-network(torch.tensor([0.5, -1.0]))).sum().backward()
    assert small.step(0.2) == pytest.approx(0.1)
    torch.testing.assert_close(network.weight, before - 0.1 * 0.2 * torch.tensor([[-0.5, 1.0]]))


@pytest.mark.parametrize(
    ("argument", "value", "message"), [("lr", 0.0, "lr must be > 0"), ("kappa", -1.0, "kappa must be > 0")]
)
def test_obgd_rejects_bad_settings(argument, value, message):
    with pytest.raises(ValueError, match=message):
        ObGD(torch.nn.Linear(2, 1).parameters(), **{argument: value})


def test_train_step_is_one_obgd_step_along_the_td_error():
    model = StreamAC("MlpPolicy", "Pendulum-v1", seed=0, policy_kwargs=TINY)
    policy = model.policy
    observation, next_observation = torch.randn(1, 3), torch.randn(1, 3)
    action = torch.tensor([[0.3]])
    value, next_value = float(policy.value(observation).detach()), float(policy.value(next_observation).detach())
    # The critic's trace after one step is grad(-v(s)): computed here on a copy.
    critic_before = [p.detach().clone() for p in policy.critic.parameters()]
    policy.critic.zero_grad()
    (-policy.value(observation)).sum().backward()
    trace = [p.grad.clone() for p in policy.critic.parameters()]
    stats = model.train_step(observation, action, 0.7, next_observation, terminated=False, episode_end=False)
    delta = 0.7 + 0.99 * next_value - value
    assert stats["td_error"] == pytest.approx(delta, rel=1e-5)
    bound = 1.0 * 2.0 * max(abs(delta), 1.0) * sum(float(t.abs().sum()) for t in trace)
    assert stats["critic_step_size"] == pytest.approx(1.0 / bound if bound > 1 else 1.0, rel=1e-5)
    for before, after, z in zip(critic_before, policy.critic.parameters(), trace, strict=True):
        torch.testing.assert_close(after.detach(), before - stats["critic_step_size"] * delta * z)
    # A terminal transition does not bootstrap.
    value = float(policy.value(observation).detach())
    stats = model.train_step(observation, action, 0.7, next_observation, terminated=True, episode_end=True)
    assert stats["td_error"] == pytest.approx(0.7 - value, rel=1e-5)


def test_welford_statistics_match_numpy_and_the_reward_scaler_its_formula():
    samples = np.random.default_rng(0).normal(3.0, 2.0, size=(50, 4))
    statistics = WelfordStatistics(4)
    statistics.update(torch.tensor(samples[0]))
    assert torch.equal(statistics.variance, torch.ones(4, dtype=torch.float64))  # 1 before the second sample
    for sample in samples[1:]:
        statistics.update(torch.tensor(sample))
    np.testing.assert_allclose(statistics.mean.numpy(), samples.mean(axis=0))
    np.testing.assert_allclose(statistics.variance.numpy(), samples.var(axis=0, ddof=1))
    x = torch.tensor(samples[:2], dtype=torch.float32)
    expected = (samples[:2] - samples.mean(axis=0)) / np.sqrt(samples.var(axis=0, ddof=1) + 1e-8)
    np.testing.assert_allclose(statistics(x).numpy(), expected, rtol=1e-5, atol=1e-6)  # float32

    scaler = RewardScaler(gamma=0.5)
    assert scaler.scale(2.0, episode_end=False) == pytest.approx(2.0 / math.sqrt(1 + 1e-8))  # traces: 2
    traces = [2.0, 0.5 * 2.0 + 1.0]  # 2, then 2
    assert scaler.scale(1.0, episode_end=False) == pytest.approx(1.0 / math.sqrt(np.var(traces, ddof=1) + 1e-8))
    traces.append(4.0)  # the episode's last step restarts the sum
    assert scaler.scale(4.0, episode_end=True) == pytest.approx(4.0 / math.sqrt(np.var(traces, ddof=1) + 1e-8))


def test_sparse_init_zeroes_a_fixed_count_of_each_row():
    weight = torch.ones(64, 30)
    sparse_init_(weight, 0.9, torch.Generator().manual_seed(0))
    assert ((weight == 0).sum(dim=1) == math.ceil(0.9 * 30)).all()
    assert not torch.equal(weight[0] == 0, weight[1] == 0)  # each row draws its own positions
    with pytest.raises(ValueError, match=r"sparsity must be in \[0, 1\), got 1.0"):
        sparse_init_(weight, 1.0)


def test_sparse_init_weights_regrow_while_static_masks_hold_through_streaming_and_save_load(tmp_path):
    # SparseInit (the default when no mask is asked for): zeros at initialization that training moves.
    sparse_init = StreamAC("SparseSimBaPolicy", "Pendulum-v1", seed=1, policy_kwargs=TINY)
    hidden = sparse_init.policy.actor.trunk[3].weight
    zeros = hidden.detach() == 0
    assert sparse_init.policy.sparse_init == 0.9 and int(zeros.sum(dim=1)[0]) == math.ceil(0.9 * 16)
    sparse_init.learn(300)
    assert (hidden.detach()[zeros] != 0).any()

    # Static ER masks: pruned weights and their traces stay exactly 0.
    model = StreamAC(
        "SparseSimBaPolicy", "Pendulum-v1", seed=1, policy_kwargs=dict(TINY, actor_sparsity=0.8, critic_sparsity=0.8)
    )
    assert model.policy.sparse_init == 0.0  # the masks replace SparseInit
    model.learn(400)
    for network, optimizer in ((model.policy.actor, model.actor_optimizer), (model.policy.critic, model.critic_optimizer)):
        assert pruned_weights_are_zero(network)
        masks = list(named_masks(network))
        assert masks
        for _, parameter, mask in masks:
            assert not optimizer.state[parameter]["eligibility_trace"][mask == 0].any()

    model.save(tmp_path / "stream_ac")
    loaded = StreamAC.load(tmp_path / "stream_ac", env=gym.make("Pendulum-v1"))
    for (name, saved), restored in zip(model.policy.state_dict().items(), loaded.policy.state_dict().values(), strict=True):
        assert torch.equal(saved, restored), name  # weights, masks and observation statistics
    assert int(loaded.policy.observation_statistics.count) == int(model.policy.observation_statistics.count) > 400
    for parameter, restored in zip(model.policy.critic.parameters(), loaded.policy.critic.parameters(), strict=True):
        torch.testing.assert_close(
            model.critic_optimizer.state[parameter]["eligibility_trace"],
            loaded.critic_optimizer.state[restored]["eligibility_trace"],
        )
    assert float(loaded.reward_scaler.trace) == float(model.reward_scaler.trace)
    observation = np.zeros(3, dtype=np.float32)
    np.testing.assert_array_equal(
        model.predict(observation, deterministic=True)[0], loaded.predict(observation, deterministic=True)[0]
    )
    loaded.learn(200, reset_num_timesteps=False)
    assert loaded.num_timesteps == 600
    assert pruned_weights_are_zero(loaded.policy.actor) and pruned_weights_are_zero(loaded.policy.critic)


def test_same_seed_same_run():
    runs = [StreamAC("MlpPolicy", "Pendulum-v1", seed=3, policy_kwargs=TINY).learn(200) for _ in range(2)]
    for first, second in zip(runs[0].policy.parameters(), runs[1].policy.parameters(), strict=True):
        assert torch.equal(first, second)


def test_short_hopper_run_logs_the_sb3_keys(tmp_path):
    from stable_baselines3.common.logger import configure

    model = StreamAC("SparseSimBaPolicy", "Hopper-v5", seed=0, policy_kwargs=dict(actor_sparsity=0.9, critic_sparsity=0.9))
    model.set_logger(configure(str(tmp_path), ["csv"]))
    model.learn(1000, log_interval=1, progress_bar=True)
    assert model.num_timesteps == 1000 and model._episode_num >= 1
    header = (tmp_path / "progress.csv").read_text().splitlines()[0].split(",")
    expected = {"rollout/ep_rew_mean", "time/fps", "train/td_error", "train/actor_step_size", "train/critic_step_size"}
    assert expected <= set(header)
    assert pruned_weights_are_zero(model.policy.actor) and pruned_weights_are_zero(model.policy.critic)


def test_bad_input_is_refused_at_construction():
    with pytest.raises(ValueError, match=r"trace_lambda must be \[0, 1\], got 1.5"):
        StreamAC("MlpPolicy", "Pendulum-v1", trace_lambda=1.5)
    with pytest.raises(ValueError, match="kappa_value must be > 0, got 0"):
        StreamAC("MlpPolicy", "Pendulum-v1", kappa_value=0)
    with pytest.raises(ValueError, match=r"actor_sparsity must be in \[0, 1\), got 1.0"):
        StreamAC("MlpPolicy", "Pendulum-v1", policy_kwargs=dict(actor_sparsity=1.0))
    with pytest.raises(ValueError, match="does not support multiple envs"):
        StreamAC("MlpPolicy", make_vec_env("Pendulum-v1", n_envs=2))
    with pytest.raises(ValueError, match="StreamACPolicy needs a 1-D Box"):
        StreamACPolicy(gym.spaces.Box(-1, 1, (3,)), gym.spaces.Discrete(2), lambda _: 1.0)


def test_hyperparameter_file_has_the_streaming_defaults_and_the_runner_trains_it(tmp_path):
    from sb3_sparse import train
    from sb3_sparse.hyperparams import algorithm_kwargs

    for env_id in ("Ant-v5", "Walker2d-v5", "Hopper-v5", "HalfCheetah-v5"):
        policy, n_timesteps, kwargs = algorithm_kwargs("stream_ac", env_id, action_dim=6)
        assert policy == "SparseSimBaPolicy" and n_timesteps == 2_000_000
        assert kwargs == dict(
            learning_rate=1.0, gamma=0.99, trace_lambda=0.8, ent_coef=0.01, kappa_policy=3.0, kappa_value=2.0,
            policy_kwargs=dict(hidden_dim=128, actor_sparsity=0.9, critic_sparsity=0.9),
        )  # fmt: skip
    output = train.main(
        ["--algo", "stream_ac", "--env", "Pendulum-v1", "--timesteps", "600", "--eval-freq", "300", "--eval-episodes", "1",
         "--final-eval-episodes", "2", "--no-progress-bar", "--output-dir", str(tmp_path / "run")]
    )  # fmt: skip
    result = json.loads((output / "result.json").read_text())
    assert result["agent_steps"] == 600 and result["nonzero_parameters"] < 0.2 * result["parameters"]
    assert (output / "evaluations.png").is_file() and (output / "model.zip").is_file()
    with pytest.raises(SystemExit, match="--diagnostics-freq needs a replay or rollout buffer; stream_ac has neither"):
        train.main(
            ["--algo", "stream_ac", "--env", "Pendulum-v1", "--diagnostics-freq", "100", "--output-dir", str(tmp_path / "x")]
        )
