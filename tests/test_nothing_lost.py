"""Nothing lost off the happy path: every file of a run damaged or deleted, SIGINT and SIGTERM, numpy
values and edited configurations. Each test reproduces one defect of issue 32 and checks the repair
or the clear refusal (a short message naming the file, never a traceback, never a retrain over a
saved model)."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from sb3_sparse import train
from sb3_sparse.run_config import RunConfig
from sb3_sparse.run_directory import RunDirectory, read_csv, read_csv_rows
from sb3_sparse.sweep_report import collect_results
from tests.test_run_integrity import EVAL_FREQ, TIMESTEPS, check_run_integrity

STOP_AT, CHECKPOINT_FREQ = 250, 100


def conf_file(
    tmp_path: Path, algo: str = "reference_sac", signal_at: int | None = STOP_AT, signal_name: str = "SIGTERM"
) -> Path:
    """A tiny entry (Pendulum, or CartPole for PPO) whose callback signals the run at ``signal_at`` agent steps."""
    if algo == "ppo":
        lines = ["CartPole-v1:", "  policy: SparseSimBaPolicy", "  n_steps: 50", "  batch_size: 25", "  n_epochs: 2"]
    else:
        lines = ["Pendulum-v1:", "  policy: SparseSimBaPolicy", "  learning_starts: 100", "  gradient_steps: 1"]
    lines += [
        f"  n_timesteps: {TIMESTEPS}",
        '  policy_kwargs: "dict(actor_hidden_dim=16, critic_hidden_dim=32, critic_num_blocks=1, actor_sparsity=0.8,'
        " critic_sparsity=0.8" + ("" if algo == "ppo" else ", n_critics=1") + ')"',
    ]
    if signal_at is not None:
        lines += ["  callback:", "    - tests.signal_callback.SignalAtStep:", f"        step: {signal_at}",
                  f"        marker: {tmp_path / 'signal.sent'}", f"        signal_name: {signal_name}"]  # fmt: skip
    path = tmp_path / f"{algo}.yml"
    path.write_text("\n".join(lines) + "\n")
    return path


def config(conf: Path, run_dir: Path, algo: str = "reference_sac", **changes) -> RunConfig:
    env = "CartPole-v1" if algo == "ppo" else "Pendulum-v1"
    settings = dict(
        algo=algo, env=env, conf=str(conf), eval_freq=EVAL_FREQ, eval_episodes=1, final_eval_episodes=1,
        diagnostics_freq=0, checkpoint_freq=CHECKPOINT_FREQ, output_dir=str(run_dir), progress_bar=False, verbose=0,
        resume=True, num_threads=1,
    )  # fmt: skip
    return RunConfig(**{**settings, **changes})


def stop_by_signal(conf: Path, run_dir: Path, algo: str = "reference_sac") -> SystemExit:
    with pytest.raises(SystemExit) as stopped:
        train.run(config(conf, run_dir, algo))
    return stopped.value


@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory) -> Path:
    """A run that SIGTERM stopped at 250 agent steps: checkpoints at 200 (previous) and 250 (current)."""
    root = tmp_path_factory.mktemp("stopped")
    stopped = stop_by_signal(conf_file(root), root / "run")
    assert stopped.code == 143
    return root / "run"


def copy_of(stopped_run: Path, tmp_path: Path) -> Path:
    run_dir = tmp_path / "run"
    shutil.copytree(stopped_run, run_dir)
    return run_dir


def stored_conf(run_dir: Path) -> Path:
    return Path(json.loads((run_dir / "config.json").read_text())["identity"]["conf"])


def resume(run_dir: Path, conf: Path, algo: str = "reference_sac", **changes) -> Path:
    """Go on with a run as the same configuration (its signal was sent once: it is not sent again)."""
    return train.run(config(conf, run_dir, algo, **changes))


def damage(path: Path) -> None:
    """A truncated last row plus stray bytes, as a full disk or a killed copy leaves a file."""
    text = path.read_bytes()
    path.write_bytes(text[: len(text) - 25] + b"\x00\x00\xff\xfe stray")


# --- signals ------------------------------------------------------------------------------------------


def test_sigterm_writes_a_checkpoint_where_the_run_stopped_and_resume_finishes_exactly(stopped_run, tmp_path):
    directory = RunDirectory(stopped_run)
    assert directory.checkpoint_step() == STOP_AT and directory.interrupted_by() == "SIGTERM"
    pointer = json.loads((stopped_run / "checkpoint.json").read_text())
    assert pointer["previous"]["num_timesteps"] == 200  # kept until a newer one is complete
    assert not directory.finished and not (stopped_run / "model.zip").exists()
    run_dir = copy_of(stopped_run, tmp_path)
    resume(run_dir, stored_conf(run_dir))
    check_run_integrity(run_dir)


def test_sigint_stops_an_on_policy_run_mid_rollout_at_the_rollouts_start(tmp_path):
    """PPO (rollouts of 50 steps) signalled at step 275: its weights are those of step 250, saved as step 250."""
    conf = conf_file(tmp_path, "ppo", signal_at=275, signal_name="SIGINT")
    stopped = stop_by_signal(conf, tmp_path / "run", "ppo")
    assert stopped.code == 130
    directory = RunDirectory(tmp_path / "run")
    assert directory.checkpoint_step() == 250 and directory.interrupted_by() == "SIGINT"
    resume(tmp_path / "run", conf, "ppo")
    check_run_integrity(tmp_path / "run", train.ALGORITHMS["ppo"])


def test_sigterm_without_periodic_checkpoints_still_writes_one(tmp_path):
    conf = conf_file(tmp_path)
    with pytest.raises(SystemExit) as stopped:
        train.run(config(conf, tmp_path / "run", checkpoint_freq=0))
    assert stopped.value.code == 143 and RunDirectory(tmp_path / "run").checkpoint_step() == STOP_AT
    resume(tmp_path / "run", conf, checkpoint_freq=0)
    check_run_integrity(tmp_path / "run")


@pytest.mark.slow
def test_ctrl_c_on_the_command_line_exits_130_with_a_checkpoint(tmp_path):
    conf = conf_file(tmp_path, signal_at=None)
    run_dir = tmp_path / "run"
    command = [
        sys.executable, "-m", "sb3_sparse.train", "--conf", str(conf), "--eval-freq", str(EVAL_FREQ), "--eval-episodes",
        "1", "--final-eval-episodes", "1", "--diagnostics-freq", "0", "--output-dir", str(run_dir), "--resume",
        "--no-progress-bar", "--num-threads", "1",
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log, deadline = run_dir / "live" / "progress.csv", time.monotonic() + 120
    while not log.is_file() and time.monotonic() < deadline:  # the first evaluation: training runs
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr[-2000:]
    assert "Traceback" not in stderr and "SIGINT: the run stopped with a checkpoint at" in stderr
    assert RunDirectory(run_dir).interrupted_by() == "SIGINT"
    finished = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr[-2000:]
    check_run_integrity(run_dir)


# --- damaged and deleted files --------------------------------------------------------------------------


def test_d1_damaged_checkpoint_log_is_rebuilt_from_the_runs_log_without_losing_a_row(stopped_run, tmp_path):
    run_dir = copy_of(stopped_run, tmp_path)
    before = read_csv_rows(run_dir / "progress.csv")
    damage(run_dir / "checkpoint-000000000250" / "progress.csv")
    with pytest.warns(UserWarning, match=r"checkpoint-000000000250/progress.csv is damaged .* rows are taken from"):
        resume(run_dir, stored_conf(run_dir))
    after = read_csv_rows(run_dir / "progress.csv")
    assert after[: len(before)] == before  # every earlier row kept, in order
    check_run_integrity(run_dir)


def test_d1_a_damaged_log_keeps_its_intact_rows(tmp_path):
    path = tmp_path / "progress.csv"
    rows = [{"step": str(step), "return": f"{-1000.0 / step:.24f}"} for step in (100, 200, 300)]
    path.write_text("step,return\n" + "".join(f"{row['step']},{row['return']}\n" for row in rows))
    damage(path)  # the last row loses its end and gains stray bytes
    content = read_csv(path)
    assert content.rows == rows[:2] and content.damaged_lines == [4]


def test_d4_a_pointer_to_a_missing_checkpoint_resumes_from_the_previous_one(stopped_run, tmp_path, capsys):
    run_dir = copy_of(stopped_run, tmp_path)
    shutil.rmtree(run_dir / "checkpoint-000000000250")
    with pytest.warns(
        UserWarning,
        match=r"resuming from checkpoint-000000000200 .*checkpoint-000000000250 is damaged: its directory is missing",
    ):
        resume(run_dir, stored_conf(run_dir))
    assert "resuming from the checkpoint at 200 agent steps" in capsys.readouterr().out
    check_run_integrity(run_dir)


def test_damaged_latest_checkpoint_model_falls_back_to_the_previous_checkpoint(stopped_run, tmp_path):
    run_dir = copy_of(stopped_run, tmp_path)
    model = run_dir / "checkpoint-000000000250" / "model.zip"
    model.write_bytes(model.read_bytes()[:-100])
    with pytest.warns(UserWarning, match=r"checkpoint-000000000250 is damaged: model.zip has [\d,]+ bytes"):
        resume(run_dir, stored_conf(run_dir))
    check_run_integrity(run_dir)


def test_no_intact_checkpoint_left_stops_with_one_message(stopped_run, tmp_path):
    run_dir = copy_of(stopped_run, tmp_path)
    for name in ("checkpoint-000000000250", "checkpoint-000000000200"):
        damage(run_dir / name / "replay_buffer.pkl")
    with pytest.raises(SystemExit, match=r"checkpoint.json is damaged \(no intact checkpoint is left.*--restart discards"):
        resume(run_dir, stored_conf(run_dir))
    assert not (run_dir / "model.zip").exists()  # nothing trained from step 0


def test_d6_damaged_json_files_are_repaired_or_named(stopped_run, tmp_path):
    run_dir = copy_of(stopped_run, tmp_path)
    conf = stored_conf(run_dir)
    (run_dir / "checkpoint.json").write_text('{"directory": "checkpoint-0000')  # invalid JSON: found on disk instead
    damage(run_dir / "config.json")  # restored from the newest checkpoint's copy
    damage(run_dir / "checkpoint-000000000250" / "evaluations.json")  # that checkpoint is passed over
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        resume(run_dir, conf)
    messages = " | ".join(str(warning.message) for warning in caught)
    assert "config.json is damaged" in messages and "restored from" in messages
    assert "checkpoint.json is damaged" in messages
    assert re.search(r"evaluations.json has \d+ bytes, \d+ were written", messages)
    assert (run_dir / "config.json.damaged").is_file()
    check_run_integrity(run_dir)


def test_d6_damaged_config_without_a_copy_is_named(stopped_run, tmp_path):
    run_dir = copy_of(stopped_run, tmp_path)
    conf = stored_conf(run_dir)
    for checkpoint in run_dir.glob("checkpoint-*"):
        shutil.rmtree(checkpoint)
    damage(run_dir / "config.json")
    with pytest.raises(SystemExit, match=r"config.json is damaged \(UnicodeDecodeError.*no checkpoint holds a copy"):
        resume(run_dir, conf)


@pytest.fixture(scope="module")
def finished_run(stopped_run, tmp_path_factory) -> Path:
    run_dir = copy_of(stopped_run, tmp_path_factory.mktemp("finished"))
    resume(run_dir, stored_conf(run_dir))
    return run_dir


@pytest.mark.parametrize("accident", ["deleted", "damaged", "deleted with evaluations.csv"])
def test_d5_a_finished_model_without_its_result_gets_it_back_without_training(finished_run, tmp_path, accident):
    run_dir = copy_of(finished_run, tmp_path)
    result = json.loads((run_dir / "result.json").read_text())
    model = (run_dir / "model.zip").read_bytes()
    if accident == "damaged":
        (run_dir / "result.json").write_text('{"final_mean_return": -12')
    else:
        (run_dir / "result.json").unlink()
    if accident.endswith("evaluations.csv"):
        (run_dir / "evaluations.csv").unlink()
    resume(run_dir, stored_conf(run_dir))
    rebuilt = json.loads((run_dir / "result.json").read_text())
    assert (run_dir / "model.zip").read_bytes() == model  # never retrained
    if accident.endswith("evaluations.csv"):  # evaluated again: the same model, a new final evaluation
        assert rebuilt["agent_steps"] == TIMESTEPS and read_csv_rows(run_dir / "evaluations.csv")[-1]["episodes"] == "1"
    else:  # the final evaluation of evaluations.csv (4 decimals)
        returns = ("final_mean_return", "final_std_return")
        assert rebuilt == {**result, **{key: pytest.approx(result[key], abs=1e-4) for key in returns}}
    assert (run_dir / "result.json.damaged").is_file() == (accident == "damaged")


# --- configurations -------------------------------------------------------------------------------------


def test_d7_numpy_scalars_are_plain_numbers_in_names_json_and_comparisons(tmp_path):
    conf = conf_file(tmp_path, signal_at=None)
    numpy_config = dict(
        algo="reference_sac", conf=str(conf), timesteps=np.int64(120), critic_sparsity=np.float32(0.8),
        actor_sparsity=np.float32(0.5), hyperparams={"batch_size": np.int64(64)}, seed=np.int64(1), eval_episodes=1,
        final_eval_episodes=1, diagnostics_freq=0, progress_bar=False, verbose=0, log_folder=str(tmp_path),
    )  # fmt: skip
    run_dir = train.run(RunConfig(**numpy_config))
    assert run_dir.name.endswith("_a0.5_c0.8_seed1")
    identity = json.loads((run_dir / "config.json").read_text())["identity"]
    assert identity["hyperparams"] == {"batch_size": 64} and identity["critic_sparsity"] == 0.8
    plain = {**numpy_config, "timesteps": 120, "critic_sparsity": 0.8, "actor_sparsity": 0.5, "seed": 1}
    plain["hyperparams"] = {"batch_size": 64}
    assert train.run(RunConfig(**plain, resume=True)) == run_dir  # the same run, finished


def test_d8_resume_compares_every_value_in_effect(stopped_run, tmp_path):
    """A default that changed between versions is not in the flags or the yml: the effective configuration holds it."""
    run_dir = copy_of(stopped_run, tmp_path)
    stored = json.loads((run_dir / "config.json").read_text())
    stored["effective"]["algorithm"]["tau"] = 0.01  # as if the version that started the run had another default
    stored["effective"]["policy"]["critic_hidden_dim"] = 64
    (run_dir / "config.json").write_text(json.dumps(stored))
    with pytest.raises(SystemExit, match=r"algorithm.tau: 0.01 -> 0.005; policy.critic_hidden_dim: 64 -> 32"):
        resume(run_dir, stored_conf(run_dir))
    # A key of the entry changed by an override is caught too (and by the effective configuration after it).
    stored["effective"] = json.loads((stopped_run / "config.json").read_text())["effective"]
    (run_dir / "config.json").write_text(json.dumps(stored))
    with pytest.raises(SystemExit, match=r"entry.tau: None -> 0.02"):
        train.run(config(stored_conf(run_dir), run_dir, hyperparams={"tau": 0.02}))


# --- sweeps -----------------------------------------------------------------------------------------------


def test_d3_a_run_marked_running_that_no_process_holds_is_reported_interrupted(tmp_path, capsys):
    from sb3_sparse.sweep import RunSpec
    from sb3_sparse.sweep_report import report

    run = RunSpec("reference_sac", "Pendulum-v1", "base", 0.8, 0.8, 0)
    run_dir = tmp_path / run.name
    run_dir.mkdir()
    (run_dir / "run.json").write_text(json.dumps(run.__dict__))
    (run_dir / "status.json").write_text(json.dumps({"status": "running", "attempts": 1, "pid": 1}))
    (runs,) = collect_results(tmp_path)[0]
    assert runs["status"] == "interrupted" and "died" in runs["error"]
    with RunDirectory(run_dir).locked():  # while a live process holds it, it is running
        assert collect_results(tmp_path)[0][0]["status"] == "running"
    report(tmp_path, reps=10)
    assert "1 runs: 1 interrupted" in capsys.readouterr().out


def wait_for_training(run_dir: Path, process: subprocess.Popen) -> None:
    log, deadline = run_dir / "live" / "progress.csv", time.monotonic() + 180
    while not log.is_file():
        assert process.poll() is None and time.monotonic() < deadline, "the run never started training"
        time.sleep(0.05)


@pytest.mark.slow
def test_d2_d3_ctrl_c_and_kill_of_a_sweep_stop_it_with_checkpoints_and_statuses_that_say_so(tmp_path):
    conf = conf_file(tmp_path, signal_at=None)
    sweep_file = tmp_path / "sweep.yml"
    settings = dict(eval_freq=EVAL_FREQ, eval_episodes=1, final_eval_episodes=1, diagnostics_freq=0)
    sweep_file.write_text(json.dumps(dict(
        name="signals", envs=["Pendulum-v1"], algo="reference_sac", presets=["width0.25"], sparsities=[0.0, 0.5, 0.8],
        timesteps=TIMESTEPS,
        conf=str(conf), checkpoint_freq=CHECKPOINT_FREQ, run_settings=settings, output_dir=str(tmp_path / "sweep"),
    )))  # fmt: skip
    command = [sys.executable, "-m", "sb3_sparse.sweep", "run", str(sweep_file), "--workers", "1", "--no-progress-bar"]
    names = [f"reference_sac_Pendulum-v1_width0.25_a{s}_c{s}_seed0" for s in ("0", "0.5", "0.8")]
    run_dirs = [tmp_path / "sweep" / name for name in names]

    # D2: Ctrl-C (SIGINT to the terminal's process group) stops the sweep: no new run starts.
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    wait_for_training(run_dirs[0], process)
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr[-2000:]
    assert "SIGINT: the sweep stopped; 1 runs stopped at a checkpoint, 2 did not start" in stderr
    assert json.loads((run_dirs[0] / "status.json").read_text())["status"] == "interrupted"
    assert RunDirectory(run_dirs[0]).interrupted_by() == "SIGINT"
    assert not (run_dirs[1] / "status.json").exists() and not (run_dirs[2] / "status.json").exists()

    # D3: kill -9 of the sweep: its running run gets SIGTERM, checkpoints and records it; the report agrees.
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not (run_dirs[0] / "result.json").exists():
        assert process.poll() is None
        time.sleep(0.05)
    wait_for_training(run_dirs[1], process)
    process.kill()
    process.wait()
    deadline = time.monotonic() + 60
    while RunDirectory(run_dirs[1]).is_training():
        assert time.monotonic() < deadline, "the run outlived its sweep"
        time.sleep(0.1)
    assert json.loads((run_dirs[1] / "status.json").read_text())["status"] == "interrupted"
    assert RunDirectory(run_dirs[1]).interrupted_by() == "SIGTERM"
    statuses = {row["name"]: row["status"] for row in collect_results(tmp_path / "sweep")[0]}
    # The sweep lists every run of its grid from the start: the third is pending.
    assert statuses == {names[0]: "finished", names[1]: "interrupted", names[2]: "pending"}

    finished = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr[-2000:]
    for run_dir in run_dirs:
        check_run_integrity(run_dir)
