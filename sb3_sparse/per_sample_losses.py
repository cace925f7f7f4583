"""Per-sample actor and critic losses of each algorithm family, for the gradient-interference
diagnostic (:func:`sb3_sparse.diagnostics.per_sample_gradient_gram` needs one loss per sample).
The algorithm table (:mod:`sb3_sparse.algorithms`) says which functions each algorithm uses.

Each actor loss maps a model and a batch of observations to a ``(batch,)`` tensor; each critic
loss maps a model, a replay batch and fixed TD targets (from :func:`td_targets`) to a ``(batch,)``
tensor. They read the model as it is and change nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch as th
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.type_aliases import ReplayBufferSamples


def mean_or_min_q(q_values: th.Tensor | tuple[th.Tensor, ...]) -> th.Tensor:
    """
    Per-sample Q estimate: the minimum over critics (SAC/TD3 tuples of ``(batch, 1)``), or the mean
    over critics and quantiles (TQC's ``(batch, n_critics, n_quantiles)``).

    :param q_values: the critic's output
    :return: ``(batch,)``
    """
    if isinstance(q_values, tuple):
        return th.cat(q_values, dim=1).min(dim=1).values
    return q_values.reshape(q_values.shape[0], -1).mean(dim=1)


def entropy_coefficient(model: Any) -> th.Tensor:
    """The current temperature of a maximum-entropy algorithm (learned ``log_ent_coef`` or fixed), detached."""
    log_ent_coef = getattr(model, "log_ent_coef", None)
    return th.exp(log_ent_coef.detach()) if log_ent_coef is not None else model.ent_coef_tensor


def maximum_entropy_actor_losses(model: Any, observations: th.Tensor) -> th.Tensor:
    """SAC, TQC, CrossQ: ``alpha log pi(a|s) - Q(s, a)`` with ``a`` sampled from the actor."""
    policy = model.policy
    actions, log_prob = policy.actor.action_log_prob(observations)
    return entropy_coefficient(model) * log_prob.reshape(-1) - mean_or_min_q(policy.critic(observations, actions))


def deterministic_actor_losses(model: Any, observations: th.Tensor) -> th.Tensor:
    """TD3, DDPG: ``-Q_1(s, pi(s))``."""
    policy = model.policy
    return -policy.critic.q1_forward(observations, policy.actor(observations)).reshape(-1)


def td_targets(model: Any, batch: ReplayBufferSamples) -> th.Tensor:
    """
    ``r + gamma (1 - done) Q_target(s', pi_det(s'))``: the target critic (the critic when there is
    none, as in CrossQ) at the deterministic next action, without gradients.

    :param model: the algorithm
    :param batch: replay samples
    :return: ``(batch,)``
    """
    policy = model.policy
    with th.no_grad():
        next_actions = policy.actor._predict(batch.next_observations, deterministic=True)
        target_critic = getattr(policy, "critic_target", policy.critic)
        next_q = mean_or_min_q(target_critic(batch.next_observations, next_actions))
        return batch.rewards.reshape(-1) + (1 - batch.dones.reshape(-1)) * model.gamma * next_q


def squared_td_errors(model: Any, batch: ReplayBufferSamples, targets: th.Tensor) -> th.Tensor:
    """The squared TD error of every critic output (critics, quantiles), averaged per sample."""
    q_values = model.policy.critic(batch.observations, batch.actions)
    q_values = th.cat(q_values, dim=1) if isinstance(q_values, tuple) else q_values.reshape(len(targets), -1)
    return (q_values - targets[:, None]).square().mean(dim=1)


def _action_values(values: th.Tensor, actions: th.Tensor | None = None) -> th.Tensor:
    """Q-values ``(batch, n_actions)`` or quantiles ``(batch, n_quantiles, n_actions)`` at ``actions``
    (``None``: at the greedy action of the mean over quantiles): ``(batch, outputs per action)``."""
    if values.dim() == 2:
        values = values[:, None, :]
    if actions is None:
        actions = values.mean(dim=1).argmax(dim=1)
    index = actions.reshape(-1, 1, 1).long().expand(-1, values.shape[1], 1)
    return values.gather(2, index).squeeze(2)


def greedy_td_targets(model: Any, batch: ReplayBufferSamples) -> th.Tensor:
    """
    DQN, QR-DQN: ``r + gamma (1 - done) max_a' Q_target(s', a')`` (QR-DQN: the target quantiles'
    mean at the greedy action), without gradients.

    :param model: the algorithm
    :param batch: replay samples
    :return: ``(batch,)``
    """
    policy = model.policy
    with th.no_grad():
        target = getattr(policy, f"{policy.network_attribute}_target")
        next_values = _action_values(target(batch.next_observations)).mean(dim=1)
        return batch.rewards.reshape(-1) + (1 - batch.dones.reshape(-1)) * model.gamma * next_values


def squared_q_errors(model: Any, batch: ReplayBufferSamples, targets: th.Tensor) -> th.Tensor:
    """DQN, QR-DQN: the squared TD error of the taken action's value (of each of its quantiles, averaged)."""
    values = _action_values(model.policy.value_network(batch.observations), batch.actions)
    return (values - targets[:, None]).square().mean(dim=1)


@dataclass(frozen=True)
class PerSampleLosses:
    """
    The per-sample losses of one algorithm family.

    :param actor: ``(model, observations) -> (batch,)``; ``None`` when there is no actor (DQN)
    :param critic: ``(model, batch, targets) -> (batch,)``
    :param targets: ``(model, batch) -> (batch,)``, computed before the critic's Gram hooks
    """

    actor: Callable[[BaseAlgorithm, th.Tensor], th.Tensor] | None = None
    critic: Callable[[BaseAlgorithm, ReplayBufferSamples, th.Tensor], th.Tensor] = squared_td_errors
    targets: Callable[[BaseAlgorithm, ReplayBufferSamples], th.Tensor] = td_targets


MAXIMUM_ENTROPY = PerSampleLosses(actor=maximum_entropy_actor_losses)
DETERMINISTIC = PerSampleLosses(actor=deterministic_actor_losses)
#: DQN and QR-DQN: the Q-network's squared TD errors (QR-DQN: its quantiles' against the greedy target
#: mean, as for TQC's critics; the algorithm itself trains on the quantile Huber loss).
VALUE_BASED = PerSampleLosses(critic=squared_q_errors, targets=greedy_td_targets)
