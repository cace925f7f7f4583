"""The paper's diagnostic figures from SB3 logs.

* :func:`plot_diagnostics`: return, dormant ratio, stable rank, gradient norm and gradient
  interference of the actor and the critic over agent steps, from the ``progress.csv`` that
  SB3's CSV logger writes while :class:`sb3_sparse.callbacks.PlasticityCallback` runs; runs with
  the same label (seeds) are drawn as their mean with a min-max band, labels overlaid (dense vs sparse).
* :func:`plot_interference`: cosine matrices of per-sample gradients (saved by the callback with
  ``save_interference_dir``) as heatmaps.

Command line::

    python -m sb3_sparse.plots diagnostics sparse=runs/a sparse=runs/b dense=runs/c -o diagnostics.png
    python -m sb3_sparse.plots interference dense=runs/c/interference_5000.npy sparse=runs/a/interference_5000.npy
"""

from __future__ import annotations

import argparse
import csv
import math
from collections.abc import Iterable, Mapping, Sequence
from functools import reduce
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sb3_sparse.cli import OneLineErrorParser, plain_help

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.image import AxesImage

# matplotlib is imported where a figure is drawn (Figure, not pyplot: no backend is chosen, none is
# changed): half a second that a run which never draws (a killed one, a zoo run) does not pay.

STEP_KEY = "time/total_timesteps"
# The return panel reads the evaluation return (EvalCallback) and falls back to the training return.
RETURN_KEYS = ("eval/mean_reward", "rollout/ep_rew_mean")
NETWORK_METRICS = {
    "dormant_ratio_{tau}": "dormant ratio (tau={tau})",
    "srank": "stable rank",
    "grad_norm": "gradient norm",
    "grad_interference": "gradient interference",
}


# A run's log: column -> values, one per logger dump (NaN where a dump did not record the column).
Progress = dict[str, np.ndarray]
# One metric of one run: (steps, values), sorted by step.
Curve = tuple[np.ndarray, np.ndarray]


def _to_float(text: str) -> float:
    try:
        return float(text) if text else math.nan
    except ValueError:  # non-numeric columns (none in SB3's diagnostics) read as missing
        return math.nan


def load_progress(run: str | Path) -> Progress:
    """
    Read SB3's CSV log of a run.

    :param run: a run directory holding ``progress.csv``, or the CSV file itself
    :return: column -> float values, one per logger dump
    """
    path = Path(run)
    if path.is_dir():
        path = path / "progress.csv"
    if not path.is_file():
        raise FileNotFoundError(f"no SB3 CSV log at {path}: train with a logger that includes 'csv'")
    with path.open(newline="") as file:
        rows = list(csv.DictReader(file))
    columns = list(rows[0]) if rows else []
    if STEP_KEY not in columns:
        raise ValueError(f"{path} has no {STEP_KEY!r} column, so its rows cannot be placed on the step axis")
    return {key: np.array([_to_float(row.get(key) or "") for row in rows]) for key in columns}


def metric_curve(progress: Progress, key: str) -> Curve | None:
    """
    One metric against agent steps (dumps without it dropped; several dumps at one step averaged).

    :param progress: a run's log
    :param key: the column
    :return: ``(steps, values)`` sorted by step, or ``None`` if the run never logged the key
    """
    if key not in progress:
        return None
    values, steps = progress[key], progress[STEP_KEY]
    present = ~np.isnan(values) & ~np.isnan(steps)
    if not present.any():
        return None
    unique_steps, inverse = np.unique(steps[present], return_inverse=True)
    means = np.bincount(inverse, weights=values[present]) / np.bincount(inverse)
    return unique_steps, means


def _return_key(runs: Sequence[Progress]) -> str | None:
    for key in RETURN_KEYS:
        if all(metric_curve(run, key) is not None for run in runs):
            return key
    return None


def _present(curve: Curve | None) -> Curve:
    assert curve is not None  # _return_key chose a key every run logged
    return curve


