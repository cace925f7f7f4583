"""Going on from where a run stopped: whether a run directory may be trained into (the stored
configuration against the effective one), the checkpoint callback that writes what a killed or
signalled run needs, and the restore of a model, its normalizer, its replay buffer and its
evaluations from the newest intact checkpoint. The runner (:mod:`sb3_sparse.train`) calls these
in this order; the files themselves belong to :mod:`sb3_sparse.run_directory`."""

from __future__ import annotations

import copy
import enum
import inspect
import json
import re
import shutil
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, EvalCallback
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.vec_env import VecEnv, VecNormalize, unwrap_vec_normalize

from sb3_sparse.checks import ConfigurationError, plain_numbers
from sb3_sparse.interrupts import StopRequest
from sb3_sparse.run_config import RESUMABLE_FIELDS, RunConfig
from sb3_sparse.run_directory import (
    CHECKPOINT_EVALUATIONS,
    CONFIG,
    MODEL,
    REPLAY_BUFFER,
    RESULT,
    TRAINING_STATE,
    VEC_NORMALIZE,
    DamagedFileError,
    RunDirectory,
    read_json,
)
from sb3_sparse.training_state import (
    TrainingState,
    capture_training_state,
    load_replay_buffer,
    load_training_state,
    save_training_state,
)

#: Constructor arguments that say where and how loudly a model trains, not what it is.
_NOT_CONFIGURATION = {"self", "policy", "env", "device", "verbose", "tensorboard_log", "_init_setup_model", "policy_kwargs"}
#: Policy constructor arguments that the environment fixes (checked by SB3 when a model loads).
_FROM_ENVIRONMENT = {"observation_space", "action_space", "lr_schedule"}


class RunState(enum.Enum):
    """What a run does with its directory (:func:`prepare_run_directory`)."""

    #: train, from the start or from a checkpoint
    TRAIN = "train"
    #: nothing: the run is finished
    FINISHED = "finished"
    #: the run's model is saved but its ``result.json`` is missing or damaged: rebuild the result
    RECOVER_RESULT = "recover_result"


def configuration_differences(stored: dict[str, Any], current: dict[str, Any], prefix: str = "") -> list[str]:
    """``"key: stored -> now"`` for each value that differs between two configurations (nested keys dotted)."""
    differences = []
    for key in sorted(set(stored) | set(current)):
        before, now = stored.get(key), current.get(key)
        if isinstance(before, dict) and isinstance(now, dict):
            differences += configuration_differences(before, now, f"{prefix}{key}.")
        elif before != now:
            differences.append(f"{prefix}{key}: {before!r} -> {now!r}")
    return differences


def _refuse_other_configuration(directory: RunDirectory, differences: list[str]) -> None:
    if differences:
        raise ConfigurationError(
            f"--resume: the configuration differs from the run in {directory.path}: {'; '.join(differences)}. "
            f"Only {', '.join(RESUMABLE_FIELDS)} may change; use another --output-dir, or --restart to discard it"
        )


