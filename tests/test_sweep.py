"""Sweeps: local and Ray backends, failures, interruption and resumption, results and plots."""

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sb3_sparse.run_directory import RunDirectory
from sb3_sparse.sweep import RunSpec, Sweep, main, report, run_sweep
from tests.crashing_env import MARKER_ENV_VARIABLE

ROOT = Path(__file__).resolve().parents[1]
CONF = """
Pendulum-v1: &tiny
  policy: SparseSimBaPolicy
  n_timesteps: 200
  learning_starts: 100
  policy_kwargs: "dict(n_critics=1)"
CrashOncePendulum-v0: *tiny
"""
RUNNER_ARGS = ["--eval-freq", "100", "--eval-episodes", "1", "--final-eval-episodes", "2", "--diagnostics-freq", "100"]


def make_sweep(tmp_path, **fields):
    conf = tmp_path / "conf.yml"
    conf.write_text(CONF)
    defaults = dict(
        name="tiny", envs=["Pendulum-v1"], presets=["width0.25"], sparsities=[0.0, 0.8], seeds=[0], timesteps=200,
        conf=str(conf), runner_args=RUNNER_ARGS, output_dir=str(tmp_path / "sweep"),
    )  # fmt: skip
    return Sweep(**{**defaults, **fields})


def read_csv(path):
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


@pytest.fixture(autouse=True)
def importable_test_packages(monkeypatch):
    # Run processes import tests.crashing_env, and the package from this checkout.
    monkeypatch.setenv("PYTHONPATH", str(ROOT))


def test_local_sweep_with_a_broken_configuration_writes_the_table_and_plots(tmp_path, capsys):
    sweep = make_sweep(tmp_path, envs=["Pendulum-v1", "CartPole-v1"], presets=["width0.25", "width0.5"])
    results = run_sweep(sweep, workers=2, progress_bar=False)
    assert sorted(r["status"] for r in results) == ["failed"] * 4 + ["finished"] * 4
    files = report(sweep.root, reps=200)
    assert f"report in {sweep.root}/: runs.csv, evaluations.csv, aggregates.csv, plots/" in capsys.readouterr().out
    runs = {row["name"]: row for row in read_csv(files["runs"])}
    assert len(runs) == 8
    broken = [row for row in runs.values() if row["env"] == "CartPole-v1"]
    assert all(row["status"] == "failed" and "no entry for 'CartPole-v1'" in row["error"] for row in broken)
    good = [row for row in runs.values() if row["env"] == "Pendulum-v1"]
    assert all(row["status"] == "finished" for row in good)
    for row in good:  # parameter counts, final return and final diagnostics in one row
        assert int(row["nonzero_parameters"]) <= int(row["parameters"])
        assert float(row["final_mean_return"]) < 0 and float(row["plasticity/critic/srank"]) > 0
    sparse = [row for row in good if row["critic_sparsity"] == "0.8"]
    assert all(int(row["nonzero_parameters"]) < 0.3 * int(row["parameters"]) for row in sparse)
    aggregates = read_csv(files["aggregates"])
    assert len(aggregates) == 4 and all(float(a["ci_low"]) <= float(a["iqm"]) <= float(a["ci_high"]) for a in aggregates)
    evaluations = read_csv(files["evaluations"])
    assert len(evaluations) == 4 * 3  # evaluations at 100 and 200, then the final one
    for name in ("return_vs_parameters", "return_vs_sparsity", "return_vs_nonzero_parameters", "diagnostics_width0.5"):
        png = files[name].read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) > 10_000, name


def test_ray_backend_on_a_local_cluster(tmp_path):
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        sweep = make_sweep(tmp_path, envs=["Pendulum-v1", "CartPole-v1"])
        results = run_sweep(sweep, backend="ray", cpus_per_run=1, progress_bar=False)
    finally:
        ray.shutdown()
    assert sorted(r["status"] for r in results) == ["failed", "failed", "finished", "finished"]
    files = report(sweep.root, reps=100)
    assert files["return_vs_sparsity"].is_file()
    assert all(Path(sweep.root, r["name"], "result.json").is_file() for r in results if r["status"] == "finished")


