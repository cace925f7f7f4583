"""A model's whole training state on disk and back, so that training on after a load continues the
run that was saved, bit for bit on CPU: SB3's ``load()`` re-seeds every generator with the run's
initial seed and drops the last observation (the environments then restart their episodes).

:func:`save_training_state` writes a folder: ``model.zip`` (SB3's), ``replay_buffer.pkl`` (the
filled part of an off-policy algorithm's buffer, compressed) and ``training_state.pkl``: the
Python, numpy and torch generators (CUDA's too when it is in use), the action space's generators,
the environments' state (:mod:`sb3_sparse.env_state`), the algorithm's counters and last
observations (``_last_obs``, an LSTM's states, ...), its episode buffers, action noise and the
logger's values not yet written. :func:`load_training_state` loads the folder with the
environment given; ``learn(n, reset_num_timesteps=False)`` then goes on where the run stopped::

    save_training_state(model, "state/")
    model = load_training_state("state/", env)
    model.learn(10_000, reset_num_timesteps=False)
"""

from __future__ import annotations

import copy
import gzip
import importlib
import inspect
import pickle
import random
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.distributions import StateDependentNoiseDistribution
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

from sb3_sparse.env_state import EnvStateError, capture_env_state, restore_env_state
from sb3_sparse.run_directory import MODEL, REPLAY_BUFFER, TRAINING_STATE

#: The algorithm's attributes that training changes and ``load()`` resets or does not save; every
#: ``_last_*`` attribute (observations, episode starts, an LSTM's states) is kept too.
TRAINING_ATTRIBUTES = (
    "num_timesteps",
    "_total_timesteps",
    "_episode_num",
    "_n_updates",
    "_n_calls",
    "_current_progress_remaining",
    "exploration_rate",
    "ep_info_buffer",
    "ep_success_buffer",
    "action_noise",
)
_GZIP_MAGIC = b"\x1f\x8b"


@dataclass
class TrainingState:
    """
    What a model's parameters and replay buffer do not hold of its training (:func:`capture_training_state`).

    :param algorithm: the algorithm's class, as ``module.QualifiedName``
    :param attributes: the algorithm's :data:`TRAINING_ATTRIBUTES` and ``_last_*`` attributes
    :param generators: the Python, numpy and torch generators' states
    :param action_space_generators: the action space's generators (its subspaces' too), in order
    :param environment: the environments' state (``None``: it could not be copied)
    :param environment_problem: why it could not be copied
    :param logger_values: the logger's recorded values not yet written (``None``: no logger yet)
    :param exploration_noise: gSDE's sampled noise matrices, by the name of the module that holds them
    :param at_rollout_start: captured at a rollout's start, after SB3 sampled that rollout's gSDE
        noise: the resumed run keeps that noise instead of sampling it again
    """

    algorithm: str
    attributes: dict[str, Any]
    generators: dict[str, Any]
    action_space_generators: list[Any]
    environment: bytes | None
    environment_problem: str
    logger_values: dict[str, dict[str, Any]] | None
    exploration_noise: dict[str, dict[str, Any]]
    at_rollout_start: bool = False


def _subspaces(space: spaces.Space) -> Iterator[spaces.Space]:
    yield space
    children = (
        space.spaces.values() if isinstance(space, spaces.Dict) else space.spaces if isinstance(space, spaces.Tuple) else ()
    )
    for child in children:
        yield from _subspaces(child)


def _generators() -> dict[str, Any]:
    generators: dict[str, Any] = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": th.get_rng_state()}
    if th.cuda.is_available() and th.cuda.is_initialized():
        generators["cuda"] = th.cuda.get_rng_state_all()
    return generators


def _set_generators(generators: dict[str, Any]) -> None:
    random.setstate(generators["python"])
    np.random.set_state(generators["numpy"])
    th.set_rng_state(generators["torch"])
    if "cuda" in generators and th.cuda.is_available():
        th.cuda.set_rng_state_all(generators["cuda"])


def _logger_values(model: BaseAlgorithm) -> dict[str, dict[str, Any]] | None:
    logger = model.__dict__.get("_logger")
    if logger is None:
        return None
    return copy.deepcopy({"values": logger.name_to_value, "counts": logger.name_to_count, "excluded": logger.name_to_excluded})


#: What gSDE's distribution samples at each ``reset_noise`` (and collecting reads).
_EXPLORATION_NOISE = ("exploration_mat", "exploration_matrices")


def _noise_holders(model: BaseAlgorithm) -> dict[str, Any]:
    """The policy's modules whose ``action_dist`` is gSDE's (SAC's actor, an on-policy policy)."""
    return {
        name: module
        for name, module in model.policy.named_modules()
        if isinstance(getattr(module, "action_dist", None), StateDependentNoiseDistribution)
    }