def prepare_run_directory(config: RunConfig, directory: RunDirectory, identity: dict[str, Any]) -> RunState:
    """
    Decide what a run does with its directory: clear it (``restart``), leave a finished run alone
    (or rebuild its lost result), refuse a started run without ``resume`` or with another
    configuration, or go on.

    :param config: the run
    :param directory: its directory (locked by the caller)
    :param identity: what a resumed run must share with its checkpoint (:meth:`RunConfig.identity`)
    :return: what to do
    :raises SystemExit: the directory holds a run this configuration may not continue (a
        :class:`~sb3_sparse.checks.ConfigurationError`), files that are not a run's, or a file that
        cannot be read nor rebuilt
    """
    if config.restart:
        directory.clear()
        foreign = directory.foreign_entries()
        if foreign:
            print(f"--restart removed the run's files from {directory.path} and left the others: {', '.join(foreign)}")
        return RunState.TRAIN
    foreign = [] if directory.started else directory.foreign_entries(runner_files_too=True)
    if foreign:  # a folder that holds no run: its files are not this run's, never write over them
        raise ConfigurationError(
            f"--output-dir {directory.path} holds no run but files ({', '.join(foreign[:5])}"
            f"{', ...' if len(foreign) > 5 else ''}): choose a new or empty folder, or move them"
        )
    try:
        stored = directory.read_config()
        result_problem = ""
        if directory.finished:
            try:
                directory.read_result()
            except DamagedFileError as error:
                result_problem = str(error)
    except DamagedFileError as error:
        raise SystemExit(str(error)) from error
    differences = configuration_differences(stored["identity"], identity) if stored is not None else []
    if directory.finished and not result_problem:
        if differences:
            raise SystemExit(
                f"{directory.path} is a finished run of another configuration: {'; '.join(differences)}. "
                "Use another --output-dir, or --restart to discard it and train this one"
            )
        directory.remove_leftovers()
        print(f"{directory.path} is a finished run (it has {RESULT}): nothing to do; --restart trains it again")
        return RunState.FINISHED
    if (directory / MODEL).is_file():  # written at the end only: the run trained to its budget
        _refuse_other_configuration(directory, differences)
        print(f"{directory.path}: {result_problem or f'{MODEL} is saved but {RESULT} is missing'}; rebuilding the result")
        return RunState.RECOVER_RESULT
    if directory.started:
        if not config.resume:
            raise SystemExit(
                f"{directory.path} already holds a run: pass --resume to go on from its checkpoint, or --restart to discard it"
            )
        _refuse_other_configuration(directory, differences)
    return RunState.TRAIN


