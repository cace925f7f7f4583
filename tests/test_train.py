"""The runner behind the README's main job, on tiny budgets."""

import csv
import dataclasses
import json

import pytest
from stable_baselines3 import DDPG, SAC
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import VecNormalize

from sb3_sparse import train
from sb3_sparse.interrupts import Interrupted
from sb3_sparse.reference import ReferenceSAC
from sb3_sparse.sparsity import pruned_weights_are_zero


def read_rows(path):
    with path.open() as file:
        return list(csv.DictReader(file))


def tiny_conf(tmp_path, algo, env_id, **entry):
    """A zoo-format file with one tiny entry (small networks, short warm-up, one update per step)."""
    entry = {"gradient_steps": 1, **entry}  # the reference algorithms' default is 2
    lines = [f"{env_id}:", "  policy: SparseSimBaPolicy", "  n_timesteps: 300", "  learning_starts: 100"]
    lines += [f"  {key}: {value}" for key, value in entry.items()]
    lines.append(
        '  policy_kwargs: "dict(actor_hidden_dim=16, critic_hidden_dim=32, critic_num_blocks=1,'
        ' actor_sparsity=0.8, critic_sparsity=0.8, n_critics=1)"'
    )
    path = tmp_path / f"{algo}.yml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_runner_writes_model_curve_diagnostics_and_plots(tmp_path):
    output_dir = train.main(
        [
            "--conf", str(tiny_conf(tmp_path, "sac", "Pendulum-v1")), "--eval-freq", "100", "--eval-episodes", "1",
            "--final-eval-episodes", "2", "--diagnostics-freq", "150", "--output-dir", str(tmp_path / "run"),
            "--no-progress-bar",
        ]
    )  # fmt: skip
    rows = read_rows(output_dir / "evaluations.csv")
    # Evaluations at 100, 200 and 300 steps (no action repeat), then the final one with its own episode count.
    assert [int(row["agent_steps"]) for row in rows] == [100, 200, 300, 300]
    assert [int(row["env_steps"]) for row in rows] == [100, 200, 300, 300]
    assert [int(row["episodes"]) for row in rows] == [1, 1, 1, 2]
    assert all(-2000 < float(row["mean_return"]) <= 0 for row in rows)  # Pendulum returns are negative
    for name in ("evaluations.png", "diagnostics.png"):
        png = (output_dir / name).read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) > 10_000
    assert "total" in (output_dir / "density.txt").read_text()
    diagnostic_steps = [
        int(r["time/total_timesteps"]) for r in read_rows(output_dir / "progress.csv") if r["plasticity/critic/srank"]
    ]
    assert diagnostic_steps == [150, 300]
    config = json.loads((output_dir / "config.json").read_text())
    assert config["timesteps"] == 300 and config["action_repeat"] == 1 and config["eval_freq_env_steps"] == 100
    model = ReferenceSAC.load(output_dir / "model.zip")  # the runner's default algorithm
    assert all(pruned_weights_are_zero(net) for net in (model.policy.actor, model.policy.critic, model.policy.critic_target))
    assert model.policy.architecture.critic_hidden_dim == 32


def test_runner_counts_environment_steps_with_action_repeat(tmp_path):
    conf = tiny_conf(tmp_path, "ddpg", "sb3_sparse/dmc-cartpole-swingup-v0", noise_type="normal", noise_std=0.1)
    output_dir = train.main(
        [
            "--algo", "ddpg", "--env", "sb3_sparse/dmc-cartpole-swingup-v0", "--conf", str(conf), "--timesteps", "200",
            "--eval-freq", "100", "--eval-episodes", "1",
            "--final-eval-episodes", "1", "--diagnostics-freq", "0", "--output-dir", str(tmp_path / "run"),
            "--no-progress-bar",
        ]
    )  # fmt: skip
    rows = read_rows(output_dir / "evaluations.csv")
    # Every 100 agent steps (the zoo's unit) = 200 environment steps with action repeat 2.
    assert [(int(r["agent_steps"]), int(r["env_steps"])) for r in rows] == [(100, 200), (200, 400), (200, 400)]
    assert not (output_dir / "diagnostics.png").exists()
    model = DDPG.load(output_dir / "model.zip")
    assert model.action_noise is not None and model.policy.critic.n_critics == 1


