"""A run stopped and resumed is the run never stopped, bit for bit on CPU: every tensor of model.zip
(weights, masks, optimizer states, topology counters), every evaluation and every progress row.

Each family trains a tiny run twice from one conf: once straight through, once stopped by signals at
several agent steps (SIGTERM and SIGINT, mid-episode and, for PPO and A2C, mid-rollout) and resumed
with ``--resume`` after each stop. The stops run in this process (the runner's own signal handling);
``test_kill_9_after_a_periodic_checkpoint_resumes_exactly`` kills fresh processes outright."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch as th

from sb3_sparse import train
from sb3_sparse.interrupts import Interrupted
from sb3_sparse.run_directory import RunDirectory

TINY = "actor_hidden_dim=16, critic_hidden_dim=32, critic_num_blocks=1"
#: Columns that measure the machine, not the run; SB3's on-policy ``time/iterations`` counts the
#: iterations of one ``learn`` call, so it starts again at 1 in a resumed attempt.
WALL_CLOCK_COLUMNS = {"time/fps", "time/time_elapsed", "time/iterations"}


def policy_kwargs(*arguments: str) -> str:
    return f'policy_kwargs: "dict({", ".join(arguments)})"'


OFF_POLICY = ["learning_starts: 60", "gradient_steps: 1"]
DYNAMIC = "topology_kwargs=dict(update_interval=20, drop_fraction=0.3)"
ON_POLICY = ["n_envs: 2", "n_steps: 32", "batch_size: 32", "n_epochs: 2"]
VALUE_BASED = ["learning_starts: 60", "train_freq: 4", "target_update_interval: 50"]
Q_NETWORK = "critic_hidden_dim=32, critic_num_blocks=1"
#: algo, env id, entry lines, agent steps, the steps to stop at
FAMILIES: dict[str, tuple[str, str, list[str], int, list[int]]] = {
    "sac": ("sac", "Pendulum-v1", [*OFF_POLICY, policy_kwargs(TINY, "n_critics=1")], 300, [97, 181, 263]),
    "sac-set": ("sac", "Pendulum-v1", [*OFF_POLICY, policy_kwargs(TINY, "topology='set'", DYNAMIC)], 300, [97, 181]),
    "sac-rigl": ("sac", "Pendulum-v1", [*OFF_POLICY, policy_kwargs(TINY, "topology='rigl'", DYNAMIC)], 300, [121, 222]),
    "sac-gsde": (
        "sac", "Pendulum-v1", [*OFF_POLICY, "use_sde: true", "sde_sample_freq: 8", policy_kwargs(TINY)], 240, [97, 181]
    ),
    "td3": ("td3", "Pendulum-v1", [*OFF_POLICY, "noise_type: normal", "noise_std: 0.1", policy_kwargs(TINY)], 300, [83, 199]),
    "ddpg": (
        "ddpg", "Pendulum-v1", [*OFF_POLICY, "noise_type: ornstein-uhlenbeck", "noise_std: 0.3", policy_kwargs(TINY)],
        300, [77, 211],
    ),
    "tqc": ("tqc", "Pendulum-v1", [*OFF_POLICY, policy_kwargs(TINY, "n_critics=2", "n_quantiles=5")], 240, [91, 170]),
    "crossq": ("crossq", "Pendulum-v1", [*OFF_POLICY, policy_kwargs(TINY, "n_critics=1")], 240, [88, 171]),
    "reference_sac": ("reference_sac", "Pendulum-v1", [*OFF_POLICY, policy_kwargs(TINY, "n_critics=1")], 240, [71, 160]),
    "reference_ddpg": ("reference_ddpg", "Pendulum-v1", [*OFF_POLICY, policy_kwargs(TINY)], 240, [99, 181]),
    "ppo": ("ppo", "CartPole-v1", [*ON_POLICY, policy_kwargs(TINY)], 384, [45, 150, 301]),
    "ppo-gsde": (
        "ppo", "Pendulum-v1", [*ON_POLICY, "use_sde: true", "sde_sample_freq: 4", policy_kwargs(TINY)], 256, [70, 190]
    ),
    "a2c": ("a2c", "CartPole-v1", ["n_envs: 2", "n_steps: 8", policy_kwargs(TINY)], 320, [37, 181]),
    "ppo-vecnormalize": ("ppo", "Pendulum-v1", [*ON_POLICY, "normalize: true", policy_kwargs(TINY)], 256, [70, 190]),
    "recurrent_ppo": (
        "ppo_lstm", "CartPole-v1", ["n_envs: 2", "n_steps: 16", "batch_size: 16", "n_epochs: 2",
                                    policy_kwargs(TINY, "lstm_hidden_size=8")], 192, [41, 130],
    ),
    "dqn": ("dqn", "CartPole-v1", [*VALUE_BASED, policy_kwargs(Q_NETWORK)], 300, [101, 233]),
    "qrdqn-gmp": (
        "qrdqn", "CartPole-v1",
        [*VALUE_BASED, policy_kwargs(Q_NETWORK, "n_quantiles=5", "topology='gmp'", "topology_kwargs={'update_interval': 20}")],
        300, [111, 250],
    ),
}  # fmt: skip


def write_conf(
    path: Path, env_id: str, lines: list[str], steps: int, stops: list[int], markers: Path, signals: list[str]
) -> Path:
    """A one-entry conf whose callback sends the stop signals (none for the uninterrupted run)."""
    markers.mkdir(parents=True, exist_ok=True)
    callback = f"tests.signal_callback.SignalAtSteps: {{steps: {stops}, marker_dir: '{markers}', signals: {signals}}}"
    body = [f"{env_id}:", f"  n_timesteps: {steps}", *(f"  {line}" for line in lines), "  callback:", f"    - {callback}"]
    if not any(line.startswith("policy:") for line in lines):
        body.insert(1, "  policy: " + ("SparseSimBaMultiInputPolicy" if env_id.startswith("Fetch") else "SparseSimBaPolicy"))
    path.write_text("\n".join(body) + "\n")
    return path


def runner_args(algo: str, env_id: str, conf: Path, out: Path, eval_freq: int, checkpoint_freq: int = 0) -> list[str]:
    return [
        "--algo", algo, "--env", env_id, "--conf", str(conf), "--eval-freq", str(eval_freq), "--eval-episodes", "2",
        "--final-eval-episodes", "2", "--diagnostics-freq", "0", "--checkpoint-freq", str(checkpoint_freq),
        "--output-dir", str(out), "--resume", "--no-progress-bar", "--num-threads", "1", "--verbose", "0",
    ]  # fmt: skip


def train_with_stops(args: list[str], attempts: int) -> int:
    """Run the runner in this process until it finishes, resuming after each stop; the stops it took."""
    for stops in range(attempts + 1):
        try:
            train.main(args)
            return stops
        except Interrupted:
            continue
    pytest.fail(f"the run did not finish in {attempts + 1} attempts")


def saved_values(model_zip: Path) -> dict[str, Any]:
    """Every tensor and number of a model.zip's state dicts (policy, optimizers), by a dotted name."""
    values: dict[str, Any] = {}

    def walk(name: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(f"{name}.{key}", item)
        elif isinstance(value, (list, tuple)):
            for index, item in enumerate(value):
                walk(f"{name}.{index}", item)
        else:
            values[name] = value

    with zipfile.ZipFile(model_zip) as archive:
        for member in archive.namelist():
            if member.endswith(".pth"):
                walk(member, th.load(io.BytesIO(archive.read(member)), map_location="cpu"))
    return values


def progress_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as file:
        return [{key: value for key, value in row.items() if key not in WALL_CLOCK_COLUMNS} for row in csv.DictReader(file)]


def assert_same_run(plain: Path, stopped: Path) -> None:
    """Bit for bit: every saved tensor, every evaluation, every progress row."""
    expected, actual = saved_values(plain / "model.zip"), saved_values(stopped / "model.zip")
    assert expected.keys() == actual.keys()
    differing = [
        name for name, value in expected.items()
        if not (th.equal(value, actual[name]) if isinstance(value, th.Tensor) else value == actual[name])
    ]  # fmt: skip
    assert not differing, f"{len(differing)} of {len(expected)} saved values differ, e.g. {differing[:5]}"
    assert (stopped / "evaluations.csv").read_text() == (plain / "evaluations.csv").read_text()
    assert progress_rows(stopped / "progress.csv") == progress_rows(plain / "progress.csv")


def check_family(tmp_path: Path, algo: str, env_id: str, lines: list[str], steps: int, stops: list[int]) -> None:
    signals = ["SIGTERM", "SIGINT"]
    plain_conf = write_conf(tmp_path / "plain.yml", env_id, lines, steps, [], tmp_path / "markers-plain", signals)
    stopped_conf = write_conf(tmp_path / "stopped.yml", env_id, lines, steps, stops, tmp_path / "markers", signals)
    eval_freq = steps // 3
    assert train_with_stops(runner_args(algo, env_id, plain_conf, tmp_path / "plain", eval_freq), 0) == 0
    taken = train_with_stops(runner_args(algo, env_id, stopped_conf, tmp_path / "stopped", eval_freq), len(stops))
    assert taken == len(stops)
    assert_same_run(tmp_path / "plain", tmp_path / "stopped")


@pytest.mark.slow
@pytest.mark.parametrize("family", list(FAMILIES))
def test_a_run_stopped_and_resumed_is_the_run_never_stopped(tmp_path, family):
    check_family(tmp_path, *FAMILIES[family])


@pytest.mark.slow
def test_her_on_fetch_reach_resumes_exactly(tmp_path):
    pytest.importorskip("gymnasium_robotics")
    lines = [
        "learning_starts: 100", "batch_size: 32", "buffer_size: 2000", "gamma: 0.95",
        "replay_buffer_class: HerReplayBuffer",
        "replay_buffer_kwargs: \"dict(goal_selection_strategy='future', n_sampled_goal=4)\"",
        policy_kwargs(TINY, "n_critics=1"),
    ]  # fmt: skip
    check_family(tmp_path, "sac", "FetchReach-v4", lines, 240, [75, 163])


@pytest.mark.slow
def test_atari_dqn_resumes_exactly(tmp_path):
    pytest.importorskip("ale_py")
    lines = [
        "env_wrapper:", "  - stable_baselines3.common.atari_wrappers.AtariWrapper", "frame_stack: 4",
        "policy: SparseSimBaCnnPolicy", "buffer_size: 1000", "batch_size: 8", "learning_starts: 50", "train_freq: 4",
        "target_update_interval: 40", policy_kwargs(Q_NETWORK),
    ]  # fmt: skip
    check_family(tmp_path, "dqn", "PongNoFrameskip-v4", lines, 150, [61, 113])


@pytest.mark.slow
def test_kill_9_after_a_periodic_checkpoint_resumes_exactly(tmp_path):
    """Fresh processes: SIGTERM mid-episode, then SIGKILL (the periodic checkpoint is all that is left)."""
    algo, env_id, lines, steps, _ = FAMILIES["sac"]
    signals = ["SIGTERM", "SIGKILL"]
    plain_conf = write_conf(tmp_path / "plain.yml", env_id, lines, steps, [], tmp_path / "markers-plain", signals)
    stopped_conf = write_conf(tmp_path / "stopped.yml", env_id, lines, steps, [130, 251], tmp_path / "markers", signals)
    command = [sys.executable, "-m", "sb3_sparse.train"]
    plain = subprocess.run(
        [*command, *runner_args(algo, env_id, plain_conf, tmp_path / "plain", 100)], capture_output=True, text=True
    )
    assert plain.returncode == 0, plain.stderr[-2000:]
    codes = []
    for _ in range(3):
        attempt = subprocess.run(
            [*command, *runner_args(algo, env_id, stopped_conf, tmp_path / "stopped", 100, checkpoint_freq=50)],
            capture_output=True, text=True,
        )  # fmt: skip
        codes.append(attempt.returncode)
        if attempt.returncode == 0:
            break
    assert codes == [143, -9, 0]
    assert RunDirectory(tmp_path / "stopped").finished
    assert_same_run(tmp_path / "plain", tmp_path / "stopped")


def test_save_and_load_training_state_continue_the_run_in_python(tmp_path):
    """The documented pair: learn, save, load into a fresh environment, learn on == one learn call."""
    from stable_baselines3 import SAC
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.noise import OrnsteinUhlenbeckActionNoise

    from sb3_sparse import load_training_state, save_training_state

    def fresh() -> SAC:
        noise = OrnsteinUhlenbeckActionNoise(mean=th.zeros(1).numpy(), sigma=0.3 * th.ones(1).numpy())
        kwargs = dict(actor_hidden_dim=16, critic_hidden_dim=32, critic_num_blocks=1)
        env = make_vec_env("Pendulum-v1", n_envs=2, seed=5)
        return SAC("SparseSimBaPolicy", env, seed=5, learning_starts=40, action_noise=noise, policy_kwargs=kwargs)

    straight = fresh().learn(200)
    halves = fresh().learn(110)  # mid-episode, mid-noise
    save_training_state(halves, tmp_path / "state")
    resumed = load_training_state(tmp_path / "state", make_vec_env("Pendulum-v1", n_envs=2, seed=99), device="cpu")
    resumed.learn(90, reset_num_timesteps=False)
    straight.save(tmp_path / "straight.zip")
    resumed.save(tmp_path / "resumed.zip")
    expected, actual = saved_values(tmp_path / "straight.zip"), saved_values(tmp_path / "resumed.zip")
    assert all(
        th.equal(value, actual[name]) if isinstance(value, th.Tensor) else value == actual[name]
        for name, value in expected.items()
    )
    assert resumed.num_timesteps == 200 and "_setup_learn" not in vars(resumed)


def test_environment_state_that_cannot_be_copied_is_said_and_resume_starts_new_episodes(tmp_path):
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import SubprocVecEnv

    from sb3_sparse import load_training_state, save_training_state

    model = PPO("SparseSimBaPolicy", make_vec_env("CartPole-v1", n_envs=2, seed=1), n_steps=16, batch_size=16, seed=1)
    model.learn(32)
    save_training_state(model, tmp_path / "state")
    env = make_vec_env("CartPole-v1", n_envs=2, seed=1, vec_env_cls=SubprocVecEnv)
    with pytest.warns(
        UserWarning,
        match="environments' state could not be restored .*SubprocVecEnv steps its environments in other processes",
    ):
        resumed = load_training_state(tmp_path / "state", env, device="cpu")
    assert resumed._last_obs is None  # SB3 resets the environments at learn
    resumed.learn(32, reset_num_timesteps=False)
    env.close()


@pytest.mark.slow
def test_an_atari_checkpoint_holds_what_was_collected(tmp_path):
    """2,000 agent steps of Pong into a 100,000-transition buffer (5.6 GB allocated): a checkpoint under 100 MB."""
    pytest.importorskip("ale_py")
    from stable_baselines3.common.atari_wrappers import AtariWrapper
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecFrameStack, VecTransposeImage

    from sb3_sparse import load_training_state, save_training_state
    from sb3_sparse.envs import register_atari_envs

    register_atari_envs()

    def env() -> VecTransposeImage:
        return VecTransposeImage(
            VecFrameStack(make_vec_env("PongNoFrameskip-v4", n_envs=1, seed=0, wrapper_class=AtariWrapper), 4)
        )

    model = train.ALGORITHMS["dqn"](
        "SparseSimBaCnnPolicy", env(), buffer_size=100_000, learning_starts=100_000, seed=0,
        policy_kwargs=dict(critic_hidden_dim=32, critic_num_blocks=1),
    )  # fmt: skip
    model.learn(2_000)
    folder = save_training_state(model, tmp_path / "state")
    size = sum(path.stat().st_size for path in folder.iterdir())
    assert size < 100 * 2**20, f"{size / 2**20:.1f} MiB"
    loaded = load_training_state(folder, env(), device="cpu")
    buffer, original = loaded.replay_buffer, model.replay_buffer
    assert buffer.buffer_size == 100_000 and buffer.pos == original.pos == 2_000
    assert np.array_equal(buffer.observations[:2_001], original.observations[:2_001])
    assert np.array_equal(buffer.next_observations[:2_000], original.next_observations[:2_000])
    assert not buffer.observations[2_001:].any()


@pytest.mark.slow
def test_a_sweep_run_stopped_and_resumed_is_the_run_never_stopped(tmp_path, monkeypatch):
    """A sweep's run stops (SIGTERM, then SIGINT) and is recorded interrupted; running the sweep again finishes it exactly."""
    from sb3_sparse.sweep import Sweep, run_sweep

    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parents[1]))  # the runs import tests.signal_callback
    algo, env_id, lines, steps, _ = FAMILIES["sac"]
    outcomes = {}
    for name, stops in (("plain", []), ("stopped", [97, 181])):
        conf = write_conf(
            tmp_path / f"{name}.yml", env_id, lines, steps, stops, tmp_path / f"markers-{name}", ["SIGTERM", "SIGINT"]
        )
        sweep = Sweep(
            name=name, algo=algo, envs=[env_id], presets=["width0.25"], sparsities=[0.8], seeds=[0], timesteps=steps,
            conf=str(conf), output_dir=str(tmp_path / name),
            runner_args=["--eval-freq", "100", "--eval-episodes", "2", "--final-eval-episodes", "2",
                         "--diagnostics-freq", "0"],
        )  # fmt: skip
        statuses = []
        for _ in range(len(stops) + 1):
            (row,) = run_sweep(sweep, workers=1, progress_bar=False)
            statuses.append(row["status"])
        outcomes[name] = (sweep.root / row["name"], statuses)
    assert outcomes["plain"][1][0] == "finished"
    assert outcomes["stopped"][1] == ["interrupted", "interrupted", "finished"]
    assert_same_run(outcomes["plain"][0], outcomes["stopped"][0])


