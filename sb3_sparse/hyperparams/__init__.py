"""The package's hyperparameter files, in the RL Baselines3 Zoo format (``sac.yml``, ``td3.yml``,
``ddpg.yml``, ``tqc.yml``, ``crossq.yml``, and ``stream_ac.yml`` for the package's own
:class:`~sb3_sparse.stream_ac.StreamAC`, which the zoo does not know), shipped as package data.

``python -m sb3_sparse.hyperparams sac`` prints the path of ``sac.yml`` (for ``rl_zoo3.train -conf``);
:func:`load_hyperparams` and :func:`algorithm_kwargs` read an entry the way the zoo does, and
:func:`environment_settings` its keys for the environments (``n_envs``, ``normalize``,
``env_wrapper``, ``vec_env_wrapper``, ``frame_stack``, ``callback``, ``env_kwargs``,
``monitor_kwargs``). Schedules (``learning_rate: lin_1e-3``), wrappers and callbacks are read by
rl_zoo3's own functions (the ``zoo`` extra), so that a file means the same run in the zoo and in
the package's runner.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
import yaml
from stable_baselines3 import HerReplayBuffer
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.noise import NormalActionNoise, OrnsteinUhlenbeckActionNoise
from stable_baselines3.common.sb2_compat.rmsprop_tf_like import RMSpropTFLike
from torch import nn

from sb3_sparse.algorithms import ALGORITHM_TABLE, algorithm_entry
from sb3_sparse.checks import unknown_names_message
from sb3_sparse.envs import is_atari
from sb3_sparse.hyperparams.values import check_entry_values

#: Every algorithm with a hyperparameter file (the package's runner trains them all), from the algorithm table.
ALGORITHMS: dict[str, type[BaseAlgorithm]] = {
    entry.name: entry.algorithm for entry in ALGORITHM_TABLE if entry.hyperparameters
}
#: The algorithms the RL Baselines3 Zoo can train from these files.
ZOO_ALGORITHMS: dict[str, type[BaseAlgorithm]] = {
    entry.name: entry.algorithm for entry in ALGORITHM_TABLE if entry.zoo and entry.hyperparameters
}
# Keys of the zoo's format for the environments and callbacks (environment_settings reads them).
ENVIRONMENT_KEYS = (
    "n_envs",
    "normalize",
    "env_wrapper",
    "vec_env_wrapper",
    "frame_stack",
    "callback",
    "env_kwargs",
    "monitor_kwargs",
)
# Keys the zoo reads itself instead of passing them to the algorithm.
ZOO_KEYS = ("n_timesteps", "policy", "noise_type", "noise_std", *ENVIRONMENT_KEYS)
# Arguments the zoo accepts as schedule strings ("lin_<initial value>").
SCHEDULE_KEYS = ("learning_rate", "clip_range", "clip_range_vf", "delta_std")


def unknown_algorithm_message(algo: str, valid: Collection[str] = tuple(ALGORITHMS), what: str = "algorithm") -> str:
    """
    Why an algorithm name is not one of those with a hyperparameter file: a supported algorithm
    without one (named as such, with the valid ones), or an unknown name (with the closest ones).

    :param algo: the name
    :param valid: the valid names (default: every algorithm with a file)
    :param what: the argument's name in the message
    :return: one line
    """
    if algo in {entry.name for entry in ALGORITHM_TABLE} and algo not in ALGORITHMS:
        return f"{algo} has no hyperparameter file; the algorithms with one: {', '.join(valid)}"
    return unknown_names_message(f"unknown {what}", [algo], list(valid))


def hyperparams_path(algo: str) -> Path:
    """
    Path of the package's hyperparameter file of an algorithm (inside the installed package).

    :param algo: one of :data:`ALGORITHMS`
    :return: e.g. ``.../sb3_sparse/hyperparams/sac.yml``
    """
    if algo not in ALGORITHMS:
        raise ValueError(unknown_algorithm_message(algo))
    # Wheels install packages as plain directories, so the resource is a real file the zoo can open.
    path = Path(str(resources.files(__package__).joinpath(f"{algo}.yml")))
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the installed package")
    return path


def load_hyperparams(algo: str, path: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """
    All entries of a hyperparameter file.

    :param algo: one of :data:`ALGORITHMS`
    :param path: a zoo-format YAML file; ``None``: the package's file of ``algo``
    :return: env id -> entry (as written: ``policy_kwargs`` is a string)
    """
    path = hyperparams_path(algo) if path is None else Path(path)
    with path.open() as file:
        entries = yaml.safe_load(file)
    if not isinstance(entries, dict):
        raise ValueError(f"{path} must map env ids to hyperparameters, got {type(entries).__name__}")
    return entries


def file_name(algo: str, path: str | Path | None = None) -> str:
    """How messages name a hyperparameter file: the given file's path, or the package's ``<algo>.yml``."""
    return str(path) if path is not None else f"{algo}.yml"


def entry_name(algo: str, env_id: str, path: str | Path | None = None) -> str:
    """How messages name an entry: ``<file> entry '<env id>'``."""
    return f"{file_name(algo, path)} entry {env_id!r}"


def zoo_eval(text: str) -> Any:
    """Evaluate a string of a zoo file with the names the zoo provides (``th``, ``nn``, ``np``, ``RMSpropTFLike``,
    ``HerReplayBuffer``)."""
    namespace = {"th": th, "nn": nn, "np": np, "RMSpropTFLike": RMSpropTFLike, "HerReplayBuffer": HerReplayBuffer}
    return eval(text, namespace)


def hyperparams_entry(
    algo: str, env_id: str, path: str | Path | None = None, overrides: dict[str, Any] | None = None
) -> dict[str, Any]:
    """
    The entry of one environment.

    :param algo: one of :data:`ALGORITHMS`
    :param env_id: a gymnasium id with an entry in the file (an Atari game without one: the ``atari`` entry)
    :param path: a zoo-format YAML file; ``None``: the package's file of ``algo``
    :param overrides: keys that replace the entry's (the zoo's ``-params``)
    :return: the entry
    """
    entries = load_hyperparams(algo, path)
    key = env_id
    if env_id not in entries and "atari" in entries and is_atari(env_id):  # the zoo's rule: one entry for every game
        key = "atari"
    if key not in entries:
        raise ValueError(f"{file_name(algo, path)} has no entry for {env_id!r}; entries: {', '.join(entries)}")
    entry = entries[key]
    if not isinstance(entry, dict):
        raise ValueError(
            f"{entry_name(algo, key, path)} must map keys to values (policy: ..., n_timesteps: ...), got {entry!r}"
        )
    check_entry_values(entry, entry_name(algo, key, path))
    check_entry_values(overrides or {}, "-params")
    return {**entry, **(overrides or {})}


def _zoo_module(module: str, key: str, source: str) -> Any:
    """rl_zoo3's ``module``, or a clear error naming the entry key that needs it."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ValueError(
            f"{source}: {key!r} is read with rl_zoo3's own functions; install the zoo extra: pip install 'sb3-sparse[zoo]'"
        ) from error