def capture_training_state(model: BaseAlgorithm, at_rollout_start: bool = False) -> TrainingState:
    """
    The training state of ``model`` now (copies: training on does not change it).

    :param model: an SB3 algorithm
    :param at_rollout_start: called from a callback's ``on_rollout_start`` (the runner's checkpoints)
    :return: its state
    """
    names = [*TRAINING_ATTRIBUTES, *(name for name in vars(model) if name.startswith("_last_"))]
    attributes = {name: copy.deepcopy(vars(model)[name]) for name in names if name in vars(model)}
    environment, problem = None, ""
    env = model.get_env()
    if env is not None:
        try:
            environment = capture_env_state(env)
        except EnvStateError as error:
            problem = str(error)
    return TrainingState(
        algorithm=f"{type(model).__module__}.{type(model).__qualname__}",
        attributes=attributes,
        generators=_generators(),
        action_space_generators=[copy.deepcopy(space.np_random) for space in _subspaces(model.action_space)],
        environment=environment,
        environment_problem=problem,
        logger_values=_logger_values(model),
        exploration_noise={
            name: {
                key: getattr(module.action_dist, key).detach().clone()
                for key in _EXPLORATION_NOISE
                if hasattr(module.action_dist, key)
            }
            for name, module in _noise_holders(model).items()
        },
        at_rollout_start=at_rollout_start,
    )


def apply_training_state(model: BaseAlgorithm, state: TrainingState) -> None:
    """
    Give a just-loaded model the training state it was saved with. Where the environments' state
    is missing or does not fit the model's environment, a warning says so and the next ``learn``
    starts new episodes, as SB3 does.

    :param model: the model, loaded with its environment
    :param state: its saved state
    """
    attributes = copy.deepcopy(state.attributes)
    problem = state.environment_problem
    env = model.get_env()
    if state.environment is not None and env is not None:
        try:
            restore_env_state(env, state.environment)
        except EnvStateError as error:
            problem = str(error)
    elif not problem:
        problem = "the model has no environment"
    if problem:
        warnings.warn(
            f"the environments' state could not be restored ({problem}): training starts new episodes, "
            "so it does not repeat the uninterrupted run exactly",
            stacklevel=2,
        )
        attributes = {name: value for name, value in attributes.items() if not name.startswith("_last_")}
        model._last_obs = None
    vars(model).update(attributes)
    for space, generator in zip(_subspaces(model.action_space), state.action_space_generators, strict=True):
        space._np_random = copy.deepcopy(generator)
    holders = _noise_holders(model)
    for name, noise in state.exploration_noise.items():
        for key, value in noise.items():
            setattr(holders[name].action_dist, key, value.clone())
        if state.at_rollout_start:
            _keep_noise_once(holders[name])
    _set_generators(state.generators)
    # A copy: _setup_learn resets the noise object the model holds now.
    _restore_when_learning_starts(model, copy.deepcopy(attributes.get("action_noise")), state.logger_values)


def _restore_when_learning_starts(model: BaseAlgorithm, action_noise: Any, logger_values: dict[str, Any] | None) -> None:
    """
    SB3's ``_setup_learn`` resets the action noise and makes a new logger: put the saved ones back
    after it, once, when ``learn`` goes on (``reset_num_timesteps=False``). The hook is an attribute
    of the model until then, left out of what the model saves.
    """
    algorithm = type(model)
    signature = inspect.signature(algorithm._setup_learn)

    def setup_learn(*args: Any, **kwargs: Any) -> Any:
        del vars(model)["_setup_learn"], vars(model)["_excluded_save_params"]
        result = algorithm._setup_learn(model, *args, **kwargs)
        arguments = signature.bind(model, *args, **kwargs)
        arguments.apply_defaults()
        if not arguments.arguments["reset_num_timesteps"]:
            model.action_noise = action_noise
            if logger_values is not None:
                model.logger.name_to_value.update(logger_values["values"])
                model.logger.name_to_count.update(logger_values["counts"])
                model.logger.name_to_excluded.update(logger_values["excluded"])
        return result

    def excluded_save_params() -> list[str]:
        return [*algorithm._excluded_save_params(model), "_setup_learn", "_excluded_save_params"]

    model._setup_learn = setup_learn  # type: ignore[method-assign]
    model._excluded_save_params = excluded_save_params  # type: ignore[method-assign]


def _keep_noise_once(module: th.nn.Module) -> None:
    """Skip the module's next ``reset_noise``: the rollout's start that sampled the noise restored is done."""

    def reset_noise(*args: Any, **kwargs: Any) -> None:
        del vars(module)["reset_noise"]

    vars(module)["reset_noise"] = reset_noise


def _filled_rows(buffer: ReplayBuffer) -> int:
    # The row after the last transition holds its next observation under optimize_memory_usage: keep it.
    return buffer.buffer_size if buffer.full else min(buffer.pos + 1, buffer.buffer_size)


