"""Train from the package's hyperparameter files, evaluate, and save the model, the evaluation curve
(CSV and PNG) and the plasticity diagnostics.

The default algorithm is ``reference_sac``, the paper's own SAC update
(:class:`sb3_sparse.reference.ReferenceSAC`); ``--algo sac`` trains SB3's. With no arguments it runs
the README's main job: the ``Pendulum-v1`` entry of ``reference_sac.yml``, a small sparse (0.8)
SimBa SAC that trains for 6,000 steps in a few minutes on 2 CPU cores::

    python -m sb3_sparse.train
    python -m sb3_sparse.train --env sb3_sparse/dmc-dog-run-v0 --preset width2
    python -m sb3_sparse.train --algo reference_ddpg --env sb3_sparse/dmc-humanoid-run-v0 --critic-sparsity 0.9
    python -m sb3_sparse.train --algo stream_ac --env Hopper-v5 --timesteps 100000

The reference protocol: deterministic evaluation every 10,000 environment steps (agent steps
times the action repeat: 2 for ``sb3_sparse/dmc-*`` ids) on 10 episodes, and 100 episodes at the
end. A run shorter than 10 such intervals evaluates every tenth of the run instead, so that it
still draws a curve; the diagnostics follow the same rule with the paper's 5,000 agent steps.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import RepeatAction
from matplotlib.figure import Figure
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, EvalCallback
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.logger import configure
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.preprocessing import get_action_dim
from torch import nn

import sb3_sparse  # noqa: F401  (registers the policies and the DMC ids)
from sb3_sparse.callbacks import PlasticityCallback
from sb3_sparse.envs import DMC_HARD_TASKS, dmc_env_id
from sb3_sparse.hyperparams import ALGORITHMS, algorithm_kwargs, hyperparams_path, load_hyperparams
from sb3_sparse.plots import plot_diagnostics
from sb3_sparse.presets import SIZE_PRESETS, size_preset
from sb3_sparse.sparsity import parameter_count

EVAL_FREQ_ENV_STEPS = 10_000
DIAGNOSTICS_FREQ = 5_000


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
    """Write the evaluation curve as CSV: agent_steps, env_steps, mean_return, std_return, episodes."""
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["agent_steps", "env_steps", "mean_return", "std_return", "episodes"])
        for row in rows:
            writer.writerow([row.agent_steps, row.env_steps, f"{row.mean_return:.4f}", f"{row.std_return:.4f}", row.episodes])


def plot_evaluations(rows: list[EvaluationRow], path: Path, title: str) -> None:
    """Plot mean return (and one standard deviation) against environment steps as a PNG."""
    steps = np.array([row.env_steps for row in rows])
    mean = np.array([row.mean_return for row in rows])
    std = np.array([row.std_return for row in rows])
    figure = Figure(figsize=(6, 4), dpi=120)  # not pyplot: no backend is chosen, none is changed
    axis = figure.subplots()
    axis.plot(steps, mean, marker="o", color="tab:blue")
    axis.fill_between(steps, mean - std, mean + std, color="tab:blue", alpha=0.2)
    axis.set_xlabel("environment steps")
    axis.set_ylabel("evaluation return (deterministic)")
    axis.set_title(title, fontsize=10)
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path)


def action_repeat_of(env: gym.Env) -> int:
    """
    Environment steps per agent step: the product of the ``RepeatAction`` wrappers around ``env``.

    :param env: a (wrapped) environment
    :return: the action repeat (1 without such a wrapper)
    """
    repeat = 1
    while isinstance(env, gym.Wrapper):
        if isinstance(env, RepeatAction):
            repeat *= env.num_repeats
        env = env.env
    return repeat


def default_frequency(preferred: int, timesteps: int) -> int:
    """``preferred``, or a tenth of the run when the run is shorter than 10 of them."""
    return preferred if timesteps >= 10 * preferred else max(1, timesteps // 10)


def unknown_env_message(env_id: str, algo: str) -> str:
    """What to say about an id that gymnasium does not know."""
    entries = ", ".join(load_hyperparams(algo))
    dmc = ", ".join(dmc_env_id(task) for task in DMC_HARD_TASKS)
    return (
        f"unknown environment id {env_id!r}. Ids with an entry in {algo}.yml: {entries}. "
        f"DMC hard tasks: {dmc} (every dm_control suite task is sb3_sparse/dmc-<domain>-<task>-v0)"
    )


CHECKPOINT_DIR = "checkpoint"
RESULT_FILE = "result.json"


class RunCheckpointCallback(BaseCallback):
    """
    Every ``freq`` agent steps, save what a crashed run needs to go on: the model, its replay buffer
    and the evaluations so far, into ``<output_dir>/checkpoint`` (replaced atomically; only the
    latest is kept).

    :param output_dir: the run's directory
    :param freq: agent steps between checkpoints
    :param eval_callback: the run's evaluation callback, whose results are saved too
    """

    def __init__(self, output_dir: Path, freq: int, eval_callback: EvalCallback) -> None:
        super().__init__()
        self.output_dir, self.freq, self.eval_callback = output_dir, freq, eval_callback

    def _on_step(self) -> bool:
        if self.num_timesteps % self.freq == 0:
            self.save()
        return True

    def save(self) -> None:
        """Write the checkpoint now."""
        staging = self.output_dir / f"{CHECKPOINT_DIR}.partial"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        self.model.save(staging / "model.zip")
        if isinstance(self.model, OffPolicyAlgorithm):  # streaming algorithms keep no replay buffer
            self.model.save_replay_buffer(staging / "replay_buffer.pkl")
        np.savez(
            staging / "evaluations.npz",
            timesteps=np.array(self.eval_callback.evaluations_timesteps, dtype=np.int64),
            results=np.array(self.eval_callback.evaluations_results, dtype=np.float64).reshape(
                len(self.eval_callback.evaluations_timesteps), -1
            ),
            ep_lengths=np.array(self.eval_callback.evaluations_length, dtype=np.int64).reshape(
                len(self.eval_callback.evaluations_timesteps), -1
            ),
        )
        (staging / "step.json").write_text(json.dumps({"num_timesteps": self.num_timesteps}))
        final = self.output_dir / CHECKPOINT_DIR
        shutil.rmtree(final, ignore_errors=True)
        staging.rename(final)


def progress_rows(path: Path) -> list[dict[str, str]]:
    """The rows of a CSV log (none when the file is missing)."""
    if not path.is_file():
        return []
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


def write_csv_rows(rows: list[dict[str, Any]], path: Path) -> None:
    """Write rows as CSV with the union of their columns (in order of appearance)."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--algo", default="reference_sac", choices=list(ALGORITHMS))
    parser.add_argument("--env", default="Pendulum-v1", help="gymnasium id with an entry in the hyperparameter file")
    parser.add_argument("--conf", type=Path, default=None, help="zoo-format YAML (default: the package's <algo>.yml)")
    parser.add_argument("--timesteps", type=int, default=None, help="agent steps (default: the entry's n_timesteps)")
    parser.add_argument("--preset", default=None, help=f"network size preset: {', '.join(SIZE_PRESETS)}")
    parser.add_argument("--actor-sparsity", type=float, default=None, help="overrides the entry's actor_sparsity")
    parser.add_argument("--critic-sparsity", type=float, default=None, help="overrides the entry's critic_sparsity")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--eval-freq", type=int, default=None, help=f"environment steps between evaluations (default {EVAL_FREQ_ENV_STEPS:,})"
    )
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--final-eval-episodes", type=int, default=100)
    parser.add_argument(
        "--diagnostics-freq",
        type=int,
        default=None,
        help=f"agent steps between diagnostics (default {DIAGNOSTICS_FREQ:,}; 0: off)",
    )
    parser.add_argument(
        "--checkpoint-freq", type=int, default=0, help="agent steps between checkpoints for --resume (0: none)"
    )
    parser.add_argument("--resume", action="store_true", help="go on from the output directory's checkpoint, if any")
    parser.add_argument("--device", default="auto", help="torch device (auto, cpu, cuda)")
    parser.add_argument("--output-dir", type=Path, default=None, help="default: runs/<algo>_<env>_<size>_a<S>_c<S>_seed<seed>")
    parser.add_argument("--no-progress-bar", action="store_true")
    args = parser.parse_args(argv)
    for name in ("timesteps", "eval_freq", "eval_episodes", "final_eval_episodes"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    if args.checkpoint_freq < 0:
        parser.error(f"--checkpoint-freq must be >= 0, got {args.checkpoint_freq}")
    if args.diagnostics_freq is not None and args.diagnostics_freq < 0:
        parser.error(f"--diagnostics-freq must be >= 0, got {args.diagnostics_freq}")
    if args.preset is not None and args.preset not in SIZE_PRESETS:
        parser.error(f"unknown --preset {args.preset!r}; valid presets: {', '.join(SIZE_PRESETS)}")
    if args.preset is not None and args.algo == "stream_ac":
        parser.error("--preset scales SimBa networks; stream_ac's networks take hidden_dim and num_layers in a --conf file")
    if args.conf is not None and not args.conf.is_file():
        parser.error(f"--conf {str(args.conf)!r} is not a file")
    return args


def build_model(args: argparse.Namespace, env: gym.Env) -> tuple[BaseAlgorithm, int, dict[str, Any]]:
    """The algorithm from the entry of ``args.env``, with the command line's overrides applied."""
    try:
        policy, n_timesteps, kwargs = algorithm_kwargs(args.algo, args.env, get_action_dim(env.action_space), args.conf)
    except ValueError as error:
        raise SystemExit(str(error)) from error
    policy_kwargs = kwargs["policy_kwargs"]
    if args.preset is not None:
        policy_kwargs.update(size_preset(args.preset))
    for name in ("actor_sparsity", "critic_sparsity"):
        if getattr(args, name) is not None:
            policy_kwargs[name] = getattr(args, name)
    model = ALGORITHMS[args.algo](policy, env, seed=args.seed, device=args.device, **kwargs)
    return model, args.timesteps or n_timesteps, kwargs


def main(argv: list[str] | None = None) -> Path:
    """
    Run the training job.

    :param argv: command-line arguments (``None``: ``sys.argv``)
    :return: the output directory
    """
    args = parse_args(argv)
    if args.env not in gym.registry:
        raise SystemExit(unknown_env_message(args.env, args.algo))
    env, eval_env = Monitor(gym.make(args.env)), Monitor(gym.make(args.env))
    eval_env.reset(seed=args.seed + 10_000)
    repeat = action_repeat_of(env)
    model, timesteps, kwargs = build_model(args, env)
    policy_kwargs = kwargs["policy_kwargs"]
    size = args.preset or "entry"
    output_dir = args.output_dir or Path("runs") / (
        f"{args.algo}_{args.env.replace('/', '-')}_{size}"
        f"_a{policy_kwargs.get('actor_sparsity', 0.0)}_c{policy_kwargs.get('critic_sparsity', 0.0)}_seed{args.seed}"
    )
    output_dir.mkdir(parents=True, exist_ok=True)

    # Trainable parameters (targets are copies); sb3_sparse.presets.parameter_count gives it before building.
    networks = [cast(nn.Module, getattr(model.policy, name)) for name in ("actor", "critic")]
    parameters = sum(parameter_count(network) for network in networks)  # dense shapes, also of SparseLinear layers
    density_text = cast(Any, model.policy).format_density_report()
    print(f"{args.algo.upper()} + {type(model.policy).__name__} on {args.env}: {parameters:,} parameters")
    print(density_text)
    (output_dir / "density.txt").write_text(density_text + "\n")

    eval_freq_env = args.eval_freq or default_frequency(EVAL_FREQ_ENV_STEPS, timesteps * repeat)
    eval_freq = max(1, eval_freq_env // repeat)  # EvalCallback counts agent steps
    diagnostics_freq = (
        args.diagnostics_freq if args.diagnostics_freq is not None else default_frequency(DIAGNOSTICS_FREQ, timesteps)
    )
    if not isinstance(model, OffPolicyAlgorithm):  # PlasticityCallback measures on replay-buffer batches
        if args.diagnostics_freq:
            raise SystemExit(f"--diagnostics-freq needs a replay buffer; {args.algo} has none (use --diagnostics-freq 0)")
        diagnostics_freq = 0
    print(
        f"training {timesteps:,} agent steps ({timesteps * repeat:,} environment steps); evaluation every "
        f"{eval_freq * repeat:,} environment steps on {args.eval_episodes} episodes, {args.final_eval_episodes} at the end; "
        + (f"diagnostics every {diagnostics_freq:,} agent steps" if diagnostics_freq else "no diagnostics")
    )
    # EvalCallback records its results only with a log_path (it also writes SB3's evaluations.npz there).
    eval_callback = EvalCallback(
        eval_env, eval_freq=eval_freq, n_eval_episodes=args.eval_episodes, log_path=str(output_dir), verbose=0
    )
    callbacks: list[BaseCallback] = [eval_callback]
    if diagnostics_freq:
        callbacks.append(PlasticityCallback(freq=diagnostics_freq))
    if args.checkpoint_freq:
        callbacks.append(RunCheckpointCallback(output_dir, args.checkpoint_freq, eval_callback))
    earlier_progress: list[dict[str, str]] = []
    checkpoint = output_dir / CHECKPOINT_DIR
    if args.resume and (checkpoint / "step.json").is_file():
        model = type(model).load(checkpoint / "model.zip", env=env, device=args.device)
        if isinstance(model, OffPolicyAlgorithm):
            model.load_replay_buffer(checkpoint / "replay_buffer.pkl")
        saved = np.load(checkpoint / "evaluations.npz")
        eval_callback.evaluations_timesteps = saved["timesteps"].tolist()
        eval_callback.evaluations_results = saved["results"].tolist()
        eval_callback.evaluations_length = saved["ep_lengths"].tolist()
        for callback in callbacks:  # frequencies count calls: go on counting from the checkpoint
            callback.n_calls = model.num_timesteps
        # The log of the crashed attempt, up to the checkpoint; the rest is redone.
        earlier_progress = [
            row
            for row in progress_rows(output_dir / "progress.csv")
            if row.get("time/total_timesteps") and int(float(row["time/total_timesteps"])) <= model.num_timesteps
        ]
        print(f"resuming from the checkpoint at {model.num_timesteps:,} agent steps")
    # SB3's CSV log (progress.csv) holds training, evaluation and diagnostic values by step.
    model.set_logger(configure(str(output_dir), ["csv"]))
    model.learn(
        max(0, timesteps - model.num_timesteps),
        callback=callbacks,
        progress_bar=not args.no_progress_bar,
        reset_num_timesteps=model.num_timesteps == 0,
    )
    if earlier_progress:
        model.logger.close()
        write_csv_rows(earlier_progress + progress_rows(output_dir / "progress.csv"), output_dir / "progress.csv")

    rows = [
        EvaluationRow(int(step), int(step) * repeat, float(np.mean(returns)), float(np.std(returns)), len(returns))
        for step, returns in zip(eval_callback.evaluations_timesteps, eval_callback.evaluations_results, strict=True)
    ]
    final_returns = cast(
        list[float],
        evaluate_policy(model, eval_env, n_eval_episodes=args.final_eval_episodes, return_episode_rewards=True)[0],
    )
    rows.append(
        EvaluationRow(
            model.num_timesteps,
            model.num_timesteps * repeat,
            float(np.mean(final_returns)),
            float(np.std(final_returns)),
            len(final_returns),
        )
    )

    model.save(output_dir / "model.zip")
    write_evaluations_csv(rows, output_dir / "evaluations.csv")
    sparsity = f"actor {policy_kwargs.get('actor_sparsity', 0.0)}, critic {policy_kwargs.get('critic_sparsity', 0.0)}"
    title = f"{args.algo.upper()} + {type(model.policy).__name__} on {args.env} ({sparsity}, seed {args.seed})"
    plot_evaluations(rows, output_dir / "evaluations.png", title)
    written = ["model.zip", "evaluations.csv", "evaluations.png", "progress.csv", "density.txt", "config.json", RESULT_FILE]
    if diagnostics_freq and diagnostics_freq <= timesteps:
        plot_diagnostics({sparsity: [output_dir]}, output_dir / "diagnostics.png", title=title)
        written.append("diagnostics.png")
    config = {
        "command_line": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "hyperparameters": str(args.conf or hyperparams_path(args.algo)),
        "algorithm_kwargs": {k: repr(v) for k, v in kwargs.items()},
        "timesteps": timesteps,
        "action_repeat": repeat,
        "eval_freq_env_steps": eval_freq * repeat,
        "diagnostics_freq": diagnostics_freq,
        "parameters": parameters,
    }
    (output_dir / "config.json").write_text(json.dumps(config, indent=2))
    nonzero = sum(int((p != 0).sum()) for network in networks for p in network.parameters())
    result = {
        "final_mean_return": rows[-1].mean_return,
        "final_std_return": rows[-1].std_return,
        "agent_steps": model.num_timesteps,
        "env_steps": model.num_timesteps * repeat,
        "parameters": parameters,
        "nonzero_parameters": nonzero,
    }
    # Written last: a run is finished exactly when its result.json exists.
    (output_dir / RESULT_FILE).write_text(json.dumps(result, indent=2))
    shutil.rmtree(output_dir / CHECKPOINT_DIR, ignore_errors=True)
    print(f"final evaluation over {len(final_returns)} episodes: {np.mean(final_returns):.1f} +/- {np.std(final_returns):.1f}")
    print(f"wrote {output_dir}/: {', '.join(written)}")
    return output_dir


if __name__ == "__main__":
    main()
