"""``SparseSimBaTQCPolicy`` for sb3-contrib's TQC: SimBa actor and quantile critics, each critic a
SimBa network with its own static Erdős–Rényi masks."""

from __future__ import annotations

from typing import Any

import torch as th
from gymnasium import spaces
from sb3_contrib.tqc.policies import TQCPolicy
from stable_baselines3.common.type_aliases import Schedule

from sb3_sparse.networks import check_positive_int
from sb3_sparse.policies.common import (
    SimBaContinuousCritic,
    SimBaSquashedGaussianActor,
    SparseSimBaMixin,
    prefer_fused_optimizer,
)


class SimBaQuantileCritic(SimBaContinuousCritic):
    """
    TQC's critic: ``n_critics`` SimBa networks with ``n_quantiles`` outputs each, returned stacked as
    ``(batch, n_critics, n_quantiles)`` like sb3-contrib's ``Critic``.

    :param n_quantiles: quantiles per critic
    :param kwargs: the arguments of :class:`~sb3_sparse.policies.common.SimBaContinuousCritic`
    """

    def __init__(self, n_quantiles: int = 25, **kwargs: Any) -> None:
        super().__init__(num_outputs=check_positive_int("n_quantiles", n_quantiles), **kwargs)
        self.n_quantiles = n_quantiles
        self.quantiles_total = n_quantiles * self.n_critics

    def forward(self, obs: th.Tensor, action: th.Tensor) -> th.Tensor:  # type: ignore[override]
        return th.stack(super().forward(obs, action), dim=1)


class SparseSimBaTQCPolicy(SparseSimBaMixin, TQCPolicy):
    """
    TQC policy with a SimBa squashed-Gaussian actor and SimBa quantile critics, pruned once with
    Erdős–Rényi densities and kept static; registered as ``"SparseSimBaPolicy"`` for TQC.

    :param observation_space: observation space (a flat Box)
    :param action_space: action space (a Box)
    :param lr_schedule: learning rate schedule
    :param n_quantiles: quantiles per critic
    :param n_critics: number of critics
    :param optimizer_class: optimizer of actor and critic
    :param optimizer_kwargs: keyword arguments of the optimizer (Adam/AdamW get ``fused=True`` unless set)
    :param use_sde: must be False (gSDE is not supported)
    :param architecture_kwargs: the SimBa and sparsity settings of
        :class:`~sb3_sparse.policies.common.SimBaArchitecture`
    """

    actor: SimBaSquashedGaussianActor  # type: ignore[assignment]
    critic: SimBaQuantileCritic  # type: ignore[assignment]
    critic_target: SimBaQuantileCritic  # type: ignore[assignment]

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        n_quantiles: int = 25,
        n_critics: int = 2,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
        use_sde: bool = False,
        **architecture_kwargs: Any,
    ) -> None:
        self._init_simba(observation_space, action_space, n_critics, use_sde, architecture_kwargs)
        check_positive_int("n_quantiles", n_quantiles)
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            optimizer_class=optimizer_class,
            optimizer_kwargs=prefer_fused_optimizer(optimizer_class, optimizer_kwargs),
            n_quantiles=n_quantiles,
            n_critics=n_critics,
        )

    def make_actor(self, features_extractor: Any = None) -> SimBaSquashedGaussianActor:
        return SimBaSquashedGaussianActor(**self._network_kwargs("actor")).to(self.device)

    def make_critic(self, features_extractor: Any = None) -> SimBaQuantileCritic:
        return SimBaQuantileCritic(
            **self._network_kwargs("critic"),
            n_critics=self.critic_kwargs["n_critics"],
            n_quantiles=self.critic_kwargs["n_quantiles"],
        ).to(self.device)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return dict(
            self._simba_constructor_parameters(),
            n_critics=self.critic_kwargs["n_critics"],
            n_quantiles=self.critic_kwargs["n_quantiles"],
        )
