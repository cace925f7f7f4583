"""The configuration of one training run (:class:`RunConfig`), validated at construction. The command line
(:func:`sb3_sparse.train.parse_args`) and the sweep (:mod:`sb3_sparse.sweep`) both build one."""

from __future__ import annotations

import importlib.util
import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch

from sb3_sparse.checks import check_bool, check_choice, check_int, check_seed, check_sparsity, plain_numbers
from sb3_sparse.hyperparams import ALGORITHMS
from sb3_sparse.presets import SIZE_PRESETS
from sb3_sparse.topology import TOPOLOGIES, TopologySchedule

#: The evaluation environment's seed is the run's plus this (:func:`sb3_sparse.run_envs.make_run_envs`).
EVAL_SEED_OFFSET = 10_000
#: numpy's seeds are below 2**32, and the evaluation environment's seed is the run's plus EVAL_SEED_OFFSET.
MAX_RUN_SEED = 2**32 - 1 - EVAL_SEED_OFFSET


def check_device(device: Any) -> str:
    """
    A torch device name: ``auto``, ``cpu``, ``cuda``, ``cuda:1``, ``mps``, ...

    :param device: the name
    :return: the name
    :raises ValueError: naming the value and the valid forms
    """
    if device == "auto":
        return device
    try:
        torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"device must be auto, cpu, cuda, cuda:<index> or another torch device, got {device!r}") from error
    return str(device)


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
    "log_interval",
    "n_eval_envs",
    "save_replay_buffer",
)


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
    :param num_threads: torch intra-op threads (``None``: the cores other processes leave free, followed
        while training, at most :func:`~sb3_sparse.threads.default_num_threads`)
    :param log_folder: where the default run directory goes (the zoo's ``-f``)
    :param tensorboard_log: TensorBoard folder (the run logs to ``<folder>/<run directory name>``; ``None``: none)
    :param verbose: 1: SB3's logger and each evaluation printed as they come; 0: quiet
    :param log_interval: SB3's ``log_interval`` of ``learn()`` (episodes for off-policy algorithms,
        rollouts for on-policy ones; ``None``: the algorithm's default)
    :param n_eval_envs: environments of each evaluation, stepped together (``None``: 1)
    :param save_replay_buffer: also save the replay buffer beside the model at the end (``replay_buffer.pkl``)
    :param vec_env: ``"dummy"`` or ``"subproc"``: how the training environments are stepped
        (``None``: dummy; a SubprocVecEnv's episodes cannot be checkpointed, so a resume starts new ones)
    :param trained_agent: a saved model (``.zip``) whose parameters a new run starts from, with the
        ``replay_buffer.pkl`` beside it when there is one (the zoo's ``-i``)
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
    log_interval: int | None = None
    n_eval_envs: int | None = None
    save_replay_buffer: bool = False
    vec_env: str | None = None
    trained_agent: str | None = None

    def __post_init__(self) -> None:
        for each in fields(self):  # numpy scalars (Optuna, numpy grids) become the numbers they print as
            object.__setattr__(self, each.name, plain_numbers(getattr(self, each.name)))
        check_choice("algo", self.algo, list(ALGORITHMS))
        checked: dict[str, Any] = dict(seed=check_seed("seed", self.seed))
        if checked["seed"] > MAX_RUN_SEED:
            raise ValueError(
                f"seed must be an integer in [0, {MAX_RUN_SEED}] (SB3 seeds numpy with it, the evaluation environment "
                f"with seed + {EVAL_SEED_OFFSET:,}), got {self.seed!r}"
            )
        check_device(self.device)
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
        for name in ("log_interval", "n_eval_envs"):
            if getattr(self, name) is not None:
                checked[name] = check_int(name, getattr(self, name))
        if self.vec_env is not None:
            check_choice("vec_env", self.vec_env, ["dummy", "subproc"])
        if self.trained_agent is not None and not Path(self.trained_agent).is_file():
            raise ValueError(f"trained_agent {str(self.trained_agent)!r} is not a file (a saved model's .zip)")
        if self.diagnostics_freq is not None:
            checked["diagnostics_freq"] = check_int("diagnostics_freq", self.diagnostics_freq, minimum=0)
        for name in ("actor_sparsity", "critic_sparsity"):
            if getattr(self, name) is not None:
                checked[name] = check_sparsity(name, getattr(self, name))
        for name in ("resume", "restart", "progress_bar", "save_replay_buffer"):
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
