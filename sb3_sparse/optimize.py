"""Hyperparameter search over the sparse policies with the RL Baselines3 Zoo's ``-optimize``.

The zoo's samplers draw SB3's hyperparameters and a dense ``net_arch``, and their ``policy_kwargs``
replace the entry's, which the sparse policies refuse (they take ``actor_sparsity``,
``critic_hidden_dim``, ... instead of ``net_arch``). Through ``python -m sb3_sparse.zoo train ...
-optimize``, trials of an entry whose policy is one of sb3-sparse's draw instead:

* the algorithm's hyperparameters from the zoo's own sampler (learning rate, gamma, batch size,
  ``tau``, ``train_freq``, ... exactly as the zoo draws them; sb3-sparse's algorithms borrow the
  sampler of the SB3 algorithm they follow, see :attr:`~sb3_sparse.algorithms.AlgorithmEntry.zoo_sampler`),
  keeping only the arguments the algorithm takes;
* the networks' sparsity (:data:`SPARSITIES`, actor and critic separately), width and depth
  (:data:`WIDTH_SCALES`, :data:`DEPTH_SCALES`: multiples of the entry's hidden sizes and blocks, as
  the size presets scale the default networks);

on top of the entry's own ``policy_kwargs`` (optimizer, number of critics, ...), which stay. Entries
with SB3's policies keep the zoo's sampler. Every other ``-optimize`` option (``--n-trials``,
``--sampler``, ``--pruner``, ``--storage``, ``--study-name``, ``--n-jobs``) is the zoo's::

    python -m sb3_sparse.zoo train --algo sac --env Pendulum-v1 -optimize --n-trials 20 \\
        --n-timesteps 6000 -conf "$(python -m sb3_sparse.hyperparams sac)"

Needs the ``zoo`` extra (rl_zoo3, which brings Optuna).
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import MISSING, fields
from typing import Any, cast

import optuna
from rl_zoo3 import hyperparams_opt
from rl_zoo3.exp_manager import ExperimentManager

from sb3_sparse.algorithms import ALGORITHM_TABLE, algorithm_entry
from sb3_sparse.policies.common import SparsePolicyBase

Sampler = Callable[[optuna.Trial, int, int, dict[str, Any]], dict[str, Any]]

#: Sparsities a trial draws for the actor and for the critic (0: dense).
SPARSITIES = (0.0, 0.5, 0.8, 0.9)
#: Multiples of the entry's hidden sizes (actor and critic together).
WIDTH_SCALES = (0.5, 1.0, 2.0)
#: Multiples of the entry's residual blocks (actor and critic together).
DEPTH_SCALES = (1, 2)

# The hyperparameters of the study being optimized, as the zoo read them: the running trial's sampler
# builds on its policy and policy_kwargs. A context variable: Optuna's --n-jobs runs trials in threads.
_study_hyperparams: ContextVar[dict[str, Any]] = ContextVar("_study_hyperparams")
# The agent steps of the trial being sampled (the zoo's --n-timesteps).
_trial_budget: ContextVar[int] = ContextVar("_trial_budget")


def sample_network(trial: optuna.Trial, policy_class: type[SparsePolicyBase], policy_kwargs: dict[str, Any]) -> dict[str, Any]:
    """
    Draw the sparse networks of a trial: sparsities, width and depth, on top of the entry's kwargs.

    :param trial: the Optuna trial
    :param policy_class: the entry's policy class (its ``valid_kwargs`` and architecture defaults say
        which networks it has: a Q-network policy has no actor)
    :param policy_kwargs: the entry's ``policy_kwargs`` (kept, apart from the sizes this scales)
    :return: the trial's ``policy_kwargs``
    """
    accepted = set(policy_class.valid_kwargs())
    defaults = {field.name: field.default for field in fields(policy_class.architecture_class) if field.default is not MISSING}
    sampled = dict(policy_kwargs)
    width_scale = trial.suggest_categorical("width_scale", WIDTH_SCALES)
    depth_scale = trial.suggest_categorical("depth_scale", DEPTH_SCALES)
    for role in ("actor", "critic"):
        if f"{role}_sparsity" not in accepted:
            continue
        sampled[f"{role}_sparsity"] = trial.suggest_categorical(f"{role}_sparsity", SPARSITIES)
        hidden_dim = policy_kwargs.get(f"{role}_hidden_dim", defaults[f"{role}_hidden_dim"])
        sampled[f"{role}_hidden_dim"] = max(1, round(hidden_dim * width_scale))
        sampled[f"{role}_num_blocks"] = policy_kwargs.get(f"{role}_num_blocks", defaults[f"{role}_num_blocks"]) * depth_scale
    return sampled


def sparse_sampler(name: str, zoo_sampler: Sampler) -> Sampler:
    """
    The ``-optimize`` sampler of an algorithm: the zoo's for its hyperparameters, :func:`sample_network`
    for sparse policies' networks.

    :param name: the algorithm's name in the algorithm table
    :param zoo_sampler: the zoo's sampler it borrows
    :return: a sampler with the zoo's signature ``(trial, n_actions, n_envs, additional_args) -> hyperparameters``
    """
    entry = algorithm_entry(name)
    accepted = set(inspect.signature(entry.algorithm.__init__).parameters)

    def sample(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict[str, Any]) -> dict[str, Any]:
        sampled = zoo_sampler(trial, n_actions, n_envs, additional_args)
        study = _study_hyperparams.get(None)
        policy_class = entry.policies.get(study["policy"]) if study is not None else None
        if study is None or policy_class is None or not issubclass(policy_class, SparsePolicyBase):
            return sampled  # SB3's policies: the zoo's search as it is
        hyperparams = {key: value for key, value in sampled.items() if key in accepted and key != "policy_kwargs"}
        # What the zoo's sampler drew for the policy besides a dense net_arch (TQC's n_quantiles, PPO's ortho_init).
        valid_kwargs = set(policy_class.valid_kwargs()) - set(policy_class.size_aliases)  # sizes: sample_network's
        drawn_policy_kwargs = {key: value for key, value in sampled.get("policy_kwargs", {}).items() if key in valid_kwargs}
        policy_kwargs = {**study.get("policy_kwargs", {}), **drawn_policy_kwargs}
        hyperparams["policy_kwargs"] = sample_network(trial, policy_class, policy_kwargs)
        _warn_untrained(trial, {**study, **hyperparams}, entry.algorithm)
        return hyperparams

    return sample


def _warn_untrained(trial: optuna.Trial, hyperparams: dict[str, Any], algorithm: type[Any]) -> None:
    """Warn when a trial's budget ends before its first update: its score is an untrained policy's."""
    budget = _trial_budget.get(None)
    default = inspect.signature(algorithm).parameters.get("learning_starts")  # the constructor's
    starts = hyperparams.get("learning_starts", default.default if default is not None else None)
    if budget is not None and isinstance(starts, (int, float)) and budget <= starts:
        warnings.warn(
            f"trial {trial.number}: its budget of {budget:,} agent steps ends before learning_starts={starts:,}: "
            "it scores an untrained policy (raise --n-timesteps, or lower learning_starts with -params)",
            stacklevel=2,
        )


class SparseExperimentManager(ExperimentManager):
    """The zoo's ``ExperimentManager``, whose trials let the sampler see the entry being optimized."""

    def objective(self, trial: optuna.Trial) -> float:
        """One trial of the zoo's objective, with :func:`sample_network` building on the entry's policy kwargs."""
        token, budget = _study_hyperparams.set(self._hyperparams), _trial_budget.set(int(self.n_timesteps))
        try:
            return super().objective(trial)
        finally:
            _study_hyperparams.reset(token)
            _trial_budget.reset(budget)


def register_samplers() -> list[str]:
    """
    Put the sparse samplers in ``rl_zoo3.hyperparams_opt.HYPERPARAMS_SAMPLER`` for every zoo
    algorithm of the table (idempotent).

    :return: the algorithms registered
    """
    registered = []
    for entry in ALGORITHM_TABLE:
        borrowed = entry.zoo_sampler or entry.name
        zoo_sampler = hyperparams_opt.HYPERPARAMS_SAMPLER.get(borrowed)
        if not entry.zoo or zoo_sampler is None:
            continue
        zoo_sampler = getattr(zoo_sampler, "zoo_sampler", zoo_sampler)  # idempotent: wrap the zoo's own
        sampler = sparse_sampler(entry.name, zoo_sampler)
        sampler.zoo_sampler = zoo_sampler  # type: ignore[attr-defined]
        cast(dict[str, Sampler], hyperparams_opt.HYPERPARAMS_SAMPLER)[entry.name] = sampler
        registered.append(entry.name)
    return registered
