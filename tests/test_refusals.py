"""Every mistake answered in one line (exit 2, nothing written), and nothing a user owns touched:
the runner's and the sweep's refusals, the files --restart removes, what survives an exception
after training, foreign checkpoints, environment faults, and a property test over every flag and
file key with wrong types and out-of-range values."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from sb3_sparse import train
from sb3_sparse.checks import ConfigurationError
from sb3_sparse.hyperparams.values import VALUE_RULES
from sb3_sparse.interrupts import Interrupted
from sb3_sparse.run_config import MAX_RUN_SEED
from sb3_sparse.run_directory import RunDirectory

ROOT = Path(__file__).resolve().parents[1]
TINY = '"dict(actor_hidden_dim=16, critic_hidden_dim=32, critic_num_blocks=1, n_critics=1)"'


def conf_file(folder: Path, env_id: str = "Pendulum-v1", **keys: Any) -> Path:
    entry = {"policy": "SparseSimBaPolicy", "n_timesteps": 300, "learning_starts": 100, **keys}
    lines = [f"{env_id}:", *(f"  {key}: {value}" for key, value in entry.items()), f"  policy_kwargs: {TINY}"]
    path = folder / "conf.yml"
    path.write_text("\n".join(lines) + "\n")
    return path


def args(conf: Path, out: Path, *more: str, env_id: str = "Pendulum-v1") -> list[str]:
    return [
        "--algo", "sac", "--env", env_id, "--conf", str(conf), "--output-dir", str(out), "--eval-freq", "100",
        "--eval-episodes", "1", "--final-eval-episodes", "1", "--diagnostics-freq", "0", "--no-progress-bar",
        "--num-threads", "1", "--verbose", "0", *more,
    ]  # fmt: skip


def refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run the runner, expect a refusal (exit 2) printed as one line, return the line."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as stopped:
        train.main(argv)
    assert stopped.value.code == 2, stopped.value
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize(
    ("more", "named"),
    [
        (["--seed", "99999999999999"], "seed must be an integer in [0, 4294957295]"),
        (["--device", "bogus"], "device must be auto, cpu, cuda"),
        (["--topology-kwargs", "update_interval:5"], "--topology-kwargs {'update_interval': 5}: the topology is static"),
        (["-params", "learning_rate:-1"], "-params: learning_rate: -1 is not a number > 0"),
        (["-params", "train_freq:0"], "-params: train_freq: 0 is not a whole number >= 1"),
        (["-params", "policy_kwargs:abc"], "-params: policy_kwargs: 'abc' is not a mapping"),
        (["-params", 'tau:"x"'], "-params: tau: 'x' is not a number in (0, 1]"),
        (["-params", "batch_size:0"], "-params: batch_size: 0 is not a whole number >= 1"),
        (["-params", "gamma:2"], "-params: gamma: 2 is not a number in (0, 1]"),
        (["-params", "buffer_size:0"], "-params: buffer_size: 0 is not a whole number >= 1"),
        (["-params", "buffer_size:100", "batch_size:256"], "buffer_size: 100 is not >= batch_size (256)"),
        (["-params", "learning_starts:-5"], "-params: learning_starts: -5 is not a whole number >= 0"),
        (["-params", "n_envs:2.5"], "-params: n_envs: 2.5 is not a whole number >= 1"),
        (["-params", "batch_size:12.5"], "-params: batch_size: 12.5 is not a whole number >= 1"),
        (["-params", "n_timesteps:-150"], "-params: n_timesteps: -150 is not a whole number >= 1"),
        (["-params", "callback:does.not.Exist"], "-params: callback: 'does.not.Exist' is not importable names"),
        (["-params", "learning_rate:1e-3"], "YAML 1.1 reads 1e-3 as text"),
    ],
)
def test_bad_flags_and_values_are_one_line_with_exit_2_and_nothing_written(tmp_path, capsys, more, named):
    line = refused(args(conf_file(tmp_path), tmp_path / "run", *more), capsys)
    assert line.startswith("sb3-sparse train: error: ") and named in line
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("entry", "named"),
    [
        ("Pendulum-v1: 5", "entry 'Pendulum-v1' must map keys to values"),
        (
            "Pendulum-v1:\n  policy: SparseSimBaPolicy\n  n_timesteps: 300\n  policy_kwargs: 5",
            "policy_kwargs: 5 is not a mapping",
        ),
        (
            "Pendulum-v1:\n  policy: SparseSimBaPolicy\n  n_timesteps: 300\n  batch_size: 12.5",
            "batch_size: 12.5 is not a whole",
        ),
        ("Pendulum-v1:\n  policy: SparseSimBaPolicy\n  n_timesteps: -150", "n_timesteps: -150 is not a whole number >= 1"),
        ("Pendulum-v1:\n  policy: SparseSimBaPolicy\n  n_timesteps: 300\n  callback: does.not.Exist", "callback: 'does.not"),
    ],
)
def test_bad_conf_values_name_the_file_and_the_key(tmp_path, capsys, entry, named):
    conf = tmp_path / "conf.yml"
    conf.write_text(entry + "\n")
    line = refused(args(conf, tmp_path / "run"), capsys)
    assert str(conf) in line and named in line
    assert not (tmp_path / "run").exists()


def test_restart_removes_only_what_the_runner_wrote(tmp_path, capsys):
    runs = tmp_path / "runs"
    (runs / "notes").mkdir(parents=True)
    (runs / "notes" / "ideas.txt").write_text("keep me")
    (runs / "mine.csv").write_text("a,b\n1,2\n")
    (runs / "finished_run").mkdir()
    (runs / "finished_run" / "result.json").write_text("{}")
    train.main(args(conf_file(tmp_path, n_timesteps=120), runs, "--restart"))
    assert (runs / "notes" / "ideas.txt").read_text() == "keep me"
    assert (runs / "mine.csv").read_text() == "a,b\n1,2\n" and (runs / "finished_run" / "result.json").is_file()
    assert RunDirectory(runs).finished
    assert "left the others: finished_run, mine.csv, notes" in capsys.readouterr().out
    train.main(args(conf_file(tmp_path, n_timesteps=120), runs, "--restart"))  # a finished run in it: again
    assert (runs / "mine.csv").is_file() and RunDirectory(runs).finished


def test_a_new_run_refuses_a_folder_holding_files_that_are_not_its_own(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    mine = {"evaluations.csv": "my,numbers\n", "progress.csv": "x\n1\n", "density.txt": "my notes\n"}
    for name, text in mine.items():
        (out / name).write_text(text)
    line = refused(args(conf_file(tmp_path), out), capsys)
    assert "holds no run but files (density.txt, evaluations.csv, progress.csv)" in line
    assert {path.name: path.read_text() for path in out.iterdir()} == mine


def test_an_exception_in_the_final_evaluation_keeps_the_trained_model(tmp_path, monkeypatch, capsys):
    conf, out = conf_file(tmp_path), tmp_path / "run"

    def crash(*arguments: Any, **keywords: Any) -> None:
        raise RuntimeError("the evaluation environment crashed")

    monkeypatch.setattr(train, "_final_evaluation", crash)
    with pytest.raises(RuntimeError, match="the evaluation environment crashed"):
        train.main(args(conf, out))
    assert RunDirectory(out).checkpoint_step() == 300
    assert "the trained model is kept as a checkpoint" in capsys.readouterr().err
    monkeypatch.undo()
    train.main(args(conf, out, "--resume"))
    assert "resuming from the checkpoint at 300 agent steps" in capsys.readouterr().out
    result = json.loads((out / "result.json").read_text())
    assert result["agent_steps"] == 300


def stopped_run(tmp_path: Path, name: str, seed: int, step: int = 150) -> Path:
    """A run stopped by SIGTERM at ``step``, with its checkpoint."""
    markers = tmp_path / f"markers-{name}"
    markers.mkdir()
    callback = f"[{{tests.signal_callback.SignalAtSteps: {{steps: [{step}], marker_dir: '{markers}'}}}}]"
    folder = tmp_path / f"conf-{name}"
    folder.mkdir()
    out = tmp_path / name
    with pytest.raises(Interrupted):
        train.main(args(conf_file(folder, callback=callback), out, "--seed", str(seed)))
    return out


def test_a_checkpoint_of_another_run_is_refused(tmp_path, capsys):
    other = stopped_run(tmp_path, "other", seed=3)
    mine = tmp_path / "mine"
    mine.mkdir()
    for entry in other.iterdir():
        if entry.name.startswith("checkpoint"):
            (shutil.copytree if entry.is_dir() else shutil.copy)(entry, mine / entry.name)
    conf = conf_file(
        tmp_path / "conf-other",
        callback=f"[{{tests.signal_callback.SignalAtSteps: {{steps: [150], marker_dir: '{tmp_path / 'markers-other'}'}}}}]",
    )
    line = refused(args(conf, mine, "--seed", "0", "--resume"), capsys)
    assert "is a checkpoint of another run: seed: 3 -> 0" in line


def test_resume_with_a_budget_below_the_checkpoint_is_refused(tmp_path, capsys):
    out = stopped_run(tmp_path, "run", seed=0, step=250)
    config = (out / "config.json").read_text()
    conf = next((tmp_path / "conf-run").iterdir())
    line = refused(args(conf, out, "--resume", "--timesteps", "200"), capsys)
    assert "--timesteps 200: the checkpoint in" in line and "is at 250 agent steps" in line
    assert (out / "config.json").read_text() == config and RunDirectory(out).checkpoint_step() == 250


def test_a_non_finite_reward_names_the_environment_and_the_step(tmp_path, capsys):
    import tests.crashing_env  # noqa: F401  (registers NaNRewardPendulum-v0)

    with pytest.raises(SystemExit) as stopped:
        train.main(args(conf_file(tmp_path, env_id="NaNRewardPendulum-v0"), tmp_path / "run", env_id="NaNRewardPendulum-v0"))
    assert stopped.value.code == 1
    error = capsys.readouterr().err
    # At agent step 60, before the first evaluation (whose environment would say "(evaluation)").
    assert "NaNRewardPendulum-v0 returned a non-finite reward at agent step 60 (environment 0 of 1, entry (): nan)" in error


def test_an_output_dir_naming_a_file_is_one_line(tmp_path):
    file = tmp_path / "taken"
    file.write_text("mine")
    finished = subprocess.run(
        [sys.executable, "-m", "sb3_sparse.train", *args(conf_file(tmp_path), file)], capture_output=True, text=True
    )
    assert finished.returncode == 1 and file.read_text() == "mine"
    assert finished.stderr.strip().splitlines() == [
        f"sb3-sparse train: {file}: File exists: it is a file where a folder must go: choose another --output-dir"
    ]


# --- the property: every flag and every file key, wrong types and values out of range ------------

#: Values of every shape: the rules refuse most of them for most keys.
ANY_VALUE = st.one_of(
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.text(alphabet="abcxyz_.-019 ", max_size=8),
    st.booleans(),
    st.lists(st.integers(min_value=-3, max_value=3), max_size=3),
)
FLAGS = {
    "--seed": st.one_of(st.integers(max_value=-1), st.integers(min_value=MAX_RUN_SEED + 1)),
    "--timesteps": st.integers(max_value=0),
    "--eval-freq": st.integers(max_value=0),
    "--eval-episodes": st.integers(max_value=0),
    "--final-eval-episodes": st.integers(max_value=0),
    "--checkpoint-freq": st.integers(max_value=-1),
    "--diagnostics-freq": st.integers(max_value=-1),
    "--actor-sparsity": st.one_of(st.floats(max_value=-0.001), st.floats(min_value=1.0), st.text(alphabet="abc", min_size=1)),
    "--critic-sparsity": st.one_of(st.floats(max_value=-0.001), st.floats(min_value=1.0)),
    "--num-threads": st.integers(max_value=0),
    "--preset": st.text(alphabet="xyz", min_size=1),
    "--topology": st.text(alphabet="xyz", min_size=1),
    "--algo": st.text(alphabet="xyz", min_size=1),
}


def _refusal(argv: list[str]) -> tuple[int | str | None, str]:
    """Run the runner in this process; its exit code and what it printed on stderr."""
    import contextlib
    import io

    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        try:
            train.main(argv)
        except SystemExit as stopped:
            return stopped.code, stderr.getvalue()
    return 0, stderr.getvalue()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(key=st.sampled_from(sorted(VALUE_RULES)), value=ANY_VALUE, where=st.sampled_from(["-params", "conf"]))
def test_every_file_key_with_a_wrong_value_is_refused_in_one_line(key, value, where):
    assume(VALUE_RULES[key](value) is not None)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        if where == "conf":
            conf = root / "conf.yml"
            entry = {"policy": "SparseSimBaPolicy", "n_timesteps": 300, key: value}
            conf.write_text(yaml.safe_dump({"Pendulum-v1": entry}))
            argv = args(conf, root / "run")
        else:
            argv = args(
                conf_file(root), root / "run", "-params", f"{key}:{yaml.safe_dump(value).strip().removesuffix('...').strip()}"
            )
        code, stderr = _refusal(argv)
        lines = [line for line in stderr.splitlines() if line.strip()]
        assert code == 2 and len(lines) == 1 and key in lines[0], (code, stderr)
        assert not (root / "run").exists()


@settings(max_examples=40, deadline=None)
@given(flag_and_value=st.sampled_from(sorted(FLAGS)).flatmap(lambda flag: st.tuples(st.just(flag), FLAGS[flag])))
def test_every_flag_with_a_wrong_value_is_refused_in_one_line(flag_and_value):
    flag, value = flag_and_value
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        argv = args(conf_file(root), root / "run")
        if flag in argv:
            del argv[argv.index(flag) : argv.index(flag) + 2]
        code, stderr = _refusal([*argv, flag, str(value)])
        lines = [line for line in stderr.splitlines() if line.strip()]
        name = flag.lstrip("-").replace("-", "_")
        assert code == 2 and len(lines) == 1, (code, stderr)
        assert flag in lines[0] or name in lines[0], lines[0]
        assert not (root / "run").exists()


def test_configuration_errors_are_system_exits_with_code_2():
    error = ConfigurationError("x: 1 is not y")
    assert isinstance(error, SystemExit) and error.code == 2 and str(error) == "x: 1 is not y"


# --- sweeps ---------------------------------------------------------------------------------------


def tiny_sweep(tmp_path: Path, **fields: Any) -> Any:
    from sb3_sparse.sweep import Sweep

    conf = conf_file(tmp_path, n_timesteps=150)
    defaults = dict(
        name="tiny", envs=["Pendulum-v1"], presets=["width0.25"], sparsities=[0.8], seeds=[0], timesteps=150,
        conf=str(conf), output_dir=str(tmp_path / "sweep"),
        runner_args=["--eval-freq", "75", "--eval-episodes", "1", "--final-eval-episodes", "1", "--diagnostics-freq", "0"],
    )  # fmt: skip
    return Sweep(**{**defaults, **fields})


def test_a_second_sweep_with_other_settings_on_one_folder_is_refused(tmp_path):
    from dataclasses import asdict

    from sb3_sparse.sweep import main, run_sweep

    sweep = tiny_sweep(tmp_path)
    (result,) = run_sweep(sweep, workers=1, progress_bar=False)
    assert result["status"] == "finished"
    with pytest.raises(ConfigurationError, match=r"holds another sweep .*timesteps: 150 -> 300"):
        run_sweep(tiny_sweep(tmp_path, timesteps=300), workers=1, progress_bar=False)
    # A run process takes the settings on its command line: sweep.json plays no part in it.
    (sweep.root / "sweep.json").unlink()
    (run,) = sweep.runs()
    resolved = asdict(sweep) | {"output_dir": str(sweep.root.resolve()), "conf": str(Path(sweep.conf).resolve())}
    assert main(["execute", json.dumps(resolved), run.name])["status"] == "skipped"  # finished before


def test_a_sweep_with_failed_runs_lists_them_and_exits_non_zero(tmp_path, capsys, monkeypatch):
    from sb3_sparse.sweep import main

    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    sweep = tiny_sweep(tmp_path, envs=["Pendulum-v1", "CartPole-v1"])  # the conf has no CartPole-v1 entry
    sweep_file = tmp_path / "sweep.yml"
    sweep_file.write_text(json.dumps({key: value for key, value in vars(sweep).items() if value is not None}))
    with pytest.raises(SystemExit) as stopped:
        main(["run", str(sweep_file), "--workers", "1", "--no-progress-bar"])
    assert stopped.value.code == 1
    assert "1 of 2 runs failed" in capsys.readouterr().err
    rows = list(csv_rows(sweep.root / "runs.csv"))
    assert sorted(row["status"] for row in rows) == ["failed", "finished"]
    assert all("no entry for 'CartPole-v1'" in row["error"] for row in rows if row["status"] == "failed")


def csv_rows(path: Path) -> list[dict[str, str]]:
    import csv

    with path.open(newline="") as file:
        return list(csv.DictReader(file))


def test_sweep_seeds_numpy_cannot_take_are_refused():
    with pytest.raises(ValueError, match=r"seeds must be an integer in \[0, 4294957295\], got 4294967296"):
        tiny_sweep(Path(tempfile.mkdtemp()), seeds=[0, 2**32])


def test_a_sweeps_bad_run_settings_are_one_refusal_before_any_run(tmp_path):
    from sb3_sparse.sweep import run_sweep

    sweep = tiny_sweep(tmp_path, run_settings={"verbose": -1})
    with pytest.raises(ConfigurationError, match="sweep tiny: verbose must be"):
        run_sweep(sweep, workers=1, progress_bar=False)
    sweep = tiny_sweep(tmp_path, run_settings={"hyperparams": {"gamma": 2}})
    with pytest.raises(ConfigurationError, match=r"run_settings.hyperparams: gamma: 2 is not a number in \(0, 1\]"):
        run_sweep(sweep, workers=1, progress_bar=False)
    assert not (tmp_path / "sweep").exists()


@pytest.mark.parametrize(
    ("number", "remedy"),
    [
        (28, "free some space, or choose another --output-dir; the last checkpoint stays"),  # ENOSPC
        (30, "choose a writable --output-dir"),  # EROFS
        (13, "make it writable, or choose another --output-dir"),  # EACCES
    ],
)
def test_operating_system_refusals_name_the_path_and_what_to_do(number, remedy):
    import errno
    import os

    from sb3_sparse.run_directory import os_error_message

    assert number == {28: errno.ENOSPC, 30: errno.EROFS, 13: errno.EACCES}[number]
    error = OSError(number, os.strerror(number), "/runs/x/model.zip")
    assert os_error_message(error) == f"/runs/x/model.zip: {os.strerror(number)}: {remedy}"