def _stable(value: Any) -> Any:
    """A value as JSON that is the same in every process: classes and functions by name, no addresses."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, enum.Enum):
        return _stable(value.value)
    if isinstance(value, dict):
        return {str(key): _stable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_stable(item) for item in value]
    if isinstance(value, type) or inspect.isroutine(value):
        return f"{value.__module__}.{value.__qualname__}"
    number = plain_numbers(value)  # numpy and torch scalars
    if number is not value:
        return number
    return re.sub(r" at 0x[0-9a-fA-F]+", "", repr(value))


def effective_configuration(model: BaseAlgorithm) -> dict[str, Any]:
    """
    Every hyperparameter a model trains with, after the entry, the overrides and every default are
    merged: the algorithm's constructor arguments as the model holds them, and its policy's
    (:meth:`~stable_baselines3.common.policies.BaseModel._get_constructor_parameters`).

    :param model: a freshly built model
    :return: ``{"algorithm": {...}, "policy": {...}}`` as JSON values
    """
    names = [name for name in inspect.signature(type(model).__init__).parameters if name not in _NOT_CONFIGURATION]
    algorithm = {name: _stable(getattr(model, name)) for name in names if hasattr(model, name)}
    parameters = model.policy._get_constructor_parameters()
    policy = {name: _stable(value) for name, value in parameters.items() if name not in _FROM_ENVIRONMENT}
    return {"algorithm": algorithm, "policy": policy}


def check_effective_configuration(directory: RunDirectory, stored: dict[str, Any] | None, effective: dict[str, Any]) -> None:
    """
    Refuse to resume a run whose stored effective configuration differs from the one built now
    (a default that changed between versions, a key of ``policy_kwargs``), naming each field.
    Runs stored before this check (no ``effective`` in ``config.json``) pass.

    :param directory: the run
    :param stored: its ``config.json``
    :param effective: :func:`effective_configuration` of the model built now
    :raises SystemExit: a value differs
    """
    if stored is not None and "effective" in stored:
        _refuse_other_configuration(directory, configuration_differences(stored["effective"], effective))


class RunCheckpointCallback(BaseCallback):
    """
    Every ``freq`` agent steps, and when a stop signal came, save what a killed run needs to go on
    into a new checkpoint of its :class:`~sb3_sparse.run_directory.RunDirectory`: the model, its
    replay buffer, its training state (generators, environments, counters:
    :mod:`sb3_sparse.training_state`), its normalizer, the evaluations so far, the log history and
    the configuration. SB3's algorithms save between two collect/train cycles (rollouts), at the
    first one ``freq`` or more steps after the last checkpoint.

    On a stop signal an off-policy algorithm saves at the next rollout start (its next step) and
    stops; an on-policy one stops at once, and :meth:`save_on_stop` saves the policy as it was at
    the rollout's start (collecting moves only its running observation statistics) with the
    training state captured there, so that the resumed run collects that rollout again, as the
    uninterrupted one did; StreamAC saves at the step.

    :param directory: the run's directory
    :param freq: agent steps between checkpoints (0: only on a stop signal)
    :param eval_callback: the run's evaluation callback, whose results are saved too
    :param history: log rows up to the checkpoint this attempt started from
    :param stop: the run's stop request (:func:`sb3_sparse.interrupts.stop_on_signals`)
    :param verbose: 1: say each checkpoint's step, size and folder
    """

    def __init__(
        self,
        directory: RunDirectory,
        freq: int,
        eval_callback: EvalCallback,
        history: list[dict[str, str]],
        stop: StopRequest | None = None,
        verbose: int = 0,
    ) -> None:
        super().__init__(verbose)
        self.directory, self.freq, self.eval_callback, self.history = directory, freq, eval_callback, history
        self.stop = stop or StopRequest()
        self._last_saved = self._rollout_start = 0
        self._saved_on_stop = self._stopped_mid_rollout = False
        self._rollout_state: TrainingState | None = None
        self._rollout_parameters: dict[str, Any] | None = None
        self._environment_problem_said = False

    @property
    def _between_rollouts(self) -> bool:
        # SB3 calls the step callbacks before it stores the step's transition and trains on it; at a
        # rollout start (each collect/train cycle: a step for SAC, train_freq steps for DQN, n_steps
        # for PPO) every transition and gradient step so far is done, and a resumed run repeats the
        # uninterrupted run's cycles. StreamAC learns in one rollout: it saves at steps.
        return isinstance(self.model, (OnPolicyAlgorithm, OffPolicyAlgorithm))

    def _on_training_start(self) -> None:
        self._last_saved = self._rollout_start = self.model.num_timesteps

    def _on_step(self) -> bool:
        if not self._between_rollouts:
            if self.stop.signal is not None:
                self.save_on_stop()
                return False
            if self.freq and self.num_timesteps % self.freq == 0:
                self.save()
            return True
        if self.stop.signal is not None and isinstance(self.model, OnPolicyAlgorithm) and not self._saved_on_stop:
            self._stopped_mid_rollout = True
            return False
        return not self._saved_on_stop  # off-policy: stop on the step after the checkpoint

    def _on_rollout_start(self) -> None:
        self._rollout_start = self.model.num_timesteps
        if not self._between_rollouts:
            return
        if isinstance(self.model, OnPolicyAlgorithm):  # a signal mid-rollout saves the state of now
            self._rollout_state = capture_training_state(self.model, at_rollout_start=True)
            # Collecting moves the policy's running observation statistics, not its weights.
            self._rollout_parameters = copy.deepcopy(self.model.policy.state_dict())
        if self.stop.signal is not None:
            self.save_on_stop()
        elif self.freq and self.model.num_timesteps - self._last_saved >= self.freq:
            self.save()

    def save_on_stop(self) -> None:
        """After training stopped on a signal (or ended while one came): the checkpoint of where it stopped."""
        if self._saved_on_stop:
            return
        if self._stopped_mid_rollout:  # the policy as it was at the rollout's start, saved as that step
            if self._rollout_parameters is not None:  # training ends here: the policy may go back
                self.model.policy.load_state_dict(self._rollout_parameters)
            steps, self.model.num_timesteps = self.model.num_timesteps, self._rollout_start
            try:
                self.save()
            finally:
                self.model.num_timesteps = steps
        else:
            self.save()
        self._saved_on_stop = True

    def save(self) -> None:
        """Write a checkpoint now, then make it the current one (unless it is already: a rewrite would delete it first)."""
        step = self._last_saved = self.model.num_timesteps
        current = self.directory.intact_checkpoint
        if current is not None and current.name == self.directory.checkpoint_name(step):
            return
        staging = self.directory.new_checkpoint(step)
        if isinstance(self.model, OnPolicyAlgorithm) and self._rollout_start == step and self._rollout_state is not None:
            state = self._rollout_state
        else:
            state = capture_training_state(self.model, at_rollout_start=self._between_rollouts and self._rollout_start == step)
        self._say_environment_problem(state)
        save_training_state(self.model, staging, state)
        normalizer = self.model.get_vec_normalize_env()
        if normalizer is not None:
            normalizer.save(str(staging / VEC_NORMALIZE))
        callback = self.eval_callback
        kept = [index for index, t in enumerate(callback.evaluations_timesteps) if t <= step]  # a dropped rollout's are redone
        evaluations = dict(
            timesteps=[int(callback.evaluations_timesteps[i]) for i in kept],
            results=[[float(r) for r in callback.evaluations_results[i]] for i in kept],
            ep_lengths=[[int(n) for n in callback.evaluations_length[i]] for i in kept],
        )
        (staging / CHECKPOINT_EVALUATIONS).write_text(json.dumps(evaluations))
        shutil.copyfile(self.directory / CONFIG, staging / CONFIG)  # config.json can be restored from here
        rows = self.directory.progress_rows(self.history, up_to_step=step)
        self.directory.write_progress(rows, staging)
        size = self.directory.commit_checkpoint(staging, step, interrupted_by=self.stop.name or None)
        self.directory.write_progress(rows)  # the run's progress.csv follows its checkpoints
        if self.verbose:
            print(f"checkpoint at {step:,} agent steps: {size / 2**20:,.1f} MiB in {staging}", flush=True)

    def _say_environment_problem(self, state: TrainingState) -> None:
        """Once per attempt: the environments' state is not in the checkpoints, and what a resume then does."""
        if state.environment_problem and not self._environment_problem_said:
            print(
                f"checkpoints do not hold the environments' state ({state.environment_problem}): "
                "a resumed run starts new episodes there",
                flush=True,
            )
            self._environment_problem_said = True


