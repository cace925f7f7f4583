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
``--eval-freq`` and ``--save-freq`` in agent steps, ``--num-threads``, ``--verbose``; every key
of the zoo's file format is read (``n_envs``, ``normalize``, ``env_wrapper``, ``callback``,
``frame_stack``, ``lin_`` schedules, ...), with rl_zoo3's own functions.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

import gymnasium as gym
import numpy as np
import torch as th
import yaml
from gymnasium.wrappers import RepeatAction
from matplotlib.figure import Figure
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, EvalCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.logger import Logger, make_output_format
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.preprocessing import get_action_dim
from stable_baselines3.common.vec_env import (
    DummyVecEnv,
    VecEnv,
    VecEnvWrapper,
    VecFrameStack,
    VecNormalize,
    sync_envs_normalization,
    unwrap_vec_normalize,
)
from torch import nn

import sb3_sparse  # noqa: F401  (registers the policies and the DMC ids)
from sb3_sparse.callbacks import PlasticityCallback
from sb3_sparse.checks import check_bool, check_choice, check_int, check_seed, check_sparsity
from sb3_sparse.cli import plain_help
from sb3_sparse.envs import DMC_HARD_TASKS, dmc_env_id
from sb3_sparse.hyperparams import (
    ALGORITHMS,
    EnvironmentSettings,
    algorithm_kwargs,
    environment_settings,
    hyperparams_entry,
    hyperparams_path,
    load_hyperparams,
)
from sb3_sparse.plots import plot_diagnostics, step_axis
from sb3_sparse.presets import SIZE_PRESETS, size_preset
from sb3_sparse.run_directory import (
    CONFIG,
    DENSITY,
    DIAGNOSTICS_PNG,
    EVALUATIONS_CSV,
    EVALUATIONS_PNG,
    MODEL,
    PROGRESS_CSV,
    RESULT,
    RunDirectory,
    RunLockedError,
    write_csv_atomic,
    write_text_atomic,
)
from sb3_sparse.sparsity import parameter_count
from sb3_sparse.topology import TOPOLOGIES, TopologySchedule

EVAL_FREQ_ENV_STEPS = 10_000
DIAGNOSTICS_FREQ = 5_000
#: VecNormalize statistics beside a model (the zoo's name).
VEC_NORMALIZE = "vecnormalize.pkl"


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


def action_repeat_of(env: gym.Env | VecEnv) -> int:
    """
    Environment steps per agent step: the product of the ``RepeatAction`` wrappers around ``env``.

    :param env: a (wrapped) environment, or a ``DummyVecEnv`` of them (under any ``VecEnvWrapper``)
    :return: the action repeat (1 without such a wrapper)
    """
    while isinstance(env, VecEnvWrapper):
        env = env.venv
    if isinstance(env, DummyVecEnv):
        env = env.envs[0]
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


#: Configuration fields a resumed run may change; any other difference from the stored run is refused.
RESUMABLE_FIELDS = (
    "timesteps",
    "eval_freq",
    "eval_episodes",
    "final_eval_episodes",
    "diagnostics_freq",
    "checkpoint_freq",
    "resume",
    "restart",
    "device",
    "output_dir",
    "progress_bar",
    "num_threads",
    "log_folder",
    "tensorboard_log",
    "verbose",
)

#: How many runs share the machine's cores, when a user starts several side by side.
CONCURRENT_RUNS_VARIABLE = "SB3_SPARSE_CONCURRENT_RUNS"