@dataclass
class EnvironmentSettings:
    """
    The environment keys of an entry, as the zoo reads them.

    :param n_envs: parallel training environments
    :param normalize: wrap the training and evaluation environments in ``VecNormalize``
    :param normalize_kwargs: its arguments (the algorithm's ``gamma`` included, as the zoo does)
    :param env_wrapper: wrapper of each environment (``rl_zoo3.utils.get_wrapper_class``)
    :param vec_env_wrapper: wrapper of the vectorized environment
    :param frame_stack: frames stacked by ``VecFrameStack`` (``None``: none)
    :param callbacks: the entry's callbacks (``rl_zoo3.utils.get_callback_list``)
    :param env_kwargs: keyword arguments of ``gym.make``
    :param monitor_kwargs: keyword arguments of ``Monitor``
    """

    n_envs: int = 1
    normalize: bool = False
    normalize_kwargs: dict[str, Any] = field(default_factory=dict)
    env_wrapper: Callable[[gym.Env], gym.Env] | None = None
    vec_env_wrapper: Callable[[Any], Any] | None = None
    frame_stack: int | None = None
    callbacks: list[BaseCallback] = field(default_factory=list)
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    monitor_kwargs: dict[str, Any] = field(default_factory=dict)


def environment_settings(
    algo: str, env_id: str, path: str | Path | None = None, overrides: dict[str, Any] | None = None
) -> EnvironmentSettings:
    """
    Read an entry's environment keys (:data:`ENVIRONMENT_KEYS`) as the zoo does: wrappers and
    callbacks through rl_zoo3's functions, ``normalize: true`` or a string of ``VecNormalize``
    arguments, ``env_kwargs`` and ``monitor_kwargs`` as dicts or strings to evaluate.

    :param algo: one of :data:`ALGORITHMS`
    :param env_id: the environment's entry
    :param path: a zoo-format YAML file; ``None``: the package's file of ``algo``
    :param overrides: keys that replace the entry's (the zoo's ``-params``)
    :return: the settings
    """
    entry, source = hyperparams_entry(algo, env_id, path, overrides), entry_name(algo, env_id, path)
    settings = EnvironmentSettings(n_envs=int(entry.get("n_envs", 1)), frame_stack=entry.get("frame_stack"))
    if settings.n_envs < 1:
        raise ValueError(f"{source}: n_envs must be >= 1, got {settings.n_envs}")
    normalize = entry.get("normalize", False)
    if isinstance(normalize, str):
        normalize = zoo_eval(normalize)
    if isinstance(normalize, dict):
        settings.normalize, settings.normalize_kwargs = True, dict(normalize)
    else:
        settings.normalize = bool(normalize)
    if settings.normalize and "gamma" in entry:
        settings.normalize_kwargs["gamma"] = entry["gamma"]
    for key in ("env_kwargs", "monitor_kwargs"):
        value = entry.get(key) or {}
        setattr(settings, key, zoo_eval(value) if isinstance(value, str) else dict(value))
    for key in ("env_wrapper", "vec_env_wrapper"):
        if entry.get(key) is not None:
            utils = _zoo_module("rl_zoo3.utils", key, source)
            setattr(settings, key, utils.get_wrapper_class(entry, key))
    if entry.get("callback") is not None:
        settings.callbacks = _zoo_module("rl_zoo3.utils", "callback", source).get_callback_list(entry)
    if "AtariWrapper" in str(entry.get("env_wrapper")):
        settings.env_kwargs = {**no_frameskip_kwargs(env_id), **settings.env_kwargs}
    return settings


