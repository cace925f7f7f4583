"""Out of the box is the paper: sparse policies without arguments, the reference's hyperparameters in
the Reference algorithms, SBX's net_arch, the thread policy, and first contact that says what was meant."""

import math
import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from sb3_contrib import QRDQN
from stable_baselines3 import DDPG, DQN, PPO, SAC, TD3
from stable_baselines3.common.noise import NormalActionNoise

from sb3_sparse import threads, train
from sb3_sparse.callbacks import AdaptiveThreadsCallback
from sb3_sparse.policies.architecture import DEFAULT_SPARSITY, sizes_from_net_arch
from sb3_sparse.reference import ReferenceDDPG, ReferenceSAC
from sb3_sparse.sparsity import overall_density
from tests.test_train import tiny_conf

TINY = dict(actor_hidden_dim=16, critic_hidden_dim=32, critic_num_blocks=1)


@pytest.mark.parametrize(
    ("algorithm", "env_id", "networks"),
    [(SAC, "Pendulum-v1", ("actor", "critic")), (TD3, "Pendulum-v1", ("actor", "critic")), (DQN, "CartPole-v1", ("q_net",))],
)
def test_sparse_policies_are_sparse_without_arguments(algorithm, env_id, networks):
    kwargs = dict(critic_hidden_dim=32, critic_num_blocks=1) if algorithm is DQN else dict(TINY)
    model = algorithm("SparseSimBaPolicy", env_id, policy_kwargs=kwargs, seed=0)
    assert model.policy.architecture.critic_sparsity == DEFAULT_SPARSITY == 0.8
    for name in networks:
        # ER keeps 1-D tensors and small heads dense: the network as a whole is a little denser than 0.2.
        assert 0.15 < overall_density(getattr(model.policy, name)) < 0.45, name
    dense = algorithm("SparseSimBaPolicy", env_id, policy_kwargs=dict(kwargs, critic_sparsity=0.0), seed=0)
    assert overall_density(dense.policy.q_net if algorithm is DQN else dense.policy.critic) == 1.0


def test_on_policy_sparse_policy_is_sparse_without_arguments():
    model = PPO("SparseSimBaPolicy", "CartPole-v1", n_steps=64, policy_kwargs=dict(TINY), seed=0)
    assert 0.15 < overall_density(model.policy) < 0.45


def test_reference_sac_defaults_are_the_reference_configuration():
    model = ReferenceSAC("SparseSimBaPolicy", "Pendulum-v1", policy_kwargs=dict(TINY), seed=0)
    assert (model.learning_rate, model.learning_starts, model.gradient_steps, model.batch_size) == (1e-4, 5000, 2, 256)
    assert (model.tau, model.gamma, model.buffer_size) == (0.005, 0.99, 1_000_000)
    assert math.isclose(float(model.log_ent_coef.detach().exp()), 0.01, rel_tol=1e-6)
    assert model.target_entropy == -0.5  # -|A| / 2, Pendulum has one action
    assert len(model.critic.q_networks) == 1
    for optimizer in (model.actor.optimizer, model.critic.optimizer):
        assert isinstance(optimizer, torch.optim.AdamW) and optimizer.defaults["weight_decay"] == 1e-2
    assert model.ent_coef_optimizer.defaults["lr"] == 1e-4
    # Each default is filled in only where the caller says nothing.
    mine = ReferenceSAC(
        "SparseSimBaPolicy", "Pendulum-v1", target_entropy="auto", policy_kwargs=dict(TINY, n_critics=2), seed=0
    )
    assert mine.target_entropy == -1.0 and len(mine.critic.q_networks) == 2
    assert isinstance(mine.actor.optimizer, torch.optim.AdamW)
    assert (
        ReferenceSAC("SparseSimBaPolicy", "Pendulum-v1", target_entropy="auto_2", policy_kwargs=dict(TINY)).target_entropy
        == -2
    )
    with pytest.raises(ValueError, match=r"target_entropy must be a number, 'auto' or 'auto_<c>' with c > 0.*got 'auto_x'"):
        ReferenceSAC("SparseSimBaPolicy", "Pendulum-v1", target_entropy="auto_x")


