"""Atari on the real Arcade Learning Environment (the ``atari`` extra): the ids rl_zoo3 users type, the
zoo's Atari entries with the sparse NatureCNN policies, trained, saved, evaluated and enjoyed through
rl_zoo3 and through the package's runner, with masks exact after loading. Tiny budgets."""

import json
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import pytest

pytest.importorskip("ale_py", reason="Atari tests need ale-py: pip install 'sb3-sparse[atari]'")
pytest.importorskip("cv2", reason="SB3's AtariWrapper needs OpenCV: pip install 'sb3-sparse[atari]'")

from sb3_sparse import train  # importing the package registers the ALE ids
from sb3_sparse.hyperparams import ALGORITHMS, hyperparams_entry, hyperparams_path
from sb3_sparse.sparsity import named_masks, pruned_weights_are_zero

ROOT = Path(__file__).resolve().parents[1]
#: Short runs: a small replay buffer (the zoo's 100,000 frames stacks take GBs), learning from step 100.
TINY = {"dqn": ["learning_starts:100", "buffer_size:1000"], "qrdqn": ["learning_starts:100", "buffer_size:1000"],
        "ppo": ["n_envs:2", "n_steps:64", "batch_size:64"], "a2c": ["n_envs:2"]}  # fmt: skip


def test_import_registers_the_ale_ids_and_every_game_finds_the_atari_entry():
    for env_id in ("PongNoFrameskip-v4", "ALE/Pong-v5", "BreakoutNoFrameskip-v4"):
        assert env_id in gym.registry
    for algo in ("dqn", "qrdqn", "ppo", "a2c"):
        entry = hyperparams_entry(algo, "BreakoutNoFrameskip-v4")
        assert entry["policy"] == "SparseSimBaCnnPolicy" and entry["frame_stack"] == 4
        assert entry["env_wrapper"] == ["stable_baselines3.common.atari_wrappers.AtariWrapper"]
    with pytest.raises(ValueError, match="no entry for 'CartPole-v0'"):  # the atari entry is for Atari games only
        hyperparams_entry("dqn", "CartPole-v0")


def masks_exact(model) -> bool:
    """Masked weights are exactly zero, and there are masks (the SimBa head at sparsity 0.8)."""
    return any(True for _ in named_masks(model.policy)) and pruned_weights_are_zero(model.policy)


@pytest.mark.parametrize("algo", ["dqn", "ppo"])
def test_rl_zoo3_trains_saves_and_enjoys_a_sparse_model_on_pong(tmp_path, algo):
    conf = hyperparams_path(algo)
    command = [sys.executable, "-m", "rl_zoo3.train", "--algo", algo, "--env", "PongNoFrameskip-v4", "--gym-packages",
               "sb3_sparse", "-conf", str(conf), "-n", "256", "--eval-freq", "-1", "-f", str(tmp_path), "-params",
               *TINY[algo]]  # fmt: skip
    trained = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert trained.returncode == 0, trained.stderr[-3000:]
    (saved,) = (tmp_path / algo).glob("PongNoFrameskip-v4_*/PongNoFrameskip-v4.zip")
    model = ALGORITHMS[algo].load(saved, device="cpu")
    assert type(model.policy).__name__.startswith("SparseSimBaCnn") and masks_exact(model)
    enjoy = [sys.executable, "-m", "rl_zoo3.enjoy", "--algo", algo, "--env", "PongNoFrameskip-v4", "--gym-packages",
             "sb3_sparse", "-f", str(tmp_path), "-n", "100", "--no-render"]  # fmt: skip
    enjoyed = subprocess.run(enjoy, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert enjoyed.returncode == 0, enjoyed.stderr[-3000:]


@pytest.mark.parametrize(("algo", "env_id"), [("qrdqn", "ALE/Pong-v5"), ("a2c", "BreakoutNoFrameskip-v4")])
def test_runner_trains_evaluates_and_saves_a_sparse_model_on_the_ale(tmp_path, algo, env_id):
    run_dir = train.main(
        ["--algo", algo, "--env", env_id, "-n", "256", "--eval-freq", "128", "--eval-episodes", "1",
         "--final-eval-episodes", "1", "--diagnostics-freq", "0", "--output-dir", str(tmp_path / "run"),
         "--no-progress-bar", "--verbose", "0", "-params", *TINY[algo]]
    )  # fmt: skip
    result = json.loads((run_dir / "result.json").read_text())
    assert result["agent_steps"] >= 256 and result["nonzero_parameters"] < result["parameters"]
    model = ALGORITHMS[algo].load(run_dir / "model.zip", device="cpu")
    assert masks_exact(model)


def test_an_atari_id_without_ale_py_names_the_extra(monkeypatch):
    from sb3_sparse import envs, run_envs

    monkeypatch.setattr(run_envs, "register_atari_envs", lambda: False)
    assert envs.ATARI_EXTRA in run_envs.unknown_env_message("ALE/NotAGame-v5", "dqn")


def test_v5_ids_get_no_frameskip_semantics_under_the_atari_wrapper_entry():
    """ALE/Pong-v5 under the zoo's atari entry: 4 emulator frames per agent step (the wrapper's), no sticky actions."""
    pytest.importorskip("ale_py")
    from sb3_sparse.hyperparams import environment_settings, no_frameskip_kwargs
    from sb3_sparse.run_config import RunConfig
    from sb3_sparse.run_envs import make_run_envs

    settings = environment_settings("dqn", "ALE/Pong-v5")
    assert settings.env_kwargs == {"frameskip": 1, "repeat_action_probability": 0.0}
    assert no_frameskip_kwargs("PongNoFrameskip-v4") == {}
    env, _ = make_run_envs(RunConfig(algo="dqn", env="ALE/Pong-v5"), settings)
    inner = env
    while hasattr(inner, "venv"):
        inner = inner.venv
    ale_env = inner.envs[0].unwrapped
    assert ale_env._frameskip == 1 and ale_env.ale.getFloat("repeat_action_probability") == 0.0
    # A user's own choice stays.
    mine = environment_settings("dqn", "ALE/Pong-v5", overrides={"env_kwargs": {"repeat_action_probability": 0.25}})
    assert mine.env_kwargs == {"frameskip": 1, "repeat_action_probability": 0.25}


def test_robotics_ids_without_the_robotics_extra_name_it(monkeypatch):
    from sb3_sparse import run_envs

    monkeypatch.setattr(run_envs, "register_robotics_envs", lambda: False)
    message = run_envs.unknown_env_message("FetchReach-v9", "sac")
    assert message == (
        "unknown environment id 'FetchReach-v9': goal-conditioned robotics tasks need gymnasium-robotics: "
        "pip install 'sb3-sparse[robotics]'"
    )