def _draw(axis: Axes, curves: list[Curve], label: str, color: str) -> None:
    """Mean over the runs of one label at their common steps, with a min-max band."""
    steps = reduce(np.intersect1d, [curve_steps for curve_steps, _ in curves])
    if steps.size == 0:
        raise ValueError(f"the runs labelled {label!r} share no logging step: log them at the same frequency")
    table = np.stack([values[np.isin(curve_steps, steps)] for curve_steps, values in curves])
    axis.plot(steps, table.mean(axis=0), label=f"{label} (n={len(curves)})" if len(curves) > 1 else label, color=color)
    if len(curves) > 1:
        axis.fill_between(steps, table.min(axis=0), table.max(axis=0), color=color, alpha=0.2)


def parse_labelled_paths(items: Sequence[str]) -> dict[str, list[Path]]:
    """
    Parse ``label=path`` items (a bare path is labelled with its own name) into label -> paths.

    :param items: command-line items
    :return: paths grouped by label, in first-seen order
    """
    grouped: dict[str, list[Path]] = {}
    for item in items:
        label, separator, path = item.partition("=")
        if not separator:
            label, path = Path(item).name, item
        grouped.setdefault(label, []).append(Path(path))
    return grouped


def configuration_colors(labels: Iterable[str]) -> dict[str, str]:
    """
    One colour per configuration: the sorted labels take matplotlib's colour cycle in order, so
    that every figure drawn with the same labels (a sweep's) gives a configuration the same colour.

    :param labels: the configurations' labels
    :return: label -> colour
    """
    import matplotlib

    cycle = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    return {label: cycle[index % len(cycle)] for index, label in enumerate(sorted(set(labels)))}


def step_axis(axis: Axes, action_repeat: int = 1, fontsize: int = 8) -> None:
    """
    Label an axis whose x values are agent steps; where an agent step is several environment steps
    (``action_repeat``), a second scale on top gives the environment steps.

    :param axis: the axis
    :param action_repeat: environment steps per agent step
    :param fontsize: label size
    """
    axis.set_xlabel("agent steps", fontsize=fontsize)
    if action_repeat > 1:

        def to_environment_steps(steps: Any) -> Any:
            return np.asarray(steps) * action_repeat

        def to_agent_steps(steps: Any) -> Any:
            return np.asarray(steps) / action_repeat

        top = axis.secondary_xaxis("top", functions=(to_environment_steps, to_agent_steps))
        top.set_xlabel(f"environment steps (action repeat {action_repeat})", fontsize=fontsize)
        top.tick_params(labelsize=fontsize)


def plot_diagnostics(
    runs: Mapping[str, Sequence[str | Path]],
    output: str | Path,
    networks: Sequence[str] | None = None,
    tau: float = 0.0,
    title: str | None = None,
    colors: Mapping[str, str] | None = None,
    action_repeat: int = 1,
) -> Path:
    """
    Draw the paper's diagnostic figure as a PNG: the return on top, then one row per network with
    dormant ratio, stable rank, gradient norm and gradient interference over agent steps (the
    environment steps on a top scale where they differ). A panel with no finite value (e.g. the
    interference of PPO, which has no per-sample losses) says so.

    :param runs: label -> run directories (or ``progress.csv`` files); a label's runs (seeds) are averaged
    :param output: PNG path
    :param networks: rows to draw, among ``"actor"`` and ``"critic"`` (``None``: those the runs logged;
        DQN logs its Q-network as the critic only)
    :param tau: dormant threshold to show (one of the callback's ``taus``)
    :param title: figure title
    :param colors: label -> colour (``None``: :func:`configuration_colors` of the labels)
    :param action_repeat: environment steps per agent step of the runs
    :return: the PNG path
    """
    if not runs:
        raise ValueError("plot_diagnostics needs at least one run")
    colors = colors or configuration_colors(runs)
    logs = {label: [load_progress(path) for path in paths] for label, paths in runs.items()}
    all_logs = [log for group in logs.values() for log in group]
    metrics = {key.format(tau=tau): name.format(tau=tau) for key, name in NETWORK_METRICS.items()}
    networks = _diagnosed_networks(all_logs, metrics, networks)
    columns = list(metrics)
    mosaic: list[Any] = [["return"] * len(columns)] + [[f"{net}/{metric}" for metric in columns] for net in networks]
    from matplotlib.figure import Figure

    figure = Figure(figsize=(4 * len(columns), 2.2 + 3 * len(networks)), dpi=110)
    axes = figure.subplot_mosaic(mosaic, height_ratios=[0.8] + [1] * len(networks))
    return_key = _return_key(all_logs)
    for label, group in logs.items():
        color = colors[label]
        if return_key is not None:
            _draw(axes["return"], [_present(metric_curve(log, return_key)) for log in group], label, color)
        for net in networks:
            for metric in columns:
                found = [metric_curve(log, f"plasticity/{net}/{metric}") for log in group]
                curves = [curve for curve in found if curve is not None]
                if len(curves) == len(found):
                    _draw(axes[f"{net}/{metric}"], curves, label, color)
    _label_diagnostics_axes(axes, mosaic, return_key, networks, metrics, action_repeat)
    if title:
        figure.suptitle(title, fontsize=11)
    figure.tight_layout()
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output)
    return output


