"""What the reference algorithms share: the warm-up count and a critic frozen during the actor loss."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.noise import ActionNoise
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.type_aliases import RolloutReturn, TrainFreq
from stable_baselines3.common.vec_env import VecEnv
from torch import nn


@contextmanager
def frozen(network: nn.Module) -> Iterator[None]:
    """
    No weight gradients for ``network`` inside the block (gradients still flow through it to its
    inputs): the actor loss needs the critic's input gradient only, and computing the critic's
    weight gradients there would be thrown away.

    :param network: the critic
    """
    trainable = [parameter for parameter in network.parameters() if parameter.requires_grad]
    for parameter in trainable:
        parameter.requires_grad_(False)
    try:
        yield
    finally:
        for parameter in trainable:
            parameter.requires_grad_(True)


class ReferenceWarmup(OffPolicyAlgorithm):
    """
    The reference's warm-up: exactly ``learning_starts`` random transitions, and the first gradient
    update right after the last of them. SB3 acts at random for the first ``learning_starts``
    transitions too, but first trains after one more (its condition is ``num_timesteps >
    learning_starts``); this trains as soon as ``num_timesteps == learning_starts`` as well.
    """

    def collect_rollouts(
        self,
        env: VecEnv,
        callback: BaseCallback,
        train_freq: TrainFreq,
        replay_buffer: ReplayBuffer,
        action_noise: ActionNoise | None = None,
        learning_starts: int = 0,
        log_interval: int | None = None,
    ) -> RolloutReturn:
        rollout = super().collect_rollouts(
            env, callback, train_freq, replay_buffer, action_noise, learning_starts, log_interval
        )
        if rollout.continue_training and self.num_timesteps == self.learning_starts > 0:
            # SB3's learn() skips this step (num_timesteps > learning_starts is False): train here.
            gradient_steps = self.gradient_steps if self.gradient_steps >= 0 else rollout.episode_timesteps
            if gradient_steps > 0:
                self.train(batch_size=self.batch_size, gradient_steps=gradient_steps)
        return rollout
