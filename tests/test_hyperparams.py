"""The package's rl-zoo hyperparameter files: shipped, valid, and the paper's setup."""

import subprocess
import sys
import zipfile

import gymnasium as gym
import pytest
import torch

import sb3_sparse  # noqa: F401  (registers the policies)
from sb3_sparse.envs import DMC_HARD_TASKS, DMC_SUITE_TASKS, dmc_env_id, dmc_pixel_env_id
from sb3_sparse.hyperparams import (
    ALGORITHMS,
    ZOO_ALGORITHMS,
    algorithm_kwargs,
    check_entry,
    evaluate_policy_kwargs,
    hyperparams_entry,
    hyperparams_path,
    load_hyperparams,
)

DMC_IDS = [dmc_env_id(task) for task in DMC_HARD_TASKS]
MUJOCO_IDS = [
    "Ant-v5", "HalfCheetah-v5", "Hopper-v5", "Humanoid-v5", "HumanoidStandup-v5", "InvertedDoublePendulum-v5",
    "InvertedPendulum-v5", "Pusher-v5", "Reacher-v5", "Swimmer-v5", "Walker2d-v5",
]  # fmt: skip
#: The continuous-control files for SimBa SAC/TD3/DDPG-style agents: the whole DMC suite and MuJoCo v5.
SUITE_FILES = ("sac", "reference_sac", "td3", "ddpg", "reference_ddpg", "tqc", "crossq")

#: What each file must cover.
REQUIRED_ENTRIES = {
    **{algo: {"CartPole-v1"} for algo in ("a2c", "trpo", "dqn", "qrdqn", "ppo_lstm")},
    "ppo": {"CartPole-v1", "HalfCheetah-v5", "Hopper-v5", "Walker2d-v5", "Ant-v5", "Humanoid-v5"},
    "stream_ac": {"Pendulum-v1", "HalfCheetah-v5", "Hopper-v5", "Walker2d-v5", "Ant-v5"},
    **{algo: {*(dmc_env_id(task) for task in DMC_SUITE_TASKS), *MUJOCO_IDS, "Pendulum-v1"} for algo in SUITE_FILES},
}
REQUIRED_ENTRIES["sac"] |= {dmc_pixel_env_id(task) for task in DMC_SUITE_TASKS}
#: Algorithms whose policy is a Q-network only: no actor.
VALUE_BASED = ("dqn", "qrdqn")


@pytest.mark.parametrize("algo", list(ZOO_ALGORITHMS))
def test_every_entry_is_valid_and_covers_its_tasks(algo):
    entries = load_hyperparams(algo)
    assert REQUIRED_ENTRIES[algo] <= set(entries), sorted(REQUIRED_ENTRIES[algo] - set(entries))
    for env_id, entry in entries.items():
        check_entry(algo, env_id, entry)
        assert env_id in gym.registry or env_id == "atari", env_id  # the zoo's entry for every Atari game
        kwargs = evaluate_policy_kwargs(entry["policy_kwargs"])
        assert kwargs["critic_sparsity"] == 0.8
        assert kwargs.get("actor_sparsity") == (None if algo in VALUE_BASED else 0.8)


@pytest.mark.parametrize("env_id", DMC_IDS)
def test_sac_entries_are_the_papers_setup(env_id):
    policy, n_timesteps, kwargs = algorithm_kwargs("sac", env_id, action_dim=21)
    action_dim = 21 if "humanoid" in env_id else 38
    assert policy == "SparseSimBaPolicy" and n_timesteps == 500_000  # 1M environment steps at action repeat 2
    expected = dict(
        learning_rate=1e-4, buffer_size=1_000_000, batch_size=256, learning_starts=5000, gamma=0.99, tau=0.005,
        train_freq=1, gradient_steps=2, ent_coef="auto_0.01", target_entropy=-0.5 * action_dim,
    )  # fmt: skip
    assert {key: kwargs[key] for key in expected} == expected
    assert kwargs["policy_kwargs"] == dict(
        actor_sparsity=0.8,
        critic_sparsity=0.8,
        n_critics=1,
        optimizer_class=torch.optim.AdamW,
        optimizer_kwargs=dict(weight_decay=1e-2),
    )


