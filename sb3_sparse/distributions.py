"""The tanh-squashed Gaussian with the exact log-density of the paper's reference code.

SB3's :class:`~stable_baselines3.common.distributions.SquashedDiagGaussianDistribution` computes
``log pi(a) = log N(u) - sum log(1 - tanh(u)^2 + 1e-6)``: the ``1e-6`` caps the saturation
penalty of each action dimension at ``-log(1e-6) = 13.8`` and flattens its gradient once
``|u|`` passes ~7. The reference uses the exact identity
``log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u))``, computed from the sampled ``u`` itself.
"""

from __future__ import annotations

import math

import torch as th
import torch.nn.functional as F
from stable_baselines3.common.distributions import (
    DiagGaussianDistribution,
    SquashedDiagGaussianDistribution,
    TanhBijector,
    sum_independent_dims,
)


def tanh_log_det_jacobian(gaussian_actions: th.Tensor) -> th.Tensor:
    """
    ``log(1 - tanh(u)^2)`` per element, exactly and stably: ``2 (log 2 - u - softplus(-2u))``.

    :param gaussian_actions: the pre-tanh values ``u``
    :return: a tensor of the same shape
    """
    return 2.0 * (math.log(2.0) - gaussian_actions - F.softplus(-2.0 * gaussian_actions))


class ExactSquashedDiagGaussianDistribution(SquashedDiagGaussianDistribution):
    """
    SB3's squashed diagonal Gaussian with the exact tanh correction of the log-density. Use it from
    any SAC-family actor: ``policy_kwargs=dict(exact_log_prob=True)`` on the sparse SimBa policies,
    or ``model.actor.action_dist = ExactSquashedDiagGaussianDistribution(action_dim)``;
    :class:`~sb3_sparse.reference.ReferenceSAC` always uses it.

    :param action_dim: number of action dimensions
    """

    def log_prob(self, actions: th.Tensor, gaussian_actions: th.Tensor | None = None) -> th.Tensor:
        """
        :param actions: squashed actions in (-1, 1)
        :param gaussian_actions: their pre-tanh values (exact); when ``None`` they are recovered with a
            clipped ``atanh``, which is exact only away from the bounds
        :return: log-density of each sample, summed over the action dimensions
        """
        if gaussian_actions is None:
            gaussian_actions = TanhBijector.inverse(actions)
        log_prob = DiagGaussianDistribution.log_prob(self, gaussian_actions)
        return log_prob - sum_independent_dims(tanh_log_det_jacobian(gaussian_actions))
