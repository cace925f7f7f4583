"""Runs you can trust: portable and compact checkpoints, resume rules, run locks, and fault injection
(SIGKILL and SIGTERM at random points of a run and of a sweep, resumed until they finish)."""

import json
import os
import random
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from stable_baselines3 import SAC

import sb3_sparse  # noqa: F401  (registers the policies)
from sb3_sparse import threads, train
from sb3_sparse.reference import ReferenceSAC
from sb3_sparse.run_directory import RunDirectory, read_csv_rows
from sb3_sparse.sparse_execution import SparseLinear
from sb3_sparse.sparsity import pruned_weights_are_zero
from tests.preloaded_processes import PreloadedProcess
from tests.test_train import tiny_conf

# Wide enough that sparse_backend="auto" runs the critic's residual kernels sparse on a CPU.
WIDE = dict(
    actor_hidden_dim=16, critic_hidden_dim=512, critic_num_blocks=1, actor_sparsity=0.5, critic_sparsity=0.9, n_critics=1
)


def has_sparse_layers(model):
    return any(isinstance(layer, SparseLinear) for layer in model.policy.modules())


@pytest.mark.parametrize("saved_with_gpu", [False, True])
def test_auto_layout_converts_on_load_with_identical_predictions(saved_with_gpu, tmp_path, monkeypatch):
    """Saved where auto picks SparseLinear (no GPU), loaded where it picks masked layers (a GPU), and the reverse."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: saved_with_gpu)
    model = SAC(
        "SparseSimBaPolicy", "Pendulum-v1", policy_kwargs=WIDE, learning_starts=50, batch_size=16, seed=0, device="cpu"
    )
    model.learn(80)
    assert has_sparse_layers(model) is not saved_with_gpu
    model.save(tmp_path / "model.zip")
    observations = np.random.default_rng(0).normal(size=(16, 3)).astype(np.float32)
    expected = model.predict(observations, deterministic=True)[0]

    monkeypatch.setattr(torch.cuda, "is_available", lambda: not saved_with_gpu)
    loaded = SAC.load(tmp_path / "model.zip", env=model.get_env(), device="cpu")
    assert has_sparse_layers(loaded) is saved_with_gpu  # the other layout
    np.testing.assert_allclose(loaded.predict(observations, deterministic=True)[0], expected, atol=1e-6)
    for name in ("actor", "critic", "critic_target"):  # the same kept weights, also in the targets
        mine = {n: p for n, p in getattr(model.policy, name).named_parameters()}
        assert sum(int((p != 0).sum()) for p in mine.values()) == sum(
            int((p != 0).sum()) for p in getattr(loaded.policy, name).parameters()
        )
    loaded.learn(20, reset_num_timesteps=False)  # the optimizer state was converted too
    assert pruned_weights_are_zero(loaded.policy)


def test_masks_are_saved_as_float16_and_load_rounded_to_0_or_1(tmp_path):
    model = SAC("SparseSimBaPolicy", "Pendulum-v1", policy_kwargs=dict(WIDE, sparse_backend="masked"), seed=0)
    model.save(tmp_path / "model.zip")
    with zipfile.ZipFile(tmp_path / "model.zip") as archive, archive.open("policy.pth") as file:
        state = torch.load(file, weights_only=True)
    masks = {key: value for key, value in state.items() if key.endswith("_mask")}
    assert masks and all(value.dtype == torch.float16 for value in masks.values())
    in_memory = [value for name, value in model.policy.named_buffers() if name.endswith("_mask")]
    assert in_memory and all(value.dtype == torch.float32 for value in in_memory)  # float: fast to multiply
    # What SB3's own save/load tests do: every entry replaced by th.rand_like. A loaded mask is rounded to 0 or 1,
    # and the weights it prunes are zeroed.
    model.policy.load_state_dict({key: torch.rand_like(value) for key, value in model.policy.state_dict().items()})
    loaded = [value for name, value in model.policy.named_buffers() if name.endswith("_mask")]
    assert all(bool(((value == 0) | (value == 1)).all()) for value in loaded)
    assert any(bool((value == 0).any()) for value in loaded) and pruned_weights_are_zero(model.policy)
    # tests/data holds zips of 0.1.0, with float masks: tests/test_saved_models.py loads them bit-identically.


def test_resume_rules(tmp_path, capsys):
    conf = tiny_conf(tmp_path, "reference_sac", "Pendulum-v1")
    output = tmp_path / "run"
    common = ["--conf", str(conf), "--eval-episodes", "1", "--final-eval-episodes", "1", "--diagnostics-freq", "0",
              "--output-dir", str(output), "--no-progress-bar", "--timesteps", "120"]  # fmt: skip
    train.main(common)
    result = (output / "result.json").read_text()
    mtime = (output / "model.zip").stat().st_mtime_ns
    # A finished run is not retrained, with or without --resume; what a kill after its result left is removed.
    (output / "checkpoint-000000000100").mkdir()
    (output / "checkpoint-000000000100" / "model.zip").write_bytes(b"left over")
    (output / "checkpoint.json").write_text('{"checkpoint": "checkpoint-000000000100", "step": 100}')
    (output / "live").mkdir()
    assert train.main([*common, "--resume"]) == output
    assert "finished run" in capsys.readouterr().out
    assert (output / "result.json").read_text() == result and (output / "model.zip").stat().st_mtime_ns == mtime
    assert not list(output.glob("checkpoint*")) and not (output / "live").exists()
    # Without --resume or --restart, a directory holding a run (unfinished: no model, no result) is refused.
    (output / "result.json").unlink()
    (output / "model.zip").unlink()
    with pytest.raises(SystemExit, match="already holds a run: pass --resume"):
        train.main(common)
    # A different configuration is refused with the differing fields named.
    with pytest.raises(SystemExit, match=r"differs from the run .*critic_sparsity: None -> 0\.5.*seed: 0 -> 3"):
        train.main([*common, "--resume", "--critic-sparsity", "0.5", "--seed", "3"])
    # What may change: the budget (and the evaluation settings).
    train.main([*common, "--resume", "--timesteps", "130", "--eval-episodes", "2"])
    assert json.loads((output / "result.json").read_text())["agent_steps"] == 130
    # --restart starts over.
    train.main([*common, "--restart", "--seed", "3"])
    assert json.loads((output / "config.json").read_text())["identity"]["seed"] == 3


def test_a_run_held_by_another_live_process_is_refused(tmp_path):
    directory = RunDirectory(tmp_path / "run")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from sb3_sparse.run_directory import RunDirectory\n"
         f"with RunDirectory({str(directory.path)!r}).locked():\n    print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        conf = tiny_conf(tmp_path, "reference_sac", "Pendulum-v1")
        with pytest.raises(SystemExit, match="being trained by another live process"):
            train.main(["--conf", str(conf), "--output-dir", str(directory.path), "--resume", "--no-progress-bar"])
    finally:
        holder.kill()
        holder.wait()
    with directory.locked():  # released by the kernel when its holder died
        pass


def test_runner_argument_parser_refuses_bad_sparsities(capsys):
    with pytest.raises(SystemExit):
        train.parse_args(["--critic-sparsity", "1.5"])
    assert "'1.5' is not a sparsity in [0, 1)" in capsys.readouterr().err


def test_budget_before_learning_starts_warns(tmp_path):
    conf = tiny_conf(tmp_path, "reference_sac", "Pendulum-v1")
    with pytest.warns(UserWarning, match="ends before learning_starts=100"):
        train.main(["--conf", str(conf), "--timesteps", "50", "--eval-episodes", "1", "--final-eval-episodes", "1",
                    "--diagnostics-freq", "0", "--output-dir", str(tmp_path / "run"), "--no-progress-bar"])  # fmt: skip


# --- fault injection --------------------------------------------------------------------------------

TIMESTEPS, EVAL_FREQ = 600, 150


def check_run_integrity(run_dir: Path, algorithm: type = ReferenceSAC) -> None:
    """A finished run's files are complete and consistent: each evaluation once, one header, exact masks."""
    directory = RunDirectory(run_dir)
    assert directory.finished and json.loads((run_dir / "result.json").read_text())["agent_steps"] == TIMESTEPS
    evaluations = [int(row["agent_steps"]) for row in read_csv_rows(run_dir / "evaluations.csv")]
    assert evaluations == [*range(EVAL_FREQ, TIMESTEPS + 1, EVAL_FREQ), TIMESTEPS]  # then the final one
    text = (run_dir / "progress.csv").read_text()
    header = text.splitlines()[0]
    assert text.count(header) == 1
    rows = read_csv_rows(run_dir / "progress.csv")
    assert len({tuple(row.items()) for row in rows}) == len(rows)  # none duplicated
    eval_steps = [int(float(row["time/total_timesteps"])) for row in rows if row.get("eval/mean_reward")]
    assert eval_steps == list(range(EVAL_FREQ, TIMESTEPS + 1, EVAL_FREQ))  # none lost, none twice
    steps = [float(row["time/total_timesteps"]) for row in rows if row.get("time/total_timesteps")]
    assert steps == sorted(steps)
    assert directory.checkpoint() is None and not list(run_dir.glob("checkpoint*")) and not list(run_dir.glob("*.partial"))
    model = algorithm.load(run_dir / "model.zip", device="cpu")
    assert pruned_weights_are_zero(model.policy)