def _environment(env_id: str) -> Any:
    from stable_baselines3.common.atari_wrappers import AtariWrapper
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecFrameStack, VecNormalize

    if env_id.startswith("Pong"):
        return VecFrameStack(make_vec_env(env_id, n_envs=2, seed=0, wrapper_class=AtariWrapper), 4)
    env = make_vec_env(env_id, n_envs=2, seed=0)
    return VecNormalize(env) if env_id == "Pendulum-v1" else env


@pytest.mark.parametrize(
    ("env_id", "extra"),
    [
        ("Pendulum-v1", None),
        ("HalfCheetah-v5", "mujoco"),
        ("sb3_sparse/dmc-cheetah-run-v0", "dm_control"),
        ("PongNoFrameskip-v4", "ale_py"),
        ("ALE/Pong-v5", "ale_py"),
        ("FetchReach-v4", "gymnasium_robotics"),
    ],
)
def test_an_environment_restored_from_its_state_steps_as_the_original(env_id, extra):
    """Mid-episode, two copies each: the restored environments step exactly as the originals go on."""
    from sb3_sparse.env_state import capture_env_state, restore_env_state

    if extra is not None:
        pytest.importorskip(extra)
    original = _environment(env_id)
    original.reset()
    sampler = original.action_space
    sampler.seed(1)
    actions = [np.stack([sampler.sample() for _ in range(2)]) for _ in range(300)]
    for action in actions[:120]:
        original.step(action)
    state = capture_env_state(original)
    restored = _environment(env_id)
    restored.reset()
    restore_env_state(restored, state)
    for action in actions[120:]:
        expected, actual = original.step(action), restored.step(action)
        for before, after in zip(expected[:3], actual[:3], strict=True):
            if isinstance(before, dict):
                assert all(np.array_equal(before[key], after[key]) for key in before)
            else:
                assert np.array_equal(before, after)


def test_an_environment_state_is_refused_by_an_environment_built_otherwise():
    from stable_baselines3.common.env_util import make_vec_env

    from sb3_sparse.env_state import EnvStateError, capture_env_state, restore_env_state

    state = capture_env_state(make_vec_env("Pendulum-v1", n_envs=1, seed=0))
    with pytest.raises(EnvStateError, match=r"the environment is built of .*CartPoleEnv.*, the saved one of .*PendulumEnv"):
        restore_env_state(make_vec_env("CartPole-v1", n_envs=1, seed=0), state)
