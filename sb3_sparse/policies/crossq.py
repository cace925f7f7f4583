"""``SparseSimBaCrossQPolicy`` for sb3-contrib's CrossQ: SimBa actor and critics with static
Erdős–Rényi masks.

CrossQ drops the target network and evaluates ``(s, a)`` and ``(s', a')`` in one joint pass so
that the critic's BatchRenorm layers normalize both with the same statistics. SimBa networks
keep SimBa's LayerNorm instead (this package implements the paper's networks; swapping the
normalization would be a different method): LayerNorm normalizes each sample on its own, so
the joint pass equals two separate passes, and CrossQ here is SAC without target networks on
LayerNorm-regularized critics. The ``set_bn_training_mode`` calls of CrossQ find no batch
statistics to switch.
"""

from __future__ import annotations

from typing import Any

import torch as th
from gymnasium import spaces
from sb3_contrib.crossq.policies import CrossQPolicy
from stable_baselines3.common.type_aliases import Schedule

from sb3_sparse.policies.common import (
    SimBaContinuousCritic,
    SimBaSquashedGaussianActor,
    SparseSimBaMixin,
    prefer_fused_optimizer,
)


class _NoBatchStatistics:
    def set_bn_training_mode(self, mode: bool) -> None:
        """CrossQ's switch for BatchRenorm statistics; SimBa's LayerNorm keeps none, so nothing changes."""


class SimBaCrossQActor(_NoBatchStatistics, SimBaSquashedGaussianActor):
    """The SimBa squashed-Gaussian actor with CrossQ's ``set_bn_training_mode``."""


class SimBaCrossQCritic(_NoBatchStatistics, SimBaContinuousCritic):
    """SimBa critics with CrossQ's ``set_bn_training_mode``."""


class SparseSimBaCrossQPolicy(SparseSimBaMixin, CrossQPolicy):
    """
    CrossQ policy with SimBa actor and critics, pruned once with Erdős–Rényi densities and kept
    static; registered as ``"SparseSimBaPolicy"`` for CrossQ. Without ``optimizer_kwargs``, Adam
    and AdamW use CrossQ's ``betas=(0.5, 0.999)``, as sb3-contrib does.

    :param observation_space: observation space (a flat Box)
    :param action_space: action space (a Box)
    :param lr_schedule: learning rate schedule
    :param n_critics: number of critics
    :param optimizer_class: optimizer of actor and critic
    :param optimizer_kwargs: keyword arguments of the optimizer (Adam/AdamW get ``fused=True`` unless set)
    :param use_sde: must be False (gSDE is not supported)
    :param architecture_kwargs: the SimBa and sparsity settings of
        :class:`~sb3_sparse.policies.common.SimBaArchitecture`
    """

    actor: SimBaCrossQActor  # type: ignore[assignment]
    critic: SimBaCrossQCritic  # type: ignore[assignment]

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        n_critics: int = 2,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
        use_sde: bool = False,
        **architecture_kwargs: Any,
    ) -> None:
        self._init_simba(observation_space, action_space, n_critics, use_sde, architecture_kwargs)
        if optimizer_kwargs is None and optimizer_class in (th.optim.Adam, th.optim.AdamW):
            optimizer_kwargs = dict(betas=(0.5, 0.999))
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            optimizer_class=optimizer_class,
            optimizer_kwargs=prefer_fused_optimizer(optimizer_class, optimizer_kwargs),
            n_critics=n_critics,
        )

    def make_actor(self, features_extractor: Any = None) -> SimBaCrossQActor:
        return SimBaCrossQActor(**self._network_kwargs("actor")).to(self.device)

    def make_critic(self, features_extractor: Any = None) -> SimBaCrossQCritic:
        return SimBaCrossQCritic(**self._network_kwargs("critic"), n_critics=self.critic_kwargs["n_critics"]).to(self.device)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return dict(self._simba_constructor_parameters(), n_critics=self.critic_kwargs["n_critics"])