def test_preset_and_sparsity_overrides(tmp_path):
    args = train.parse_args(["--preset", "width2", "--critic-sparsity", "0.9", "--actor-sparsity", "0.5"])
    env = Monitor(train.gym.make("Pendulum-v1"))
    model, timesteps, _ = train.build_model(args, env)
    assert timesteps == 6000  # the reference_sac.yml entry's budget
    architecture = model.policy.architecture
    # The preset scales the entry's own sizes: actor 64 x 1 block, critic 128 x 1 block.
    assert (architecture.actor_hidden_dim, architecture.critic_hidden_dim) == (128, 256)
    assert (architecture.actor_num_blocks, architecture.critic_num_blocks) == (1, 1)
    assert (architecture.actor_sparsity, architecture.critic_sparsity) == (0.5, 0.9)


def test_topology_overrides(tmp_path):
    config = train.parse_args(["--topology", "rigl", "--topology-kwargs", "update_interval:50", "drop_fraction:0.2"])
    assert config.topology == "rigl" and config.topology_kwargs == {"update_interval": 50, "drop_fraction": 0.2}
    model, _, kwargs = train.build_model(config, Monitor(train.gym.make("Pendulum-v1")))
    architecture = model.policy.architecture
    assert architecture.topology == "rigl" and architecture.schedule_of("critic").update_interval == 50
    assert train.default_output_dir(config, kwargs["policy_kwargs"]).name.endswith("_c0.8_rigl_seed0")
    with pytest.raises(ValueError, match="stream_ac keeps its masks static"):
        train.RunConfig(algo="stream_ac", topology="set")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--topology", "prune"], "invalid choice: 'prune'"),
        (["--topology", "set", "--topology-kwargs", "update_interval"], "'update_interval' is not KEY:VALUE"),
        (["--topology", "set", "--topology-kwargs", "interval:5"], "unknown topology_kwargs ['interval']"),
        (["--timesteps", "0"], "--timesteps must be >= 1, got 0"),
        (["--diagnostics-freq", "-5"], "--diagnostics-freq must be >= 0, got -5"),
        (["--preset", "huge"], "unknown --preset 'huge'; valid presets: width0.25, width0.5, base, width2"),
        (["--algo", "ppo_mask"], "ppo_mask has no hyperparameter file; the algorithms with one: sac, td3"),
        (["--conf", "missing.yml"], "--conf 'missing.yml' is not a file"),
    ],
)
def test_runner_rejects_bad_arguments(argv, message, capsys):
    with pytest.raises(SystemExit):
        train.main(argv)
    assert message in capsys.readouterr().err


def test_runner_names_valid_env_ids(tmp_path):
    with pytest.raises(SystemExit) as typo:
        train.main(["--env", "sb3_sparse/dmc-humanoid-rn-v0", "--output-dir", str(tmp_path)])
    message = str(typo.value)
    assert message.startswith("unknown environment id 'sb3_sparse/dmc-humanoid-rn-v0': did you mean ")
    assert "'sb3_sparse/dmc-humanoid-run-v0'" in message and "\n" not in message and len(message) < 200
    with pytest.raises(SystemExit) as wrong_case:
        train.main(["--env", "pendulum-v1", "--output-dir", str(tmp_path)])
    assert str(wrong_case.value) == "unknown environment id 'pendulum-v1': did you mean 'Pendulum-v1'?"
    with pytest.raises(
        SystemExit, match=r"unknown environment id 'NoSuchEnv-v0': reference_sac\.yml has entries for \d+ ids, e\.g\. "
    ):
        train.main(["--env", "NoSuchEnv-v0", "--output-dir", str(tmp_path)])
    with pytest.raises(
        SystemExit, match=r"reference_sac\.yml has no entry for 'CartPole-v1'; entries: sb3_sparse/dmc-humanoid-stand-v0"
    ):
        train.main(["--env", "CartPole-v1", "--output-dir", str(tmp_path)])