def runner_args(conf: Path, run_dir: Path, algo: str = "reference_sac", env: str = "Pendulum-v1") -> list[str]:
    return [
        "--algo", algo, "--env", env, "--conf", str(conf),
        "--timesteps", str(TIMESTEPS), "--eval-freq", str(EVAL_FREQ), "--eval-episodes", "1",
        "--final-eval-episodes", "1", "--diagnostics-freq", "0", "--checkpoint-freq", "30",
        "--output-dir", str(run_dir), "--resume", "--no-progress-bar",
    ]  # fmt: skip


def runner_command(conf: Path, run_dir: Path, algo: str = "reference_sac", env: str = "Pendulum-v1") -> list[str]:
    return [sys.executable, "-m", "sb3_sparse.train", *runner_args(conf, run_dir, algo, env)]


def kill_after(process: subprocess.Popen | PreloadedProcess, delay: float, sig: int) -> bool:
    """Send ``sig`` after ``delay`` seconds unless the process ended first; whether it was killed."""
    try:
        process.wait(timeout=delay)
        return False
    except subprocess.TimeoutExpired:
        process.send_signal(sig)
        process.wait()
        return True


def kill_while_training(process: subprocess.Popen | PreloadedProcess, run_dirs: list[Path], rng: random.Random) -> bool:
    """
    Kill ``process`` at a random point: a quarter of the time within its first second, while it
    starts (a preloaded runner trains after about 0.4 s: it builds its run directory, environments
    and model until then), otherwise a moment after one of its runs began training (its attempt's
    log appeared), whatever the machine's speed.
    """
    sig = rng.choice([signal.SIGKILL, signal.SIGTERM])
    if rng.random() < 0.25:
        return kill_after(process, rng.uniform(0.0, 1.0), sig)
    started, deadline = time.time(), time.monotonic() + 120
    logs = [run_dir / "live" / "progress.csv" for run_dir in run_dirs]
    while not any(log.is_file() and log.stat().st_mtime > started for log in logs):
        if process.poll() is not None or time.monotonic() > deadline:
            return kill_after(process, 0, sig)
        time.sleep(0.05)
    return kill_after(process, rng.uniform(0.0, 1.0), sig)


