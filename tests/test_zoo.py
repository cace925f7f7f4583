"""The package's hyperparameter files through the real RL Baselines3 Zoo entry point."""

import csv
import subprocess
import sys

import pytest
from stable_baselines3 import SAC

from sb3_sparse import zoo
from sb3_sparse.hyperparams import ALGORITHMS, hyperparams_path
from sb3_sparse.reference import ReferenceDDPG, ReferenceSAC
from sb3_sparse.sparsity import pruned_weights_are_zero

TINY_POLICY = "dict(actor_hidden_dim=16, critic_hidden_dim=32, critic_num_blocks=1, actor_sparsity=0.8, critic_sparsity=0.8)"


@pytest.mark.parametrize("env_id", ["Pendulum-v1", "sb3_sparse/dmc-humanoid-run-v0"])
def test_rl_zoo_trains_from_the_package_yml(env_id, tmp_path):
    """300 steps with the file's entry; tiny networks and a short warm-up keep it cheap."""
    command = [
        sys.executable, "-m", "rl_zoo3.train", "--algo", "sac", "--env", env_id, "--gym-packages", "sb3_sparse",
        "-conf", str(hyperparams_path("sac")), "-n", "300", "--seed", "0", "--log-folder", str(tmp_path),
        "--eval-freq", "150", "--eval-episodes", "1", "-params", "learning_starts:100", "buffer_size:1000",
        f"policy_kwargs:{TINY_POLICY}",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"Loading hyperparameters from: {hyperparams_path('sac')}" in result.stdout
    run_name = env_id.replace("/", "-")
    (saved,) = tmp_path.glob(f"sac/{run_name}_1/{run_name}.zip")
    model = SAC.load(saved)
    assert type(model.policy).__name__ == "SparseSimBaPolicy" and model.num_timesteps == 300
    assert model.policy.observation_normalizer.has_statistics  # learn() updated the statistics
    assert all(pruned_weights_are_zero(net) for net in (model.policy.actor, model.policy.critic, model.policy.critic_target))
    assert list(tmp_path.glob(f"sac/{run_name}_1/evaluations.npz"))


@pytest.mark.parametrize(
    ("algo", "policy_kwargs"),
    [
        ("ppo", "dict(actor_hidden_dim=16, critic_hidden_dim=32, actor_sparsity=0.8, critic_sparsity=0.8)"),
        ("dqn", "dict(critic_hidden_dim=32, critic_sparsity=0.8)"),
        (
            "ppo_lstm",
            "dict(actor_hidden_dim=16, critic_hidden_dim=32, lstm_hidden_size=8, actor_sparsity=0.8, critic_sparsity=0.8)",
        ),
    ],
)
def test_rl_zoo_trains_on_policy_and_value_based_entries(algo, policy_kwargs, tmp_path):
    """The zoo's own train command with ppo.yml / dqn.yml / ppo_lstm.yml on CartPole-v1 (tiny networks, 512 steps)."""
    quick = {
        "ppo": ["n_steps:128", "batch_size:64"],
        "dqn": ["learning_starts:100", "train_freq:16", "gradient_steps:4"],
        "ppo_lstm": ["n_steps:32", "n_epochs:2"],
    }
    params = quick[algo]
    command = [
        sys.executable, "-m", "rl_zoo3.train", "--algo", algo, "--env", "CartPole-v1", "--gym-packages", "sb3_sparse",
        "-conf", str(hyperparams_path(algo)), "-n", "512", "--seed", "0", "--log-folder", str(tmp_path),
        "--eval-freq", "-1", "-params", *params, f"policy_kwargs:{policy_kwargs}",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    (saved,) = tmp_path.glob(f"{algo}/CartPole-v1_1/CartPole-v1.zip")
    model = ALGORITHMS[algo].load(saved)
    policies = {"ppo": "SparseSimBaActorCriticPolicy", "dqn": "SparseSimBaDQNPolicy", "ppo_lstm": "SparseSimBaRecurrentPolicy"}
    assert type(model.policy).__name__ == policies[algo]
    assert model.num_timesteps >= 512 and model.policy.observation_normalizer.has_statistics
    assert pruned_weights_are_zero(model.policy)


@pytest.mark.parametrize(
    ("algo", "env_id"), [("reference_sac", "sb3_sparse/dmc-humanoid-run-v0"), ("reference_ddpg", "Pendulum-v1")]
)
def test_zoo_trains_the_reference_algorithms_through_sb3_sparse_zoo(algo, env_id, tmp_path):
    """The docs' command: the zoo with sb3-sparse's algorithms added to its --algo choices."""
    command = [
        sys.executable, "-m", "sb3_sparse.zoo", "train", "--algo", algo, "--env", env_id,
        "-conf", str(hyperparams_path(algo)), "-n", "300", "--seed", "0", "--log-folder", str(tmp_path),
        "--eval-freq", "-1", "-params", "learning_starts:100", "buffer_size:1000", f"policy_kwargs:{TINY_POLICY}",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    run_name = env_id.replace("/", "-")
    (saved,) = tmp_path.glob(f"{algo}/{run_name}_1/{run_name}.zip")
    algorithm = ReferenceSAC if algo == "reference_sac" else ReferenceDDPG
    model = algorithm.load(saved)
    assert model.num_timesteps == 300 and pruned_weights_are_zero(model.policy)


def test_sb3_sparse_zoo_names_its_commands():
    with pytest.raises(SystemExit, match=r"usage: python -m sb3_sparse.zoo \{train,enjoy\}"):
        zoo.main(["optimize"])


def optimized_trials(command: list[str], tmp_path) -> list[tuple[dict[str, str], object]]:
    """Run a ``-optimize`` command of two trials; each completed trial's report row and its best model's policy."""
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    (report,) = tmp_path.glob("sac/report_*.csv")
    rows = list(csv.DictReader(report.open()))
    assert len(rows) == 2 and all(row["state"] == "COMPLETE" for row in rows)
    return [(row, SAC.load(tmp_path / "trials" / f"trial_{row['number']}" / "best_model.zip").policy) for row in rows]


@pytest.mark.parametrize("env_id", ["Pendulum-v1", "sb3_sparse/dmc-cartpole-swingup-v0"])
def test_zoo_optimize_searches_sparsity_width_and_depth(env_id, tmp_path):
    """``-optimize``: two trials that really train, each with its own sparsities and sizes on top of the entry's kwargs."""
    entry_kwargs = "dict(actor_hidden_dim=16, critic_hidden_dim=32, critic_num_blocks=1, n_critics=1)"
    command = [
        sys.executable, "-m", "sb3_sparse.zoo", "train", "--algo", "sac", "--env", env_id,
        "-conf", str(hyperparams_path("sac")), "-optimize", "--n-trials", "2", "-n", "200", "--n-evaluations", "1",
        "--eval-episodes", "1", "--sampler", "random", "--pruner", "none", "--seed", "0", "--log-folder", str(tmp_path),
        "--optimization-log-path", str(tmp_path / "trials"), "-params", "learning_starts:100", "buffer_size:1000",
        f"policy_kwargs:{entry_kwargs}",
    ]  # fmt: skip
    for row, policy in optimized_trials(command, tmp_path):
        width, depth = float(row["params_width_scale"]), int(row["params_depth_scale"])
        assert policy.architecture.actor_sparsity == float(row["params_actor_sparsity"])
        assert policy.architecture.critic_sparsity == float(row["params_critic_sparsity"])
        assert (policy.architecture.actor_hidden_dim, policy.architecture.critic_hidden_dim) == (16 * width, 32 * width)
        assert (policy.architecture.actor_num_blocks, policy.architecture.critic_num_blocks) == (depth, depth)
        assert policy.critic.n_critics == 1  # the entry's own policy kwargs stay
        assert pruned_weights_are_zero(policy)
        assert 2 ** int(row["params_batch_size_pow"]) > 0 and float(row["params_learning_rate"]) > 0  # the zoo's draws


def test_plain_rl_zoo_optimize_searches_the_sparse_policy_through_net_arch(tmp_path):
    """``python -m rl_zoo3.train -optimize`` itself: its sampler's dense ``net_arch`` sizes the SimBa networks."""
    conf = tmp_path / "sac.yml"
    # learning_starts 190: a few updates per trial (the sampler may draw 400-wide networks and batches of 2048)
    conf.write_text("Pendulum-v1:\n  policy: SparseSimBaPolicy\n  n_timesteps: 200\n  learning_starts: 190\n")
    command = [
        sys.executable, "-m", "rl_zoo3.train", "--algo", "sac", "--env", "Pendulum-v1", "--gym-packages", "sb3_sparse",
        "-conf", str(conf), "-optimize", "--n-trials", "2", "-n", "200", "--n-evaluations", "1", "--eval-episodes", "1",
        "--sampler", "random", "--pruner", "none", "--seed", "3", "--log-folder", str(tmp_path),
        "--optimization-log-path", str(tmp_path / "trials"), "-params", "buffer_size:1000",
    ]  # fmt: skip
    widths = {"small": 64, "medium": 256, "big": 400}  # the zoo's net_arch choices: [64, 64], [256, 256], [400, 300]
    for row, policy in optimized_trials(command, tmp_path):
        width = widths[row["params_net_arch"]]
        assert (policy.architecture.actor_hidden_dim, policy.architecture.critic_hidden_dim) == (width, width)
        assert (policy.architecture.actor_num_blocks, policy.architecture.critic_num_blocks) == (2, 2)
        assert policy.architecture.critic_sparsity == 0.8  # sparse by default: the sampler replaced the entry's kwargs
        assert pruned_weights_are_zero(policy)


@pytest.mark.parametrize("env_id", ["Pendulum-v1", "sb3_sparse/dmc-cartpole-swingup-v0"])
def test_zoo_user_commands_train_with_tensorboard_continue_and_enjoy(env_id, tmp_path):
    """The zoo's train (-tb, -params), continue training (-i) and enjoy, on the package's file, one after the other."""
    zoo_train = [
        sys.executable, "-m", "sb3_sparse.zoo", "train", "--algo", "sac", "--env", env_id,
        "-conf", str(hyperparams_path("sac")), "-n", "200", "--seed", "0", "--log-folder", str(tmp_path / "logs"),
        "--eval-freq", "-1", "-params", "learning_starts:100", "buffer_size:1000", f"policy_kwargs:{TINY_POLICY}",
    ]  # fmt: skip
    first = subprocess.run([*zoo_train, "-tb", str(tmp_path / "tb")], capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    run_name = env_id.replace("/", "-")
    (saved,) = (tmp_path / "logs").glob(f"sac/{run_name}_1/{run_name}.zip")
    assert list((tmp_path / "tb").glob(f"{run_name}/SAC_1/events.out.tfevents.*"))
    second = subprocess.run([*zoo_train, "-i", str(saved)], capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    (continued,) = (tmp_path / "logs").glob(f"sac/{run_name}_2/{run_name}.zip")
    model = SAC.load(continued)
    # The zoo restarts the step count; the gradient steps go on from the loaded agent's.
    assert "Loading pretrained agent" in second.stdout and model._n_updates == 2 * SAC.load(saved)._n_updates > 0
    assert pruned_weights_are_zero(model.policy)
    enjoy = [
        sys.executable, "-m", "sb3_sparse.zoo", "enjoy", "--algo", "sac", "--env", env_id, "-f", str(tmp_path / "logs"),
        "--exp-id", "2", "--no-render", "-n", "50", "--deterministic",
    ]  # fmt: skip
    played = subprocess.run(enjoy, capture_output=True, text=True, timeout=600)
    assert played.returncode == 0, played.stderr[-3000:]
    assert f"Loading {continued}" in played.stdout


def test_zoo_optimize_warns_when_a_trial_ends_before_its_first_update(tmp_path):
    command = [
        sys.executable, "-m", "sb3_sparse.zoo", "train", "--algo", "sac", "--env", "Pendulum-v1",
        "-conf", str(hyperparams_path("sac")), "-optimize", "--n-trials", "1", "-n", "100", "--n-evaluations", "1",
        "--eval-episodes", "1", "--sampler", "random", "--pruner", "none", "--seed", "0", "--log-folder", str(tmp_path),
        "-params", "learning_starts:1000", "buffer_size:1000",
        "policy_kwargs:dict(actor_hidden_dim=16, critic_hidden_dim=32, critic_num_blocks=1)",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "trial 0: its budget of 100 agent steps ends before learning_starts=1,000" in result.stderr