def test_yaml_entry_with_unknown_policy_kwarg_lists_the_valid_ones(tmp_path):
    conf = tmp_path / "sac.yml"
    conf.write_text('Pendulum-v1:\n  policy: SparseSimBaPolicy\n  n_timesteps: 10\n  policy_kwargs: "dict(hiden_dim=64)"\n')
    with pytest.raises(
        SystemExit, match=r"unknown policy_kwargs 'hiden_dim' \(did you mean 'actor_hidden_dim' or 'critic_hidden_dim'\?\)$"
    ):
        train.main(["--conf", str(conf), "--output-dir", str(tmp_path)])
    conf.write_text('Pendulum-v1:\n  policy: SparseSimBaPolicy\n  n_timesteps: 10\n  policy_kwargs: "dict(colour=1)"\n')
    with pytest.raises(SystemExit, match=r"unknown policy_kwargs 'colour'; valid: activation_fn, actor_hidden_dim"):
        train.main(["--conf", str(conf), "--output-dir", str(tmp_path)])


@pytest.mark.parametrize("module", ["sb3_sparse.train", "sb3_sparse.sweep", "sb3_sparse.plots"])
def test_help_is_plain_text_under_the_commands_name(module, capsys):
    import importlib

    with pytest.raises(SystemExit):
        importlib.import_module(module).main(["--help"])
    text = capsys.readouterr().out
    assert text.startswith(f"usage: sb3-sparse {module.rsplit('.', 1)[1].replace('plots', 'plot')}")
    assert "``" not in text and ":class:" not in text and "::\n" not in text


def test_runner_takes_the_zoos_flags_and_keys(tmp_path, capsys):
    """-n, -f, -conf, -params (n_envs, normalize, a lin_ schedule, an env wrapper, a callback), -tb, --eval-freq."""
    conf = tiny_conf(tmp_path, "sac", "Pendulum-v1")
    output_dir = train.main(
        [
            "--algo", "sac", "--env", "Pendulum-v1", "-conf", str(conf), "-n", "300", "-f", str(tmp_path / "logs"),
            "-tb", str(tmp_path / "tb"), "--eval-freq", "100", "--eval-episodes", "1", "--final-eval-episodes", "1",
            "--diagnostics-freq", "0", "--no-progress-bar", "-params", "n_envs:2", "normalize:true",
            "learning_rate:lin_1e-3", "env_wrapper:gymnasium.wrappers.TimeAwareObservation",
            f"callback:[{{rl_zoo3.callbacks.SaveVecNormalizeCallback: {{save_freq: 50, save_path: {tmp_path / 'cb'}}}}}]",
        ]
    )  # fmt: skip
    assert output_dir.parent == tmp_path / "logs"
    model = SAC.load(output_dir / "model.zip")
    assert model.n_envs == 2 and model.num_timesteps == 300
    assert model.observation_space.shape == (4,)  # TimeAwareObservation added the time step
    assert model.lr_schedule(1.0) == pytest.approx(1e-3) and model.lr_schedule(0.5) == pytest.approx(5e-4)
    assert (output_dir / "vecnormalize.pkl").is_file() and (tmp_path / "cb" / "vecnormalize.pkl").is_file()  # the callback ran
    assert [int(row["agent_steps"]) for row in read_rows(output_dir / "evaluations.csv")] == [100, 200, 300, 300]
    assert list((tmp_path / "tb").glob(f"{output_dir.name}/events.out.tfevents.*"))
    config = json.loads((output_dir / "config.json").read_text())
    assert config["identity"]["hyperparams"]["n_envs"] == 2 and config["n_envs"] == 2
    out = capsys.readouterr().out
    assert "Eval num_timesteps=100" in out and "| eval/" in out  # EvalCallback and SB3's logger print as they come
    with pytest.raises(SystemExit, match=r"-params: learning_rate: 'lin_x' is not a number > 0 or a schedule lin_"):
        train.main(["--algo", "sac", "-conf", str(conf), "-params", "learning_rate:lin_x", "-f", str(tmp_path / "bad")])