@pytest.mark.slow
def test_runner_killed_at_random_points_resumes_to_a_complete_run(tmp_path):
    # Four updates per step: long enough to outlive its kills (the last may land after the result). With two,
    # about one run in four finished before its twelfth kill on 2 cores (before the forked runners too).
    conf = tiny_conf(tmp_path, "reference_sac", "Pendulum-v1", gradient_steps=4)
    run_dir, rng, kills = tmp_path / "run", random.Random(0), 0
    while kills < 12:
        process = PreloadedProcess("sb3_sparse.train", runner_args(conf, run_dir))
        kills += kill_while_training(process, [run_dir], rng)
        if RunDirectory(run_dir).finished and kills < 12:
            pytest.fail("the run finished before 12 kills: lengthen it")
    finished = subprocess.run(runner_command(conf, run_dir), capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr[-3000:]
    check_run_integrity(run_dir)


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["ppo", "dqn"])
def test_on_policy_and_value_based_runs_killed_at_random_points_resume_to_a_complete_run(tmp_path, algo):
    """PPO checkpoints between rollouts (50 steps each here), DQN as the other off-policy algorithms."""
    # Networks and updates large enough that a run outlives its kills on a fast machine too.
    critic = "critic_hidden_dim=256, critic_num_blocks=2, critic_sparsity=0.8"
    entry = {
        "ppo": ["n_steps: 50", "batch_size: 25", "n_epochs: 30", f"policy_kwargs: dict(actor_sparsity=0.8, {critic})"],
        "dqn": ["learning_starts: 100", "train_freq: 4", "gradient_steps: 4", f"policy_kwargs: dict({critic})"],
    }
    lines = ["CartPole-v1:", "  policy: SparseSimBaPolicy", f"  n_timesteps: {TIMESTEPS}"]
    lines += [f"  {line}" for line in entry[algo]]
    conf = tmp_path / f"{algo}.yml"
    conf.write_text("\n".join(lines) + "\n")
    run_dir, rng, kills = tmp_path / "run", random.Random(1), 0
    while kills < 6:
        process = PreloadedProcess("sb3_sparse.train", runner_args(conf, run_dir, algo, "CartPole-v1"))
        kills += kill_while_training(process, [run_dir], rng)
        if RunDirectory(run_dir).finished:
            pytest.fail("the run finished before 6 kills: lengthen it")
    finished = subprocess.run(runner_command(conf, run_dir, algo, "CartPole-v1"), capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr[-3000:]
    check_run_integrity(run_dir, train.ALGORITHMS[algo])


def test_the_integrity_check_can_fail(tmp_path):
    """The checker above notices a duplicated row of a finished run."""
    conf = tiny_conf(tmp_path, "reference_sac", "Pendulum-v1")
    run_dir = tmp_path / "run"
    assert subprocess.run(runner_command(conf, run_dir), capture_output=True, timeout=600).returncode == 0
    check_run_integrity(run_dir)
    lines = (run_dir / "progress.csv").read_text().splitlines()
    evaluation = next(line for line in lines[1:] if line.split(",")[lines[0].split(",").index("eval/mean_reward")])
    (run_dir / "progress.csv").write_text("\n".join([*lines, evaluation]) + "\n")
    with pytest.raises(AssertionError):
        check_run_integrity(run_dir)


@pytest.mark.slow
def test_sweep_killed_at_random_points_leaves_no_run_behind_and_finishes(tmp_path):
    conf = tiny_conf(tmp_path, "reference_sac", "Pendulum-v1")
    sweep_file = tmp_path / "sweep.yml"
    settings = dict(eval_freq=EVAL_FREQ, eval_episodes=1, final_eval_episodes=1, diagnostics_freq=0)
    sweep_file.write_text(json.dumps(dict(
        name="faults", envs=["Pendulum-v1"], algo="reference_sac", presets=["width0.5"], sparsities=[0.0, 0.8],
        timesteps=TIMESTEPS,
        conf=str(conf), checkpoint_freq=30, run_settings=settings, output_dir=str(tmp_path / "sweep"),
    )))  # fmt: skip
    sweep_args = ["run", str(sweep_file), "--workers", "2", "--no-report", "--no-progress-bar"]
    rng, kills = random.Random(1), 0
    run_dirs = [
        tmp_path / "sweep" / name
        for name in ("reference_sac_Pendulum-v1_width0.5_a0_c0_seed0", "reference_sac_Pendulum-v1_width0.5_a0.8_c0.8_seed0")
    ]
    while kills < 8:
        # Only the sweep's own process is signalled: its runs must not outlive it.
        process = PreloadedProcess("sb3_sparse.sweep", sweep_args)
        kills += kill_while_training(process, run_dirs, rng)
        deadline = time.monotonic() + 10
        for run_dir in run_dirs:  # every run's lock is free again: no orphan holds it
            while True:
                try:
                    with RunDirectory(run_dir).locked():
                        break
                except Exception:
                    assert time.monotonic() < deadline, f"a run of the killed sweep is still alive: {run_dir}"
                    time.sleep(0.2)
        if all(RunDirectory(run_dir).finished for run_dir in run_dirs):
            pytest.fail("the sweep finished before 8 kills: lengthen it")
    command = [sys.executable, "-m", "sb3_sparse.sweep", *sweep_args]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert finished.returncode == 0, finished.stderr[-3000:]
    for run_dir in run_dirs:
        check_run_integrity(run_dir)


# --- clear errors instead of tracebacks --------------------------------------------------------------


def test_numpy_scalars_are_accepted_where_python_numbers_are():
    kwargs = dict(actor_hidden_dim=np.int64(16), critic_hidden_dim=np.int64(32), critic_num_blocks=np.int32(1))
    model = SAC(
        "SparseSimBaPolicy", "Pendulum-v1", policy_kwargs=dict(kwargs, critic_sparsity=np.float32(0.8), mask_seed=np.int64(3))
    )
    architecture = model.policy.architecture
    assert type(architecture.critic_hidden_dim) is int and type(architecture.critic_sparsity) is float
    assert architecture.critic_sparsity == pytest.approx(0.8) and architecture.mask_seed == 3


def test_mask_seed_out_of_range_is_named():
    with pytest.raises(
        ValueError, match=r"mask_seed must be None or an integer <= 9223372036854775806 \(2\*\*63 - 2\), got 1844"
    ):
        SAC("SparseSimBaPolicy", "Pendulum-v1", policy_kwargs=dict(mask_seed=2**64))


def test_conf_errors_name_the_conf_file(tmp_path):
    conf = tmp_path / "mine.yml"
    conf.write_text("Pendulum-v1:\n  policy: SparseSimBaPolicy\n  n_timesteps: 10\n  bogus_key: 1\n")
    with pytest.raises(SystemExit, match=r"mine\.yml entry 'Pendulum-v1' has unknown keys 'bogus_key'; valid: "):
        train.main(["--conf", str(conf), "--output-dir", str(tmp_path / "run")])
    conf.write_text("Pendulum-v1:\n  policy: MlpPolicy\n  n_timesteps: 10\n")
    with pytest.raises(SystemExit, match=r"mine\.yml entry 'Pendulum-v1': not one of sb3-sparse's policies: 'MlpPolicy'"):
        train.main(["--conf", str(conf), "--output-dir", str(tmp_path / "run")])


def test_plot_command_names_missing_files(capsys):
    from sb3_sparse import plots

    with pytest.raises(SystemExit):
        plots.main(["diagnostics", "no/such/run"])
    assert "no such file or directory: no/such/run" in capsys.readouterr().err


def test_ray_backend_without_ray_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    import importlib.util

    from sb3_sparse.sweep import Sweep, run_sweep

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real_find_spec(name, *a))
    sweep = Sweep(name="noray", envs=["Pendulum-v1"], output_dir=str(tmp_path / "sweep"))
    with pytest.raises(ImportError, match="the Ray backend needs Ray"):
        run_sweep(sweep, backend="ray")
    assert not (tmp_path / "sweep").exists()


