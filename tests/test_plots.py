"""Diagnostic figures from real SB3 CSV logs, and the parsing behind them."""

import numpy as np
import pytest
from matplotlib.figure import Figure
from stable_baselines3 import SAC
from stable_baselines3.common.logger import configure

from sb3_sparse import plots
from sb3_sparse.callbacks import PlasticityCallback
from tests.conftest import TINY_SIMBA


def is_png(path):
    data = path.read_bytes()
    return data.startswith(b"\x89PNG") and len(data) > 10_000


def train_logged_run(run_dir, policy, policy_kwargs, seed=0):
    model = SAC(policy, "Pendulum-v1", learning_starts=50, batch_size=32, seed=seed, policy_kwargs=policy_kwargs)
    model.set_logger(configure(str(run_dir), ["csv"]))
    callback = PlasticityCallback(freq=50, batch_size=32, interference_samples=4, save_interference_dir=run_dir)
    model.learn(150, callback=callback)
    return run_dir


def test_dense_and_sparse_runs_overlaid_and_interference_heatmaps(tmp_path):
    sparse = dict(**TINY_SIMBA, actor_sparsity=0.8, critic_sparsity=0.8)
    runs = {
        "sparse": [train_logged_run(tmp_path / f"sparse_{seed}", "SparseSimBaPolicy", dict(sparse), seed) for seed in (0, 1)],
        "dense": [train_logged_run(tmp_path / "dense", "MlpPolicy", dict(net_arch=[16, 16]))],
    }
    figure = plots.plot_diagnostics(runs, tmp_path / "figures" / "diagnostics.png", tau=0.1, title="Pendulum")
    assert is_png(figure)
    assert is_png(
        plots.main(["diagnostics", f"sparse={runs['sparse'][0]}", str(runs["dense"][0]), "-o", str(tmp_path / "cli.png")])
    )
    matrices = {"dense": runs["dense"][0] / "interference_150.npy", "sparse": runs["sparse"][0] / "interference_150.npy"}
    assert is_png(plots.plot_interference(matrices, tmp_path / "interference.png"))
    cli_items = [f"{label}={path}" for label, path in matrices.items()]
    assert is_png(plots.main(["interference", *cli_items, "-o", str(tmp_path / "cli_interference.png")]))


def write_csv(path, text):
    path.write_text(text)
    return path


def test_metric_curve_drops_missing_rows_and_averages_repeated_steps(tmp_path):
    log = plots.load_progress(
        write_csv(
            tmp_path / "progress.csv",
            "time/total_timesteps,plasticity/actor/srank,eval/mean_reward\n10,3,\n10,5,\n20,,-7\n30,8,\n",
        )
    )
    steps, values = plots.metric_curve(log, "plasticity/actor/srank")
    np.testing.assert_array_equal(steps, [10, 30])
    np.testing.assert_array_equal(values, [4.0, 8.0])
    assert plots.metric_curve(log, "plasticity/critic/srank") is None


def test_runs_of_one_label_are_averaged_with_a_min_max_band():
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots()
    curves = [(np.array([1, 2, 3]), np.array([1.0, 2.0, 3.0])), (np.array([2, 3, 4]), np.array([4.0, 6.0, 0.0]))]
    plots._draw(axis, curves, "sparse", "tab:blue")
    (line,) = axis.get_lines()
    np.testing.assert_array_equal(line.get_xdata(), [2, 3])  # the steps both runs logged
    np.testing.assert_array_equal(line.get_ydata(), [3.0, 4.5])
    assert line.get_label() == "sparse (n=2)"
    with pytest.raises(ValueError, match="labelled 'dense' share no logging step"):
        plots._draw(axis, [(np.array([1]), np.array([1.0])), (np.array([2]), np.array([1.0]))], "dense", "k")
    plt.close(figure)


def test_labelled_paths():
    grouped = plots.parse_labelled_paths(["sparse=runs/a", "sparse=runs/b", "runs/dense_seed0"])
    assert grouped == {"sparse": [plots.Path("runs/a"), plots.Path("runs/b")], "dense_seed0": [plots.Path("runs/dense_seed0")]}


def test_bad_input_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="no SB3 CSV log at"):
        plots.load_progress(tmp_path)
    no_step = write_csv(tmp_path / "a.csv", "plasticity/actor/srank\n3\n")
    with pytest.raises(ValueError, match="no 'time/total_timesteps' column"):
        plots.load_progress(no_step)
    no_diagnostics = write_csv(tmp_path / "b.csv", "time/total_timesteps,rollout/ep_rew_mean\n10,-3\n")
    with pytest.raises(ValueError, match=r"no run logged plasticity diagnostics .* train with PlasticityCallback"):
        plots.plot_diagnostics({"run": [no_diagnostics]}, tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"subset of \('actor', 'critic'\), got \('policy',\)"):
        plots.plot_diagnostics({"run": [no_diagnostics]}, tmp_path / "x.png", networks=("policy",))
    with pytest.raises(ValueError, match=r"'bad': expected a square N x N matrix with N >= 2, got shape \(2, 3\)"):
        plots.plot_interference({"bad": np.zeros((2, 3))}, tmp_path / "y.png")
    with pytest.raises(SystemExit):
        plots.main(["interference", "a=x.npy", "a=y.npy"])


def test_one_colour_per_label_and_agent_steps_with_environment_steps_on_top(tmp_path, monkeypatch):
    header = "time/total_timesteps,eval/mean_reward,plasticity/critic/srank\n"
    runs = {
        label: [write_csv(tmp_path / f"{label}.csv", header + f"100,{offset},3\n200,{offset + 1},4\n")]
        for label, offset in (("sparsity 0.8", 0), ("dense", 5))
    }
    saved = []
    monkeypatch.setattr(Figure, "savefig", lambda figure, path: saved.append(figure))
    colors = plots.configuration_colors(["sparsity 0.9", "sparsity 0.8", "dense"])
    assert colors == plots.configuration_colors(["dense", "sparsity 0.8", "sparsity 0.9", "dense"])  # order-free
    assert len(set(colors.values())) == 3
    plots.plot_diagnostics(runs, tmp_path / "d.png", colors=colors, action_repeat=2)
    plots.plot_diagnostics(dict(reversed(runs.items())), tmp_path / "e.png", colors=colors)
    for figure in saved:
        lines = [line for axis in figure.axes for line in axis.get_lines()]
        assert {line.get_label(): line.get_color() for line in lines if not line.get_label().startswith("_")} == {
            label: colors[label] for label in runs
        }

    def x_labels(figure):  # the top scale is a child of the axis it annotates
        return [each.get_xlabel() for axis in figure.axes for each in (axis, *axis.child_axes)]

    assert "agent steps" in x_labels(saved[0]) and "environment steps (action repeat 2)" in x_labels(saved[0])
    assert set(x_labels(saved[1])) == {"agent steps"}