def test_reference_ddpg_defaults_and_uniform_warm_up():
    model = ReferenceDDPG("SparseSimBaPolicy", "Pendulum-v1", policy_kwargs=dict(TINY), seed=0)
    assert (model.learning_rate, model.learning_starts, model.gradient_steps, model.batch_size) == (1e-4, 5000, 2, 256)
    assert model.update_noise_std == 0.1 and len(model.critic.q_networks) == 1
    assert isinstance(model.critic.optimizer, torch.optim.AdamW) and model.critic.optimizer.defaults["weight_decay"] == 1e-2
    model.learning_starts = 400
    model.learn(400)
    warm_up = model.replay_buffer.actions[:400].reshape(-1)  # stored scaled to [-1, 1]
    assert np.all(np.abs(warm_up) < 1.0)  # uniform draws never sit on a bound
    assert abs(float(np.mean(warm_up))) < 0.1 and float(np.std(warm_up)) > 0.5
    # SB3's warm-up adds the exploration noise and clips: some coordinates land exactly on a bound.
    noise = NormalActionNoise(np.zeros(1), 0.5 * np.ones(1))
    sb3 = DDPG("SparseSimBaPolicy", "Pendulum-v1", learning_starts=400, action_noise=noise, policy_kwargs=dict(TINY), seed=0)
    sb3.learn(400)
    assert np.any(np.abs(sb3.replay_buffer.actions[:400]) == 1.0)


