"""A run's evaluation curve: one :class:`EvaluationRow` per evaluation of the deterministic policy,
written as ``evaluations.csv`` and drawn as ``evaluations.png``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from sb3_sparse.plots import step_axis
from sb3_sparse.run_directory import read_csv, write_csv_atomic


def evaluation_seed(run_seed: int, agent_steps: int, final: bool = False) -> int:
    """
    The seed of the evaluation environments for the evaluation at ``agent_steps`` of the run
    seeded ``run_seed``: from these two numbers only, so that a resumed run evaluates exactly as
    the uninterrupted one, whatever the evaluation environments did before.

    :param run_seed: the run's seed
    :param agent_steps: the step the evaluation happens at
    :param final: the final evaluation (a stream of its own: it may fall on a periodic one's step)
    :return: a seed in [0, 2**32)
    """
    return int(np.random.SeedSequence([run_seed, agent_steps, int(final)]).generate_state(1)[0])


@dataclass
class EvaluationRow:
    """
    One evaluation of the deterministic policy.

    :param agent_steps: agent steps (policy decisions) trained so far
    :param env_steps: environment steps trained so far (agent steps times the action repeat)
    :param mean_return: mean episodic return
    :param std_return: standard deviation of the episodic return
    :param episodes: number of evaluation episodes
    """

    agent_steps: int
    env_steps: int
    mean_return: float
    std_return: float
    episodes: int


def write_evaluations_csv(rows: list[EvaluationRow], path: Path) -> None:
    """Write the evaluation curve as CSV (atomically): agent_steps, env_steps, mean_return, std_return, episodes."""
    table = [dict(asdict(row), mean_return=f"{row.mean_return:.4f}", std_return=f"{row.std_return:.4f}") for row in rows]
    write_csv_atomic(table, path)


def read_evaluations_csv(path: Path) -> tuple[list[EvaluationRow], bool]:
    """
    The intact rows of an ``evaluations.csv``, and whether any line of it was damaged (or it is missing).

    :param path: the file
    :return: ``(rows, damaged)``
    """
    content = read_csv(path)
    rows, damaged = [], bool(content.damaged_lines) or not path.is_file()
    for row in content.rows:
        try:
            steps, env_steps, episodes = (int(row[key]) for key in ("agent_steps", "env_steps", "episodes"))
            rows.append(EvaluationRow(steps, env_steps, float(row["mean_return"]), float(row["std_return"]), episodes))
        except (KeyError, ValueError):
            damaged = True
    return rows, damaged


def plot_evaluations(rows: list[EvaluationRow], path: Path, title: str, action_repeat: int = 1) -> None:
    """
    Plot the periodic evaluations (mean return and one standard deviation) against agent steps (the
    environment steps on a top scale where they differ, as in the diagnostics figure), and the final
    evaluation (the last row, with more episodes) as its own point, as a PNG.
    """
    periodic, final = rows[:-1], rows[-1]
    steps = np.array([row.agent_steps for row in periodic])
    mean = np.array([row.mean_return for row in periodic])
    std = np.array([row.std_return for row in periodic])
    from matplotlib.figure import Figure  # here: see sb3_sparse.plots

    figure = Figure(figsize=(6.4, 4.4), dpi=120)  # not pyplot: no backend is chosen, none is changed
    axis = figure.subplots()
    if len(periodic):
        axis.plot(steps, mean, marker="o", color="tab:blue", label=f"every evaluation ({periodic[0].episodes} episodes)")
        axis.fill_between(steps, mean - std, mean + std, color="tab:blue", alpha=0.2)
    axis.errorbar(
        [final.agent_steps], [final.mean_return], yerr=[final.std_return], fmt="D", color="tab:red", capsize=4,
        label=f"final evaluation ({final.episodes} episodes)",
    )  # fmt: skip
    step_axis(axis, action_repeat, fontsize=10)
    axis.set_ylabel("evaluation return (deterministic)")
    axis.set_title(title, fontsize=9)
    axis.legend(fontsize=8, loc="lower right")
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path)


def evaluation_rows(timesteps: Sequence[int], results: Sequence[Sequence[float]], action_repeat: int) -> list[EvaluationRow]:
    """
    The rows of evaluations recorded as SB3's ``EvalCallback`` records them.

    :param timesteps: agent steps of each evaluation
    :param results: the episodic returns of each evaluation
    :param action_repeat: environment steps per agent step
    :return: one row per evaluation
    """
    return [
        EvaluationRow(int(step), int(step) * action_repeat, float(np.mean(returns)), float(np.std(returns)), len(returns))
        for step, returns in zip(timesteps, results, strict=True)
    ]
