"""``SparseSimBaTQCPolicy`` for sb3-contrib's TQC: SimBa actor and quantile critics, each critic a
SimBa network with its own static Erdős–Rényi masks."""

from __future__ import annotations

from typing import Any, ClassVar

import torch as th
from sb3_contrib.tqc.policies import TQCPolicy

from sb3_sparse.checks import check_int
from sb3_sparse.policies.architecture import SQUASHED_GAUSSIAN_KWARGS
from sb3_sparse.policies.common import SparseSimBaMixin
from sb3_sparse.policies.simba_modules import SimBaActor, SimBaContinuousCritic


class SimBaQuantileCritic(SimBaContinuousCritic):
    """
    sb3-contrib's TQC ``Critic``: ``n_critics`` SimBa networks with ``n_quantiles`` outputs each,
    returned stacked as ``(batch, n_critics, n_quantiles)``.

    :param n_quantiles: quantiles per critic
    :param kwargs: the arguments of :class:`~sb3_sparse.policies.simba_modules.SimBaContinuousCritic`
    """

    def __init__(self, n_quantiles: int = 25, **kwargs: Any) -> None:
        super().__init__(num_outputs=check_int("n_quantiles", n_quantiles), **kwargs)
        self.n_quantiles = n_quantiles
        self.quantiles_total = n_quantiles * self.n_critics

    def _get_constructor_parameters(self) -> dict[str, Any]:
        parameters = super()._get_constructor_parameters()
        parameters["n_quantiles"] = parameters.pop("num_outputs")
        return parameters

    def forward(self, obs: th.Tensor, action: th.Tensor) -> th.Tensor:  # type: ignore[override]
        return th.stack(super().forward(obs, action), dim=1)


class SparseSimBaTQCPolicy(SparseSimBaMixin, TQCPolicy):
    """
    TQC policy with a SimBa squashed-Gaussian actor and SimBa quantile critics, pruned once with
    Erdős–Rényi densities and kept static; registered as ``"SparseSimBaPolicy"`` for TQC. The
    arguments are those of :class:`~sb3_sparse.policies.sac.SparseSimBaPolicy`, and:

    :param n_quantiles: quantiles per critic (default 25)
    """

    actor_class = SimBaActor
    critic_class = SimBaQuantileCritic
    supports_sde = True
    sb3_policy_kwargs: ClassVar[dict[str, Any]] = {"n_quantiles": 25, **SQUASHED_GAUSSIAN_KWARGS}
    actor: SimBaActor  # type: ignore[assignment]
    critic: SimBaQuantileCritic  # type: ignore[assignment]
    critic_target: SimBaQuantileCritic  # type: ignore[assignment]

    def _critic_kwargs(self) -> dict[str, Any]:
        return {"n_quantiles": self._extra_sb3_kwargs["n_quantiles"]}


class SparseSimBaTQCMultiInputPolicy(SparseSimBaTQCPolicy):
    """``SparseSimBaMultiInputPolicy`` of TQC: Dict observations (HER's goal-conditioned
    tasks), as :class:`~sb3_sparse.policies.sac.SparseSimBaMultiInputPolicy`; the arguments are those of
    :class:`SparseSimBaTQCPolicy`."""

    dict_observations = True