def no_frameskip_kwargs(env_id: str) -> dict[str, Any]:
    """
    ``gym.make`` arguments that give an ALE id the ``NoFrameskip-v4`` semantics SB3's
    ``AtariWrapper`` is written for (its docstring: use it with NoFrameskip-v4 ids only): it skips
    4 frames itself, so a v5 id's own frame skip of 4 would make 16 emulator frames per agent step,
    and its sticky actions (0.25) would come on top of the wrapper's no-op starts. Empty for ids
    that already have them (and for ids gymnasium does not know).

    :param env_id: an ALE id, e.g. ``ALE/Pong-v5``
    :return: ``frameskip=1`` and ``repeat_action_probability=0.0`` where the id's own differ
    """
    spec_kwargs = gym.spec(env_id).kwargs if env_id in gym.registry else {}
    wanted = {"frameskip": 1, "repeat_action_probability": 0.0}
    return {key: value for key, value in wanted.items() if key in spec_kwargs and spec_kwargs[key] != value}


def evaluate_policy_kwargs(policy_kwargs: str | dict[str, Any] | None) -> dict[str, Any]:
    """
    Evaluate a zoo ``policy_kwargs`` string with the names the zoo provides (``th``, ``nn``, ``np``).

    :param policy_kwargs: the string (or an already evaluated dict, or ``None``)
    :return: the keyword arguments
    """
    if policy_kwargs is None:
        return {}
    if isinstance(policy_kwargs, dict):
        return dict(policy_kwargs)
    value = zoo_eval(policy_kwargs)
    if not isinstance(value, dict):
        raise ValueError(f"policy_kwargs must evaluate to a dict, got {value!r}")
    return value


