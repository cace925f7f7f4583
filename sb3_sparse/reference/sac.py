"""``ReferenceSAC``: SAC with the gradient step of the paper's reference code."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch as th
from stable_baselines3 import SAC
from stable_baselines3.common.distributions import SquashedDiagGaussianDistribution
from stable_baselines3.common.utils import polyak_update

from sb3_sparse.distributions import ExactSquashedDiagGaussianDistribution
from sb3_sparse.reference.common import ReferenceWarmup, frozen


def min_over_critics(q_values: tuple[th.Tensor, ...]) -> th.Tensor:
    """The per-sample minimum over an ensemble of ``(batch, 1)`` Q-values, as ``(batch,)``."""
    return th.cat(q_values, dim=1).min(dim=1).values


def squared_error_loss(q_values: tuple[th.Tensor, ...], targets: th.Tensor) -> th.Tensor:
    """The reference's critic loss: ``sum_i mean((Q_i - y)^2)`` (no 0.5; one term per critic)."""
    return sum((q.reshape(-1) - targets).square().mean() for q in q_values)  # type: ignore[return-value]


class ReferenceSAC(ReferenceWarmup, SAC):
    """
    SAC with the reference code's gradient step (SimBa code base, used by Ma et al., ICML 2025).
    It takes every argument and policy of SB3's :class:`~stable_baselines3.SAC`; what differs is
    the update. Per gradient step, on one replay batch:

    1. actor: ``mean(alpha log pi(a|s) - Q(s, a))``, ``a`` sampled from the actor, ``Q`` the current
       critic (minimum over critics) with its weights frozen (no discarded weight gradients), and
       ``alpha`` the temperature from before this step;
    2. temperature (``ent_coef="auto..."``): loss ``alpha (H - H_target)`` with ``H = -mean log pi``
       from step 1, ``alpha = exp(log_ent_coef)``;
    3. critic: target ``y = r + gamma (1 - terminated) (min_i Q_target,i(s', a') - alpha log pi(a'|s'))``
       with ``a'`` from the actor updated in step 1 and ``alpha`` from step 2; loss
       ``sum_i mean((Q_i(s, a) - y)^2)``;
    4. Polyak update of the target critic (every ``target_update_interval`` steps).

    The log-density of the tanh-squashed Gaussian is exact
    (:class:`~sb3_sparse.distributions.ExactSquashedDiagGaussianDistribution`), and the first
    update follows the ``learning_starts``-th random transition
    (:class:`~sb3_sparse.reference.common.ReferenceWarmup`). SB3's SAC instead updates the
    temperature, then the critic, then the actor, minimizes ``0.5 sum_i MSE`` and
    ``-log(alpha) (log pi + H_target)``, and adds ``1e-6`` inside the tanh correction.
    """

    def _setup_model(self) -> None:
        super()._setup_model()
        action_dist = getattr(self.actor, "action_dist", None)
        if not isinstance(action_dist, SquashedDiagGaussianDistribution):
            raise ValueError(f"ReferenceSAC needs a squashed Gaussian actor, got {type(action_dist).__name__}")
        self.actor.action_dist = ExactSquashedDiagGaussianDistribution(action_dist.action_dim)  # type: ignore[assignment]

    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        self.policy.set_training_mode(True)
        optimizers = [self.actor.optimizer, self.critic.optimizer]
        if self.ent_coef_optimizer is not None:
            optimizers.append(self.ent_coef_optimizer)
        self._update_learning_rate(optimizers)
        logs: dict[str, list[float]] = {"actor_loss": [], "critic_loss": [], "ent_coef": [], "ent_coef_loss": []}
        assert self.replay_buffer is not None  # made by _setup_model
        for gradient_step in range(gradient_steps):
            data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)
            discounts = data.discounts if data.discounts is not None else self.gamma

            # (1) Actor, against the current critic, with the temperature from before this step.
            alpha = self._temperature().detach()
            actions, log_prob = self.actor.action_log_prob(data.observations)
            with frozen(self.critic):
                q_pi = min_over_critics(self.critic(data.observations, actions))
            actor_loss = (alpha * log_prob - q_pi).mean()
            self.actor.optimizer.zero_grad()
            actor_loss.backward()
            self.actor.optimizer.step()

            # (2) Temperature, from the entropy of the actor's batch in (1).
            if self.ent_coef_optimizer is not None and self.log_ent_coef is not None:
                entropy = -log_prob.detach().mean()
                assert isinstance(self.target_entropy, float)
                ent_coef_loss = (th.exp(self.log_ent_coef) * (entropy - self.target_entropy)).sum()
                self.ent_coef_optimizer.zero_grad()
                ent_coef_loss.backward()
                self.ent_coef_optimizer.step()
                logs["ent_coef_loss"].append(ent_coef_loss.item())

            # (3) Critic, with targets from the updated actor and the updated temperature.
            with th.no_grad():
                alpha = self._temperature()
                next_actions, next_log_prob = self.actor.action_log_prob(data.next_observations)
                next_q = min_over_critics(self.critic_target(data.next_observations, next_actions))
                not_terminated = 1 - data.dones.reshape(-1)
                targets = data.rewards.reshape(-1) + not_terminated * _flat(discounts) * (next_q - alpha * next_log_prob)
            critic_loss = squared_error_loss(self.critic(data.observations, data.actions), targets)
            self.critic.optimizer.zero_grad()
            critic_loss.backward()
            self.critic.optimizer.step()

            # (4) Target critic.
            if gradient_step % self.target_update_interval == 0:
                polyak_update(self.critic.parameters(), self.critic_target.parameters(), self.tau)
                polyak_update(self.batch_norm_stats, self.batch_norm_stats_target, 1.0)
            logs["actor_loss"].append(actor_loss.item())
            logs["critic_loss"].append(critic_loss.item())
            logs["ent_coef"].append(alpha.item())

        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        for key, values in logs.items():
            if values:
                self.logger.record(f"train/{key}", np.mean(values))

    def _temperature(self) -> th.Tensor:
        """``alpha``: ``exp(log_ent_coef)`` when learned, else the fixed coefficient."""
        return th.exp(self.log_ent_coef) if self.log_ent_coef is not None else self.ent_coef_tensor


def _flat(discounts: Any) -> Any:
    """n-step discounts come per sample as ``(batch, 1)``; a plain ``gamma`` stays a number."""
    return discounts.reshape(-1) if isinstance(discounts, th.Tensor) else discounts
