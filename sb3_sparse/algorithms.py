"""The algorithm table: every algorithm sb3-sparse supports, with what differs between them. Policy
names and their registration, hyperparameter files, parameter counts, the runner's ``--algo``
choices and the diagnostics' per-sample losses are all derived from :data:`ALGORITHM_TABLE`.

Adding an algorithm: one :class:`AlgorithmEntry` here, its policy module under ``policies/``, its
per-sample losses in :mod:`sb3_sparse.per_sample_losses` (if a new family), its ``<name>.yml``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import sb3_contrib
import stable_baselines3
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import BasePolicy

from sb3_sparse.checks import unknown_names_message
from sb3_sparse.per_sample_losses import DETERMINISTIC, MAXIMUM_ENTROPY, VALUE_BASED, PerSampleLosses
from sb3_sparse.policies import (
    SparseSimBaActorCriticPolicy,
    SparseSimBaCnnPolicy,
    SparseSimBaCnnTD3Policy,
    SparseSimBaCnnTQCPolicy,
    SparseSimBaCrossQMultiInputPolicy,
    SparseSimBaCrossQPolicy,
    SparseSimBaDQNPolicy,
    SparseSimBaMaskablePolicy,
    SparseSimBaMultiInputActorCriticPolicy,
    SparseSimBaMultiInputDQNPolicy,
    SparseSimBaMultiInputMaskablePolicy,
    SparseSimBaMultiInputPolicy,
    SparseSimBaMultiInputQRDQNPolicy,
    SparseSimBaPolicy,
    SparseSimBaQRDQNPolicy,
    SparseSimBaTD3MultiInputPolicy,
    SparseSimBaTD3Policy,
    SparseSimBaTQCMultiInputPolicy,
    SparseSimBaTQCPolicy,
)
from sb3_sparse.policies.nature_cnn import (
    SparseSimBaCnnActorCriticPolicy,
    SparseSimBaCnnDQNPolicy,
    SparseSimBaCnnMaskablePolicy,
    SparseSimBaCnnQRDQNPolicy,
    SparseSimBaCnnRecurrentPolicy,
)
from sb3_sparse.policies.recurrent import SparseSimBaMultiInputRecurrentPolicy, SparseSimBaRecurrentPolicy
from sb3_sparse.reference import ReferenceDDPG, ReferenceSAC
from sb3_sparse.stream_ac import StreamAC

#: The policy name for flat observations, the one for images and the one for Dict observations (HER).
POLICY_NAME = "SparseSimBaPolicy"
CNN_POLICY_NAME = "SparseSimBaCnnPolicy"
MULTI_INPUT_POLICY_NAME = "SparseSimBaMultiInputPolicy"


#: The policies of PPO, A2C and TRPO (SB3's ActorCriticPolicy family).
ON_POLICY: dict[str, type[BasePolicy]] = {
    POLICY_NAME: SparseSimBaActorCriticPolicy,
    CNN_POLICY_NAME: SparseSimBaCnnActorCriticPolicy,
    MULTI_INPUT_POLICY_NAME: SparseSimBaMultiInputActorCriticPolicy,
}


@dataclass(frozen=True)
class AlgorithmEntry:
    """
    One supported algorithm.

    :param name: lowercase name: the runner's ``--algo``, the zoo's ``--algo`` (``ppo_mask``: MaskablePPO), ``<name>.yml``
    :param algorithm: the SB3 (or sb3-contrib, or sb3-sparse) algorithm class
    :param policies: policy name -> policy class registered in the algorithm's ``policy_aliases``
    :param family: ``"off_policy"`` (actor, critics on observation and action, their own optimizers),
        ``"on_policy"`` (policy and value networks on the observation, one optimizer), ``"value_based"``
        (a Q-network only) or ``"streaming"`` (StreamAC)
    :param actor_heads_per_action: actor head outputs per action dimension (Gaussian mean and
        log-std: 2, a deterministic action, or on-policy means or logits: 1); ``None`` when the
        algorithm has no actor or no SimBa size presets
    :param critic_outputs_kwarg: the policy argument giving the outputs of each critic head (TQC's
        ``n_quantiles``), ``None`` for one Q-value
    :param losses: per-sample losses for the gradient-interference diagnostic (``None``: not measured)
    :param zoo: whether the RL Baselines3 Zoo can train it by this name (SB3's and sb3-contrib's
        algorithms; sb3-sparse's own through ``python -m sb3_sparse.zoo``, see :mod:`sb3_sparse.zoo`)
    :param hyperparameters: whether the package ships ``<name>.yml`` (the runner trains the algorithms
        that have one)
    :param zoo_sampler: the zoo's ``-optimize`` sampler it borrows (:mod:`sb3_sparse.optimize`), when
        the zoo has none under its name
    """

    name: str
    algorithm: type[BaseAlgorithm]
    policies: Mapping[str, type[BasePolicy]] = field(default_factory=dict)
    family: str = "off_policy"
    actor_heads_per_action: int | None = None
    critic_outputs_kwarg: str | None = None
    losses: PerSampleLosses | None = None
    zoo: bool = True
    hyperparameters: bool = True
    zoo_sampler: str | None = None


ALGORITHM_TABLE: tuple[AlgorithmEntry, ...] = (
    AlgorithmEntry(
        "sac",
        stable_baselines3.SAC,
        {
            POLICY_NAME: SparseSimBaPolicy,
            CNN_POLICY_NAME: SparseSimBaCnnPolicy,
            MULTI_INPUT_POLICY_NAME: SparseSimBaMultiInputPolicy,
        },
        actor_heads_per_action=2,
        losses=MAXIMUM_ENTROPY,
    ),
    AlgorithmEntry(
        "td3",
        stable_baselines3.TD3,
        {
            POLICY_NAME: SparseSimBaTD3Policy,
            CNN_POLICY_NAME: SparseSimBaCnnTD3Policy,
            MULTI_INPUT_POLICY_NAME: SparseSimBaTD3MultiInputPolicy,
        },
        actor_heads_per_action=1,
        losses=DETERMINISTIC,
    ),
    AlgorithmEntry(
        "ddpg",
        stable_baselines3.DDPG,
        {
            POLICY_NAME: SparseSimBaTD3Policy,
            CNN_POLICY_NAME: SparseSimBaCnnTD3Policy,
            MULTI_INPUT_POLICY_NAME: SparseSimBaTD3MultiInputPolicy,
        },
        actor_heads_per_action=1,
        losses=DETERMINISTIC,
    ),
    AlgorithmEntry(
        "tqc",
        sb3_contrib.TQC,
        {
            POLICY_NAME: SparseSimBaTQCPolicy,
            CNN_POLICY_NAME: SparseSimBaCnnTQCPolicy,
            MULTI_INPUT_POLICY_NAME: SparseSimBaTQCMultiInputPolicy,
        },
        actor_heads_per_action=2,
        critic_outputs_kwarg="n_quantiles",
        losses=MAXIMUM_ENTROPY,
    ),
    AlgorithmEntry(
        "crossq",
        sb3_contrib.CrossQ,
        {POLICY_NAME: SparseSimBaCrossQPolicy, MULTI_INPUT_POLICY_NAME: SparseSimBaCrossQMultiInputPolicy},
        actor_heads_per_action=2,
        losses=MAXIMUM_ENTROPY,
        zoo_sampler="sac",
    ),
    # The reference code's own updates (sb3_sparse.reference), on SAC's and DDPG's policies.
    AlgorithmEntry(
        "reference_sac",
        ReferenceSAC,
        {
            POLICY_NAME: SparseSimBaPolicy,
            CNN_POLICY_NAME: SparseSimBaCnnPolicy,
            MULTI_INPUT_POLICY_NAME: SparseSimBaMultiInputPolicy,
        },
        actor_heads_per_action=2,
        losses=MAXIMUM_ENTROPY,
        zoo_sampler="sac",
    ),
    AlgorithmEntry(
        "reference_ddpg",
        ReferenceDDPG,
        {
            POLICY_NAME: SparseSimBaTD3Policy,
            CNN_POLICY_NAME: SparseSimBaCnnTD3Policy,
            MULTI_INPUT_POLICY_NAME: SparseSimBaTD3MultiInputPolicy,
        },
        actor_heads_per_action=1,
        losses=DETERMINISTIC,
        zoo_sampler="td3",
    ),
    # On-policy: one optimizer, separate policy and value encoders, every action space of SB3's ActorCriticPolicy.
    AlgorithmEntry("ppo", stable_baselines3.PPO, ON_POLICY, "on_policy", actor_heads_per_action=1),
    AlgorithmEntry("a2c", stable_baselines3.A2C, ON_POLICY, "on_policy", actor_heads_per_action=1),
    AlgorithmEntry("trpo", sb3_contrib.TRPO, ON_POLICY, "on_policy", actor_heads_per_action=1),
    # No file: MaskablePPO needs an environment that gives action masks, which no registered task does.
    AlgorithmEntry(
        "ppo_mask",
        sb3_contrib.MaskablePPO,
        {
            POLICY_NAME: SparseSimBaMaskablePolicy,
            CNN_POLICY_NAME: SparseSimBaCnnMaskablePolicy,
            MULTI_INPUT_POLICY_NAME: SparseSimBaMultiInputMaskablePolicy,
        },
        "on_policy",
        actor_heads_per_action=1,
        hyperparameters=False,
        zoo_sampler="ppo",
    ),
    # Value-based: a SimBa Q-network (the critic) and its target, Discrete actions.
    AlgorithmEntry(
        "dqn",
        stable_baselines3.DQN,
        {
            POLICY_NAME: SparseSimBaDQNPolicy,
            CNN_POLICY_NAME: SparseSimBaCnnDQNPolicy,
            MULTI_INPUT_POLICY_NAME: SparseSimBaMultiInputDQNPolicy,
        },
        "value_based",
        losses=VALUE_BASED,
    ),
    AlgorithmEntry(
        "qrdqn",
        sb3_contrib.QRDQN,
        {
            POLICY_NAME: SparseSimBaQRDQNPolicy,
            CNN_POLICY_NAME: SparseSimBaCnnQRDQNPolicy,
            MULTI_INPUT_POLICY_NAME: SparseSimBaMultiInputQRDQNPolicy,
        },
        "value_based",
        critic_outputs_kwarg="n_quantiles",
        losses=VALUE_BASED,
    ),
    # The LSTM between each SimBa encoder and its head; no size presets (they count feed-forward networks).
    AlgorithmEntry(
        "ppo_lstm",
        sb3_contrib.RecurrentPPO,
        {
            POLICY_NAME: SparseSimBaRecurrentPolicy,
            CNN_POLICY_NAME: SparseSimBaCnnRecurrentPolicy,
            MULTI_INPUT_POLICY_NAME: SparseSimBaMultiInputRecurrentPolicy,
        },
        "on_policy",
    ),
    # Its own policy (registered by the class itself) and no SimBa presets; the zoo does not know it.
    AlgorithmEntry("stream_ac", StreamAC, family="streaming", zoo=False),
)

#: SB3 and sb3-contrib algorithms that take none of the package's policies (a clear error instead):
#: ARS searches over linear or MLP policies without gradients.
UNSUPPORTED_ALGORITHMS: tuple[type[BaseAlgorithm], ...] = (sb3_contrib.ARS,)

ALGORITHMS: dict[str, AlgorithmEntry] = {entry.name: entry for entry in ALGORITHM_TABLE}


def algorithm_entry(name: str) -> AlgorithmEntry:
    """
    The entry of an algorithm by name.

    :param name: e.g. ``"sac"``
    :return: the entry
    """
    if name not in ALGORITHMS:
        raise ValueError(unknown_names_message("unknown algorithm", [name], list(ALGORITHMS)))
    return ALGORITHMS[name]


def entry_of(algorithm: type[BaseAlgorithm]) -> AlgorithmEntry | None:
    """
    The entry of an algorithm class, or of its nearest listed base class (a subclass of SAC is a SAC).

    :param algorithm: the class
    :return: the entry, or ``None`` when the class is not in the table
    """
    by_class = {entry.algorithm: entry for entry in ALGORITHM_TABLE}
    return next((by_class[cls] for cls in algorithm.__mro__ if cls in by_class), None)


def supported_names(policy_name: str) -> str:
    """
    The SB3 and sb3-contrib algorithms that take a policy name, in words: SB3's first.

    :param policy_name: ``"SparseSimBaPolicy"`` or ``"SparseSimBaCnnPolicy"``
    :return: e.g. ``"SAC, TD3, DDPG, TQC and CrossQ"``
    """
    modules = ("stable_baselines3", "sb3_contrib")
    entries = [entry for entry in ALGORITHM_TABLE if policy_name in entry.policies]
    entries = [entry for entry in entries if entry.algorithm.__module__.startswith(modules)]
    entries.sort(key=lambda entry: not entry.algorithm.__module__.startswith(modules[0]))
    names = [entry.algorithm.__name__ for entry in entries]
    return ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else names[0]
