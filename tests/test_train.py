"""The runner behind the README's main job, on a tiny budget."""

import csv

import pytest
from stable_baselines3 import SAC

from sb3_sparse import train
from sb3_sparse.sparsity import pruned_weights_are_zero


def test_runner_writes_model_curve_and_plot(tmp_path):
    output_dir = train.main(
        [
            "--timesteps", "300", "--learning-starts", "100", "--eval-freq", "100", "--eval-episodes", "1",
            "--final-eval-episodes", "2", "--actor-hidden-dim", "16", "--critic-hidden-dim", "32", "--diagnostics-freq", "150",
            "--output-dir", str(tmp_path / "run"), "--no-progress-bar",
        ]
    )  # fmt: skip
    with (output_dir / "evaluations.csv").open() as file:
        rows = list(csv.DictReader(file))
    # Evaluations at 100, 200 and 300 steps, then the final one with its own episode count.
    assert [int(row["timesteps"]) for row in rows] == [100, 200, 300, 300]
    assert [int(row["episodes"]) for row in rows] == [1, 1, 1, 2]
    assert all(-2000 < float(row["mean_return"]) <= 0 for row in rows)  # Pendulum returns are negative
    png = (output_dir / "evaluations.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    assert "total" in (output_dir / "density.txt").read_text()
    with (output_dir / "progress.csv").open() as file:
        log = list(csv.DictReader(file))
    diagnostic_steps = [int(row["time/total_timesteps"]) for row in log if row["plasticity/critic/srank"]]
    assert diagnostic_steps == [150, 300]
    diagnostics_png = (output_dir / "diagnostics.png").read_bytes()
    assert diagnostics_png.startswith(b"\x89PNG") and len(diagnostics_png) > 10_000
    model = SAC.load(output_dir / "model.zip")
    assert all(pruned_weights_are_zero(net) for net in (model.policy.actor, model.policy.critic, model.policy.critic_target))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--timesteps", "0"], "--timesteps must be >= 1, got 0"),
        (["--learning-starts", "-1"], "--learning-starts must be >= 0"),
        (["--diagnostics-freq", "-5"], "--diagnostics-freq must be >= 0, got -5"),
    ],
)
def test_runner_rejects_bad_arguments(argv, message, capsys):
    with pytest.raises(SystemExit):
        train.main(argv)
    assert message in capsys.readouterr().err


def test_runner_rejects_unknown_env(tmp_path):
    with pytest.raises(SystemExit, match="cannot make environment 'NoSuchEnv-v0'"):
        train.main(["--env", "NoSuchEnv-v0", "--output-dir", str(tmp_path)])
