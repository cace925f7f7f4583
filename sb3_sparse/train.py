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

The flags and units are the RL Baselines3 Zoo's where the zoo has them: ``-n`` (agent steps),
``-f`` (log folder), ``-conf``, ``-params key:value`` (overrides of the entry), ``-tb``,
``--eval-freq`` and ``--save-freq`` in agent steps, ``--num-threads``, ``--verbose``, ``-P``,
``--log-interval``, ``--n-eval-envs``, ``--save-replay-buffer``, ``--vec-env``, ``-i``
(``sb3-sparse enjoy`` plays a finished run); every key
of the zoo's file format is read (``n_envs``, ``normalize``, ``env_wrapper``, ``callback``,
``frame_stack``, ``lin_`` schedules, ...), with rl_zoo3's own functions.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from dataclasses import fields as dataclass_fields
from pathlib import Path
from typing import Any, NoReturn, cast

import gymnasium as gym
import numpy as np
import torch as th
import yaml
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, EvalCallback
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.logger import Logger, make_output_format
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.preprocessing import get_action_dim
from stable_baselines3.common.vec_env import VecEnv, sync_envs_normalization
from torch import nn

import sb3_sparse  # noqa: F401  (registers the policies and the DMC ids)
from sb3_sparse.algorithms import algorithm_entry
from sb3_sparse.callbacks import AdaptiveThreadsCallback, PlasticityCallback, ProgressLinesCallback, SeededEvalCallback
from sb3_sparse.checks import ConfigurationError, check_sparsity
from sb3_sparse.cli import OneLineErrorParser, plain_help
from sb3_sparse.evaluations import (
    EvaluationRow,
    evaluation_rows,
    evaluation_seed,
    plot_evaluations,
    read_evaluations_csv,
    write_evaluations_csv,
)
from sb3_sparse.hyperparams import (
    ALGORITHMS,
    EnvironmentSettings,
    algorithm_kwargs,
    hyperparams_entry,
    hyperparams_path,
    unknown_algorithm_message,
)
from sb3_sparse.interrupts import Interrupted, StopRequest, stop_on_signals
from sb3_sparse.plots import plot_diagnostics
from sb3_sparse.policies.architecture import DEFAULT_SPARSITY, sizes_from_net_arch
from sb3_sparse.presets import SIZE_PRESETS, scale_sizes
from sb3_sparse.resume import (
    RunCheckpointCallback,
    RunState,
    check_checkpoint_fits,
    check_effective_configuration,
    effective_configuration,
    prepare_run_directory,
    restore_checkpoint,
    restore_normalizer_statistics,
)
from sb3_sparse.run_config import RESUMABLE_FIELDS, RunConfig
from sb3_sparse.run_directory import (
    CONFIG,
    DENSITY,
    DIAGNOSTICS_PNG,
    EVALUATIONS_CSV,
    EVALUATIONS_PNG,
    MODEL,
    PROGRESS_CSV,
    REPLAY_BUFFER,
    RESULT,
    VEC_NORMALIZE,
    RunDirectory,
    RunLockedError,
    os_error_message,
    set_aside,
    write_text_atomic,
)
from sb3_sparse.run_envs import EnvironmentValueError, action_repeat_of, make_configured_envs, unknown_env_message
from sb3_sparse.sparsity import parameter_count
from sb3_sparse.threads import settle_threads
from sb3_sparse.topology import TOPOLOGIES
from sb3_sparse.training_state import load_replay_buffer

EVAL_FREQ_ENV_STEPS = 10_000
DIAGNOSTICS_FREQ = 5_000


