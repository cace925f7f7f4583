"""A replay buffer for pixel observations: stacked frames stored once each, DrQ's random-shift
augmentation at sampling time, and optional n-step returns.

``SAC("SparseSimBaCnnPolicy", env, replay_buffer_class=DrQReplayBuffer)`` (or TD3/DDPG).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.type_aliases import ReplayBufferSamples
from stable_baselines3.common.vec_env import VecNormalize

from sb3_sparse.checks import check_fraction, check_int


def random_shift(images: th.Tensor, pad: int, generator: th.Generator | None = None) -> th.Tensor:
    """
    DrQ's augmentation: pad every image by ``pad`` pixels (edge pixels repeated), then crop it back
    to its size at a random offset, i.e. shift it by an integer in ``[-pad, pad]`` along each axis,
    independently per image. Keeps the shape and the dtype (uint8 stays uint8).

    :param images: ``(batch, channels, height, width)``
    :param pad: largest shift in pixels
    :param generator: random generator (``None``: torch's global one)
    :return: the shifted images
    """
    if pad == 0:
        return images
    batch, _, height, width = images.shape
    padded = th.nn.functional.pad(images.float(), (pad, pad, pad, pad), mode="replicate").to(images.dtype)
    offsets = th.randint(0, 2 * pad + 1, (2, batch), generator=generator).to(images.device)
    rows = offsets[0][:, None] + th.arange(height, device=images.device)  # (batch, height)
    cols = offsets[1][:, None] + th.arange(width, device=images.device)  # (batch, width)
    batch_index = th.arange(batch, device=images.device)[:, None, None]
    # (batch, height, width, channels) by advanced indexing, then channels first again.
    return padded.permute(0, 2, 3, 1)[batch_index, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2).contiguous()


class DrQReplayBuffer(ReplayBuffer):
    """
    Replay buffer for stacked image observations, ``(3 * frame_stack, height, width)`` uint8 (the
    ``sb3_sparse/dmc-pixels-*`` ids): each transition stores only the newest frame of its
    observation; stacks are rebuilt at sampling time from the frames before it in its episode (the
    first frame repeated at an episode's start, as the environments do): ``1 / frame_stack`` of the
    memory of SB3's ``ReplayBuffer`` with ``optimize_memory_usage``, ``1 / (2 frame_stack)`` without.

    At sampling, observations and next observations are shifted at random by up to ``pad`` pixels
    (:func:`random_shift`, independently for each image, as DrQ-v2), and with ``n_steps > 1`` the
    rewards are ``n``-step discounted sums with the matching ``discounts`` for the target
    (``gamma ** k``; SB3's SAC, TD3 and DDPG read them), cut at episode ends.

    :param buffer_size: transitions kept (per environment: ``buffer_size // n_envs``)
    :param observation_space: stacked image space
    :param action_space: action space
    :param device: device of the sampled tensors
    :param n_envs: parallel environments
    :param optimize_memory_usage: must be False (frames are already stored once)
    :param handle_timeout_termination: treat time-limit truncations as non-terminal (SB3's default)
    :param frame_stack: frames per observation (channels / 3)
    :param pad: largest random shift in pixels (0: no augmentation)
    :param n_steps: steps of the n-step return (1: one-step TD targets)
    :param gamma: discount of the n-step return
    """

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Box,
        action_space: spaces.Space,
        device: th.device | str = "auto",
        n_envs: int = 1,
        optimize_memory_usage: bool = False,
        handle_timeout_termination: bool = True,
        frame_stack: int = 3,
        pad: int = 4,
        n_steps: int = 1,
        gamma: float = 0.99,
    ) -> None:
        if optimize_memory_usage:
            raise ValueError("DrQReplayBuffer stores each frame once already: optimize_memory_usage must be False")
        frame_stack, pad, n_steps = (
            check_int("frame_stack", frame_stack),
            check_int("pad", pad, 0),
            check_int("n_steps", n_steps),
        )
        gamma = check_fraction("gamma", gamma, include_one=True)
        shape: tuple[int, ...] = getattr(observation_space, "shape", ())
        if observation_space.dtype != np.uint8 or len(shape) != 3 or shape[0] != 3 * frame_stack:
            raise ValueError(
                f"DrQReplayBuffer needs uint8 observations of shape (3 * frame_stack, height, width) = "
                f"({3 * frame_stack}, h, w) with frame_stack={frame_stack}, got {observation_space}"
            )
        # The parent allocates its observation arrays for a 1-byte placeholder; the frames replace them.
        placeholder = spaces.Box(0, 255, (1,), np.uint8)
        super().__init__(buffer_size, placeholder, action_space, device, n_envs, False, handle_timeout_termination)
        self.observation_space, self.obs_shape = observation_space, shape
        del self.observations, self.next_observations
        self.frame_stack, self.pad, self.n_steps, self.gamma = frame_stack, pad, n_steps, gamma
        self.frame_shape = (3, *shape[1:])
        self.frames = np.zeros((self.buffer_size, self.n_envs, *self.frame_shape), dtype=np.uint8)
        # Frames of the observation before each one in its episode, 0 .. frame_stack - 1 (0: first of its episode).
        self.history = np.zeros((self.buffer_size, self.n_envs), dtype=np.int8)
        # Newest frame of the next observation where it is not the next transition's frame (episode ends).
        self.final_frames: dict[tuple[int, int], np.ndarray] = {}
        self._previous_done = np.ones(self.n_envs, dtype=bool)

    def add(
        self,
        obs: np.ndarray,
        next_obs: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        done: np.ndarray,
        infos: list[dict[str, Any]],
    ) -> None:
        t, k = self.pos, self.frame_stack
        obs, next_obs = np.asarray(obs), np.asarray(next_obs)
        for env in range(self.n_envs):
            self.final_frames.pop((t, env), None)
            frames = obs[env].reshape(k, *self.frame_shape)
            previous = (t - 1) % self.buffer_size
            # A new episode after a done, or after a reset the buffer was not told about (a new learn()
            # call): then the observation's older frames are not the previous transition's.
            continues = not self._previous_done[env] and (k == 1 or np.array_equal(frames[-2], self.frames[previous, env]))
            self.history[t, env] = min(self.history[previous, env] + 1, k - 1) if continues else 0
            self.frames[t, env] = frames[-1]
            newest_next = next_obs[env].reshape(k, *self.frame_shape)[-1]
            if done[env]:
                self.final_frames[(t, env)] = newest_next.copy()
            else:
                # The next transition's own frame; written now so that the newest transition can be sampled.
                self.frames[(t + 1) % self.buffer_size, env] = newest_next
        self._previous_done = np.asarray(done, dtype=bool).copy()
        self.actions[t] = np.asarray(action).reshape(self.n_envs, self.action_dim)
        self.rewards[t] = np.asarray(reward)
        self.dones[t] = np.asarray(done)
        if self.handle_timeout_termination:
            self.timeouts[t] = np.array([info.get("TimeLimit.truncated", False) for info in infos])
        self.pos += 1
        if self.pos == self.buffer_size:
            self.full, self.pos = True, 0

    def sample(self, batch_size: int, env: VecNormalize | None = None) -> ReplayBufferSamples:
        """
        Sample transitions whose stacks and n-step sequences are intact.

        :param batch_size: transitions
        :param env: not supported (``VecNormalize`` would normalize images)
        :return: the samples, augmented
        """
        if env is not None:
            raise ValueError("DrQReplayBuffer does not support VecNormalize: pixels are scaled by the policy")
        # When full, the oldest transitions lost the frames before them (or their own, overwritten by the
        # newest next frame), and the newest n-1 lack their n-step successors: they are not sampled.
        newest_excluded = self.n_steps - 1
        if self.full:
            oldest_excluded = self.frame_stack
            count = self.buffer_size - oldest_excluded - newest_excluded
            if count < 1:
                raise ValueError(f"buffer_size {self.buffer_size} is too small for frame_stack and n_steps")
            batch_inds = (self.pos + oldest_excluded + np.random.randint(0, count, size=batch_size)) % self.buffer_size
        else:
            count = self.pos - newest_excluded
            if count < 1:
                raise ValueError(f"the buffer holds {self.pos} transitions, fewer than n_steps={self.n_steps}")
            batch_inds = np.random.randint(0, count, size=batch_size)
        return self._get_samples(batch_inds)

    def stacked_observations(self, batch_inds: np.ndarray, env_indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """
        Rebuild the observation and next-observation stacks of transitions.

        :param batch_inds: transition indices
        :param env_indices: environment indices
        :return: ``(observations, next_observations)``, each ``(batch, 3 * frame_stack, h, w)`` uint8
        """
        k = self.frame_stack
        history = self.history[batch_inds, env_indices].astype(np.int64)
        back = np.arange(k - 1, -1, -1)  # k-1 .. 0 frames before
        slots = (batch_inds[:, None] - np.minimum(back[None, :], history[:, None])) % self.buffer_size
        observations = self.frames[slots, env_indices[:, None]]  # (batch, k, 3, h, w)
        newest_next = self.frames[(batch_inds + 1) % self.buffer_size, env_indices]
        for row, (index, env) in enumerate(zip(batch_inds, env_indices, strict=True)):
            final = self.final_frames.get((int(index), int(env)))
            if final is not None:
                newest_next[row] = final
        next_observations = np.concatenate([observations[:, 1:], newest_next[:, None]], axis=1)
        batch = len(batch_inds)
        return observations.reshape(batch, *self.obs_shape), next_observations.reshape(batch, *self.obs_shape)

    def _get_samples(self, batch_inds: np.ndarray, env: VecNormalize | None = None) -> ReplayBufferSamples:
        env_indices = np.random.randint(0, high=self.n_envs, size=(len(batch_inds),))
        # n-step: the sequence stops at the first episode end (termination or truncation).
        steps = np.arange(self.n_steps)
        indices = (batch_inds[:, None] + steps[None, :]) % self.buffer_size
        ends = np.logical_or(self.dones[indices, env_indices[:, None]], self.timeouts[indices, env_indices[:, None]])
        last = np.where(ends.any(axis=1), ends.argmax(axis=1), self.n_steps - 1)
        within = steps[None, :] <= last[:, None]
        rewards = (self.rewards[indices, env_indices[:, None]] * self.gamma ** steps[None, :] * within).sum(axis=1)
        final = (batch_inds + last) % self.buffer_size
        observations, _ = self.stacked_observations(batch_inds, env_indices)
        _, next_observations = self.stacked_observations(final, env_indices)
        dones = self.dones[final, env_indices] * (1 - self.timeouts[final, env_indices])
        discounts = (self.gamma ** (last + 1)).reshape(-1, 1).astype(np.float32)
        return ReplayBufferSamples(
            observations=self._augment(observations),
            actions=self.to_torch(self.actions[batch_inds, env_indices]),
            next_observations=self._augment(next_observations),
            dones=self.to_torch(dones.reshape(-1, 1)),
            rewards=self.to_torch(rewards.reshape(-1, 1).astype(np.float32)),
            discounts=self.to_torch(discounts) if self.n_steps > 1 else None,
        )

    def _augment(self, images: np.ndarray) -> th.Tensor:
        # uint8 on the device (a quarter of float32's transfer); the policy scales to [0, 1].
        return random_shift(th.as_tensor(images, device=self.device), self.pad)