def test_interrupted_sweep_finishes_only_what_was_missing(tmp_path, capfd):
    sweep = make_sweep(tmp_path, sparsities=[0.0, 0.5, 0.8])
    sweep_file = tmp_path / "sweep.yml"
    sweep_file.write_text(json.dumps({k: v for k, v in vars(sweep).items() if v is not None}))  # JSON is YAML
    command = [sys.executable, "-m", "sb3_sparse.sweep", "run", str(sweep_file), "--workers", "1", "--no-report"]
    process = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = sweep.root / sweep.runs()[0].name / "result.json"
    deadline = time.monotonic() + 300
    while not first.is_file() and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)  # the sweep and its run processes, mid-way
    process.wait()
    assert first.is_file()
    finished_before = {run.name: (sweep.root / run.name / "result.json") for run in sweep.runs()}
    finished_before = {name: path.stat().st_mtime_ns for name, path in finished_before.items() if path.is_file()}
    assert 1 <= len(finished_before) < 3

    capfd.readouterr()
    results = main(["run", str(sweep_file), "--workers", "1", "--no-report"])
    # The bar counts agent steps over all runs, those finished before the kill included.
    bar = capfd.readouterr().err
    assert "sweep tiny" in bar and "600/600" in bar and "3/3 runs" in bar
    statuses = {r["name"]: r["status"] for r in results}
    assert all(statuses[name] == "skipped" for name in finished_before)
    assert sum(status == "finished" for status in statuses.values()) == 3 - len(finished_before)
    for name, mtime in finished_before.items():  # never overwritten
        assert (sweep.root / name / "result.json").stat().st_mtime_ns == mtime


def test_crashed_run_resumes_from_its_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setenv(MARKER_ENV_VARIABLE, str(tmp_path / "crashed"))
    sweep = make_sweep(
        tmp_path, envs=["CrashOncePendulum-v0"], sparsities=[0.8], checkpoint_freq=100, gym_packages=["tests.crashing_env"]
    )
    (first,) = run_sweep(sweep, workers=1, progress_bar=False)
    assert first["status"] == "failed" and "exited with code 1" in first["error"]  # died at step 150
    run_dir = sweep.root / first["name"]
    assert RunDirectory(run_dir).checkpoint_step() == 100 and not (run_dir / "result.json").exists()
    assert (RunDirectory(run_dir).checkpoint() / "model.zip").is_file()

    (second,) = run_sweep(sweep, workers=1, progress_bar=False)
    assert second["status"] == "finished"
    assert "resuming from the checkpoint at 100 agent steps" in (run_dir / "train.log").read_text()
    assert json.loads((run_dir / "status.json").read_text())["attempts"] == 2
    steps = [int(row["agent_steps"]) for row in read_csv(run_dir / "evaluations.csv")]
    assert steps == [100, 200, 200]  # the evaluation at 100 comes from the first attempt
    assert json.loads((run_dir / "result.json").read_text())["agent_steps"] == 200
    assert RunDirectory(run_dir).checkpoint() is None and not list(run_dir.glob("checkpoint*"))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (dict(presets=["huge"]), r"unknown presets \['huge'\]; valid presets: width0.25"),
        (dict(sparsities=[1.0]), r"sparsities must be in \[0, 1\), got \[1.0\]"),
        (dict(algo="ppo_mask"), "ppo_mask has no hyperparameter file; the algorithms with one: sac"),
        (dict(algo="Sac"), r"unknown algo 'Sac' \(did you mean 'sac'\?\)$"),
        (dict(algo="stream_ac"), "sweeps scale SimBa networks with size presets; 'stream_ac' has none"),
        (dict(seeds=[]), "seeds must be a non-empty list"),
        (dict(timesteps=0), "timesteps must be an integer >= 1, got 0"),
    ],
)
def test_bad_sweeps_fail_before_any_run(tmp_path, fields, message):
    with pytest.raises(ValueError, match=message):
        make_sweep(tmp_path, **fields)