def default_num_threads() -> int:
    """
    torch intra-op threads for a run: the cores this process may use, divided by the runs sharing
    them (``SB3_SPARSE_CONCURRENT_RUNS``, 1 when unset; the sweep passes its own thread count). More threads than cores
    make element-wise kernels wait on descheduled threads (docs/guide.rst, "Threads").

    :return: at least 1
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    concurrent = max(1, int(os.environ.get(CONCURRENT_RUNS_VARIABLE, "1") or 1))
    return max(1, cores // concurrent)


@dataclass(frozen=True)
class RunConfig:
    """
    One training run, validated at construction. The command line (:func:`main`) and the sweep
    (:mod:`sb3_sparse.sweep`) both build one and call :func:`run`.

    :param algo: algorithm, a name of :data:`sb3_sparse.algorithms.ALGORITHM_TABLE`
    :param env: gymnasium id with an entry in the hyperparameter file
    :param conf: a zoo-format hyperparameter file (``None``: the package's ``<algo>.yml``)
    :param timesteps: agent steps (``None``: the entry's ``n_timesteps``)
    :param preset: size preset (``None``: the entry's sizes)
    :param actor_sparsity: overrides the entry's actor sparsity, in [0, 1)
    :param critic_sparsity: overrides the entry's critic sparsity, in [0, 1)
    :param topology: overrides the entry's topology: ``"static"``, ``"set"``, ``"rigl"`` or ``"gmp"``
        (:mod:`sb3_sparse.topology`)
    :param topology_kwargs: overrides the entry's ``topology_kwargs`` (e.g. ``{"update_interval": 500}``)
    :param seed: seed of the model and the environments
    :param hyperparams: keys that replace the entry's (the zoo's ``-params``), e.g. ``{"learning_starts": 100}``
    :param eval_freq: agent steps between evaluations (``None``: 10,000 environment steps, or a tenth of a shorter run)
    :param eval_episodes: episodes per evaluation
    :param final_eval_episodes: episodes of the final evaluation
    :param diagnostics_freq: agent steps between plasticity diagnostics (``None``: 5,000 or a tenth; 0: off)
    :param checkpoint_freq: agent steps between checkpoints (0: none)
    :param resume: go on from the run directory's checkpoint (a finished run is not retrained)
    :param restart: discard what the run directory holds and start over
    :param device: torch device
    :param output_dir: the run directory (``None``: ``<log_folder>/<algo>_<env>_<size>_a<S>_c<S>_seed<seed>``)
    :param progress_bar: show a progress bar
    :param num_threads: torch intra-op threads (``None``: :func:`default_num_threads`)
    :param log_folder: where the default run directory goes (the zoo's ``-f``)
    :param tensorboard_log: TensorBoard folder (the run logs to ``<folder>/<run directory name>``; ``None``: none)
    :param verbose: 1: SB3's logger and each evaluation printed as they come; 0: quiet
    """

    algo: str = "reference_sac"
    env: str = "Pendulum-v1"
    conf: str | None = None
    timesteps: int | None = None
    preset: str | None = None
    actor_sparsity: float | None = None
    critic_sparsity: float | None = None
    topology: str | None = None
    topology_kwargs: dict[str, Any] | None = None
    hyperparams: dict[str, Any] | None = None
    seed: int = 0
    eval_freq: int | None = None
    eval_episodes: int = 10
    final_eval_episodes: int = 100
    diagnostics_freq: int | None = None
    checkpoint_freq: int = 0
    resume: bool = False
    restart: bool = False
    device: str = "auto"
    output_dir: str | None = None
    progress_bar: bool = True
    num_threads: int | None = None
    log_folder: str = "runs"
    tensorboard_log: str | None = None
    verbose: int = 1

    def __post_init__(self) -> None:
        check_choice("algo", self.algo, list(ALGORITHMS))
        checked: dict[str, Any] = dict(seed=check_seed("seed", self.seed))
        for name in ("timesteps", "eval_freq"):
            value = getattr(self, name)
            checked[name] = None if value is None else check_int(name, value)
        checked["eval_episodes"] = check_int("eval_episodes", self.eval_episodes)
        checked["final_eval_episodes"] = check_int("final_eval_episodes", self.final_eval_episodes)
        checked["checkpoint_freq"] = check_int("checkpoint_freq", self.checkpoint_freq, minimum=0)
        checked["verbose"] = check_int("verbose", self.verbose, minimum=0)
        if self.hyperparams is not None and not isinstance(self.hyperparams, dict):
            raise ValueError(f"hyperparams must map entry keys to values, got {self.hyperparams!r}")
        if self.tensorboard_log is not None and importlib.util.find_spec("tensorboard") is None:
            raise ValueError(f"tensorboard_log={self.tensorboard_log!r} needs TensorBoard: pip install tensorboard")
        if self.num_threads is not None:
            checked["num_threads"] = check_int("num_threads", self.num_threads)
        if self.diagnostics_freq is not None:
            checked["diagnostics_freq"] = check_int("diagnostics_freq", self.diagnostics_freq, minimum=0)
        for name in ("actor_sparsity", "critic_sparsity"):
            if getattr(self, name) is not None:
                checked[name] = check_sparsity(name, getattr(self, name))
        for name in ("resume", "restart", "progress_bar"):
            checked[name] = check_bool(name, getattr(self, name))
        if self.topology is not None or self.topology_kwargs is not None:
            if self.algo == "stream_ac":
                raise ValueError("topology and topology_kwargs are for the SimBa policies; stream_ac keeps its masks static")
            if self.topology is not None:
                check_choice("topology", self.topology, TOPOLOGIES)
            if self.topology_kwargs is not None and not isinstance(self.topology_kwargs, dict):
                raise ValueError(f"topology_kwargs must map argument names to values, got {self.topology_kwargs!r}")
            if self.topology not in (None, "static"):
                TopologySchedule.create(self.topology, self.topology_kwargs)  # bad arguments fail here, not at the build
        if self.preset is not None:
            check_choice("preset", self.preset, list(SIZE_PRESETS))
            if self.algo == "stream_ac":
                raise ValueError(
                    "preset scales SimBa networks; stream_ac's networks take hidden_dim and num_layers in a conf file"
                )
        if self.resume and self.restart:
            raise ValueError("resume and restart exclude each other: resume goes on from the checkpoint, restart discards it")
        if self.conf is not None and not Path(self.conf).is_file():
            raise ValueError(f"conf {str(self.conf)!r} is not a file")
        for name, value in checked.items():
            object.__setattr__(self, name, value)

    def identity(self, entry: dict[str, Any]) -> dict[str, Any]:
        """
        What a resumed run must share with its checkpoint: every field but :data:`RESUMABLE_FIELDS`,
        and the hyperparameter entry as read.

        :param entry: the entry of the hyperparameter file
        :return: JSON-serializable values
        """
        fields = {key: value for key, value in asdict(self).items() if key not in RESUMABLE_FIELDS}
        return {**fields, "entry": json.loads(json.dumps(entry, default=repr))}


class RunCheckpointCallback(BaseCallback):
    """
    Every ``freq`` agent steps, save what a killed run needs to go on into a new checkpoint of
    its :class:`~sb3_sparse.run_directory.RunDirectory`: the model, its replay buffer, the
    evaluations so far and the log history. SB3's algorithms save between two collect/train cycles
    (rollouts), at the first one ``freq`` or more steps after the last checkpoint.

    :param directory: the run's directory
    :param freq: agent steps between checkpoints
    :param eval_callback: the run's evaluation callback, whose results are saved too
    :param history: log rows up to the checkpoint this attempt started from
    """

    def __init__(self, directory: RunDirectory, freq: int, eval_callback: EvalCallback, history: list[dict[str, str]]) -> None:
        super().__init__()
        self.directory, self.freq, self.eval_callback, self.history = directory, freq, eval_callback, history
        self._last_saved = 0

    @property
    def _between_rollouts(self) -> bool:
        # SB3 calls the step callbacks before it stores the step's transition and trains on it; at a
        # rollout start (each collect/train cycle: a step for SAC, train_freq steps for DQN, n_steps
        # for PPO) every transition and gradient step so far is done, and a resumed run repeats the
        # uninterrupted run's cycles. StreamAC learns in one rollout: it saves at steps.
        return isinstance(self.model, (OnPolicyAlgorithm, OffPolicyAlgorithm))

    def _on_training_start(self) -> None:
        self._last_saved = self.model.num_timesteps

    def _on_step(self) -> bool:
        if not self._between_rollouts and self.num_timesteps % self.freq == 0:
            self.save()
        return True

    def _on_rollout_start(self) -> None:
        if self._between_rollouts and self.model.num_timesteps - self._last_saved >= self.freq:
            self.save()

    def save(self) -> None:
        """Write a checkpoint now, then make it the current one."""
        step = self._last_saved = self.model.num_timesteps
        staging = self.directory.new_checkpoint(step)
        self.model.save(staging / MODEL)
        if isinstance(self.model, OffPolicyAlgorithm):  # streaming algorithms keep no replay buffer
            self.model.save_replay_buffer(staging / "replay_buffer.pkl")
        normalizer = self.model.get_vec_normalize_env()
        if normalizer is not None:
            normalizer.save(str(staging / VEC_NORMALIZE))
        evaluations = dict(
            timesteps=[int(t) for t in self.eval_callback.evaluations_timesteps],
            results=[[float(r) for r in row] for row in self.eval_callback.evaluations_results],
            ep_lengths=[[int(n) for n in row] for row in self.eval_callback.evaluations_length],
        )
        (staging / "evaluations.json").write_text(json.dumps(evaluations))
        rows = self.directory.progress_rows(self.history, up_to_step=step)
        self.directory.write_progress(rows, staging)
        self.directory.commit_checkpoint(staging, step)
        self.directory.write_progress(rows)  # the run's progress.csv follows its checkpoints


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
    parser = argparse.ArgumentParser(
        prog="sb3-sparse train", description=plain_help(__doc__), formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--algo", default="reference_sac", choices=list(ALGORITHMS))
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
    parser.add_argument("--preset", default=None, help=f"network size preset: {', '.join(SIZE_PRESETS)}")
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
    parser.add_argument(
        "--num-threads", type=int, default=None, help="torch threads (default: the cores it may use / the runs beside it)"
    )
    args = parser.parse_args(argv)
    fields = {key: value for key, value in vars(args).items() if key != "no_progress_bar"}
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
        return RunConfig(**fields, progress_bar=not args.no_progress_bar)
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
        raise SystemExit(str(error)) from error
    policy_kwargs = kwargs["policy_kwargs"]
    accepted = getattr(ALGORITHMS[config.algo].policy_aliases[policy], "valid_kwargs", lambda: None)()
    if config.preset is not None:  # a Q-network (DQN, QR-DQN) takes the preset's critic sizes only
        preset = size_preset(config.preset)
        policy_kwargs.update({key: value for key, value in preset.items() if accepted is None or key in accepted})
    for name in ("actor_sparsity", "critic_sparsity", "topology", "topology_kwargs"):
        if getattr(config, name) is not None:
            if accepted is not None and name not in accepted:
                raise SystemExit(
                    f"--{name.replace('_', '-')}: {policy} of {config.algo} has no {name} (it takes {', '.join(accepted)})"
                )
            policy_kwargs[name] = getattr(config, name)
    return policy, config.timesteps or n_timesteps, kwargs, entry


def build_model(config: RunConfig, env: gym.Env | VecEnv) -> tuple[BaseAlgorithm, int, dict[str, Any]]:
    """The algorithm from the entry of ``config.env``, with the configuration's overrides applied."""
    policy, timesteps, kwargs, _ = resolve_entry(config, env)
    model = ALGORITHMS[config.algo](policy, env, seed=config.seed, device=config.device, **kwargs)
    return model, timesteps, kwargs


def default_output_dir(config: RunConfig, policy_kwargs: dict[str, Any]) -> Path:
    """``<log_folder>/<algo>_<env>_<size>_a<S>_c<S>[_<topology>]_seed<seed>`` (the topology when not static)."""
    size = config.preset or "entry"
    topology = policy_kwargs.get("topology", "static")
    return Path(config.log_folder) / (
        f"{config.algo}_{config.env.replace('/', '-')}_{size}"
        f"_a{policy_kwargs.get('actor_sparsity', 0.0)}_c{policy_kwargs.get('critic_sparsity', 0.0)}"
        f"{'' if topology == 'static' else '_' + topology}_seed{config.seed}"
    )


def _differences(stored: dict[str, Any], identity: dict[str, Any]) -> list[str]:
    keys = sorted(set(stored) | set(identity))
    return [f"{key}: {stored.get(key)!r} -> {identity.get(key)!r}" for key in keys if stored.get(key) != identity.get(key)]


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
        raise SystemExit(unknown_env_message(config.env, config.algo))
    previous_threads = th.get_num_threads()
    th.set_num_threads(config.num_threads or default_num_threads())
    try:  # the caller's thread count comes back: run() may be called from a script or a test
        return _run(config)
    finally:
        th.set_num_threads(previous_threads)


def make_run_envs(config: RunConfig, settings: EnvironmentSettings) -> tuple[VecEnv, VecEnv]:
    """
    The training and evaluation environments of a run, built as the zoo builds them: ``n_envs``
    monitored copies with the entry's wrappers, ``VecNormalize`` (evaluation: frozen statistics,
    raw rewards) and frame stacking; one evaluation environment, seeded apart.

    :param config: the run
    :param settings: the entry's environment keys
    :return: ``(training environment, evaluation environment)``
    """

    def build(n_envs: int, seed: int, evaluation: bool) -> VecEnv:
        env = make_vec_env(
            config.env, n_envs=n_envs, seed=seed, wrapper_class=settings.env_wrapper,
            env_kwargs=settings.env_kwargs, monitor_kwargs=settings.monitor_kwargs,
        )  # fmt: skip
        if settings.vec_env_wrapper is not None:
            env = settings.vec_env_wrapper(env)
        if settings.normalize:
            frozen = dict(training=False, norm_reward=False) if evaluation else {}  # replace the entry's
            env = VecNormalize(env, **{**settings.normalize_kwargs, **frozen})
        if settings.frame_stack is not None:
            env = VecFrameStack(env, settings.frame_stack)
        return env

    return build(settings.n_envs, config.seed, False), build(1, config.seed + 10_000, True)


def _run(config: RunConfig) -> Path:
    try:
        settings = environment_settings(config.algo, config.env, config.conf, config.hyperparams)
    except ValueError as error:
        raise SystemExit(str(error)) from error
    env, eval_env = make_run_envs(config, settings)
    policy, timesteps, kwargs, entry = resolve_entry(config, env)
    policy_kwargs = kwargs["policy_kwargs"]
    directory = RunDirectory(config.output_dir or default_output_dir(config, policy_kwargs))
    try:
        with directory.locked():
            return _run_locked(config, directory, env, eval_env, settings, policy, timesteps, kwargs, entry)
    except RunLockedError as error:
        raise SystemExit(str(error)) from error


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
    repeat, n_envs = action_repeat_of(env), settings.n_envs
    identity = config.identity(entry)
    stored = directory.read_config()
    if config.restart:
        directory.clear()
    elif directory.finished:
        directory.remove_leftovers()
        print(f"{directory.path} is a finished run (it has {RESULT}): nothing to do; --restart trains it again")
        return directory.path
    elif directory.started:
        if not config.resume:
            raise SystemExit(
                f"{directory.path} already holds a run: pass --resume to go on from its checkpoint, or --restart to discard it"
            )
        differences = _differences(stored["identity"], identity) if stored is not None else []
        if differences:
            raise SystemExit(
                f"--resume: the configuration differs from the run in {directory.path}: {'; '.join(differences)}. "
                f"Only {', '.join(RESUMABLE_FIELDS)} may change; use another --output-dir, or --restart to discard it"
            )
    if timesteps <= int(kwargs.get("learning_starts", 0)):
        warnings.warn(
            f"the budget of {timesteps:,} agent steps ends before learning_starts={kwargs['learning_starts']:,}: "
            "the model never trains",
            stacklevel=2,
        )
    model = ALGORITHMS[config.algo](policy, env, seed=config.seed, device=config.device, **kwargs)
    eval_freq = config.eval_freq or max(1, default_frequency(EVAL_FREQ_ENV_STEPS, timesteps * repeat) // repeat)
    diagnostics_freq = (
        config.diagnostics_freq if config.diagnostics_freq is not None else default_frequency(DIAGNOSTICS_FREQ, timesteps)
    )
    if not isinstance(model, (OffPolicyAlgorithm, OnPolicyAlgorithm)):  # PlasticityCallback reads their buffers
        if config.diagnostics_freq:
            raise SystemExit(
                f"--diagnostics-freq needs a replay or rollout buffer; {config.algo} has neither (use --diagnostics-freq 0)"
            )
        diagnostics_freq = 0
    directory.write_config(
        {
            "identity": identity,
            "settings": {key: value for key, value in asdict(config).items() if key in RESUMABLE_FIELDS},
            "hyperparameters": str(config.conf or hyperparams_path(config.algo)),
            "algorithm_kwargs": {key: repr(value) for key, value in kwargs.items()},
            "timesteps": timesteps,
            "action_repeat": repeat,
            "n_envs": n_envs,
            "eval_freq": eval_freq,
            "eval_freq_env_steps": eval_freq * repeat,
            "diagnostics_freq": diagnostics_freq,
            "parameters": _parameters(model),
        }
    )
    density_text = cast(Any, model.policy).format_density_report()
    print(f"{config.algo.upper()} + {type(model.policy).__name__} on {config.env}: {_parameters(model):,} parameters")
    print(density_text)
    write_text_atomic(directory / DENSITY, density_text + "\n")
    print(
        f"training {_steps(timesteps, repeat)}" + (f" on {n_envs} environments" if n_envs > 1 else "")
        + f"; evaluation every {_steps(eval_freq, repeat)} on {config.eval_episodes} episodes, "
        f"{config.final_eval_episodes} at the end; "
        + (f"diagnostics every {diagnostics_freq:,} agent steps" if diagnostics_freq else "no diagnostics")
    )  # fmt: skip
    # EvalCallback records its results only with a log_path (it also writes SB3's evaluations.npz there).
    # Callbacks count calls, n_envs agent steps each (the zoo divides its frequencies the same way).
    eval_callback = EvalCallback(
        eval_env, eval_freq=max(1, eval_freq // n_envs), n_eval_episodes=config.eval_episodes,
        log_path=str(directory.live_log_dir), verbose=config.verbose,
    )  # fmt: skip
    callbacks: list[BaseCallback] = [eval_callback, *settings.callbacks]
    if diagnostics_freq:
        callbacks.append(PlasticityCallback(freq=max(1, diagnostics_freq // n_envs)))
    checkpoint = directory.checkpoint() if config.resume else None
    history = directory.history(checkpoint)
    if config.checkpoint_freq:
        callbacks.append(RunCheckpointCallback(directory, config.checkpoint_freq, eval_callback, history))
    if checkpoint is not None:
        normalizer = unwrap_vec_normalize(env)
        if normalizer is not None:  # the statistics the checkpointed model trained with
            saved_normalizer = VecNormalize.load(str(checkpoint / VEC_NORMALIZE), normalizer.venv)
            normalizer.obs_rms, normalizer.ret_rms = saved_normalizer.obs_rms, saved_normalizer.ret_rms
        model = type(model).load(checkpoint / MODEL, env=env, device=config.device)
        if isinstance(model, OffPolicyAlgorithm):
            model.load_replay_buffer(checkpoint / "replay_buffer.pkl")
        saved = json.loads((checkpoint / "evaluations.json").read_text())
        eval_callback.evaluations_timesteps = saved["timesteps"]
        eval_callback.evaluations_results = saved["results"]
        eval_callback.evaluations_length = saved["ep_lengths"]
        for callback in callbacks:  # frequencies count calls: go on counting from the checkpoint
            callback.n_calls = model.num_timesteps // n_envs
        print(f"resuming from the checkpoint at {model.num_timesteps:,} agent steps")
    directory.remove_stale_checkpoints()  # half-written ones of a killed attempt
    # SB3's CSV log of this attempt (the run's progress.csv is the history plus these rows), and as
    # the zoo does, the log on stdout and TensorBoard.
    formats = [make_output_format("csv", str(directory.live_log_dir))]
    if config.verbose:
        formats.append(make_output_format("stdout", str(directory.live_log_dir)))
    if config.tensorboard_log is not None:
        formats.append(make_output_format("tensorboard", str(Path(config.tensorboard_log) / directory.path.name)))
    model.set_logger(Logger(str(directory.live_log_dir), formats))
    model.learn(
        max(0, timesteps - model.num_timesteps),
        callback=callbacks,
        progress_bar=config.progress_bar,
        reset_num_timesteps=model.num_timesteps == 0,
    )
    model.logger.close()

    rows = [
        EvaluationRow(int(step), int(step) * repeat, float(np.mean(returns)), float(np.std(returns)), len(returns))
        for step, returns in zip(eval_callback.evaluations_timesteps, eval_callback.evaluations_results, strict=True)
    ]
    sync_envs_normalization(env, eval_env)  # the final statistics, as EvalCallback does before each evaluation
    final_returns = cast(
        list[float],
        evaluate_policy(model, eval_env, n_eval_episodes=config.final_eval_episodes, return_episode_rewards=True)[0],
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
    partial_model = directory / "model.partial.zip"
    model.save(partial_model)
    os.replace(partial_model, directory / MODEL)
    normalizer = model.get_vec_normalize_env()
    if normalizer is not None:  # enjoy needs the statistics beside the model, as in the zoo's folders
        normalizer.save(str(directory / "vecnormalize.partial.pkl"))
        os.replace(directory / "vecnormalize.partial.pkl", directory / VEC_NORMALIZE)
    write_evaluations_csv(rows, directory / EVALUATIONS_CSV)
    directory.write_progress(directory.progress_rows(history))
    policy_kwargs = kwargs["policy_kwargs"]
    sparsity = f"actor {policy_kwargs.get('actor_sparsity', 0.0)}, critic {policy_kwargs.get('critic_sparsity', 0.0)}"
    if policy_kwargs.get("topology", "static") != "static":
        sparsity += f", {policy_kwargs['topology']}"
    algorithm_name = type(model).__name__
    title = f"{algorithm_name} + {type(model.policy).__name__} on {config.env}\n{sparsity}, seed {config.seed}"
    plot_evaluations(rows, directory / EVALUATIONS_PNG, title, repeat)
    written = [MODEL, *([VEC_NORMALIZE] if normalizer is not None else []), EVALUATIONS_CSV, EVALUATIONS_PNG]
    written += [PROGRESS_CSV, DENSITY, CONFIG, RESULT]
    if diagnostics_freq and diagnostics_freq <= timesteps:
        plot_diagnostics({sparsity: [directory.path]}, directory / DIAGNOSTICS_PNG, title=title, action_repeat=repeat)
        written.append(DIAGNOSTICS_PNG)
    result = {
        "final_mean_return": rows[-1].mean_return,
        "final_std_return": rows[-1].std_return,
        "agent_steps": model.num_timesteps,
        "env_steps": model.num_timesteps * repeat,
        "parameters": _parameters(model),
        "nonzero_parameters": sum(int((p != 0).sum()) for p in _trained_parameters(model.policy)),
    }
    directory.write_result(result)  # last: a run is finished exactly when its result.json exists
    directory.remove_leftovers()
    print(f"final evaluation over {len(final_returns)} episodes: {np.mean(final_returns):.1f} +/- {np.std(final_returns):.1f}")
    print(f"wrote {directory.path}/: {', '.join(written)}")
    return directory.path


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
    """
    return run(parse_args(argv))


if __name__ == "__main__":
    main()
