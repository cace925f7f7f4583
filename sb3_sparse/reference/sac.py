"""``ReferenceSAC``: SAC with the gradient step of the paper's reference code."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch as th
from stable_baselines3 import SAC
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.distributions import SquashedDiagGaussianDistribution
from stable_baselines3.common.noise import ActionNoise
from stable_baselines3.common.type_aliases import GymEnv, Schedule
from stable_baselines3.common.utils import polyak_update
from stable_baselines3.sac.policies import SACPolicy

from sb3_sparse.distributions import ExactSquashedDiagGaussianDistribution
from sb3_sparse.reference.common import (
    CompiledLosses,
    ReferenceWarmup,
    frozen,
    record_losses,
    with_reference_policy_kwargs,
)


def entropy_scale(target_entropy: str | float) -> float | None:
    """
    The ``c`` of ``target_entropy="auto_<c>"`` (a target of ``-c |A|``); ``None`` for a number or
    SB3's ``"auto"``.

    :raises ValueError: another string, or ``c`` not a positive number
    """
    if not isinstance(target_entropy, str) or target_entropy == "auto":
        return None
    prefix, _, text = target_entropy.partition("_")
    try:
        scale = float(text)
    except ValueError:
        scale = math.nan
    if prefix != "auto" or not scale > 0:
        raise ValueError(f"target_entropy must be a number, 'auto' or 'auto_<c>' with c > 0 (-c |A|), got {target_entropy!r}")
    return scale


def min_over_critics(q_values: tuple[th.Tensor, ...]) -> th.Tensor:
    """The per-sample minimum over an ensemble of ``(batch, 1)`` Q-values, as ``(batch,)``."""
    return th.cat(q_values, dim=1).min(dim=1).values


def squared_error_loss(q_values: tuple[th.Tensor, ...], targets: th.Tensor) -> th.Tensor:
    """The reference's critic loss: ``sum_i mean((Q_i - y)^2)`` (no 0.5; one term per critic)."""
    return sum((q.reshape(-1) - targets).square().mean() for q in q_values)  # type: ignore[return-value]