def _diagnosed_networks(logs: list[Progress], metrics: Mapping[str, str], networks: Sequence[str] | None) -> Sequence[str]:
    """The rows of the diagnostics figure: ``networks``, or those the runs logged; refused when nothing was logged."""
    if networks is None:
        logged = [
            net
            for net in ("actor", "critic")
            if any(metric_curve(log, f"plasticity/{net}/{m}") for log in logs for m in metrics)
        ]
        networks = logged or ["actor", "critic"]
    unknown = [name for name in networks if name not in ("actor", "critic")]
    if not networks or unknown:
        raise ValueError(f"networks must be a non-empty subset of ('actor', 'critic'), got {tuple(networks)!r}")
    missing = [
        f"plasticity/{net}/{metric}"
        for net in networks
        for metric in metrics
        if all(metric_curve(log, f"plasticity/{net}/{metric}") is None for log in logs)
    ]
    if len(missing) == len(networks) * len(metrics):
        raise ValueError(f"no run logged plasticity diagnostics (e.g. {missing[0]!r}): train with PlasticityCallback")
    return networks


def _label_diagnostics_axes(
    axes: Mapping[Any, Axes],
    mosaic: list[Any],
    return_key: str | None,
    networks: Sequence[str],
    metrics: Mapping[str, str],
    action_repeat: int,
) -> None:
    """Titles, the legend, "not measured" notes on empty panels, grids and step scales."""
    if return_key is None:
        message = f"no run logged a return ({' or '.join(RETURN_KEYS)})"
        axes["return"].text(0.5, 0.5, message, ha="center", va="center", transform=axes["return"].transAxes)
        legend_axis = axes[mosaic[1][0]]
    else:
        axes["return"].set_ylabel("evaluation return" if return_key == RETURN_KEYS[0] else "training return")
        legend_axis = axes["return"]
    legend_axis.legend(fontsize=8)
    for net in networks:
        for metric, name in metrics.items():
            axis = axes[f"{net}/{metric}"]
            axis.set_title(f"{net}: {name}", fontsize=9)
            if not any(np.isfinite(np.asarray(line.get_ydata(), dtype=float)).any() for line in axis.get_lines()):
                axis.text(0.5, 0.5, "not measured\n(no finite value logged)", ha="center", va="center", fontsize=9,
                          color="0.4", transform=axis.transAxes)  # fmt: skip
    for name, axis in axes.items():
        axis.grid(alpha=0.3)
        step_axis(axis, action_repeat if name == "return" else 1)  # one top scale per figure is enough
        axis.tick_params(labelsize=8)


