"""A sweep's report: every run of a sweep directory read back (:func:`collect_results`), final
returns aggregated with rliable (IQM and 95% bootstrap confidence intervals, :func:`aggregate`),
the paper's figures (:func:`plot_sweep`), and the tables and figures written together
(:func:`report`, ``sb3-sparse sweep report DIR``)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sb3_sparse.atari import atari_game, human_normalized_score
from sb3_sparse.presets import SIZE_PRESETS
from sb3_sparse.run_directory import (
    RUN_FILE,
    STATUS_FILE,
    DamagedFileError,
    RunDirectory,
    read_csv_rows,
    read_json,
    write_csv_atomic,
)
from sb3_sparse.topology import TOPOLOGIES

#: A sweep run's files beside the runner's: its result, its status (sweep bookkeeping) and its spec.
RESULT_FILE = "result.json"
DMC_PREFIX = "sb3_sparse/dmc-"


def _last_values(progress: Path) -> dict[str, float]:
    """Last logged value of every plasticity and sparsity column of a run's CSV log."""
    values: dict[str, float] = {}
    for row in read_csv_rows(progress):
        for key, text in row.items():
            if key.startswith(("plasticity/", "sparsity/")) and text:
                values[key] = float(text)
    return values


def run_status(run_dir: Path) -> dict[str, Any]:
    """
    A sweep run's status as its files tell it: ``finished`` when its result reads, else its
    ``status.json`` (``failed`` with the error, ``interrupted``, ...), where a run marked
    ``running`` that no live process holds was killed: ``interrupted``. A damaged file is named in
    ``error``; the next ``sweep run`` repairs or retrains what it can.

    :param run_dir: the run's directory
    :return: ``{"status", "error", ...}`` (the status file's other keys too)
    """
    directory = RunDirectory(run_dir)
    if directory.finished:
        try:
            directory.read_result()
            return {"status": "finished", "error": ""}
        except DamagedFileError as error:
            return {"status": "damaged", "error": str(error)}
    status: dict[str, Any] = {"status": "pending"}
    if (run_dir / STATUS_FILE).is_file():
        try:
            status = dict(read_json(run_dir / STATUS_FILE))
        except DamagedFileError as error:
            status = {"status": "unknown", "error": str(error)}
    if status.get("status") == "running" and not directory.is_training():
        status = {**status, "status": "interrupted", "error": "its process died (killed) while it trained"}
    return {"error": "", **status}


