"""Train a sparse SimBa SAC agent, evaluate it, save the model, the evaluation curve (CSV) and its plot (PNG).

With no arguments it runs the package's quick default: sparse (0.8) SimBa SAC on Pendulum-v1
for 6,000 steps, a few minutes on 2 CPU cores::

    python -m sb3_sparse.train
    python -m sb3_sparse.train --env HalfCheetah-v5 --timesteps 100000 --critic-sparsity 0.9

Evaluation follows the reference protocol: deterministic actions, every ``--eval-freq`` steps
with ``--eval-episodes`` episodes, and ``--final-eval-episodes`` episodes at the end.
Every ``--diagnostics-freq`` steps :class:`~sb3_sparse.callbacks.PlasticityCallback` logs the
plasticity diagnostics to ``progress.csv``, drawn at the end as ``diagnostics.png``.
"""

from __future__ import annotations

import argparse
import csv
import json
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import matplotlib
import numpy as np
from stable_baselines3 import SAC
from stable_baselines3.common.callbacks import BaseCallback, EvalCallback
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.logger import configure
from stable_baselines3.common.monitor import Monitor

import sb3_sparse  # noqa: F401  (registers the policy)
from sb3_sparse.callbacks import PlasticityCallback
from sb3_sparse.plots import plot_diagnostics

matplotlib.use("Agg")  # headless: the plot goes to a file
import matplotlib.pyplot as plt


@dataclass
class EvaluationRow:
    """
    One evaluation of the deterministic policy.

    :param timesteps: environment steps trained so far
    :param mean_return: mean episodic return
    :param std_return: standard deviation of the episodic return
    :param episodes: number of evaluation episodes
    """

    timesteps: int
    mean_return: float
    std_return: float
    episodes: int


def write_evaluations_csv(rows: list[EvaluationRow], path: Path) -> None:
    """Write the evaluation curve as CSV with columns timesteps, mean_return, std_return, episodes."""
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["timesteps", "mean_return", "std_return", "episodes"])
        for row in rows:
            writer.writerow([row.timesteps, f"{row.mean_return:.4f}", f"{row.std_return:.4f}", row.episodes])