def test_reference_zip_loaded_by_sb3_class_warns_and_refuses_to_train(tmp_path):
    ReferenceSAC("SparseSimBaPolicy", "Pendulum-v1", learning_starts=10, policy_kwargs=dict(TINY)).save(tmp_path / "model.zip")
    with pytest.warns(UserWarning, match=r"saved by ReferenceSAC and loaded as SAC.*load it with ReferenceSAC\.load"):
        model = SAC.load(tmp_path / "model.zip", env=gym.make("Pendulum-v1"))
    model.predict(np.zeros(3, dtype=np.float32))  # acting is the same policy
    with pytest.raises(ValueError, match=r"from sb3_sparse\.reference import ReferenceSAC"):
        model.learn(5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ReferenceSAC.load(tmp_path / "model.zip", env=gym.make("Pendulum-v1")).learn(5)


def test_runner_algorithm_typos_name_the_closest_algorithm(capsys):
    with pytest.raises(SystemExit):
        train.parse_args(["--algo", "Sac"])
    assert "argument --algo: unknown algorithm 'Sac' (did you mean 'sac'?)" in capsys.readouterr().err


def test_policy_name_typos_name_the_closest_policy():
    with pytest.raises(ValueError, match=r"^Policy SparseSimbaPolicy unknown \(did you mean 'SparseSimBaPolicy'\?\)$"):
        SAC("SparseSimbaPolicy", "Pendulum-v1")
    with pytest.raises(ValueError, match=r"^Policy NoSuchThing unknown$"):
        DQN("NoSuchThing", "CartPole-v1")


def test_sbx_net_arch_maps_to_simba_sizes():
    assert sizes_from_net_arch(dict(pi=[128], qf=[512, 512])) == dict(
        actor_hidden_dim=128, actor_num_blocks=1, critic_hidden_dim=512, critic_num_blocks=2
    )
    assert sizes_from_net_arch([64, 64], roles=("critic",)) == dict(critic_hidden_dim=64, critic_num_blocks=2)
    assert sizes_from_net_arch(dict(pi=[32], vf=[16, 16, 16]))["critic_num_blocks"] == 3
    with pytest.warns(UserWarning, match=r"net_arch \[400, 300\] for the actor is width 400 with 2 residual blocks"):
        assert sizes_from_net_arch([400, 300])["critic_hidden_dim"] == 400
    with pytest.raises(ValueError, match=r"net_arch keys must be among \('pi', 'qf', 'vf'\), got \['q'\]"):
        sizes_from_net_arch(dict(pi=[8], q=[8]))
    # SB3's conventions: [] is no hidden block, None the defaults, [dict(...)] the old format (with SB3's warning).
    assert sizes_from_net_arch([]) == dict(actor_num_blocks=0, critic_num_blocks=0)
    assert sizes_from_net_arch(None) == {}
    with pytest.warns(UserWarning, match="you should now pass directly a dictionary"):
        assert sizes_from_net_arch([dict(vf=[8])]) == dict(critic_hidden_dim=8, critic_num_blocks=1)
    with pytest.raises(ValueError, match="must be a list of widths, got 8"):
        sizes_from_net_arch(dict(pi=8))
    model = SAC("SparseSimBaPolicy", "Pendulum-v1", policy_kwargs=dict(net_arch=dict(pi=[16], qf=[32, 32])))
    architecture = model.policy.architecture
    assert (architecture.actor_hidden_dim, architecture.actor_num_blocks) == (16, 1)
    assert (architecture.critic_hidden_dim, architecture.critic_num_blocks) == (32, 2)
    assert len(model.policy.critic.q_networks[0].encoder.blocks) == 2
    q_net = QRDQN("SparseSimBaPolicy", "CartPole-v1", policy_kwargs=dict(net_arch=[24], n_quantiles=5)).policy
    assert q_net.architecture.critic_hidden_dim == 24
    with pytest.warns(UserWarning, match="ignores activation_fn=Tanh: SimBa's residual blocks use ReLU"):
        PPO("SparseSimBaPolicy", "CartPole-v1", n_steps=64, policy_kwargs=dict(net_arch=[8], activation_fn=torch.nn.Tanh))


def test_free_cores_from_the_kernel_statistics(tmp_path, monkeypatch):
    stat = tmp_path / "stat"
    ticks = 100.0  # the kernel's clock ticks per second on Linux
    monkeypatch.setattr(threads.os, "sysconf", lambda name: ticks)
    own = iter([0.0, 1.0])  # this process: 1 CPU second over the interval
    monkeypatch.setattr(threads, "_own_cpu_seconds", lambda: next(own))
    clock = iter([10.0, 12.0])  # 2 wall seconds
    monkeypatch.setattr(threads.time, "monotonic", lambda: next(clock))
    # cpu user nice system idle iowait irq softirq steal: busy 0 -> 500 ticks (5 CPU seconds over 2 s)
    stat.write_text("cpu  0 0 0 1000 0 0 0 0\ncpu0 0\n")
    monitor = threads.FreeCores(stat)
    monitor.cores = 4
    stat.write_text("cpu  400 0 100 1300 50 0 0 0\ncpu0 0\n")
    # others: (5 - 1) CPU seconds / 2 s = 2 cores; 4 - 2 = 2 free
    assert monitor.measure() == pytest.approx(2.0)
    assert threads.threads_for(2.0, 4) == 2 and threads.threads_for(0.3, 4) == 1 and threads.threads_for(3.95, 2) == 2
    assert threads.FreeCores(tmp_path / "missing").measure() is None


def test_adaptive_threads_follow_the_free_cores(monkeypatch):
    monkeypatch.setattr(threads.FreeCores, "measure", lambda self: 0.4)  # another process took (almost) every core
    callback = AdaptiveThreadsCallback(maximum=2, interval=1e-9)
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        SAC("SparseSimBaPolicy", "Pendulum-v1", learning_starts=5, policy_kwargs=dict(TINY)).learn(10, callback=callback)
        assert torch.get_num_threads() == 1 and callback.changes and callback.changes[0][1] == 1
    finally:
        torch.set_num_threads(previous)
    with pytest.raises(ValueError, match="interval must be a number of seconds > 0, got 0"):
        AdaptiveThreadsCallback(interval=0)


def test_a_run_leaves_no_lock_and_a_finished_run_of_another_configuration_is_refused(tmp_path, capsys):
    conf = str(tiny_conf(tmp_path, "sac", "Pendulum-v1", n_timesteps=60, learning_starts=30))
    args = ["--algo", "sac", "--conf", conf, "--output-dir", str(tmp_path / "run"), "--final-eval-episodes", "1"]
    args += ["--eval-episodes", "1", "--no-progress-bar", "--verbose", "0", "--num-threads", "1"]
    train.main(args)
    assert (tmp_path / "run" / "result.json").is_file() and not (tmp_path / "run" / "run.lock").exists()
    train.main(args)  # the same configuration: nothing to do
    assert "is a finished run (it has result.json): nothing to do" in capsys.readouterr().out
    with pytest.raises(SystemExit, match=r"finished run of another configuration: critic_sparsity: None -> 0\.5"):
        train.main([*args, "--critic-sparsity", "0.5"])
    assert not (tmp_path / "run" / "run.lock").exists()
