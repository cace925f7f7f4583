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

from typing import Any, ClassVar

import torch as th
from sb3_contrib.crossq.policies import CrossQPolicy

from sb3_sparse.policies.architecture import SQUASHED_GAUSSIAN_KWARGS
from sb3_sparse.policies.common import SparseSimBaMixin
from sb3_sparse.policies.simba_modules import SimBaActor, SimBaContinuousCritic


class _NoBatchStatistics:
    def set_bn_training_mode(self, mode: bool) -> None:
        """CrossQ's switch for BatchRenorm statistics; SimBa's LayerNorm keeps none, so nothing changes."""


class SimBaCrossQActor(_NoBatchStatistics, SimBaActor):
    """The SimBa squashed-Gaussian actor with CrossQ's ``set_bn_training_mode``."""


class SimBaCrossQCritic(_NoBatchStatistics, SimBaContinuousCritic):
    """SimBa critics with CrossQ's ``set_bn_training_mode``."""


class SparseSimBaCrossQPolicy(SparseSimBaMixin, CrossQPolicy):
    """
    CrossQ policy with SimBa actor and critics (no targets), pruned once with Erdős–Rényi densities
    and kept static; registered as ``"SparseSimBaPolicy"`` for CrossQ. The arguments are those of
    :class:`~sb3_sparse.policies.sac.SparseSimBaPolicy`; without ``optimizer_kwargs``, Adam and
    AdamW use CrossQ's ``betas=(0.5, 0.999)``, as sb3-contrib does.
    """

    actor_class = SimBaCrossQActor
    critic_class = SimBaCrossQCritic
    target_networks = ()
    supports_sde = True
    sb3_policy_kwargs: ClassVar[dict[str, Any]] = SQUASHED_GAUSSIAN_KWARGS
    refused_sb3_arguments: ClassVar[dict[str, str]] = dict.fromkeys(
        ("batch_norm", "batch_norm_momentum", "batch_norm_eps", "renorm_warmup_steps"),
        "the SimBa critics keep SimBa's LayerNorm (the paper's networks), so CrossQ's BatchRenorm has nothing to set",
    )
    actor: SimBaCrossQActor  # type: ignore[assignment]
    critic: SimBaCrossQCritic  # type: ignore[assignment]

    def _default_optimizer_kwargs(
        self, optimizer_class: type[th.optim.Optimizer], optimizer_kwargs: dict[str, Any] | None
    ) -> dict[str, Any] | None:
        if optimizer_kwargs is None and optimizer_class in (th.optim.Adam, th.optim.AdamW):
            return dict(betas=(0.5, 0.999))
        return optimizer_kwargs


class SparseSimBaCrossQMultiInputPolicy(SparseSimBaCrossQPolicy):
    """``SparseSimBaMultiInputPolicy`` of CrossQ: Dict observations through SB3's ``CombinedExtractor``; the
    arguments are those of :class:`SparseSimBaCrossQPolicy`."""

    dict_observations = True