def plot_interference(matrices: Mapping[str, np.ndarray | str | Path], output: str | Path, title: str | None = None) -> Path:
    """
    Draw cosine matrices of per-sample gradients side by side as heatmaps (-1 blue, +1 red), each
    titled with its mean off-diagonal value (the logged ``grad_interference``).

    :param matrices: label -> ``(N, N)`` matrix or ``.npy`` file
    :param output: PNG path
    :param title: figure title
    :return: the PNG path
    """
    if not matrices:
        raise ValueError("plot_interference needs at least one matrix")
    loaded = {label: np.load(m) if isinstance(m, (str, Path)) else np.asarray(m) for label, m in matrices.items()}
    for label, matrix in loaded.items():
        if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] < 2:
            raise ValueError(f"{label!r}: expected a square N x N matrix with N >= 2, got shape {matrix.shape}")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(4.2 * len(loaded), 4), dpi=110, layout="constrained")
    axes = figure.subplots(1, len(loaded), squeeze=False)
    images: list[AxesImage] = []
    for axis, (label, matrix) in zip(axes[0], loaded.items(), strict=True):
        n = matrix.shape[0]
        off_diagonal = (matrix.sum() - np.trace(matrix)) / (n * (n - 1))
        images.append(axis.imshow(matrix, cmap="RdBu_r", vmin=-1.0, vmax=1.0, interpolation="nearest"))
        axis.set_title(f"{label}: mean off-diagonal {off_diagonal:.3f}", fontsize=9)
        axis.set_xlabel("state j", fontsize=8)
        axis.set_ylabel("state i", fontsize=8)
    figure.colorbar(images[-1], ax=axes[0].tolist(), shrink=0.8, label="cosine of per-sample gradients")
    if title:
        figure.suptitle(title, fontsize=11)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output)
    return output


def main(argv: list[str] | None = None) -> Path:
    """
    Command line entry point.

    :param argv: arguments (``None``: ``sys.argv``)
    :return: the written PNG
    """
    parser = OneLineErrorParser(
        prog="sb3-sparse plot", description=plain_help(__doc__), formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    diagnostics = commands.add_parser("diagnostics", help="return and plasticity diagnostics over steps")
    diagnostics.add_argument("runs", nargs="+", metavar="[LABEL=]RUN", help="run directory or progress.csv")
    diagnostics.add_argument("-o", "--output", type=Path, default=Path("diagnostics.png"))
    diagnostics.add_argument(
        "--networks", nargs="+", default=None, choices=["actor", "critic"], help="default: the networks the runs logged"
    )
    diagnostics.add_argument("--tau", type=float, default=0.0, help="dormant threshold to show")
    diagnostics.add_argument("--title", default=None)
    diagnostics.add_argument(
        "--action-repeat", type=int, default=1, help="environment steps per agent step (2 on DMC): adds their scale"
    )
    interference = commands.add_parser("interference", help="gradient interference matrices as heatmaps")
    interference.add_argument("matrices", nargs="+", metavar="[LABEL=]FILE.npy")
    interference.add_argument("-o", "--output", type=Path, default=Path("interference.png"))
    interference.add_argument("--title", default=None)
    args = parser.parse_args(argv)
    given = args.runs if args.command == "diagnostics" else args.matrices
    missing = [str(path) for paths in parse_labelled_paths(given).values() for path in paths if not path.exists()]
    if missing:
        parser.error(f"no such file or directory: {', '.join(missing)}")
    if args.command == "diagnostics":
        path = plot_diagnostics(
            parse_labelled_paths(args.runs), args.output, args.networks, args.tau, args.title,
            action_repeat=args.action_repeat,
        )  # fmt: skip
    else:
        grouped = parse_labelled_paths(args.matrices)
        repeated = [label for label, paths in grouped.items() if len(paths) > 1]
        if repeated:
            parser.error(f"each interference matrix needs its own label, repeated: {repeated}")
        path = plot_interference({label: paths[0] for label, paths in grouped.items()}, args.output, args.title)
    print(f"wrote {path}")
    return path


if __name__ == "__main__":
    main()