def default_frequency(preferred: int, timesteps: int) -> int:
    """``preferred``, or a tenth of the run when the run is shorter than 10 of them."""
    return preferred if timesteps >= 10 * preferred else max(1, timesteps // 10)


def parse_algo(text: str) -> str:
    """An argparse type: an algorithm name, or an error naming the closest ones."""
    if text not in ALGORITHMS:
        raise argparse.ArgumentTypeError(unknown_algorithm_message(text))
    return text


def parse_sparsity(text: str) -> float:
    """An argparse type: a sparsity in [0, 1)."""
    try:
        return check_sparsity("sparsity", float(text))
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{text!r} is not a sparsity in [0, 1)") from error


def parse_key_value(text: str) -> tuple[str, Any]:
    """An argparse type: ``key:value`` (the zoo's syntax), the value read as YAML (``500``, ``0.2``, ``true``)."""
    key, separator, value = text.partition(":")
    if not separator or not key:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY:VALUE")
    return key, yaml.safe_load(value)


def parse_args(argv: list[str] | None = None) -> RunConfig:
    """
    The command line as a :class:`RunConfig`.

    :param argv: arguments (``None``: ``sys.argv[1:]``)
    :return: the configuration
    """
    parser = OneLineErrorParser(
        prog="sb3-sparse train", description=plain_help(__doc__), formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--algo", default="reference_sac", type=parse_algo, metavar="{" + ",".join(ALGORITHMS) + "}")
    parser.add_argument("--env", default="Pendulum-v1", help="gymnasium id with an entry in the hyperparameter file")
    parser.add_argument(
        "-conf", "--conf", "--conf-file", dest="conf", default=None, help="zoo-format YAML (default: the package's <algo>.yml)"
    )
    parser.add_argument(
        "-n", "--timesteps", "--n-timesteps", dest="timesteps", type=int, default=None,
        help="agent steps (default: the entry's n_timesteps)",
    )  # fmt: skip
    parser.add_argument(
        "-params",
        "--hyperparams",
        nargs="+",
        default=None,
        metavar="KEY:VALUE",
        type=parse_key_value,
        help="overrides of the entry's keys, e.g. learning_starts:100 n_envs:4 learning_rate:lin_1e-3",
    )
    parser.add_argument(
        "--preset", default=None, help=f"scale the entry's sizes (widths x k, blocks x m): {', '.join(SIZE_PRESETS)}"
    )
    parser.add_argument("--actor-sparsity", type=parse_sparsity, default=None, help="overrides the entry's actor_sparsity")
    parser.add_argument("--critic-sparsity", type=parse_sparsity, default=None, help="overrides the entry's critic_sparsity")
    parser.add_argument(
        "--topology", default=None, choices=list(TOPOLOGIES), help="overrides the entry's topology (static: fixed masks)"
    )
    parser.add_argument(
        "--topology-kwargs",
        nargs="+",
        default=None,
        metavar="KEY:VALUE",
        type=parse_key_value,
        help="overrides the entry's topology_kwargs, e.g. update_interval:500 drop_fraction:0.2",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--eval-freq",
        type=int,
        default=None,
        help=f"agent steps between evaluations (default: {EVAL_FREQ_ENV_STEPS:,} environment steps)",
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
        "--checkpoint-freq", "--save-freq", dest="checkpoint_freq", type=int, default=0,
        help="agent steps between checkpoints (0: none)",
    )  # fmt: skip
    parser.add_argument("--resume", action="store_true", help="go on from the output directory's checkpoint, if any")
    parser.add_argument("--restart", action="store_true", help="discard what the output directory holds and start over")
    parser.add_argument("--device", default="auto", help="torch device (auto, cpu, cuda)")
    parser.add_argument("--output-dir", default=None, help="default: <log-folder>/<algo>_<env>_<size>_a<S>_c<S>_seed<seed>")
    parser.add_argument("-f", "--log-folder", default="runs", help="where the default output directory goes")
    parser.add_argument("-tb", "--tensorboard-log", default=None, help="TensorBoard folder (default: none)")
    parser.add_argument("--verbose", type=int, default=1, help="1: print SB3's log and each evaluation; 0: quiet")
    parser.add_argument("--no-progress-bar", action="store_true")
    parser.add_argument("-P", "--progress", action="store_true", help="the zoo's flag: a progress bar (the default here)")
    parser.add_argument(
        "--log-interval", type=int, default=None, help="SB3's log_interval (default: the algorithm's, as in the zoo)"
    )
    parser.add_argument("--n-eval-envs", type=int, default=None, help="environments of each evaluation (default 1)")
    parser.add_argument("--save-replay-buffer", action="store_true", help="save the replay buffer beside the model at the end")
    parser.add_argument("--vec-env", choices=["dummy", "subproc"], default=None, help="how the environments are stepped")
    parser.add_argument(
        "-i", "--trained-agent", default=None, help="a saved model (.zip) a new run starts from (its replay buffer too)"
    )
    parser.add_argument(
        "--num-threads", type=int, default=None, help="torch threads (default: the free cores, followed while training)"
    )
    args = parser.parse_args(argv)
    fields = {key: value for key, value in vars(args).items() if key not in ("no_progress_bar", "progress")}
    for name in ("topology_kwargs", "hyperparams"):
        if fields[name] is not None:
            fields[name] = dict(fields[name])
    for name in ("timesteps", "eval_freq", "eval_episodes", "final_eval_episodes"):
        value = fields[name]
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    for name in ("checkpoint_freq", "diagnostics_freq"):
        if fields[name] is not None and fields[name] < 0:
            parser.error(f"--{name.replace('_', '-')} must be >= 0, got {fields[name]}")
    if args.preset is not None and args.preset not in SIZE_PRESETS:
        parser.error(f"unknown --preset {args.preset!r}; valid presets: {', '.join(SIZE_PRESETS)}")
    if args.preset is not None and args.algo == "stream_ac":
        parser.error("--preset scales SimBa networks; stream_ac's networks take hidden_dim and num_layers in a --conf file")
    if args.conf is not None and not Path(args.conf).is_file():
        parser.error(f"--conf {str(args.conf)!r} is not a file")
    try:
        return RunConfig(**fields, progress_bar=args.progress or not args.no_progress_bar)
    except ValueError as error:
        parser.error(str(error))
        raise  # unreachable: parser.error exits


def resolve_entry(config: RunConfig, env: gym.Env | VecEnv) -> tuple[str, int, dict[str, Any], dict[str, Any]]:
    """
    The algorithm's arguments from the entry of ``config.env``, with the configuration's overrides.

    :param config: the run
    :param env: the environment (for the action size)
    :return: ``(policy, timesteps, algorithm kwargs, the entry as written, with the -params overrides)``
    """
    try:
        entry = hyperparams_entry(config.algo, config.env, config.conf, config.hyperparams)
        policy, n_timesteps, kwargs = algorithm_kwargs(
            config.algo, config.env, get_action_dim(env.action_space), config.conf, config.hyperparams
        )
    except ValueError as error:
        raise ConfigurationError(str(error)) from error
    policy_kwargs = kwargs["policy_kwargs"]
    accepted = getattr(ALGORITHMS[config.algo].policy_aliases[policy], "valid_kwargs", lambda: None)()
    if config.preset is not None:
        policy_kwargs.update(_scaled_entry_sizes(config, policy, policy_kwargs))
    for name in ("actor_sparsity", "critic_sparsity", "topology", "topology_kwargs"):
        if getattr(config, name) is not None:
            if accepted is not None and name not in accepted:
                raise ConfigurationError(
                    f"--{name.replace('_', '-')}: {policy} of {config.algo} has no {name} (it takes {', '.join(accepted)})"
                )
            policy_kwargs[name] = getattr(config, name)
    if config.topology_kwargs is not None and policy_kwargs.get("topology", "static") == "static":
        raise ConfigurationError(
            f"--topology-kwargs {config.topology_kwargs}: the topology is static (the entry's, with no --topology): "
            "pass --topology set, rigl, gmp or densify"
        )
    return policy, config.timesteps or n_timesteps, kwargs, entry


def _scaled_entry_sizes(config: RunConfig, policy: str, policy_kwargs: dict[str, Any]) -> dict[str, int]:
    """
    The entry's sizes scaled by ``config.preset``: the entry's own (a ``net_arch`` read as SimBa
    sizes, removed from ``policy_kwargs``), else the policy's defaults; a Q-network (DQN, QR-DQN)
    has critic sizes only.
    """
    policy_class = ALGORITHMS[config.algo].policy_aliases[policy]
    architecture = getattr(policy_class, "architecture_class", None)
    if architecture is None:
        raise ConfigurationError(f"--preset {config.preset}: scales SimBa policies; {policy} of {config.algo} has no sizes")
    accepted = policy_class.valid_kwargs()  # type: ignore[attr-defined]  # a SimBa policy (it has architecture_class)
    defaults = {field.name: field.default for field in dataclass_fields(architecture) if field.name in accepted}
    roles = [role for role in ("actor", "critic") if f"{role}_hidden_dim" in defaults]
    try:
        sizes = {**defaults, **sizes_from_net_arch(policy_kwargs.pop("net_arch", None), roles), **policy_kwargs}
        return scale_sizes(sizes, cast(str, config.preset))
    except ValueError as error:
        raise ConfigurationError(f"--preset {config.preset}: {error}") from error


def build_model(config: RunConfig, env: gym.Env | VecEnv) -> tuple[BaseAlgorithm, int, dict[str, Any]]:
    """The algorithm from the entry of ``config.env``, with the configuration's overrides applied."""
    policy, timesteps, kwargs, _ = resolve_entry(config, env)
    model = ALGORITHMS[config.algo](policy, env, seed=config.seed, device=config.device, **kwargs)
    return model, timesteps, kwargs


def probe_step_seconds(config: RunConfig, steps: int = 200) -> tuple[float, int]:
    """
    Seconds per agent step of a run's training, measured: its environments and model built as the
    runner builds them, learning from the first step (``learning_starts`` 0), ``steps // 4`` agent
    steps untimed (allocations, first updates), then at least ``steps`` timed (an on-policy
    algorithm collects whole rollouts). Evaluations are not in it.

    :param config: the run
    :param steps: agent steps timed
    :return: ``(seconds per agent step, the run's budget in agent steps)``
    """
    _, env, eval_env = make_configured_envs(config)
    try:
        model, timesteps, _ = build_model(config, env)
        if hasattr(model, "learning_starts"):
            model.learning_starts = 0
        model.learn(max(1, steps // 4))
        before, start = model.num_timesteps, time.perf_counter()
        model.learn(steps, reset_num_timesteps=False)
        return (time.perf_counter() - start) / max(1, model.num_timesteps - before), timesteps
    finally:
        env.close()
        eval_env.close()


def configured_sparsity(config: RunConfig, policy_kwargs: dict[str, Any], network: str) -> float:
    """
    The sparsity a run's policy gets for ``network``: the policy kwargs', else the policy's default
    (:data:`~sb3_sparse.policies.architecture.DEFAULT_SPARSITY`; StreamAC's 0 means SparseInit).

    :param config: the run
    :param policy_kwargs: the policy kwargs of the entry, with the run's overrides
    :param network: ``"actor"`` or ``"critic"``
    :return: the sparsity
    """
    default = 0.0 if config.algo == "stream_ac" else DEFAULT_SPARSITY
    return float(policy_kwargs.get(f"{network}_sparsity", default))


def default_output_dir(config: RunConfig, policy_kwargs: dict[str, Any]) -> Path:
    """
    ``<log_folder>/<algo>_<env>_<size>[_a<S>]_c<S>[_<topology>]_seed<seed>``: the actor's sparsity
    where there is an actor (not DQN's, QR-DQN's), the topology when not static. A folder of the
    earlier name of the same run (before sb3-sparse 0.3, DQN's too carried ``_a<S>``) is used
    when it exists and the new one does not, so that ``--resume`` finds it.
    """
    size = config.preset or "entry"
    topology = policy_kwargs.get("topology", "static")
    actor = f"_a{configured_sparsity(config, policy_kwargs, 'actor')}"
    critic = f"_c{configured_sparsity(config, policy_kwargs, 'critic')}"
    head = f"{config.algo}_{config.env.replace('/', '-')}_{size}"
    tail = f"{'' if topology == 'static' else '_' + topology}_seed{config.seed}"
    has_actor = algorithm_entry(config.algo).family != "value_based"
    directory = Path(config.log_folder) / f"{head}{actor if has_actor else ''}{critic}{tail}"
    earlier = Path(config.log_folder) / f"{head}{actor}{critic}{tail}"
    return earlier if earlier.is_dir() and not directory.exists() else directory


def run(config: RunConfig) -> Path:
    """
    Train, evaluate and save one run into its directory (see :mod:`sb3_sparse.run_directory`).

    Resume rules: a finished run is not retrained (``restart=True`` starts it over); a directory
    that holds a run is continued only with ``resume=True`` and only with the same configuration
    (apart from :data:`RESUMABLE_FIELDS`), else a ``SystemExit`` names the differing fields; a run
    that another live process trains is refused.

    :param config: the run
    :return: the run directory
    """
    if config.env not in gym.registry:
        raise ConfigurationError(unknown_env_message(config.env, config.algo))
    previous_threads = th.get_num_threads()
    if config.num_threads is not None:
        th.set_num_threads(config.num_threads)
    else:  # the cores free now; AdaptiveThreadsCallback follows them while training
        settle_threads()
    try:  # the caller's thread count comes back: run() may be called from a script or a test
        return _run(config)
    finally:
        th.set_num_threads(previous_threads)


def _run(config: RunConfig) -> Path:
    settings, env, eval_env = make_configured_envs(config)
    policy, timesteps, kwargs, entry = resolve_entry(config, env)
    policy_kwargs = kwargs["policy_kwargs"]
    directory = RunDirectory(config.output_dir or default_output_dir(config, policy_kwargs))
    new_directory = not directory.path.exists()
    try:
        with directory.locked():
            return _run_locked(config, directory, env, eval_env, settings, policy, timesteps, kwargs, entry)
    except RunLockedError as error:
        raise SystemExit(str(error)) from error
    except ConfigurationError:
        if new_directory and directory.path.is_dir() and not any(directory.path.iterdir()):
            directory.path.rmdir()  # refused before anything was written: leave no trace
        raise


@dataclass(frozen=True)
class RunSchedule:
    """
    How a run spends its budget, in agent steps.

    :param timesteps: agent steps to train in all
    :param action_repeat: environment steps per agent step
    :param n_envs: environments stepped together (callbacks are called once per ``n_envs`` agent steps)
    :param eval_freq: agent steps between evaluations
    :param diagnostics_freq: agent steps between plasticity diagnostics (0: none)
    """

    timesteps: int
    action_repeat: int
    n_envs: int
    eval_freq: int
    diagnostics_freq: int


def _run_locked(
    config: RunConfig,
    directory: RunDirectory,
    env: VecEnv,
    eval_env: VecEnv,
    settings: EnvironmentSettings,
    policy: str,
    timesteps: int,
    kwargs: dict[str, Any],
    entry: dict[str, Any],
) -> Path:
    identity = config.identity(entry)
    state = prepare_run_directory(config, directory, identity)
    if state is RunState.FINISHED:
        return directory.path
    if state is RunState.RECOVER_RESULT:
        _recover_result(config, directory, env, eval_env)
        return directory.path
    if config.resume:
        check_checkpoint_fits(directory, identity, timesteps)
    _warn_if_never_trained(timesteps, kwargs)
    model = ALGORITHMS[config.algo](policy, env, seed=config.seed, device=config.device, **kwargs)
    effective = effective_configuration(model)
    check_effective_configuration(directory, directory.read_config(), effective)
    schedule = _schedule(config, model, env, settings, timesteps)
    _write_run_config(config, directory, model, schedule, kwargs, identity, effective)
    _announce(config, directory, model, schedule)
    eval_callback, callbacks = _callbacks(config, directory, eval_env, settings, schedule)
    with stop_on_signals() as stop:
        model, checkpoint = restore_checkpoint(model, directory, env, eval_callback, callbacks, config.device, identity)
        if checkpoint is None and config.trained_agent is not None:
            _start_from_trained_agent(model, Path(config.trained_agent))
        history = directory.history(checkpoint)
        checkpointing = RunCheckpointCallback(directory, config.checkpoint_freq, eval_callback, history, stop, config.verbose)
        callbacks.append(checkpointing)
        directory.remove_stale_checkpoints()  # half-written ones of a killed attempt
        _learn(config, directory, model, schedule, callbacks, resumed=checkpoint is not None)
        with _keeping_the_trained_model(checkpointing):
            final = None if stop.signal else _final_evaluation(config, model, env, eval_env, schedule.action_repeat, stop)
            if final is None:
                checkpointing.save_on_stop()
                _stop(directory, stop)
            rows = evaluation_rows(
                eval_callback.evaluations_timesteps, eval_callback.evaluations_results, schedule.action_repeat
            )
            rows.append(final)
            _save_outputs(config, directory, model, schedule, rows, history, kwargs["policy_kwargs"])
    return directory.path


def _start_from_trained_agent(model: BaseAlgorithm, path: Path) -> None:
    """The zoo's ``-i``: a new run starts from a saved model's parameters (and the replay buffer beside it)."""
    try:
        model.set_parameters(str(path), exact_match=True, device=model.device)
    except (ValueError, KeyError, RuntimeError) as error:
        raise ConfigurationError(f"-i {path}: its parameters do not fit this run's model: {error}") from error
    buffer = path.parent / REPLAY_BUFFER
    with_buffer = isinstance(model, OffPolicyAlgorithm) and buffer.is_file()
    if with_buffer:
        load_replay_buffer(cast(OffPolicyAlgorithm, model), buffer)  # SB3's pickle (zoo's --save-replay-buffer) or ours
    print(f"starting from the parameters of {path}" + (f" and {buffer}" if with_buffer else ""))


@contextmanager
def _keeping_the_trained_model(checkpointing: RunCheckpointCallback) -> Iterator[None]:
    """
    An exception after training (the final evaluation, saving, the plots) first keeps the trained
    model as a checkpoint, so that ``--resume`` redoes only what failed, not the training.
    """
    try:
        yield
    except (Interrupted, KeyboardInterrupt):
        raise
    except BaseException:
        try:
            checkpointing.save()
        except Exception as saving:  # the original error matters more; say what happened to the model
            print(f"the trained model could not be kept as a checkpoint: {type(saving).__name__}: {saving}", file=sys.stderr)
        else:
            print(f"the trained model is kept as a checkpoint in {checkpointing.directory.path}: --resume goes on from it",
                  file=sys.stderr)  # fmt: skip
        raise


def _stop(directory: RunDirectory, stop: StopRequest) -> NoReturn:
    """End a run that a signal stopped, after its checkpoint: exit with the signal's code (130, 143)."""
    step = directory.checkpoint_step()
    message = (
        f"{stop.name}: the run stopped with a checkpoint at {step:,} agent steps in {directory.path}; "
        "the same command with --resume goes on from there"
    )
    print(message, file=sys.stderr, flush=True)
    raise Interrupted(stop, message)


def _warn_if_never_trained(timesteps: int, kwargs: dict[str, Any]) -> None:
    if timesteps <= int(kwargs.get("learning_starts", 0)):
        warnings.warn(
            f"the budget of {timesteps:,} agent steps ends before learning_starts={kwargs['learning_starts']:,}: "
            "the model never trains",
            stacklevel=3,
        )


def _schedule(
    config: RunConfig, model: BaseAlgorithm, env: VecEnv, settings: EnvironmentSettings, timesteps: int
) -> RunSchedule:
    """The run's frequencies: the configuration's, or the reference protocol's (a tenth of a shorter run)."""
    repeat = action_repeat_of(env)
    eval_freq = config.eval_freq or max(1, default_frequency(EVAL_FREQ_ENV_STEPS, timesteps * repeat) // repeat)
    diagnostics_freq = (
        config.diagnostics_freq if config.diagnostics_freq is not None else default_frequency(DIAGNOSTICS_FREQ, timesteps)
    )
    if not isinstance(model, (OffPolicyAlgorithm, OnPolicyAlgorithm)):  # PlasticityCallback reads their buffers
        if config.diagnostics_freq:
            raise ConfigurationError(
                f"--diagnostics-freq needs a replay or rollout buffer; {config.algo} has neither (use --diagnostics-freq 0)"
            )
        diagnostics_freq = 0
    return RunSchedule(timesteps, repeat, settings.n_envs, eval_freq, diagnostics_freq)


def _write_run_config(
    config: RunConfig,
    directory: RunDirectory,
    model: BaseAlgorithm,
    schedule: RunSchedule,
    kwargs: dict[str, Any],
    identity: dict[str, Any],
    effective: dict[str, Any],
) -> None:
    """``config.json``: what the run is (identity and effective configuration, checked on resume), how it is scheduled."""
    directory.write_config(
        {
            "identity": identity,
            "effective": effective,
            "settings": {key: value for key, value in asdict(config).items() if key in RESUMABLE_FIELDS},
            "hyperparameters": str(config.conf or hyperparams_path(config.algo)),
            "algorithm_kwargs": {key: repr(value) for key, value in kwargs.items()},
            "timesteps": schedule.timesteps,
            "action_repeat": schedule.action_repeat,
            "n_envs": schedule.n_envs,
            "eval_freq": schedule.eval_freq,
            "eval_freq_env_steps": schedule.eval_freq * schedule.action_repeat,
            "diagnostics_freq": schedule.diagnostics_freq,
            "parameters": _parameters(model),
        }
    )


def _announce(config: RunConfig, directory: RunDirectory, model: BaseAlgorithm, schedule: RunSchedule) -> None:
    """Print what trains, its density report (also written as ``density.txt``) and the schedule."""
    density_text = cast(Any, model.policy).format_density_report()
    print(f"{config.algo.upper()} + {type(model.policy).__name__} on {config.env}: {_parameters(model):,} parameters")
    print(density_text)
    write_text_atomic(directory / DENSITY, density_text + "\n")
    repeat, n_envs, diagnostics_freq = schedule.action_repeat, schedule.n_envs, schedule.diagnostics_freq
    print(
        f"training {_steps(schedule.timesteps, repeat)}" + (f" on {n_envs} environments" if n_envs > 1 else "")
        + f"; evaluation every {_steps(schedule.eval_freq, repeat)} on {config.eval_episodes} episodes, "
        f"{config.final_eval_episodes} at the end; "
        + (f"diagnostics every {diagnostics_freq:,} agent steps" if diagnostics_freq else "no diagnostics")
    )  # fmt: skip


def _callbacks(
    config: RunConfig, directory: RunDirectory, eval_env: VecEnv, settings: EnvironmentSettings, schedule: RunSchedule
) -> tuple[EvalCallback, list[BaseCallback]]:
    """The evaluation callback, then the entry's callbacks and the diagnostics."""
    # EvalCallback records its results only with a log_path (it also writes SB3's evaluations.npz there).
    # Callbacks count calls, n_envs agent steps each (the zoo divides its frequencies the same way).
    eval_callback = SeededEvalCallback(
        eval_env, config.seed, eval_freq=max(1, schedule.eval_freq // schedule.n_envs),
        n_eval_episodes=config.eval_episodes, log_path=str(directory.live_log_dir), verbose=config.verbose,
    )  # fmt: skip
    callbacks: list[BaseCallback] = [eval_callback, *settings.callbacks]
    if config.num_threads is None:
        callbacks.append(AdaptiveThreadsCallback())
    if schedule.diagnostics_freq:
        callbacks.append(PlasticityCallback(freq=max(1, schedule.diagnostics_freq // schedule.n_envs)))
    return eval_callback, callbacks


def _learn(
    config: RunConfig,
    directory: RunDirectory,
    model: BaseAlgorithm,
    schedule: RunSchedule,
    callbacks: list[BaseCallback],
    resumed: bool,
) -> None:
    """
    Train to the budget, logging as the zoo does: SB3's CSV log of this attempt, stdout, TensorBoard.
    A resumed model goes on from its checkpoint (a checkpoint at step 0, in a first rollout, too).
    """
    # The run's progress.csv is the history plus this attempt's rows (sb3_sparse.run_directory).
    formats = [make_output_format("csv", str(directory.live_log_dir))]
    if config.verbose:
        formats.append(make_output_format("stdout", str(directory.live_log_dir)))
    if config.tensorboard_log is not None:
        formats.append(make_output_format("tensorboard", str(Path(config.tensorboard_log) / directory.path.name)))
    model.set_logger(Logger(str(directory.live_log_dir), formats))
    # SB3's bar draws nothing in a log that is not a terminal: plain lines there.
    bar = config.progress_bar and sys.stdout.isatty()
    lines = [ProgressLinesCallback()] if config.progress_bar and not bar else []
    model.learn(
        max(0, schedule.timesteps - model.num_timesteps),
        callback=[*callbacks, *lines],
        progress_bar=bar,
        reset_num_timesteps=not resumed,
        **cast(dict[str, Any], {"log_interval": config.log_interval} if config.log_interval is not None else {}),
    )
    model.logger.close()


class _EvaluationStopped(Exception):
    """A stop signal came during the final evaluation."""


def _final_evaluation(
    config: RunConfig, model: BaseAlgorithm, env: VecEnv, eval_env: VecEnv, action_repeat: int, stop: StopRequest | None = None
) -> EvaluationRow | None:
    """The final evaluation over ``final_eval_episodes`` episodes of the deterministic policy (``None``: a signal came)."""

    def check_stop(local_variables: dict[str, Any], global_variables: dict[str, Any]) -> None:
        if stop is not None and stop.signal is not None:
            raise _EvaluationStopped

    sync_envs_normalization(env, eval_env)  # the final statistics, as EvalCallback does before each evaluation
    eval_env.seed(evaluation_seed(config.seed, model.num_timesteps, final=True))
    try:
        returns = cast(
            list[float],
            evaluate_policy(
                model, eval_env, n_eval_episodes=config.final_eval_episodes, return_episode_rewards=True, callback=check_stop
            )[0],
        )
    except _EvaluationStopped:
        return None
    return EvaluationRow(
        model.num_timesteps, model.num_timesteps * action_repeat, float(np.mean(returns)), float(np.std(returns)), len(returns)
    )


def _save_outputs(
    config: RunConfig,
    directory: RunDirectory,
    model: BaseAlgorithm,
    schedule: RunSchedule,
    rows: list[EvaluationRow],
    history: list[dict[str, str]],
    policy_kwargs: dict[str, Any],
) -> None:
    """Write the model, its statistics, the curves, the figures, then ``result.json``: the run is finished."""
    normalizer = model.get_vec_normalize_env()
    if normalizer is not None:  # enjoy needs the statistics beside the model, as in the zoo's folders
        _replace_atomic(directory, VEC_NORMALIZE, lambda partial: normalizer.save(str(partial)))
    if config.save_replay_buffer and isinstance(model, OffPolicyAlgorithm):
        _replace_atomic(directory, REPLAY_BUFFER, lambda partial: model.save_replay_buffer(partial))
    # The model after its statistics: a model.zip in the run means the run trained to its end (RECOVER_RESULT).
    _replace_atomic(directory, MODEL, lambda partial: model.save(partial))
    write_evaluations_csv(rows, directory / EVALUATIONS_CSV)
    directory.write_progress(directory.progress_rows(history))
    actor, critic = (configured_sparsity(config, policy_kwargs, network) for network in ("actor", "critic"))
    sparsity = f"actor {actor}, critic {critic}"
    if policy_kwargs.get("topology", "static") != "static":
        sparsity += f", {policy_kwargs['topology']}"
    title = f"{type(model).__name__} + {type(model.policy).__name__} on {config.env}\n{sparsity}, seed {config.seed}"
    plot_evaluations(rows, directory / EVALUATIONS_PNG, title, schedule.action_repeat)
    written = [MODEL, *([VEC_NORMALIZE] if normalizer is not None else []), EVALUATIONS_CSV, EVALUATIONS_PNG]
    written += [REPLAY_BUFFER] if config.save_replay_buffer and isinstance(model, OffPolicyAlgorithm) else []
    written += [PROGRESS_CSV, DENSITY, CONFIG, RESULT]
    if schedule.diagnostics_freq and schedule.diagnostics_freq <= schedule.timesteps:
        plot_diagnostics(
            {sparsity: [directory.path]}, directory / DIAGNOSTICS_PNG, title=title, action_repeat=schedule.action_repeat
        )
        written.append(DIAGNOSTICS_PNG)
    final = rows[-1]
    directory.write_result(_result(model, final, schedule.action_repeat))  # last: the run is finished
    directory.remove_leftovers()
    print(f"final evaluation over {final.episodes} episodes: {final.mean_return:.1f} +/- {final.std_return:.1f}")
    print(f"wrote {directory.path}/: {', '.join(written)}")


def _result(model: BaseAlgorithm, final: EvaluationRow, action_repeat: int) -> dict[str, Any]:
    """``result.json``: the final evaluation, the steps trained and the parameter counts."""
    return {
        "final_mean_return": final.mean_return,
        "final_std_return": final.std_return,
        "agent_steps": model.num_timesteps,
        "env_steps": model.num_timesteps * action_repeat,
        "parameters": _parameters(model),
        "nonzero_parameters": sum(int((p != 0).sum()) for p in _trained_parameters(model.policy)),
    }


def _recover_result(config: RunConfig, directory: RunDirectory, env: VecEnv, eval_env: VecEnv) -> None:
    """
    The result of a run whose model is saved but whose ``result.json`` is missing or damaged: the
    final evaluation that ``evaluations.csv`` holds when it is whole, else a new final evaluation
    of the saved model. Nothing trains; damaged files are set aside, never deleted.
    """
    try:
        restore_normalizer_statistics(env, directory / VEC_NORMALIZE)  # the statistics the model ended with
        model = ALGORITHMS[config.algo].load(directory / MODEL, env=env, device=config.device)
    except Exception as error:
        raise SystemExit(
            f"{directory.path}: {RESULT} cannot be rebuilt, the saved model does not load ({type(error).__name__}: {error}); "
            "--restart discards the run and trains it again"
        ) from error
    repeat = action_repeat_of(env)
    rows, _ = read_evaluations_csv(directory / EVALUATIONS_CSV)  # a damaged one is set aside below
    last = rows[-1] if rows else None
    if last is not None and last.agent_steps == model.num_timesteps and last.episodes == config.final_eval_episodes:
        final, source = last, f"the final evaluation in {EVALUATIONS_CSV}"
    else:
        final = cast(EvaluationRow, _final_evaluation(config, model, env, eval_env, repeat))
        rows.append(final)
        if (directory / EVALUATIONS_CSV).exists():
            set_aside(directory / EVALUATIONS_CSV)
        write_evaluations_csv(rows, directory / EVALUATIONS_CSV)
        source = f"a new final evaluation of {MODEL} over {final.episodes} episodes"
    if (directory / RESULT).exists():
        set_aside(directory / RESULT)
    directory.write_result(_result(model, final, repeat))
    directory.remove_leftovers()
    print(f"rebuilt {directory / RESULT} from {source}: {final.mean_return:.1f} +/- {final.std_return:.1f}")


def _replace_atomic(directory: RunDirectory, name: str, save: Callable[[Path], None]) -> None:
    """Save ``name`` through a partial file renamed over it: a kill leaves the old file or the new one."""
    stem, dot, suffix = name.rpartition(".")
    partial = directory / f"{stem}.partial{dot}{suffix}"
    save(partial)
    os.replace(partial, directory / name)


def _steps(agent_steps: int, repeat: int) -> str:
    """``"N agent steps"``, with the environment steps beside them where the action repeat differs."""
    return f"{agent_steps:,} agent steps" + (f" ({agent_steps * repeat:,} environment steps)" if repeat > 1 else "")


def _targets(policy: nn.Module) -> list[nn.Module]:
    """The policy's target networks (``critic_target``, ``q_net_target``, ...): Polyak copies, not counted."""
    return [child for name, child in policy.named_children() if name.endswith("_target")]


def _trained_parameters(policy: nn.Module) -> list[nn.Parameter]:
    in_targets = {id(p) for target in _targets(policy) for p in target.parameters()}
    return [p for p in policy.parameters() if id(p) not in in_targets]


def _parameters(model: BaseAlgorithm) -> int:
    """Parameters of the policy's trained networks (targets are copies), pruned layers at their dense shape."""
    policy = cast(nn.Module, model.policy)
    return parameter_count(policy) - sum(parameter_count(target) for target in _targets(policy))


def main(argv: list[str] | None = None) -> Path:
    """
    ``sb3-sparse train`` / ``python -m sb3_sparse.train``: parse the command line, then :func:`run`.

    :param argv: command-line arguments (``None``: ``sys.argv``)
    :return: the output directory
    :raises ConfigurationError: a refused flag, key or value, printed as one line (exit code 2)
    """
    try:
        return run(parse_args(argv))
    except ConfigurationError as error:
        print(f"sb3-sparse train: error: {error}", file=sys.stderr, flush=True)
        raise
    except EnvironmentValueError as error:
        print(f"sb3-sparse train: {error}", file=sys.stderr, flush=True)
        raise SystemExit(1) from error
    except OSError as error:
        print(f"sb3-sparse train: {os_error_message(error)}", file=sys.stderr, flush=True)
        raise SystemExit(1) from error


if __name__ == "__main__":
    main()