def test_resumed_run_gets_its_normalization_statistics_back(tmp_path):
    conf = tiny_conf(tmp_path, "sac", "Pendulum-v1")
    stop = [{"tests.signal_callback.SignalAtSteps": {"steps": [200], "marker_dir": str(tmp_path)}}]
    config = train.RunConfig(
        algo="sac", env="Pendulum-v1", conf=str(conf), timesteps=300, eval_freq=100, eval_episodes=1,
        final_eval_episodes=1, diagnostics_freq=0, checkpoint_freq=100, progress_bar=False, verbose=0,
        hyperparams={"normalize": "dict(norm_obs=True, norm_reward=False)", "callback": stop},
        output_dir=str(tmp_path / "run"),
    )  # fmt: skip
    with pytest.raises(Interrupted):  # SIGTERM at step 200: a checkpoint there
        train.run(config)
    checkpoint = train.RunDirectory(tmp_path / "run").checkpoint()
    saved = VecNormalize.load(str(checkpoint / "vecnormalize.pkl"), make_vec_env("Pendulum-v1"))
    assert 150 < saved.obs_rms.count < 300
    train.run(dataclasses.replace(config, resume=True))
    final = VecNormalize.load(str(tmp_path / "run" / "vecnormalize.pkl"), make_vec_env("Pendulum-v1"))
    # Going on from the checkpoint's statistics: a fresh normalizer would have counted only the resumed steps.
    assert final.obs_rms.count > saved.obs_rms.count + 50


def test_a_log_that_is_not_a_terminal_gets_progress_lines(tmp_path, capsys):
    from sb3_sparse.callbacks import ProgressLinesCallback

    args = ["--env", "Pendulum-v1", "-n", "300", "--output-dir", str(tmp_path / "run"), "--verbose", "0",
            "-params", "learning_starts:100", "--eval-episodes", "1", "--final-eval-episodes", "1"]  # fmt: skip
    train.main(args)  # pytest's captured stdout is not a terminal
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("agent steps")]
    assert lines and lines[-1].startswith("agent steps 300/300 (100%), ")
    with pytest.raises(ValueError, match="interval must be a number of seconds > 0, got 0"):
        ProgressLinesCallback(interval=0)


def test_runner_takes_the_zoos_everyday_flags_and_enjoy_plays_its_runs(tmp_path, capsys):
    from sb3_sparse import enjoy
    from sb3_sparse.cli import main as cli

    tiny = "policy_kwargs:dict(actor_hidden_dim=16, critic_hidden_dim=32, critic_num_blocks=1)"
    common = ["--algo", "sac", "--env", "Pendulum-v1", "--eval-episodes", "1", "--final-eval-episodes", "1",
              "--verbose", "0"]  # fmt: skip
    first = tmp_path / "first"
    train.main([*common, "-n", "450", "-params", "learning_starts:100", tiny, "--output-dir", str(first), "-P",
                "--vec-env", "subproc", "--n-eval-envs", "2", "--log-interval", "1", "--save-replay-buffer"])  # fmt: skip
    stored = json.loads((first / "config.json").read_text())["identity"]
    assert stored["vec_env"] == "subproc" and (first / "replay_buffer.pkl").is_file()
    assert len([row for row in csv.DictReader((first / "progress.csv").open()) if row["rollout/ep_rew_mean"]]) >= 2
    second = tmp_path / "second"
    train.main([*common, "-n", "150", "-params", "learning_starts:100", tiny, "--output-dir", str(second),
                "-i", str(first / "model.zip")])  # fmt: skip
    assert (
        f"starting from the parameters of {first / 'model.zip'} and {first / 'replay_buffer.pkl'}" in capsys.readouterr().out
    )
    played = enjoy.main([str(second), "-n", "2"])
    assert [length for _, length in played] == [200, 200]
    cli(["enjoy", str(first), "--episodes", "1", "--stochastic"])
    assert "mean return over 1 episodes" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        enjoy.main([str(tmp_path), "-n", "1"])
    assert "is not a run directory: it has no config.json" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        train.main([*common, "-i", str(tmp_path / "missing.zip"), "--output-dir", str(tmp_path / "third")])
    assert "trained_agent" in capsys.readouterr().err and not (tmp_path / "third").exists()