def test_sweep_file_with_an_unknown_field_lists_the_valid_ones(tmp_path, capsys):
    path = tmp_path / "bad.yml"
    path.write_text("envs: [Pendulum-v1]\nsparsity: [0.8]\n")
    with pytest.raises(SystemExit):
        main(["run", str(path)])
    assert "unknown sweep fields ['sparsity']; valid fields: name, envs, algo, presets, sparsities" in capsys.readouterr().err


def test_run_names_spell_the_configuration():
    run = RunSpec("sac", "sb3_sparse/dmc-dog-run-v0", "width2", 0.8, 0.8, 3)
    assert run.name == "sac_sb3_sparse-dmc-dog-run-v0_width2_a0.8_c0.8_seed3"
    assert RunSpec("sac", "Pendulum-v1", "base", 0.9, 0.9, 0, "rigl").name == "sac_Pendulum-v1_base_a0.9_c0.9_rigl_seed0"


def test_topologies_are_a_dimension_of_the_grid(tmp_path):
    sweep = make_sweep(
        tmp_path, sparsities=[0.0, 0.8], topologies=["static", "set"], topology_kwargs={"set": {"update_interval": 20}}
    )
    runs = sweep.runs()
    assert [(run.critic_sparsity, run.topology) for run in runs] == [(0.0, "static"), (0.8, "static"), (0.8, "set")]
    config = sweep.run_config(runs[-1], tmp_path / "run")
    assert config.topology == "set" and config.topology_kwargs == {"update_interval": 20}
    assert sweep.run_config(runs[1], tmp_path / "run").topology is None  # static: the entry's masks
    small = make_sweep(
        tmp_path, sparsities=[0.8], topologies=["static", "set"], topology_kwargs={"set": {"update_interval": 20}}
    )
    run_sweep(small, workers=2, progress_bar=False)
    files = report(tmp_path / "sweep", reps=100)
    aggregates = {row["topology"]: row for row in read_csv(files["aggregates"])}
    assert aggregates.keys() == {"static", "set"}
    assert files["return_by_topology"].read_bytes().startswith(b"\x89PNG")
    rows = {row["topology"]: row for row in read_csv(files["runs"])}
    assert all(row["status"] == "finished" for row in rows.values())
    log = read_csv(tmp_path / "sweep" / rows["set"]["name"] / "progress.csv")
    assert float([row for row in log if row.get("topology/critic/updates")][-1]["topology/critic/updates"]) > 0


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (dict(topologies=["random"]), r"unknown topologies \['random'\]; valid topologies: static, set, rigl, gmp, densify"),
        (dict(topologies=["set"], topology_kwargs={"rigl": {}}), "topology_kwargs names 'rigl'"),
        (dict(topologies=["set"], topology_kwargs={"set": {"drop": 0.1}}), r"unknown topology_kwargs \['drop'\]"),
    ],
)
def test_bad_topology_dimensions_fail_before_any_run(tmp_path, fields, message):
    with pytest.raises(ValueError, match=message):
        make_sweep(tmp_path, **fields)


def test_example_sweep_files_are_valid():
    for path in (ROOT / "examples" / "sweeps").glob("*.yml"):
        sweep = Sweep.from_yaml(path)
        sparse_levels = len([s for s in sweep.sparsities if s > 0])
        levels = len(sweep.sparsities) + (len(sweep.topologies) - 1) * sparse_levels  # dynamic ones skip dense
        assert len(sweep.runs()) == len(sweep.envs) * len(sweep.presets) * levels * len(sweep.seeds)
    topology = Sweep.from_yaml(ROOT / "examples" / "sweeps" / "topology_dmc_paper.yml")
    assert topology.presets == ["width5"] and topology.sparsities == [0.9] and len(topology.runs()) == 7 * 4 * 5
    paper = Sweep.from_yaml(ROOT / "examples" / "sweeps" / "paper_dmc.yml")
    assert paper.presets == ["base", "width2", "width5"] and len(paper.seeds) == 5 and len(paper.envs) == 7