class ReferenceSAC(CompiledLosses, ReferenceWarmup, SAC):
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

    The defaults are the reference's configuration (configs/agent/sac_simba.yaml, base_sac.yaml and
    buffer/numpy_uniform.yaml of the paper's code), not SB3's: learning rate 1e-4 (actor, critic
    and temperature), 5,000 random warm-up transitions, 2 gradient updates per agent step, batch
    256, buffer 10^6, tau 0.005, gamma 0.99 (its heuristic's value for DMC's 500 agent steps per
    episode), initial temperature 0.01 (``ent_coef="auto_0.01"``), target entropy ``-|A|/2``
    (``target_entropy="auto_0.5"``), and policy kwargs ``n_critics=1``, AdamW with weight decay
    1e-2 (:data:`~sb3_sparse.reference.common.REFERENCE_POLICY_KWARGS`, filled in where
    ``policy_kwargs`` says nothing).

    :param target_entropy: ``"auto"`` (SB3's ``-|A|``), ``"auto_<c>"`` (``-c |A|``; the default
        ``"auto_0.5"`` is the reference's) or a number
    :param compile_gradient_step: run the actor and critic losses through ``torch.compile``
        (:class:`~sb3_sparse.reference.common.CompiledLosses`; off by default)
    :param compile_kwargs: arguments of ``torch.compile``, e.g. ``dict(mode="reduce-overhead")``

    The other arguments are those of SB3's :class:`~stable_baselines3.SAC`.
    """

    def __init__(
        self,
        policy: str | type[SACPolicy],
        env: GymEnv | str,
        learning_rate: float | Schedule = 1e-4,
        buffer_size: int = 1_000_000,
        learning_starts: int = 5_000,
        batch_size: int = 256,
        tau: float = 0.005,
        gamma: float = 0.99,
        train_freq: int | tuple[int, str] = 1,
        gradient_steps: int = 2,
        action_noise: ActionNoise | None = None,
        replay_buffer_class: type[ReplayBuffer] | None = None,
        replay_buffer_kwargs: dict[str, Any] | None = None,
        optimize_memory_usage: bool = False,
        n_steps: int = 1,
        ent_coef: str | float = "auto_0.01",
        target_update_interval: int = 1,
        target_entropy: str | float = "auto_0.5",
        use_sde: bool = False,
        sde_sample_freq: int = -1,
        use_sde_at_warmup: bool = False,
        stats_window_size: int = 100,
        compile_gradient_step: bool = False,
        compile_kwargs: dict[str, Any] | None = None,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
    ) -> None:
        self._init_compilation(compile_gradient_step, compile_kwargs)
        self._entropy_scale = entropy_scale(target_entropy)
        super().__init__(
            policy,
            env,
            learning_rate=learning_rate,
            buffer_size=buffer_size,
            learning_starts=learning_starts,
            batch_size=batch_size,
            tau=tau,
            gamma=gamma,
            train_freq=train_freq,
            gradient_steps=gradient_steps,
            action_noise=action_noise,
            replay_buffer_class=replay_buffer_class,
            replay_buffer_kwargs=replay_buffer_kwargs,
            optimize_memory_usage=optimize_memory_usage,
            n_steps=n_steps,
            ent_coef=ent_coef,
            target_update_interval=target_update_interval,
            target_entropy="auto" if self._entropy_scale is not None else target_entropy,
            use_sde=use_sde,
            sde_sample_freq=sde_sample_freq,
            use_sde_at_warmup=use_sde_at_warmup,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            policy_kwargs=with_reference_policy_kwargs(policy_kwargs),
            verbose=verbose,
            seed=seed,
            device=device,
            _init_setup_model=_init_setup_model,
        )

    def _setup_model(self) -> None:
        scale = getattr(self, "_entropy_scale", None)  # absent in models saved before it existed
        if scale is not None and self.target_entropy == "auto":
            self.target_entropy = -scale * float(np.prod(self.action_space.shape or (1,)))
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
        actor_loss_of, critic_loss_of = self._loss("actor", self._actor_loss), self._loss("critic", self._critic_loss)
        logs: dict[str, list[th.Tensor]] = {"actor_loss": [], "critic_loss": [], "ent_coef": [], "ent_coef_loss": []}
        assert self.replay_buffer is not None  # made by _setup_model
        for gradient_step in range(gradient_steps):
            self._begin_gradient_step()
            data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)
            discounts = data.discounts if data.discounts is not None else self.gamma

            # (1) Actor, against the current critic, with the temperature from before this step.
            with frozen(self.critic):
                actor_loss, log_prob = actor_loss_of(data.observations, self._temperature().detach())
            self.actor.optimizer.zero_grad()
            actor_loss.backward()
            self.actor.optimizer.step()

            # (2) Temperature, from the entropy of the actor's batch in (1).
            if self.ent_coef_optimizer is not None and self.log_ent_coef is not None:
                assert isinstance(self.target_entropy, float)
                ent_coef_loss = (th.exp(self.log_ent_coef) * (-log_prob.mean() - self.target_entropy)).sum()
                self.ent_coef_optimizer.zero_grad()
                ent_coef_loss.backward()
                self.ent_coef_optimizer.step()
                logs["ent_coef_loss"].append(ent_coef_loss.detach())

            # (3) Critic, with targets from the updated actor and the updated temperature.
            alpha = self._temperature().detach()
            critic_loss = critic_loss_of(
                data.observations,
                data.actions,
                data.next_observations,
                data.rewards,
                data.dones,
                _flat(discounts),
                alpha,
            )
            self.critic.optimizer.zero_grad()
            critic_loss.backward()
            self.critic.optimizer.step()

            # (4) Target critic.
            if gradient_step % self.target_update_interval == 0:
                polyak_update(self.critic.parameters(), self.critic_target.parameters(), self.tau)
                polyak_update(self.batch_norm_stats, self.batch_norm_stats_target, 1.0)
            # Copies: a CUDA graph (mode="reduce-overhead") overwrites its outputs at its next replay.
            logs["actor_loss"].append(actor_loss.detach().clone())
            logs["critic_loss"].append(critic_loss.detach().clone())
            logs["ent_coef"].append(alpha)

        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        record_losses(self.logger, logs)

    def _actor_loss(self, observations: th.Tensor, alpha: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """Step (1): the actor loss, and the log-densities of its actions (detached) for step (2)."""
        actions, log_prob = self.actor.action_log_prob(observations)
        q_pi = min_over_critics(self.critic(observations, actions))
        return (alpha * log_prob - q_pi).mean(), log_prob.detach()

    def _critic_loss(
        self,
        observations: th.Tensor,
        actions: th.Tensor,
        next_observations: th.Tensor,
        rewards: th.Tensor,
        dones: th.Tensor,
        discounts: th.Tensor | float,
        alpha: th.Tensor,
    ) -> th.Tensor:
        """Step (3): the critic loss against targets from the actor and the target critic."""
        with th.no_grad():
            next_actions, next_log_prob = self.actor.action_log_prob(next_observations)
            next_q = min_over_critics(self.critic_target(next_observations, next_actions))
            targets = rewards.reshape(-1) + (1 - dones.reshape(-1)) * discounts * (next_q - alpha * next_log_prob)
        return squared_error_loss(self.critic(observations, actions), targets)

    def _temperature(self) -> th.Tensor:
        """``alpha``: ``exp(log_ent_coef)`` when learned, else the fixed coefficient."""
        return th.exp(self.log_ent_coef) if self.log_ent_coef is not None else self.ent_coef_tensor


def _flat(discounts: Any) -> Any:
    """n-step discounts come per sample as ``(batch, 1)``; a plain ``gamma`` stays a number."""
    return discounts.reshape(-1) if isinstance(discounts, th.Tensor) else discounts