def restore_checkpoint(
    model: BaseAlgorithm,
    directory: RunDirectory,
    env: VecEnv,
    eval_callback: EvalCallback,
    callbacks: Sequence[BaseCallback],
    device: str,
    identity: dict[str, Any] | None = None,
) -> tuple[BaseAlgorithm, Path | None]:
    """
    The model of the run's newest intact checkpoint, with the normalizer statistics, replay buffer
    and evaluations it trained with, and the callbacks counting on from its step. A checkpoint
    that fails to load is passed over for the previous one, with a warning naming it; one of
    another run (its copy of ``config.json`` has another identity: a checkpoint copied in) is
    refused.

    :param model: the freshly built model (its class loads the checkpoint; returned when there is none)
    :param directory: the run
    :param env: the training environment (its ``VecNormalize`` takes the saved statistics)
    :param eval_callback: takes the saved evaluations
    :param callbacks: every callback of the run
    :param device: torch device
    :param identity: the run's identity (:meth:`RunConfig.identity`; ``None``: not checked)
    :return: the loaded model and its checkpoint (``None``: no checkpoint, the model as built)
    :raises SystemExit: the run has checkpoints but none is intact, or the checkpoint is another run's
    """
    refused: list[Path] = []
    while True:
        try:
            checkpoint = directory.resumable_checkpoint(skip=refused)
        except DamagedFileError as error:
            raise SystemExit(str(error)) from error
        if checkpoint is None:
            return model, None
        if identity is not None:
            _refuse_other_run(checkpoint, identity)
        try:
            loaded = _load_checkpoint(model, checkpoint, env, eval_callback, device)
        except Exception as error:
            warnings.warn(f"checkpoint {checkpoint} cannot be loaded ({type(error).__name__}: {error})", stacklevel=2)
            refused.append(checkpoint)
            continue
        for callback in callbacks:  # frequencies count calls: go on counting from the checkpoint
            callback.n_calls = loaded.num_timesteps // env.num_envs
        print(f"resuming from the checkpoint at {loaded.num_timesteps:,} agent steps")
        return loaded, checkpoint