def collect_results(root: str | Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """
    Read every run of a sweep directory (a run whose ``run.json`` is damaged is left out, with a warning).

    :param root: the sweep's output directory
    :return: ``(runs, evaluations)``: one row per run, one row per evaluation
    """
    root = Path(root)
    runs, evaluations = [], []
    for run_file in sorted(root.glob(f"*/{RUN_FILE}")):
        run_dir = run_file.parent
        try:
            spec = dict(read_json(run_file))
        except DamagedFileError as error:
            warnings.warn(f"{error}: the run is left out of the report (`sweep run` writes it again)", stacklevel=2)
            continue
        scale = SIZE_PRESETS.get(spec["preset"], (math.nan, math.nan))
        spec.setdefault("topology", "static")  # runs of sweeps from before the topology dimension
        row: dict[str, Any] = {"name": run_dir.name, **spec, "width_scale": scale[0], "depth_scale": scale[1]}
        status = run_status(run_dir)
        row["status"] = status["status"]
        row["error"] = status["error"] if row["status"] != "finished" else ""
        if row["status"] == "finished":
            row.update(RunDirectory(run_dir).read_result())
            row.update(_last_values(run_dir / "progress.csv"))
            evaluation_rows = read_csv_rows(run_dir / "evaluations.csv")
            for index, evaluation in enumerate(evaluation_rows):
                final = index == len(evaluation_rows) - 1
                evaluations.append({"name": run_dir.name, **spec, **evaluation, "final": final})
        runs.append(row)
    return runs, evaluations


def sparsity_label(actor_sparsity: float, critic_sparsity: float, topology: str = "static", show_static: bool = False) -> str:
    """
    A plot legend for a run's sparsities and topology: ``dense``, ``sparsity 0.8``, ``actor 0.5,
    critic 0.8`` or ``sparsity 0.8, rigl`` (``sparsity 0.8, static`` with ``show_static``: beside dynamic runs).
    """
    if actor_sparsity == critic_sparsity:
        label = "dense" if critic_sparsity == 0 else f"sparsity {critic_sparsity:g}"
    else:
        label = f"actor {actor_sparsity:g}, critic {critic_sparsity:g}"
    shown = topology != "static" or (show_static and critic_sparsity + actor_sparsity > 0)
    return f"{label}, {topology}" if shown else label


def normalized_score(env: str, value: float) -> float:
    """
    A score that pools across tasks: DMC returns (in [0, 1000]) divided by 1000, Atari-100k games'
    human-normalized (:func:`sb3_sparse.atari.human_normalized_score`); others stay raw.
    """
    if env.startswith(DMC_PREFIX):
        return value / 1000.0
    return human_normalized_score(env, value) if atari_game(env) is not None else value


def pooled_score(envs: Sequence[str]) -> str | None:
    """How runs of these envs pool across tasks: ``"DMC return / 1000"``, ``"human-normalized score"``, or ``None``."""
    if all(env.startswith(DMC_PREFIX) for env in envs):
        return "DMC return / 1000"
    if all(atari_game(env) is not None for env in envs):
        return "human-normalized score"
    return None


def aggregate(runs: Sequence[dict[str, Any]], reps: int = 2000, seed: int = 0) -> list[dict[str, Any]]:
    """
    Interquartile mean (IQM) of final returns with 95% stratified bootstrap confidence intervals
    (rliable), per algorithm, size and sparsity: over seeds and tasks when every env is a DMC task
    (returns / 1000) or every env an Atari-100k game (human-normalized scores), else over seeds per
    env (raw returns).

    :param runs: rows of :func:`collect_results`
    :param reps: bootstrap replications
    :param seed: seed of the bootstrap
    :return: one row per group
    """
    from rliable import library, metrics

    # Rows from before the topology dimension (or written by hand) are static.
    finished = [{"topology": "static", **run} for run in runs if run["status"] in ("finished", "skipped")]
    if not finished:
        return []
    pooled = pooled_score([run["env"] for run in finished])
    pool_tasks = pooled is not None
    group_keys = ("algo", "preset", "actor_sparsity", "critic_sparsity", "topology") + (() if pool_tasks else ("env",))
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for run in finished:
        groups.setdefault(tuple(run[key] for key in group_keys), []).append(run)
    score_matrices = {}
    for key, members in groups.items():
        envs = sorted({run["env"] for run in members})
        per_env = [[normalized_score(env, run["final_mean_return"]) for run in members if run["env"] == env] for env in envs]
        n_seeds = min(len(scores) for scores in per_env)  # rliable needs a full runs x tasks matrix
        score_matrices[key] = np.array([scores[:n_seeds] for scores in per_env]).T
    # rliable's stratified bootstrap draws from numpy's global generator: seed it, then give the
    # caller's random stream back untouched.
    caller_state = np.random.get_state()
    np.random.seed(seed)
    try:
        point, intervals = library.get_interval_estimates(
            score_matrices, lambda scores: np.array([metrics.aggregate_iqm(scores)]), reps=reps
        )
    finally:
        np.random.set_state(caller_state)
    rows = []
    for key, members in groups.items():
        rows.append(
            {
                **dict(zip(group_keys, key, strict=True)),
                "iqm": float(point[key][0]),
                "ci_low": float(intervals[key][0, 0]),
                "ci_high": float(intervals[key][1, 0]),
                "runs": int(score_matrices[key].size),
                "normalized": pooled or "",
                "parameters": float(np.mean([run["parameters"] for run in members])),
                "nonzero_parameters": float(np.mean([run["nonzero_parameters"] for run in members])),
            }
        )
    return rows


def plot_sweep(aggregates: Sequence[dict[str, Any]], runs_root: Path, output_dir: Path) -> list[Path]:
    """
    The paper's figures from the aggregates: return against total parameters (one line per sparsity,
    dense included), return against sparsity (one line per size), return against nonzero
    parameters, and the diagnostics curves of each size (sparsities overlaid, seeds averaged).

    :param aggregates: rows of :func:`aggregate`
    :param runs_root: the sweep's output directory (for the diagnostics curves)
    :param output_dir: where the PNGs go
    :return: the written files
    """
    from sb3_sparse.plots import configuration_colors

    output_dir.mkdir(parents=True, exist_ok=True)
    written = []
    panels = sorted({(row["algo"], row.get("env", "all tasks")) for row in aggregates})
    ylabel = f"IQM {aggregates[0]['normalized']}" if aggregates and aggregates[0]["normalized"] else "IQM final return"
    crossed = any(row["actor_sparsity"] != row["critic_sparsity"] for row in aggregates)
    mixed = len({row["topology"] for row in aggregates}) > 1  # then static runs say so too
    # Lines of the figures: one per sparsity pair; one per size (and actor sparsity) against sparsity.
    lines = {
        id(row): sparsity_label(row["actor_sparsity"], row["critic_sparsity"], row["topology"], mixed) for row in aggregates
    }
    sizes = {
        id(row): row["preset"]
        + (f", actor {row['actor_sparsity']:g}" if crossed else "")
        + (f", {row['topology']}" if mixed or row["topology"] != "static" else "")
        for row in aggregates
    }
    # One colour per configuration in every figure: sparsity lines here and in the diagnostics figures.
    runs, _ = collect_results(runs_root)
    run_labels = [sparsity_label(run["actor_sparsity"], run["critic_sparsity"], run["topology"], mixed) for run in runs]
    colors = {**configuration_colors([*lines.values(), *run_labels]), **configuration_colors(sizes.values())}
    figures = (
        ("return_vs_parameters.png", "parameters", lines, "total parameters (actor + critic)", True),
        ("return_vs_sparsity.png", "critic_sparsity", sizes, "critic sparsity" if crossed else "sparsity", False),
        ("return_vs_nonzero_parameters.png", "nonzero_parameters", lines, "nonzero parameters", True),
    )
    for filename, x_key, line_of, xlabel, log_x in figures:
        path = output_dir / filename
        written.append(_plot_aggregates(aggregates, panels, x_key, line_of, (xlabel, ylabel), log_x, colors, path))
    if mixed:
        written.append(_plot_topologies(aggregates, panels, ylabel, output_dir / "return_by_topology.png"))
    return written + _plot_diagnostics_per_size(runs, run_labels, runs_root, output_dir, colors)


def _plot_aggregates(
    aggregates: Sequence[dict[str, Any]],
    panels: list[tuple[str, str]],
    x_key: str,
    line_of: dict[int, str],
    labels: tuple[str, str],
    log_x: bool,
    colors: dict[str, Any],
    path: Path,
) -> Path:
    """One figure of IQM returns (95% CI bands) against ``x_key``, a panel per algorithm and env, a line per ``line_of``."""
    from matplotlib.figure import Figure  # not pyplot: no backend is chosen, none is changed

    figure = Figure(figsize=(5.5 * len(panels), 4), dpi=110)
    axes = figure.subplots(1, len(panels), squeeze=False)
    for axis, (algo, env) in zip(axes[0], panels, strict=True):
        rows = [row for row in aggregates if row["algo"] == algo and row.get("env", "all tasks") == env]
        for line in sorted({line_of[id(row)] for row in rows}):
            points = sorted((row for row in rows if line_of[id(row)] == line), key=lambda row: row[x_key])
            x = [row[x_key] for row in points]
            axis.plot(x, [row["iqm"] for row in points], marker="o", label=line, color=colors[line])
            low, high = [row["ci_low"] for row in points], [row["ci_high"] for row in points]
            axis.fill_between(x, low, high, alpha=0.2, color=colors[line])
        if log_x:
            axis.set_xscale("log")
        axis.set_title(f"{algo.upper()} on {env}", fontsize=10)
        axis.set_xlabel(labels[0])
        axis.set_ylabel(labels[1])
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    return path


def _plot_diagnostics_per_size(
    runs: list[dict[str, Any]], run_labels: list[str], runs_root: Path, output_dir: Path, colors: dict[str, Any]
) -> list[Path]:
    """Diagnostics over training, one figure per size: sparsities overlaid, seeds averaged."""
    from sb3_sparse.plots import plot_diagnostics

    written = []
    for preset in sorted({run["preset"] for run in runs}):
        groups: dict[str, list[Path]] = {}
        for run, label in zip(runs, run_labels, strict=True):
            if run["preset"] == preset and run["status"] == "finished":
                groups.setdefault(label, []).append(runs_root / run["name"])
        try:
            path = output_dir / f"diagnostics_{preset}.png"
            written.append(plot_diagnostics(dict(sorted(groups.items())), path, title=f"size {preset}", colors=colors))
        except ValueError as error:  # e.g. diagnostics switched off in the sweep
            print(f"no diagnostics figure for {preset}: {error}")
    return written


def _plot_topologies(aggregates: Sequence[dict[str, Any]], panels: list[tuple[str, str]], ylabel: str, path: Path) -> Path:
    """Return by topology: per panel, one group of IQM points with confidence intervals per size and sparsity."""
    from matplotlib.figure import Figure

    present = {row["topology"] for row in aggregates}
    topologies = [topology for topology in TOPOLOGIES if topology in present]
    figure = Figure(figsize=(5.5 * len(panels), 4), dpi=110)
    axes = figure.subplots(1, len(panels), squeeze=False)
    for axis, (algo, env) in zip(axes[0], panels, strict=True):
        rows = [row for row in aggregates if row["algo"] == algo and row.get("env", "all tasks") == env]
        groups = sorted({(row["preset"], row["actor_sparsity"], row["critic_sparsity"]) for row in rows})
        for index, (preset, actor, critic) in enumerate(groups):
            offset = (index - (len(groups) - 1) / 2) * 0.8 / max(len(groups), 1)
            points = {
                r["topology"]: r
                for r in rows
                if (r["preset"], r["actor_sparsity"], r["critic_sparsity"]) == (preset, actor, critic)
            }
            x = [position + offset for position, topology in enumerate(topologies) if topology in points]
            chosen = [points[topology] for topology in topologies if topology in points]
            low = [row["iqm"] - row["ci_low"] for row in chosen]
            high = [row["ci_high"] - row["iqm"] for row in chosen]
            label = f"{preset}, {sparsity_label(actor, critic)}"
            axis.errorbar(x, [row["iqm"] for row in chosen], yerr=[low, high], fmt="o", capsize=4, label=label)
        axis.set_xticks(range(len(topologies)), topologies)
        axis.set_xlim(-0.6, len(topologies) - 0.4)
        axis.set_title(f"{algo.upper()} on {env}: topologies (IQM, 95% CI)", fontsize=10)
        axis.set_xlabel("mask topology")
        axis.set_ylabel(ylabel)
        axis.grid(alpha=0.3, axis="y")
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    return path


def report(root: str | Path, reps: int = 2000) -> dict[str, Path]:
    """
    Write the sweep's tables and plots into its directory.

    :param root: the sweep's output directory
    :param reps: bootstrap replications
    :return: name -> written file
    """
    root = Path(root)
    runs, evaluations = collect_results(root)
    if not runs:
        raise ValueError(f"{root} holds no sweep runs (no */{RUN_FILE})")
    written = {"runs": root / "runs.csv", "evaluations": root / "evaluations.csv", "aggregates": root / "aggregates.csv"}
    write_csv_atomic(runs, written["runs"])
    if evaluations:
        write_csv_atomic(evaluations, written["evaluations"])
    aggregates = aggregate(runs, reps=reps)
    if aggregates:
        write_csv_atomic(aggregates, written["aggregates"])
        for path in plot_sweep(aggregates, root, root / "plots"):
            written[path.stem] = path
    counts: dict[str, int] = {}
    for run in runs:
        counts[run["status"]] = counts.get(run["status"], 0) + 1
    print(f"{len(runs)} runs: " + ", ".join(f"{count} {status}" for status, count in sorted(counts.items())))
    for run in runs:
        if run["status"] not in ("finished", "skipped") and run["error"]:
            print(f"  {run['status']}: {run['name']}: {run['error']}")
    print(f"report in {root}/: {', '.join(str(path.relative_to(root)) for path in written.values() if path.exists())}")
    return written