def test_stream_ac_lists_its_valid_policy_kwargs():
    from sb3_sparse import StreamAC

    with pytest.raises(TypeError, match=r"StreamACPolicy got unknown policy_kwargs 'net_arch'; valid: actor_sparsity"):
        StreamAC("MlpPolicy", "Pendulum-v1", policy_kwargs=dict(net_arch=[64]))


def test_vec_normalize_around_a_normalizing_policy_warns():
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    env = VecNormalize(make_vec_env("Pendulum-v1"))
    model = SAC("SparseSimBaPolicy", env, policy_kwargs=dict(actor_hidden_dim=8, critic_hidden_dim=8), learning_starts=10)
    with pytest.warns(UserWarning, match="normalized twice"):
        model.learn(5)


def test_thread_policy(monkeypatch):
    cores = len(os.sched_getaffinity(0))
    monkeypatch.delenv(threads.CONCURRENT_RUNS_VARIABLE, raising=False)
    assert threads.default_num_threads() == cores
    monkeypatch.setenv(threads.CONCURRENT_RUNS_VARIABLE, str(2 * cores))
    assert threads.default_num_threads() == 1  # never 0
    assert train.parse_args(["--num-threads", "1"]).num_threads == 1


def test_sweep_aggregates_leave_the_callers_random_stream_alone():
    from sb3_sparse.sweep_report import aggregate

    runs = [
        dict(status="finished", env="Pendulum-v1", algo="sac", preset="base", actor_sparsity=0.8, critic_sparsity=0.8,
             final_mean_return=-150.0 - seed, parameters=1000, nonzero_parameters=200)
        for seed in range(4)
    ]  # fmt: skip
    np.random.seed(123)
    expected = np.random.random()
    np.random.seed(123)
    (row,) = aggregate(runs, reps=50)
    assert np.random.random() == expected
    assert row["ci_low"] <= row["iqm"] <= row["ci_high"]
