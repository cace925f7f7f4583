"""The package's hyperparameter files, in the RL Baselines3 Zoo format (``sac.yml``, ``td3.yml``,
``ddpg.yml``, ``tqc.yml``, ``crossq.yml``, and ``stream_ac.yml`` for the package's own
:class:`~sb3_sparse.stream_ac.StreamAC`, which the zoo does not know), shipped as package data.

``python -m sb3_sparse.hyperparams sac`` prints the path of ``sac.yml`` (for ``rl_zoo3.train -conf``);
:func:`load_hyperparams` and :func:`algorithm_kwargs` read an entry the way the zoo does.
"""

from __future__ import annotations

import inspect
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch as th
import yaml
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.noise import NormalActionNoise
from torch import nn

from sb3_sparse.algorithms import ALGORITHM_TABLE, algorithm_entry

#: Every algorithm with a hyperparameter file (the package's runner trains them all), from the algorithm table.
ALGORITHMS: dict[str, type[BaseAlgorithm]] = {
    entry.name: entry.algorithm for entry in ALGORITHM_TABLE if entry.hyperparameters
}
#: The algorithms the RL Baselines3 Zoo can train from these files.
ZOO_ALGORITHMS: dict[str, type[BaseAlgorithm]] = {
    entry.name: entry.algorithm for entry in ALGORITHM_TABLE if entry.zoo and entry.hyperparameters
}
# Keys the zoo reads itself instead of passing them to the algorithm (the subset these files use).
ZOO_KEYS = ("n_timesteps", "policy", "noise_type", "noise_std")


def hyperparams_path(algo: str) -> Path:
    """
    Path of the package's hyperparameter file of an algorithm (inside the installed package).

    :param algo: one of :data:`ALGORITHMS`
    :return: e.g. ``.../sb3_sparse/hyperparams/sac.yml``
    """
    if algo not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {algo!r}; valid algorithms: {', '.join(ALGORITHMS)}")
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


def hyperparams_entry(algo: str, env_id: str, path: str | Path | None = None) -> dict[str, Any]:
    """
    The entry of one environment.

    :param algo: one of :data:`ALGORITHMS`
    :param env_id: a gymnasium id with an entry in the file
    :param path: a zoo-format YAML file; ``None``: the package's file of ``algo``
    :return: the entry
    """
    entries = load_hyperparams(algo, path)
    if env_id not in entries:
        raise ValueError(f"{file_name(algo, path)} has no entry for {env_id!r}; entries: {', '.join(entries)}")
    return dict(entries[env_id])


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
    value = eval(policy_kwargs, {"th": th, "nn": nn, "np": np})  # the zoo evaluates it the same way
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
    algorithm, source = ALGORITHMS[algo], file_name(algo, path)
    valid_arguments = set(inspect.signature(algorithm.__init__).parameters) - {"self", "policy", "env"}
    unknown = sorted(set(entry) - valid_arguments - set(ZOO_KEYS))
    if unknown:
        raise ValueError(
            f"{source} entry {env_id!r} has unknown keys {unknown}; "
            f"valid keys: {', '.join(sorted(valid_arguments | set(ZOO_KEYS)))}"
        )
    policy = entry.get("policy")
    # The package's policies for the algorithm (StreamAC registers its own).
    valid_policies = list(algorithm_entry(algo).policies) or list(algorithm.policy_aliases)
    if policy not in valid_policies:
        raise ValueError(
            f"{source} entry {env_id!r}: policy {policy!r} is not one of sb3-sparse's: {', '.join(valid_policies)}"
        )
    policy_class = algorithm.policy_aliases[policy]
    valid_kwargs = getattr(policy_class, "valid_kwargs", None)
    if valid_kwargs is not None:
        unknown = sorted(set(evaluate_policy_kwargs(entry.get("policy_kwargs"))) - set(valid_kwargs()))
        if unknown:
            raise ValueError(
                f"{source} entry {env_id!r} has unknown policy_kwargs {unknown}; valid ones: {', '.join(valid_kwargs())}"
            )


def algorithm_kwargs(
    algo: str, env_id: str, action_dim: int, path: str | Path | None = None
) -> tuple[str, int, dict[str, Any]]:
    """
    Read an entry as the zoo would: the policy, the budget and the algorithm's keyword arguments
    (``policy_kwargs``, ``replay_buffer_class`` and ``replay_buffer_kwargs`` evaluated,
    ``noise_type: normal`` turned into a ``NormalActionNoise``).

    :param algo: one of :data:`ALGORITHMS`
    :param env_id: the environment's entry
    :param action_dim: the environment's action size (for the exploration noise)
    :param path: a zoo-format YAML file; ``None``: the package's file of ``algo``
    :return: ``(policy, n_timesteps, kwargs)``
    """
    entry = hyperparams_entry(algo, env_id, path)
    check_entry(algo, env_id, entry, path)
    policy, n_timesteps = entry.pop("policy"), int(entry.pop("n_timesteps"))
    noise_type, noise_std = entry.pop("noise_type", None), entry.pop("noise_std", None)
    if noise_type is not None:
        if noise_type != "normal":
            raise ValueError(f"{file_name(algo, path)} entry {env_id!r}: noise_type must be 'normal', got {noise_type!r}")
        entry["action_noise"] = NormalActionNoise(np.zeros(action_dim), float(noise_std) * np.ones(action_dim))
    entry["policy_kwargs"] = evaluate_policy_kwargs(entry.get("policy_kwargs"))
    for key in ("replay_buffer_class", "replay_buffer_kwargs"):  # strings the zoo evaluates too
        if isinstance(entry.get(key), str):
            entry[key] = eval(entry[key], {"th": th, "nn": nn, "np": np})
    return policy, n_timesteps, entry
