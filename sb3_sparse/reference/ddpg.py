"""``ReferenceDDPG``: DDPG with the gradient step of the paper's reference code."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch as th
from stable_baselines3 import DDPG
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.noise import ActionNoise, NormalActionNoise
from stable_baselines3.common.type_aliases import GymEnv, Schedule
from stable_baselines3.common.utils import polyak_update
from stable_baselines3.td3.policies import TD3Policy

from sb3_sparse.checks import check_fraction
from sb3_sparse.reference.common import (
    CompiledLosses,
    ReferenceWarmup,
    frozen,
    record_losses,
    with_reference_policy_kwargs,
)
from sb3_sparse.reference.sac import _flat, min_over_critics, squared_error_loss


class ReferenceDDPG(CompiledLosses, ReferenceWarmup, DDPG):
    """
    DDPG with the reference code's gradient step (Ma et al., ICML 2025). It takes every argument
    and policy of SB3's :class:`~stable_baselines3.DDPG`, and ``update_noise_std``. Per gradient step, on
    one replay batch, with fresh noise ``eps ~ N(0, update_noise_std^2)`` for each use:

    1. actor: ``-mean Q(s, clip(pi(s) + eps, -1, 1))`` against the current critic (weights frozen);
    2. critic: target ``y = r + gamma (1 - terminated) Q_target(s', clip(pi(s') + eps, -1, 1))`` with
       ``pi`` the online actor just updated in step 1 (there is no target actor); loss
       ``sum_i mean((Q_i(s, a) - y)^2)``;
    3. Polyak update of the target critic.

    Exploration adds Gaussian noise (``action_noise`` defaults to ``NormalActionNoise(0, update_noise_std)``,
    as the reference uses one noise level for all three), and the first update follows the ``learning_starts``-th
    random transition. The policy's ``actor_target`` (SB3's TD3 policies always build one) is
    never read nor updated. SB3's DDPG instead updates the critic first, with a Polyak target actor
    and no noise in the target or in the actor loss, and minimizes ``0.5 sum_i MSE``.

    The defaults are the reference's configuration (configs/agent/ddpg_simba.yaml, base_ddpg.yaml and
    buffer/numpy_uniform.yaml of the paper's code), not SB3's: learning rate 1e-4, 5,000 uniformly
    random warm-up transitions (no exploration noise on them), 2 gradient updates per agent step,
    batch 256, buffer 10^6, tau 0.005, gamma 0.99, noise standard deviation 0.1, and policy kwargs
    ``n_critics=1``, AdamW with weight decay 1e-2
    (:data:`~sb3_sparse.reference.common.REFERENCE_POLICY_KWARGS`, filled in where
    ``policy_kwargs`` says nothing).

    :param update_noise_std: standard deviation of the noise in the actor loss and in the critic's
        target action, in [0, 1] (the reference: 0.1, its exploration noise)
    :param compile_gradient_step: run the actor and critic losses through ``torch.compile``
        (:class:`~sb3_sparse.reference.common.CompiledLosses`; off by default)
    :param compile_kwargs: arguments of ``torch.compile``, e.g. ``dict(mode="reduce-overhead")``

    The other arguments are those of SB3's :class:`~stable_baselines3.DDPG`.
    """

    def __init__(
        self,
        policy: str | type[TD3Policy],
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
        update_noise_std: float = 0.1,
        replay_buffer_class: type[ReplayBuffer] | None = None,
        replay_buffer_kwargs: dict[str, Any] | None = None,
        optimize_memory_usage: bool = False,
        n_steps: int = 1,
        compile_gradient_step: bool = False,
        compile_kwargs: dict[str, Any] | None = None,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
    ) -> None:
        self.update_noise_std = check_fraction("update_noise_std", update_noise_std, include_one=True)
        self._init_compilation(compile_gradient_step, compile_kwargs)
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
            tensorboard_log=tensorboard_log,
            policy_kwargs=with_reference_policy_kwargs(policy_kwargs),
            verbose=verbose,
            seed=seed,
            device=device,
            _init_setup_model=_init_setup_model,
        )

    def _setup_model(self) -> None:
        super()._setup_model()
        if self.action_noise is None:
            action_dim = int(np.prod(self.action_space.shape or (1,)))
            self.action_noise = NormalActionNoise(np.zeros(action_dim), self.update_noise_std * np.ones(action_dim))

    def _noisy(self, actions: th.Tensor) -> th.Tensor:
        """``clip(actions + N(0, update_noise_std^2), -1, 1)``."""
        return (actions + self.update_noise_std * th.randn_like(actions)).clamp(-1.0, 1.0)

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        self.policy.set_training_mode(True)
        self._update_learning_rate([self.actor.optimizer, self.critic.optimizer])
        actor_loss_of, critic_loss_of = self._loss("actor", self._actor_loss), self._loss("critic", self._critic_loss)
        logs: dict[str, list[th.Tensor]] = {"actor_loss": [], "critic_loss": []}
        assert self.replay_buffer is not None  # made by _setup_model
        for _ in range(gradient_steps):
            self._begin_gradient_step()
            data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)
            discounts = data.discounts if data.discounts is not None else self.gamma

            # (1) Actor, against the current critic, with noise in the action it is judged on.
            with frozen(self.critic):
                actor_loss = actor_loss_of(data.observations)
            self.actor.optimizer.zero_grad()
            actor_loss.backward()
            self.actor.optimizer.step()

            # (2) Critic, with the updated online actor's noisy action at s' (no target actor).
            critic_loss = critic_loss_of(
                data.observations, data.actions, data.next_observations, data.rewards, data.dones, _flat(discounts)
            )
            self.critic.optimizer.zero_grad()
            critic_loss.backward()
            self.critic.optimizer.step()

            # (3) Target critic.
            polyak_update(self.critic.parameters(), self.critic_target.parameters(), self.tau)
            polyak_update(self.critic_batch_norm_stats, self.critic_batch_norm_stats_target, 1.0)
            # Copies: a CUDA graph (mode="reduce-overhead") overwrites its outputs at its next replay.
            logs["actor_loss"].append(actor_loss.detach().clone())
            logs["critic_loss"].append(critic_loss.detach().clone())

        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        record_losses(self.logger, logs)

    def _actor_loss(self, observations: th.Tensor) -> th.Tensor:
        """Step (1): ``-mean Q(s, clip(pi(s) + eps, -1, 1))``."""
        return -min_over_critics(self.critic(observations, self._noisy(self.actor(observations)))).mean()

    def _critic_loss(
        self,
        observations: th.Tensor,
        actions: th.Tensor,
        next_observations: th.Tensor,
        rewards: th.Tensor,
        dones: th.Tensor,
        discounts: th.Tensor | float,
    ) -> th.Tensor:
        """Step (2): the critic loss against the target critic at the online actor's noisy next action."""
        with th.no_grad():
            next_actions = self._noisy(self.actor(next_observations))
            next_q = min_over_critics(self.critic_target(next_observations, next_actions))
            targets = rewards.reshape(-1) + (1 - dones.reshape(-1)) * discounts * next_q
        return squared_error_loss(self.critic(observations, actions), targets)
