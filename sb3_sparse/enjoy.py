"""Watch a trained run: load a runner's model (``model.zip``, or the latest checkpoint's) with its
environment as the run built it, play deterministic episodes and print each return, as the RL
Zoo's ``enjoy`` does for its own folders::

    python -m sb3_sparse.enjoy runs/reference_sac_Pendulum-v1_entry_a0.8_c0.8_seed0
    sb3-sparse enjoy runs/sac_Hopper-v5_entry_a0.8_c0.8_seed0 --episodes 10 --stochastic
    sb3-sparse enjoy runs/<run> --checkpoint       # a run still training, or stopped

The environment is the run's evaluation environment (its entry's wrappers, frame stacking and
``VecNormalize`` statistics, frozen), seeded with ``--seed`` (default: the run's evaluation seed).
"""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path
from typing import Any, cast

import numpy as np
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecNormalize

import sb3_sparse  # noqa: F401  (registers the policies and the DMC ids)
from sb3_sparse.checks import ConfigurationError
from sb3_sparse.cli import OneLineErrorParser, plain_help
from sb3_sparse.hyperparams import ALGORITHMS
from sb3_sparse.run_config import EVAL_SEED_OFFSET, RunConfig
from sb3_sparse.run_directory import CONFIG, MODEL, VEC_NORMALIZE, DamagedFileError, RunDirectory
from sb3_sparse.run_envs import make_configured_envs


def run_config_of(directory: Path) -> RunConfig:
    """
    The configuration a run was trained with, read from its ``config.json``.

    :param directory: the run directory
    :return: the configuration (not resumable fields at their defaults)
    """
    try:
        stored = RunDirectory(directory).read_config()  # a damaged file comes back from a checkpoint's copy
    except DamagedFileError as error:
        raise ConfigurationError(str(error)) from error
    if stored is None:
        raise ConfigurationError(f"{directory} is not a run directory: it has no {CONFIG}")
    identity: dict[str, Any] = stored["identity"]
    names = {field.name for field in fields(RunConfig)}
    return RunConfig(**{key: value for key, value in identity.items() if key in names})


def enjoy(directory: str | Path, episodes: int = 5, deterministic: bool = True, seed: int | None = None,
          checkpoint: bool = False) -> list[tuple[float, int]]:  # fmt: skip
    """
    Play a run's policy in its evaluation environment.

    :param directory: the run directory
    :param episodes: episodes to play
    :param deterministic: the policy's deterministic actions
    :param seed: seed of the environment (``None``: the run's evaluation seed)
    :param checkpoint: the latest checkpoint's model instead of the finished run's ``model.zip``
    :return: ``(return, length)`` of each episode
    """
    run = RunDirectory(Path(directory))
    config = run_config_of(run.path)
    folder = run.checkpoint() if checkpoint else run.path
    if folder is None or not (folder / MODEL).is_file():
        what = "no checkpoint" if checkpoint else f"no {MODEL} (not finished: --checkpoint plays its latest checkpoint)"
        raise ConfigurationError(f"{run.path} has {what}")
    _, train_env, env = make_configured_envs(config)
    train_env.close()
    if isinstance(env, VecNormalize) and (folder / VEC_NORMALIZE).is_file():
        statistics = VecNormalize.load(str(folder / VEC_NORMALIZE), env.venv)
        statistics.training, statistics.norm_reward = False, False
        env = statistics
    env.seed(config.seed + EVAL_SEED_OFFSET if seed is None else seed)
    model = ALGORITHMS[config.algo].load(folder / MODEL, env=env, device="cpu")
    returns, lengths = evaluate_policy(
        model, env, n_eval_episodes=episodes, deterministic=deterministic, return_episode_rewards=True
    )
    env.close()
    return [(float(value), int(length)) for value, length in zip(cast(list, returns), cast(list, lengths), strict=True)]


def main(argv: list[str] | None = None) -> list[tuple[float, int]]:
    """
    Command line entry point (``python -m sb3_sparse.enjoy`` or ``sb3-sparse enjoy``).

    :param argv: arguments (``None``: ``sys.argv[1:]``)
    :return: ``(return, length)`` of each episode
    """
    parser = OneLineErrorParser(
        prog="sb3-sparse enjoy", description=plain_help(__doc__), formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run_dir", type=Path, help="a run directory of the runner (sb3-sparse train)")
    parser.add_argument("-n", "--episodes", type=int, default=5)
    parser.add_argument("--stochastic", action="store_true", help="sample actions (default: deterministic)")
    parser.add_argument("--seed", type=int, default=None, help="the environment's seed (default: the run's evaluation seed)")
    parser.add_argument("--checkpoint", action="store_true", help="play the latest checkpoint's model")
    args = parser.parse_args(argv)
    if args.episodes < 1:
        parser.error(f"--episodes must be >= 1, got {args.episodes}")
    try:
        played = enjoy(args.run_dir, args.episodes, not args.stochastic, args.seed, args.checkpoint)
    except ConfigurationError as error:
        parser.error(str(error))
    for index, (value, length) in enumerate(played):
        print(f"episode {index + 1}: return {value:.1f}, {length} steps")
    values = np.array([value for value, _ in played])
    print(f"mean return over {len(played)} episodes: {values.mean():.1f} +/- {values.std():.1f}")
    return played


if __name__ == "__main__":
    main()
