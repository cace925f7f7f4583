"""Network sizes for the scaling study, and their exact parameter counts before anything is built.

The paper scales the default SimBa networks (actor 128 wide with 1 block, critic 512 wide with
2 blocks) by width or by depth. Its exact large configurations were not recovered, so the scaling
here is derived: actor ``128 k`` and critic ``512 k`` wide, or actor ``m`` and critic ``2 m``
blocks. It is well supported: on DMC dog with one critic, widths 1, 2 and 5 give 4.5M, 17.7M and
109,046,477 parameters (:func:`parameter_count`), the paper's quoted "17M" and "109M".
:func:`scaled_architecture` gives the policy_kwargs of any ``(k, m)``; :data:`SIZE_PRESETS` names
the common ones.

A preset given to the runner or a sweep scales the entry's own sizes (:func:`scale_sizes`): widths
times ``k``, blocks times ``m``. On an entry that sets no size (the DMC entries) that is the paper's
scaled network above; on one that does (DQN's Atari head of 512 x 1 block) the entry's network,
scaled: ``width2`` there is 1024 x 1 block, not the paper's critic.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import gymnasium as gym
from gymnasium import spaces

from sb3_sparse.algorithms import ALGORITHM_TABLE, POLICY_NAME, algorithm_entry
from sb3_sparse.checks import check_int
from sb3_sparse.networks import simba_parameter_count

BASE_ACTOR_HIDDEN_DIM, BASE_CRITIC_HIDDEN_DIM = 128, 512
BASE_ACTOR_NUM_BLOCKS, BASE_CRITIC_NUM_BLOCKS = 1, 2

# name -> (width scale k, depth scale m). The fractional widths are for CPU-sized studies.
SIZE_PRESETS: dict[str, tuple[float, int]] = {
    "width0.25": (0.25, 1),
    "width0.5": (0.5, 1),
    "base": (1, 1),
    "width2": (2, 1),
    "width3": (3, 1),
    "width4": (4, 1),
    "width5": (5, 1),
    "depth2": (1, 2),
    "depth3": (1, 3),
    "depth4": (1, 4),
}
#: The algorithms with SimBa size presets (all but the streaming one), stochastic actors first.
PRESET_ALGORITHMS = [
    entry.name
    for entry in sorted(ALGORITHM_TABLE, key=lambda entry: -(entry.actor_heads_per_action or 0))
    if entry.family != "streaming"
]


def scaled_architecture(width_scale: float = 1, depth_scale: int = 1) -> dict[str, int]:
    """
    The policy_kwargs of a scaled SimBa actor-critic.

    :param width_scale: ``k``: actor width ``128 k``, critic width ``512 k`` (``128 k`` must be a whole number)
    :param depth_scale: ``m``: actor ``m`` blocks, critic ``2 m`` blocks
    :return: ``actor_hidden_dim``, ``actor_num_blocks``, ``critic_hidden_dim``, ``critic_num_blocks``
    """
    actor_width = BASE_ACTOR_HIDDEN_DIM * width_scale
    if isinstance(width_scale, bool) or not isinstance(width_scale, (int, float)) or width_scale <= 0 or actor_width % 1:
        raise ValueError(f"width_scale must be > 0 with 128 * width_scale a whole number, got {width_scale!r}")
    m = check_int("depth_scale", depth_scale)
    return dict(
        actor_hidden_dim=int(actor_width),
        actor_num_blocks=BASE_ACTOR_NUM_BLOCKS * m,
        critic_hidden_dim=int(BASE_CRITIC_HIDDEN_DIM * width_scale),
        critic_num_blocks=BASE_CRITIC_NUM_BLOCKS * m,
    )


def size_preset(name: str) -> dict[str, int]:
    """
    The policy_kwargs of a named size preset.

    :param name: one of :data:`SIZE_PRESETS`
    :return: the four size arguments of the policy
    """
    if name not in SIZE_PRESETS:
        raise ValueError(f"unknown size preset {name!r}; valid presets: {', '.join(SIZE_PRESETS)}")
    return scaled_architecture(*SIZE_PRESETS[name])


#: The size arguments of a SimBa policy: widths scale with ``k``, block counts with ``m``.
WIDTH_ARGUMENTS = ("actor_hidden_dim", "critic_hidden_dim")
DEPTH_ARGUMENTS = ("actor_num_blocks", "critic_num_blocks")


def scale_sizes(sizes: Mapping[str, Any], preset: str) -> dict[str, int]:
    """
    The sizes of an entry scaled by a preset: each width times ``k``, each block count times ``m``.

    :param sizes: the entry's size arguments (:data:`WIDTH_ARGUMENTS`, :data:`DEPTH_ARGUMENTS`), its
        own values or the policy's defaults; the policy's other arguments may be present and are left out
    :param preset: one of :data:`SIZE_PRESETS`
    :return: the scaled size arguments
    :raises ValueError: an unknown preset, or a width that the preset would make fractional
    """
    if preset not in SIZE_PRESETS:
        raise ValueError(f"unknown size preset {preset!r}; valid presets: {', '.join(SIZE_PRESETS)}")
    width_scale, depth_scale = SIZE_PRESETS[preset]
    scaled: dict[str, int] = {}
    for name in WIDTH_ARGUMENTS:
        if name in sizes:
            width = check_int(name, sizes[name]) * width_scale
            if width % 1:
                raise ValueError(f"preset {preset} scales {name}={sizes[name]} by {width_scale} to {width}: not a whole width")
            scaled[name] = int(width)
    for name in DEPTH_ARGUMENTS:
        if name in sizes:
            scaled[name] = check_int(name, sizes[name], minimum=0) * depth_scale
    return scaled


@dataclass(frozen=True)
class ParameterCount:
    """
    Trainable parameters of a sparse SimBa actor-critic (target networks, which are copies, excluded).

    :param actor: actor parameters
    :param critic: parameters of all critics
    """

    actor: int
    critic: int

    @property
    def total(self) -> int:
        """Actor plus critics."""
        return self.actor + self.critic

    def __str__(self) -> str:
        return f"{self.total:,} parameters ({self.total / 1e6:.2f}M: actor {self.actor:,}, critic {self.critic:,})"


def parameter_count(
    observation_dim: int,
    action_dim: int,
    actor_hidden_dim: int = BASE_ACTOR_HIDDEN_DIM,
    actor_num_blocks: int = BASE_ACTOR_NUM_BLOCKS,
    critic_hidden_dim: int = BASE_CRITIC_HIDDEN_DIM,
    critic_num_blocks: int = BASE_CRITIC_NUM_BLOCKS,
    n_critics: int = 1,
    algorithm: str = "sac",
    n_quantiles: int | None = None,
    continuous_actions: bool = True,
) -> ParameterCount:
    """
    Exact parameter count of a sparse SimBa policy, without building it. Sparsity does not
    change it: pruned weights are zeros inside dense tensors. By family (``AlgorithmEntry.family``):

    * off-policy actor-critics: an actor on the observation, ``n_critics`` critics on observation and action;
    * on-policy: a policy network on the observation with ``action_dim`` outputs (plus SB3's
      state-independent ``log_std``, ``action_dim`` more, for continuous actions), and a value network
      with one output;
    * value-based: no actor; one Q-network (the critic sizes) with ``action_dim`` outputs (times the quantiles).

    :param observation_dim: flat observation size
    :param action_dim: action size (continuous), or the number of discrete actions (the head's outputs:
        ``n`` for Discrete, ``sum(nvec)`` for MultiDiscrete)
    :param actor_hidden_dim: actor width
    :param actor_num_blocks: actor residual blocks
    :param critic_hidden_dim: critic width
    :param critic_num_blocks: critic residual blocks
    :param n_critics: critics (the paper's DMC runs use 1; SB3 defaults to 2); 1 for the other families
    :param algorithm: one of :data:`PRESET_ALGORITHMS` (the heads differ)
    :param n_quantiles: quantiles per critic output (TQC, QR-DQN); ``None``: the policy's default (25, 200)
    :param continuous_actions: Box actions (on-policy: a Gaussian with its ``log_std``)
    :return: the counts
    """
    if algorithm not in PRESET_ALGORITHMS:
        raise ValueError(f"unknown algorithm {algorithm!r}; valid algorithms: {', '.join(PRESET_ALGORITHMS)}")
    for name, value in (("observation_dim", observation_dim), ("action_dim", action_dim), ("n_critics", n_critics)):
        check_int(name, value)
    entry = algorithm_entry(algorithm)
    if entry.family != "off_policy" and n_critics != 1:
        raise ValueError(f"{algorithm} has one value network: n_critics must be 1, got {n_critics}")
    outputs = 1
    if entry.critic_outputs_kwarg is not None:
        default = entry.policies[POLICY_NAME].sb3_policy_kwargs[entry.critic_outputs_kwarg]  # type: ignore[attr-defined]
        outputs = check_int(entry.critic_outputs_kwarg, default if n_quantiles is None else n_quantiles)
    if entry.family == "value_based":
        return ParameterCount(
            actor=0, critic=simba_parameter_count(observation_dim, critic_hidden_dim, critic_num_blocks, action_dim * outputs)
        )
    heads = cast(int, entry.actor_heads_per_action) * action_dim
    actor = simba_parameter_count(observation_dim, actor_hidden_dim, actor_num_blocks, heads)
    if entry.family == "on_policy":
        log_std = action_dim if continuous_actions else 0
        return ParameterCount(
            actor=actor + log_std, critic=simba_parameter_count(observation_dim, critic_hidden_dim, critic_num_blocks, 1)
        )
    critic = simba_parameter_count(observation_dim + action_dim, critic_hidden_dim, critic_num_blocks, outputs)
    return ParameterCount(actor=actor, critic=n_critics * critic)


def env_dimensions(env_id: str) -> tuple[int, int]:
    """
    Flat observation size and action size (the size of a continuous action, or the outputs of a
    discrete action head) of a gymnasium environment (made, read, closed).

    :param env_id: a registered id, e.g. ``"sb3_sparse/dmc-dog-run-v0"``
    :return: ``(observation_dim, action_dim)``
    """
    observation_space, action_space = _spaces(env_id)
    return observation_space.shape[0], _action_outputs(env_id, action_space)


def _spaces(env_id: str) -> tuple[spaces.Box, spaces.Space]:
    env = gym.make(env_id)
    try:
        observation_space, action_space = env.observation_space, env.action_space
    finally:
        env.close()
    if not isinstance(observation_space, spaces.Box) or len(observation_space.shape) != 1:
        raise ValueError(f"{env_id} has observation space {observation_space}; SimBa needs a flat Box")
    return observation_space, action_space


def _action_outputs(env_id: str, action_space: spaces.Space) -> int:
    if isinstance(action_space, spaces.Box) and len(action_space.shape) == 1:
        return int(action_space.shape[0])
    if isinstance(action_space, spaces.Discrete):
        return int(action_space.n)
    if isinstance(action_space, spaces.MultiDiscrete):
        return int(action_space.nvec.sum())
    if isinstance(action_space, spaces.MultiBinary) and isinstance(action_space.n, int):
        return action_space.n
    raise ValueError(f"{env_id} has action space {action_space}; expected a flat Box, Discrete, MultiDiscrete or MultiBinary")


def parameter_count_for_env(env_id: str, preset: str = "base", n_critics: int = 1, algorithm: str = "sac") -> ParameterCount:
    """
    Exact parameter count of a size preset on an environment, without building any network.

    :param env_id: a registered gymnasium id
    :param preset: one of :data:`SIZE_PRESETS`
    :param n_critics: critics
    :param algorithm: see :func:`parameter_count`
    :return: the counts
    """
    sizes = size_preset(preset)
    observation_space, action_space = _spaces(env_id)
    continuous = isinstance(action_space, spaces.Box)
    action_dim = _action_outputs(env_id, action_space)
    return parameter_count(
        observation_space.shape[0],
        action_dim,
        **sizes,
        n_critics=n_critics,
        algorithm=algorithm,
        continuous_actions=continuous,
    )