def test_every_registered_dmc_id_has_an_entry():
    registered = {env_id for env_id in gym.registry if env_id.startswith("sb3_sparse/dmc-")}
    assert len(registered) == 2 * len(DMC_SUITE_TASKS)
    assert registered <= set(load_hyperparams("sac"))
    states = {env_id for env_id in registered if not env_id.startswith("sb3_sparse/dmc-pixels-")}
    for algo in SUITE_FILES:
        assert states <= set(load_hyperparams(algo)), algo


def test_suite_target_entropies_are_half_the_action_size():
    """SimBa's -|A|/2 wherever a file sets the target entropy, checked against the real action spaces."""
    action_sizes = {}
    for env_id in [dmc_env_id(task) for task in DMC_SUITE_TASKS] + MUJOCO_IDS:
        env = gym.make(env_id)
        action_sizes[env_id] = env.action_space.shape[0]
        env.close()
    for algo in ("sac", "reference_sac", "tqc", "crossq"):
        entries = load_hyperparams(algo)
        for env_id, size in action_sizes.items():
            assert entries[env_id]["target_entropy"] == -size / 2, (algo, env_id)
            assert entries[env_id]["n_timesteps"] == (1_000_000 if env_id in MUJOCO_IDS else 500_000), (algo, env_id)


def test_quick_entries_for_gymnasium_tasks():
    entries = load_hyperparams("sac")
    assert {"Pendulum-v1", "HalfCheetah-v5", "Humanoid-v5"} <= set(entries)
    assert entries["HalfCheetah-v5"]["target_entropy"] == -3.0 and entries["Humanoid-v5"]["target_entropy"] == -8.5


def test_ddpg_entries_are_the_papers_ddpg_setup():
    _, _, kwargs = algorithm_kwargs("ddpg", "sb3_sparse/dmc-dog-run-v0", action_dim=38)
    noise = kwargs["action_noise"]
    assert noise._sigma.shape == (38,) and (noise._sigma == 0.1).all()
    assert kwargs["policy_kwargs"]["n_critics"] == 1 and kwargs["learning_rate"] == 1e-4 and kwargs["gradient_steps"] == 2


def test_unknown_keys_and_entries_list_the_valid_choices(tmp_path):
    with pytest.raises(
        ValueError, match=r"sac\.yml has no entry for 'CartPole-v1'; entries: sb3_sparse/dmc-humanoid-stand-v0"
    ):
        hyperparams_entry("sac", "CartPole-v1")
    with pytest.raises(ValueError, match=r"unknown policy_kwargs 'hidden_dim' \(did you mean 'actor_hidden_dim' or"):
        check_entry("sac", "x", {"policy": "SparseSimBaPolicy", "policy_kwargs": "dict(hidden_dim=4)"})
    with pytest.raises(ValueError, match=r"unknown keys 'learning_rat' \(did you mean 'learning_rate' or"):
        check_entry("sac", "x", {"policy": "SparseSimBaPolicy", "learning_rat": 1e-3})
    with pytest.raises(ValueError, match=r"ppo_mask has no hyperparameter file; the algorithms with one: sac, td3, ddpg"):
        hyperparams_path("ppo_mask")  # MaskablePPO has no file: no registered task gives action masks
    with pytest.raises(ValueError, match=r"unknown algorithm 'sacc' \(did you mean 'sac'"):
        hyperparams_path("sacc")


def test_path_printed_by_the_module_is_the_file():
    result = subprocess.run(
        [sys.executable, "-m", "sb3_sparse.hyperparams", "tqc"], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == str(hyperparams_path("tqc"))
    assert result.stderr == ""  # importing the package prints nothing (gymnasium-robotics' Adroit notice is dropped)


def test_wheel_ships_the_hyperparameter_files(tmp_path):
    root = hyperparams_path("sac").parents[2]
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(root)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("sb3_sparse-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"sb3_sparse/hyperparams/{algo}.yml" for algo in ALGORITHMS} <= names