def plot_evaluations(rows: list[EvaluationRow], path: Path, title: str) -> None:
    """Plot mean return (and one standard deviation) against environment steps as a PNG."""
    steps = np.array([row.timesteps for row in rows])
    mean = np.array([row.mean_return for row in rows])
    std = np.array([row.std_return for row in rows])
    figure, axis = plt.subplots(figsize=(6, 4), dpi=120)
    axis.plot(steps, mean, marker="o", color="tab:blue")
    axis.fill_between(steps, mean - std, mean + std, color="tab:blue", alpha=0.2)
    axis.set_xlabel("environment steps")
    axis.set_ylabel("evaluation return (deterministic)")
    axis.set_title(title, fontsize=10)
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="Pendulum-v1", help="gymnasium environment id (flat Box observations)")
    parser.add_argument("--timesteps", type=int, default=6_000, help="environment steps to train")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--actor-sparsity", type=float, default=0.8)
    parser.add_argument("--critic-sparsity", type=float, default=0.8)
    parser.add_argument("--actor-hidden-dim", type=int, default=64)
    parser.add_argument("--actor-num-blocks", type=int, default=1)
    parser.add_argument("--critic-hidden-dim", type=int, default=128)
    parser.add_argument("--critic-num-blocks", type=int, default=1)
    parser.add_argument("--n-critics", type=int, default=2)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--learning-starts", type=int, default=1_000, help="random warm-up transitions")
    parser.add_argument("--eval-freq", type=int, default=1_000, help="environment steps between evaluations")
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--final-eval-episodes", type=int, default=20)
    parser.add_argument("--diagnostics-freq", type=int, default=1_000, help="steps between plasticity diagnostics (0: off)")
    parser.add_argument("--output-dir", type=Path, default=None, help="default: runs/<env>_sac_a<S>_c<S>_seed<seed>")
    parser.add_argument("--no-progress-bar", action="store_true")
    args = parser.parse_args(argv)
    for name in ("timesteps", "eval_freq", "eval_episodes", "final_eval_episodes"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    for name in ("learning_starts", "diagnostics_freq"):
        if getattr(args, name) < 0:
            parser.error(f"--{name.replace('_', '-')} must be >= 0, got {getattr(args, name)}")
    return args


def main(argv: list[str] | None = None) -> Path:
    """
    Run the training job.

    :param argv: command-line arguments (``None``: ``sys.argv``)
    :return: the output directory
    """
    args = parse_args(argv)
    try:
        env = Monitor(gym.make(args.env))
        eval_env = Monitor(gym.make(args.env))
    except gym.error.Error as error:
        raise SystemExit(f"cannot make environment {args.env!r}: {error}") from error
    eval_env.reset(seed=args.seed + 10_000)
    output_dir = (
        args.output_dir or Path("runs") / f"{args.env}_sac_a{args.actor_sparsity}_c{args.critic_sparsity}_seed{args.seed}"
    )
    output_dir.mkdir(parents=True, exist_ok=True)

    policy_kwargs = dict(
        actor_hidden_dim=args.actor_hidden_dim,
        actor_num_blocks=args.actor_num_blocks,
        critic_hidden_dim=args.critic_hidden_dim,
        critic_num_blocks=args.critic_num_blocks,
        actor_sparsity=args.actor_sparsity,
        critic_sparsity=args.critic_sparsity,
        n_critics=args.n_critics,
    )
    model = SAC(
        "SparseSimBaPolicy",
        env,
        learning_rate=args.learning_rate,
        learning_starts=args.learning_starts,
        seed=args.seed,
        policy_kwargs=policy_kwargs,
    )
    density_text = model.policy.format_density_report()
    print(density_text)
    (output_dir / "density.txt").write_text(density_text + "\n")

    # EvalCallback records its results only with a log_path (it also writes SB3's evaluations.npz there).
    eval_callback = EvalCallback(
        eval_env, eval_freq=args.eval_freq, n_eval_episodes=args.eval_episodes, log_path=str(output_dir), verbose=0
    )
    callbacks: list[BaseCallback] = [eval_callback]
    if args.diagnostics_freq:
        callbacks.append(PlasticityCallback(freq=args.diagnostics_freq))
    # SB3's CSV log (progress.csv) holds training, evaluation and diagnostic values by step.
    model.set_logger(configure(str(output_dir), ["csv"]))
    model.learn(args.timesteps, callback=callbacks, progress_bar=not args.no_progress_bar)

    rows = [
        EvaluationRow(int(step), float(np.mean(returns)), float(np.std(returns)), len(returns))
        for step, returns in zip(eval_callback.evaluations_timesteps, eval_callback.evaluations_results, strict=True)
    ]
    final_returns, _ = evaluate_policy(model, eval_env, n_eval_episodes=args.final_eval_episodes, return_episode_rewards=True)
    rows.append(
        EvaluationRow(model.num_timesteps, float(np.mean(final_returns)), float(np.std(final_returns)), len(final_returns))
    )

    model.save(output_dir / "model.zip")
    write_evaluations_csv(rows, output_dir / "evaluations.csv")
    title = (
        f"SAC + SparseSimBaPolicy on {args.env} (actor {args.actor_sparsity}, critic {args.critic_sparsity}, seed {args.seed})"
    )
    plot_evaluations(rows, output_dir / "evaluations.png", title)
    written = ["model.zip", "evaluations.csv", "evaluations.png", "progress.csv", "density.txt", "config.json"]
    if args.diagnostics_freq and args.diagnostics_freq <= args.timesteps:
        plot_diagnostics(
            {f"sparsity {args.actor_sparsity}/{args.critic_sparsity}": [output_dir]}, output_dir / "diagnostics.png"
        )
        written.append("diagnostics.png")
    (output_dir / "config.json").write_text(
        json.dumps({k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}, indent=2)
    )
    print(f"final evaluation over {len(final_returns)} episodes: {np.mean(final_returns):.1f} +/- {np.std(final_returns):.1f}")
    print(f"wrote {output_dir}/: {', '.join(written)}")
    return output_dir


if __name__ == "__main__":
    main()