TINY_CARTPOLE = {  # entries for 256 agent steps
    "ppo": "CartPole-v1:\n  policy: SparseSimBaPolicy\n  n_timesteps: 256\n  n_steps: 128\n",
    "dqn": "CartPole-v1:\n  policy: SparseSimBaPolicy\n  n_timesteps: 256\n  learning_starts: 64\n  train_freq: 16\n",
}


@pytest.mark.parametrize("algo", ["ppo", "dqn"])
def test_on_policy_and_value_based_sweeps_prune_their_networks(tmp_path, algo):
    conf = tmp_path / f"{algo}.yml"
    conf.write_text(TINY_CARTPOLE[algo])
    sweep = make_sweep(
        tmp_path, algo=algo, envs=["CartPole-v1"], conf=str(conf), timesteps=256, output_dir=str(tmp_path / algo)
    )
    results = run_sweep(sweep, workers=1, progress_bar=False)
    assert [r["status"] for r in results] == ["finished"] * 2, results
    runs = {row["critic_sparsity"]: row for row in read_csv(report(sweep.root, reps=50)["runs"])}
    assert int(runs["0.8"]["nonzero_parameters"]) < 0.3 * int(runs["0.8"]["parameters"])
    assert int(runs["0.0"]["nonzero_parameters"]) > 0.9 * int(runs["0.0"]["parameters"])  # zero-initialized biases aside
    assert float(runs["0.8"]["plasticity/critic/srank"]) > 0
    assert [run.topology for run in make_sweep(tmp_path, algo=algo, topologies=["static", "gmp"]).runs()][-1] == "gmp"


def test_value_based_sweeps_have_no_actor_sparsities(tmp_path):
    with pytest.raises(ValueError, match=r"qrdqn has no actor: actor_sparsities must be None, got \[0.5\]"):
        make_sweep(tmp_path, algo="qrdqn", actor_sparsities=[0.5])


def test_actor_and_critic_sparsity_lists_are_crossed(tmp_path):
    sweep = make_sweep(tmp_path, sparsities=[0.0], actor_sparsities=[0.5, 0.9], critic_sparsities=[0.8])
    assert [(run.actor_sparsity, run.critic_sparsity) for run in sweep.runs()] == [(0.5, 0.8), (0.9, 0.8)]
    half = make_sweep(tmp_path, sparsities=[0.0, 0.8], critic_sparsities=[0.9])  # actor levels from sparsities
    assert [(run.actor_sparsity, run.critic_sparsity) for run in half.runs()] == [(0.0, 0.9), (0.8, 0.9)]
    with pytest.raises(ValueError, match=r"actor_sparsities must be in \[0, 1\), got \[-0.1\]"):
        make_sweep(tmp_path, actor_sparsities=[-0.1])


def test_sb3_sparse_command_dispatches_to_the_sweep(tmp_path, capsys):
    import sb3_sparse
    from sb3_sparse import cli

    cli.main(["--help"])
    assert "train" in capsys.readouterr().out
    cli.main(["--version"])
    assert capsys.readouterr().out.strip() == f"sb3-sparse {sb3_sparse.__version__}"
    with pytest.raises(SystemExit, match="unknown command 'swep'; valid commands: train, sweep, plot"):
        cli.main(["swep"])
    with pytest.raises(SystemExit):  # the sweep's own parser: a missing file is a usage error
        cli.main(["sweep", "run", str(tmp_path / "missing.yml")])
    assert "missing.yml" in capsys.readouterr().err