def check_entry(algo: str, env_id: str, entry: dict[str, Any], path: str | Path | None = None) -> None:
    """
    Check an entry's keys before anything is built: the algorithm's arguments, the policy (one of
    the package's for the algorithm) and its ``policy_kwargs``, with the valid choices in the error.

    :param algo: one of :data:`ALGORITHMS`
    :param env_id: the entry's env id (for the message)
    :param entry: the entry
    :param path: the file it comes from (for the message; ``None``: the package's)
    """
    algorithm, source = ALGORITHMS[algo], entry_name(algo, env_id, path)
    check_entry_values(entry, source, algorithm)
    valid_arguments = set(inspect.signature(algorithm.__init__).parameters) - {"self", "policy", "env"}
    unknown = sorted(set(entry) - valid_arguments - set(ZOO_KEYS))
    if unknown:
        raise ValueError(unknown_names_message(f"{source} has unknown keys", unknown, sorted(valid_arguments | set(ZOO_KEYS))))
    policy = entry.get("policy")
    # The package's policies for the algorithm (StreamAC registers its own).
    valid_policies = list(algorithm_entry(algo).policies) or list(algorithm.policy_aliases)
    if policy not in valid_policies:
        raise ValueError(unknown_names_message(f"{source}: not one of sb3-sparse's policies:", [policy], valid_policies))
    policy_class = algorithm.policy_aliases[policy]
    valid_kwargs = getattr(policy_class, "valid_kwargs", None)
    if valid_kwargs is not None:
        unknown = sorted(set(evaluate_policy_kwargs(entry.get("policy_kwargs"))) - set(valid_kwargs()))
        if unknown:
            raise ValueError(unknown_names_message(f"{source} has unknown policy_kwargs", unknown, valid_kwargs()))


def algorithm_kwargs(
    algo: str, env_id: str, action_dim: int, path: str | Path | None = None, overrides: dict[str, Any] | None = None
) -> tuple[str, int, dict[str, Any]]:
    """
    Read an entry as the zoo would: the policy, the budget and the algorithm's keyword arguments
    (``policy_kwargs``, ``replay_buffer_class`` and ``replay_buffer_kwargs`` evaluated, schedule
    strings such as ``lin_1e-3`` turned into rl_zoo3's schedules, ``noise_type`` ``normal`` or
    ``ornstein-uhlenbeck`` into SB3's action noise). The environment keys are left to
    :func:`environment_settings`.

    :param algo: one of :data:`ALGORITHMS`
    :param env_id: the environment's entry
    :param action_dim: the environment's action size (for the exploration noise)
    :param path: a zoo-format YAML file; ``None``: the package's file of ``algo``
    :param overrides: keys that replace the entry's (the zoo's ``-params``)
    :return: ``(policy, n_timesteps, kwargs)``
    """
    entry = hyperparams_entry(algo, env_id, path, overrides)
    check_entry(algo, env_id, entry, path)
    source = entry_name(algo, env_id, path)
    for key in ENVIRONMENT_KEYS:
        entry.pop(key, None)
    policy, n_timesteps = entry.pop("policy"), int(entry.pop("n_timesteps"))
    noise_type, noise_std = entry.pop("noise_type", None), entry.pop("noise_std", None)
    if noise_type is not None:
        noises = {"normal": NormalActionNoise, "ornstein-uhlenbeck": OrnsteinUhlenbeckActionNoise}
        if noise_type not in noises:
            raise ValueError(f"{source}: noise_type must be one of {', '.join(noises)}, got {noise_type!r}")
        entry["action_noise"] = noises[noise_type](np.zeros(action_dim), float(noise_std) * np.ones(action_dim))
    schedules = {key: entry[key] for key in SCHEDULE_KEYS if isinstance(entry.get(key), str)}
    if schedules:
        manager = _zoo_module("rl_zoo3.exp_manager", next(iter(schedules)), source).ExperimentManager
        try:
            entry.update(manager._preprocess_schedules(schedules))
        except ValueError as error:  # "lin" without a value, a value that is not a number
            raise ValueError(f"{source}: schedules are written lin_<initial value>, got {schedules}") from error
    entry["policy_kwargs"] = evaluate_policy_kwargs(entry.get("policy_kwargs"))
    for key in ("replay_buffer_class", "replay_buffer_kwargs"):  # strings the zoo evaluates too
        if isinstance(entry.get(key), str):
            entry[key] = zoo_eval(entry[key])
    return policy, n_timesteps, entry