def save_replay_buffer(buffer: ReplayBuffer, path: str | Path) -> None:
    """
    Save what a replay buffer holds, not what it allocated: its arrays cut to the filled rows,
    compressed (gzip level 1: Atari frames shrink about tenfold). Any SB3 buffer class
    (``ReplayBuffer``, ``DictReplayBuffer``, ``HerReplayBuffer``, the package's own).

    :param buffer: the buffer
    :param path: the file
    """
    saved = copy.copy(buffer)  # through __getstate__: HerReplayBuffer leaves its environment out
    rows, cut = _filled_rows(buffer), []
    for name, value in vars(saved).items():
        if isinstance(value, np.ndarray) and value.ndim and value.shape[0] == buffer.buffer_size:
            vars(saved)[name] = value[:rows]
            cut.append(name)
        elif (
            isinstance(value, dict)
            and value
            and all(
                isinstance(item, np.ndarray) and item.ndim and item.shape[0] == buffer.buffer_size for item in value.values()
            )
        ):
            vars(saved)[name] = {key: item[:rows] for key, item in value.items()}
            cut.append(name)
    with gzip.open(path, "wb", compresslevel=1) as file:
        pickle.dump({"buffer": saved, "cut": cut}, file, protocol=pickle.HIGHEST_PROTOCOL)


def _grown(part: np.ndarray, rows: int) -> np.ndarray:
    whole = np.zeros((rows, *part.shape[1:]), dtype=part.dtype)  # SB3 allocates zeros; pages stay unused
    whole[: len(part)] = part
    return whole


def load_replay_buffer(model: OffPolicyAlgorithm, path: str | Path) -> None:
    """
    Give ``model`` the buffer saved at ``path`` (by :func:`save_replay_buffer`, or by SB3's
    ``save_replay_buffer``), at its full size, on the model's device. A ``HerReplayBuffer`` gets
    the model's environment and keeps its last episode going.

    :param model: the loaded model
    :param path: the file
    """
    with open(path, "rb") as file:
        compressed = file.read(2) == _GZIP_MAGIC
    if not compressed:
        model.load_replay_buffer(path, truncate_last_traj=False)
        return
    with gzip.open(path, "rb") as file:
        saved = pickle.load(file)
    buffer = saved["buffer"]
    for name in saved["cut"]:
        value = vars(buffer)[name]
        if isinstance(value, dict):
            vars(buffer)[name] = {key: _grown(item, buffer.buffer_size) for key, item in value.items()}
        else:
            vars(buffer)[name] = _grown(value, buffer.buffer_size)
    buffer.device = model.device
    if hasattr(buffer, "set_env"):
        buffer.set_env(model.get_env())
    model.replay_buffer = buffer


def write_training_state(state: TrainingState, path: str | Path) -> None:
    """Write a :class:`TrainingState` (compressed: a MuJoCo task's data holds megabytes of zeros)."""
    with gzip.open(path, "wb", compresslevel=1) as file:
        pickle.dump(state, file, protocol=pickle.HIGHEST_PROTOCOL)


def read_training_state(path: str | Path) -> TrainingState:
    """Read a :class:`TrainingState` written by :func:`write_training_state`."""
    with gzip.open(path, "rb") as file:
        state = pickle.load(file)
    if not isinstance(state, TrainingState):
        raise ValueError(f"{path} holds a {type(state).__name__}, not a training state")
    return state


def save_training_state(model: BaseAlgorithm, path: str | Path, state: TrainingState | None = None) -> Path:
    """
    Save everything that training ``model`` on needs into the folder ``path``: ``model.zip``,
    ``replay_buffer.pkl`` (off-policy) and ``training_state.pkl``.

    :param model: the model
    :param path: the folder (made if missing)
    :param state: the training state to save (default: the model's now); the runner passes the
        one of a rollout's start, whose weights the model still has
    :return: the folder
    """
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    state = state or capture_training_state(model)
    model.save(folder / MODEL)
    if isinstance(model, OffPolicyAlgorithm) and model.replay_buffer is not None:
        save_replay_buffer(model.replay_buffer, folder / REPLAY_BUFFER)
    write_training_state(state, folder / TRAINING_STATE)
    return folder


def algorithm_class(state: TrainingState) -> type[BaseAlgorithm]:
    """The algorithm class that saved ``state``."""
    module, _, name = state.algorithm.rpartition(".")
    value: Any = importlib.import_module(module)
    for part in name.split("."):
        value = getattr(value, part)
    return value


def load_training_state(path: str | Path, env: Any, device: th.device | str = "auto", **kwargs: Any) -> BaseAlgorithm:
    """
    Load a folder written by :func:`save_training_state`, with the environment given (built as
    the saved one was: the same id, wrappers and number of copies). Calling
    ``learn(n, reset_num_timesteps=False)`` next trains as the saved run would have.

    :param path: the folder
    :param env: the training environment
    :param device: torch device
    :param kwargs: passed to the algorithm's ``load``
    :return: the model
    """
    folder = Path(path)
    state = read_training_state(folder / TRAINING_STATE)
    model = algorithm_class(state).load(folder / MODEL, env=env, device=device, **kwargs)
    if isinstance(model, OffPolicyAlgorithm):  # save_training_state wrote it: a missing one is an error, not an empty buffer
        load_replay_buffer(model, folder / REPLAY_BUFFER)
    apply_training_state(model, state)
    return model