def check_checkpoint_fits(directory: RunDirectory, identity: dict[str, Any], timesteps: int) -> None:
    """
    Before anything is written, refuse to resume from the current checkpoint when it is another
    run's, or when it is past the budget (the run could never be extended again).

    :param directory: the run
    :param identity: the run's identity (:meth:`RunConfig.identity`)
    :param timesteps: the budget
    :raises ConfigurationError: naming the checkpoint and what differs
    """
    try:
        checkpoint = directory.checkpoint()
        if checkpoint is None or not (checkpoint / CONFIG).is_file():
            return
        _refuse_other_run(checkpoint, identity)
    except DamagedFileError:  # restore_checkpoint names it, or falls back to the previous checkpoint
        return
    step = directory.checkpoint_step()
    if step is not None and step > timesteps:
        raise ConfigurationError(
            f"--timesteps {timesteps:,}: the checkpoint in {directory.path} is at {step:,} agent steps, past that budget; "
            f"pass --timesteps {step:,} or more to go on (or --restart to train anew)"
        )


def _refuse_other_run(checkpoint: Path, identity: dict[str, Any]) -> None:
    """Refuse a checkpoint whose copy of ``config.json`` names another run (a seed, a sparsity, an entry)."""
    stored = read_json(checkpoint / CONFIG)
    differences = configuration_differences(stored.get("identity", {}), identity) if isinstance(stored, dict) else []
    if differences:
        raise ConfigurationError(
            f"{checkpoint} is a checkpoint of another run: {'; '.join(differences[:4])}"
            f"{'; ...' if len(differences) > 4 else ''}. Move it out of the run directory, or --restart"
        )


def restore_normalizer_statistics(env: VecEnv, path: Path) -> None:
    """
    Give the environment's ``VecNormalize`` (if it has one) the statistics saved at ``path``.

    :param env: the training environment
    :param path: a saved ``VecNormalize`` (``vecnormalize.pkl``)
    """
    normalizer = unwrap_vec_normalize(env)
    if normalizer is not None:
        saved = VecNormalize.load(str(path), normalizer.venv)
        normalizer.obs_rms, normalizer.ret_rms = saved.obs_rms, saved.ret_rms


def _load_checkpoint(
    model: BaseAlgorithm, checkpoint: Path, env: VecEnv, eval_callback: EvalCallback, device: str
) -> BaseAlgorithm:
    saved = read_json(checkpoint / CHECKPOINT_EVALUATIONS)
    # The statistics the checkpointed model trained with; the training state's environments take over where it has them.
    restore_normalizer_statistics(env, checkpoint / VEC_NORMALIZE)
    if (checkpoint / TRAINING_STATE).is_file():
        loaded = load_training_state(checkpoint, env, device=device)
    else:  # checkpoints of 0.2 and before hold no training state: SB3's resume (new episodes)
        loaded = type(model).load(checkpoint / MODEL, env=env, device=device)
        if isinstance(loaded, OffPolicyAlgorithm):
            load_replay_buffer(loaded, checkpoint / REPLAY_BUFFER)
    eval_callback.evaluations_timesteps = saved["timesteps"]
    eval_callback.evaluations_results = saved["results"]
    eval_callback.evaluations_length = saved["ep_lengths"]
    return loaded