def test_atari_100k_games_pool_as_human_normalized_scores():
    from sb3_sparse.atari import ATARI_100K_GAMES, atari_100k_env_id, atari_game, human_normalized_score
    from sb3_sparse.sweep_report import aggregate

    assert len(ATARI_100K_GAMES) == 26 and atari_100k_env_id("Pong") == "PongNoFrameskip-v4"
    assert atari_game("ALE/Pong-v5") == atari_game("PongNoFrameskip-v4") == "Pong" and atari_game("Pendulum-v1") is None
    assert human_normalized_score("PongNoFrameskip-v4", -20.7) == 0 and human_normalized_score("ALE/Pong-v5", 14.6) == 1
    with pytest.raises(ValueError, match="not an Atari-100k game"):
        atari_100k_env_id("Tetris")
    runs = [
        dict(algo="dqn", preset="base", actor_sparsity=0.8, critic_sparsity=0.8, env=env, status="finished",
             final_mean_return=score, parameters=10, nonzero_parameters=2)
        for env, score in (("PongNoFrameskip-v4", -3.05), ("BreakoutNoFrameskip-v4", 16.1)) for _ in range(2)
    ]  # fmt: skip
    (row,) = aggregate(runs, reps=50)  # one group over both games: each game scores 0.5
    assert row["normalized"] == "human-normalized score" and row["iqm"] == pytest.approx(0.5)


def test_the_atari_100k_sweep_lists_the_26_games_at_100k_steps():
    sweep = Sweep.from_yaml(ROOT / "examples" / "sweeps" / "atari100k.yml")
    assert len(sweep.envs) == 26 and sweep.timesteps == 100_000 and sweep.presets == ["base", "width2"]
    assert sweep.settings()["hyperparams"]["n_steps"] == 20


def test_value_based_runs_are_named_without_an_actor_and_earlier_folders_are_kept(tmp_path):
    from sb3_sparse import train

    sweep = Sweep(name="dqn", algo="dqn", envs=["CartPole-v1"], sparsities=[0.9], output_dir=str(tmp_path / "sweep"))
    (run,) = sweep.runs()
    assert run.name == "dqn_CartPole-v1_base_c0.9_seed0" and sweep.run_dir(run) == tmp_path / "sweep" / run.name
    earlier = tmp_path / "sweep" / "dqn_CartPole-v1_base_a0.9_c0.9_seed0"  # a sweep before 0.3 wrote this
    earlier.mkdir(parents=True)
    assert sweep.run_dir(run) == earlier
    config = train.parse_args(["--algo", "dqn", "--env", "CartPole-v1", "-f", str(tmp_path / "runs")])
    kwargs = {"critic_sparsity": 0.8}
    assert train.default_output_dir(config, kwargs).name == "dqn_CartPole-v1_entry_c0.8_seed0"
    (tmp_path / "runs" / "dqn_CartPole-v1_entry_a0.8_c0.8_seed0").mkdir(parents=True)
    assert train.default_output_dir(config, kwargs).name == "dqn_CartPole-v1_entry_a0.8_c0.8_seed0"
    sac = train.parse_args(["--algo", "sac", "--env", "Pendulum-v1", "-f", str(tmp_path / "runs")])
    assert train.default_output_dir(sac, {}).name == "sac_Pendulum-v1_entry_a0.8_c0.8_seed0"


def test_dry_run_prints_the_runs_the_steps_and_an_estimate_and_writes_nothing(tmp_path, capsys):
    sweep_file = tmp_path / "tiny.yml"
    sweep = make_sweep(tmp_path, presets=["width0.25", "width0.5"], seeds=[0, 1])
    sweep_file.write_text(json.dumps({**sweep.__dict__, "output_dir": str(tmp_path / "sweep")}))
    assert main(["run", str(sweep_file), "--dry-run", "--workers", "2"]) == []
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "tiny: 8 runs, 0 finished, 8 to run"
    probe = r"  width0\.25: [\d.]+ ms per agent step \(probe: sac_Pendulum-v1_width0\.25_a0_c0_seed0, 200 steps\), "
    assert re.fullmatch(probe + "4 runs of 200 agent steps", lines[1])
    estimate = r"1,600 agent steps; estimate [\d.]+ hours with 2 runs at a time of 1 thread\(s\), evaluations not included"
    assert re.fullmatch(estimate, lines[3])
    assert not (tmp_path / "sweep").exists()
