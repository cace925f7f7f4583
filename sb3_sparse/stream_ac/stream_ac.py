"""Stream AC(lambda) (Elsayed et al., *Streaming Deep Reinforcement Learning Finally Works*, 2024)
as a Stable-Baselines3 algorithm: learning from every transition once, as it arrives, with no
replay buffer and batch size 1."""

from __future__ import annotations

import inspect
import sys
import time
from typing import Any, ClassVar, TypeVar, cast

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from stable_baselines3.common.utils import safe_mean

from sb3_sparse.checks import unknown_names_message
from sb3_sparse.sparsity import MaskEnforcer
from sb3_sparse.stream_ac.networks import RewardScaler
from sb3_sparse.stream_ac.obgd import ObGD
from sb3_sparse.stream_ac.policies import StreamACPolicy

SelfStreamAC = TypeVar("SelfStreamAC", bound="StreamAC")


class StreamAC(BaseAlgorithm):
    r"""
    Stream AC(lambda): an actor-critic updated at every environment step from that step's
    transition alone, with eligibility traces and the overshooting-bounded optimizer
    :class:`~sb3_sparse.stream_ac.obgd.ObGD`.

    Per transition :math:`(s, a, r, s')`, with the reward scaled (:class:`~sb3_sparse.stream_ac.networks.RewardScaler`)
    and observations normalized by running statistics:

    .. math::

        \delta = r + \gamma (1 - \text{terminated})\, v(s') - v(s)

    The critic's traces accumulate :math:`\nabla(-v(s))`, the actor's
    :math:`\nabla(-\log \pi(a|s) - c\, \mathrm{sign}(\delta)\, \mathcal{H}(\pi(\cdot|s)))`; each
    ObGD then steps along :math:`-\delta z` with its own :math:`\kappa`. Traces are reset when an
    episode ends.

    Differences from the reference script, both from SB3's handling of time limits: an episode cut
    by a time limit is bootstrapped from the value of its last observation (the reference treats it
    as terminal and appends the time step to the observation instead), and the observation
    statistics see that last observation and then the first one of the next episode, as the
    reference's wrappers do.

    :param policy: ``"SparseSimBaPolicy"`` / ``"MlpPolicy"`` (both :class:`StreamACPolicy`) or a policy class
    :param env: the environment (one environment: streaming learns from one stream)
    :param learning_rate: ObGD step size :math:`\alpha` (a constant or a schedule of the remaining progress)
    :param gamma: discount factor
    :param trace_lambda: eligibility-trace decay :math:`\lambda`
    :param ent_coef: entropy coefficient :math:`c`
    :param kappa_policy: overshooting bound of the actor's ObGD
    :param kappa_value: overshooting bound of the critic's ObGD
    :param scale_rewards: divide rewards by the running standard deviation of their discounted sum
    :param stats_window_size: episodes averaged in the ``rollout/`` logs
    :param tensorboard_log: tensorboard log directory (``None``: none)
    :param policy_kwargs: arguments of the policy (:class:`StreamACPolicy`)
    :param verbose: 0 silent, 1 training information, 2 debug
    :param seed: seed of the random generators (and, through them, of the masks)
    :param device: torch device; ``"cpu"`` by default: with batch size 1 and small networks an
        accelerator spends more time launching kernels than computing
    :param _init_setup_model: build the networks at construction
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "MlpPolicy": StreamACPolicy,
        "SparseSimBaPolicy": StreamACPolicy,
    }
    policy: StreamACPolicy

    def __init__(
        self,
        policy: str | type[StreamACPolicy],
        env: GymEnv | str,
        learning_rate: float | Schedule = 1.0,
        gamma: float = 0.99,
        trace_lambda: float = 0.8,
        ent_coef: float = 0.01,
        kappa_policy: float = 3.0,
        kappa_value: float = 2.0,
        scale_rewards: bool = True,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "cpu",
        _init_setup_model: bool = True,
    ) -> None:
        checks = (
            ("gamma", gamma, 0.0 <= gamma <= 1.0, "[0, 1]"),
            ("trace_lambda", trace_lambda, 0.0 <= trace_lambda <= 1.0, "[0, 1]"),
            ("ent_coef", ent_coef, ent_coef >= 0.0, ">= 0"),
            ("kappa_policy", kappa_policy, kappa_policy > 0.0, "> 0"),
            ("kappa_value", kappa_value, kappa_value > 0.0, "> 0"),
        )
        for name, value, valid, valid_range in checks:
            if not valid:
                raise ValueError(f"{name} must be {valid_range}, got {value!r}")
        if not callable(learning_rate) and not learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0 (or a schedule), got {learning_rate!r}")
        super().__init__(
            policy,
            env,
            learning_rate,
            policy_kwargs=policy_kwargs,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            verbose=verbose,
            device=device,
            support_multi_env=False,
            seed=seed,
            supported_action_spaces=(spaces.Box,),
        )
        self.gamma = gamma
        self.trace_lambda = trace_lambda
        self.ent_coef = ent_coef
        self.kappa_policy = kappa_policy
        self.kappa_value = kappa_value
        self.scale_rewards = scale_rewards
        if _init_setup_model:
            self._setup_model()

    def _setup_model(self) -> None:
        self._setup_lr_schedule()
        self.set_random_seed(self.seed)
        positional = {"self", "observation_space", "action_space", "lr_schedule"}
        valid = sorted(set(inspect.signature(self.policy_class.__init__).parameters) - positional)
        unknown = sorted(set(self.policy_kwargs) - set(valid))
        if unknown:  # named like the sparse SimBa policies do, not Python's "unexpected keyword"
            raise TypeError(unknown_names_message(f"{self.policy_class.__name__} got unknown policy_kwargs", unknown, valid))
        policy = self.policy_class(self.observation_space, self.action_space, self.lr_schedule, **self.policy_kwargs)
        self.policy = cast(StreamACPolicy, policy.to(self.device))
        learning_rate = self.lr_schedule(1.0)
        trace = dict(gamma=self.gamma, lamda=self.trace_lambda)
        self.actor_optimizer = ObGD(self.policy.actor.parameters(), lr=learning_rate, kappa=self.kappa_policy, **trace)
        self.critic_optimizer = ObGD(self.policy.critic.parameters(), lr=learning_rate, kappa=self.kappa_value, **trace)
        # load() re-runs _setup_model, so the hooks are attached again there.
        self._mask_enforcers = [
            MaskEnforcer(self.actor_optimizer, self.policy.actor),
            MaskEnforcer(self.critic_optimizer, self.policy.critic),
        ]
        self.reward_scaler = RewardScaler(self.gamma).to(self.device)

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        # The optimizers hold the eligibility traces: a loaded model goes on mid-episode exactly.
        return ["policy", "actor_optimizer", "critic_optimizer", "reward_scaler"], []

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "_mask_enforcers"]

    def _observation_tensor(self, observation: Any) -> th.Tensor:
        return th.as_tensor(observation, dtype=th.float32, device=self.device).reshape(1, -1)

    def train_step(
        self,
        observation: th.Tensor,
        action: th.Tensor,
        reward: float,
        next_observation: th.Tensor,
        terminated: bool,
        episode_end: bool,
    ) -> dict[str, float]:
        """
        One Stream AC(lambda) update from one transition (observations already normalized).

        :param observation: normalized observation, shape ``(1, obs_dim)``
        :param action: the action taken (unclipped sample), shape ``(1, action_dim)``
        :param reward: the (scaled) reward
        :param next_observation: normalized next observation, shape ``(1, obs_dim)``
        :param terminated: whether ``next_observation`` is terminal (no bootstrap)
        :param episode_end: whether the episode ended (terminated or truncated): the traces are reset
        :return: the TD error and both step sizes
        """
        value = self.policy.value(observation)
        with th.no_grad():
            next_value = self.policy.value(next_observation)
        delta = float(reward + self.gamma * (1.0 - float(terminated)) * next_value - value.detach())
        distribution = self.policy.distribution(observation)
        log_prob = distribution.log_prob(action).sum()
        entropy = distribution.entropy().sum()
        self.actor_optimizer.zero_grad()
        self.critic_optimizer.zero_grad()
        (-value.sum()).backward()
        (-log_prob - self.ent_coef * float(np.sign(delta)) * entropy).backward()
        actor_step = self.actor_optimizer.step(delta, reset=episode_end)
        critic_step = self.critic_optimizer.step(delta, reset=episode_end)
        return {
            "td_error": delta,
            "actor_step_size": actor_step,
            "critic_step_size": critic_step,
            "entropy": float(entropy.detach()),
        }

    def learn(
        self: SelfStreamAC,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 4,
        tb_log_name: str = "StreamAC",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfStreamAC:
        """
        Learn from ``total_timesteps`` transitions, one update each.

        :param total_timesteps: environment steps
        :param callback: SB3 callback(s), called after every step
        :param log_interval: episodes between two dumps of the logger
        :param tb_log_name: tensorboard run name
        :param reset_num_timesteps: start counting steps (and a new episode) from 0
        :param progress_bar: show a progress bar
        :return: the trained model
        """
        previous_observation = self._last_obs
        total_timesteps, callback = self._setup_learn(
            total_timesteps, callback, reset_num_timesteps, tb_log_name, progress_bar
        )
        assert self.env is not None
        if self._last_obs is not previous_observation:  # a new episode began: its first observation counts
            self.policy.update_observation_statistics(self._observation_tensor(self._last_obs))
        callback.on_training_start(locals(), globals())
        callback.on_rollout_start()
        self.policy.set_training_mode(True)
        action_space = cast(spaces.Box, self.action_space)
        low, high = action_space.low, action_space.high
        while self.num_timesteps < total_timesteps:
            self._update_current_progress_remaining(self.num_timesteps, total_timesteps)
            self._update_learning_rate([self.actor_optimizer, self.critic_optimizer])
            observation = self.policy.normalize(self._observation_tensor(self._last_obs))
            with th.no_grad():
                action = self.policy.distribution(observation).sample()
            clipped_actions = np.clip(action.cpu().numpy(), low, high)
            new_obs, rewards, dones, infos = self.env.step(clipped_actions)
            self.num_timesteps += 1
            callback.update_locals(locals())
            if not callback.on_step():
                break
            self._update_info_buffer(infos, dones)

            done = bool(dones[0])
            truncated = bool(infos[0].get("TimeLimit.truncated", False))
            next_obs = infos[0]["terminal_observation"] if done else new_obs
            self.policy.update_observation_statistics(self._observation_tensor(next_obs))
            reward = float(rewards[0])
            if self.scale_rewards:
                reward = self.reward_scaler.scale(reward, episode_end=done)
            stats = self.train_step(
                observation,
                action,
                reward,
                self.policy.normalize(self._observation_tensor(next_obs)),
                terminated=done and not truncated,
                episode_end=done,
            )
            self._n_updates += 1
            for key, value in stats.items():
                self.logger.record_mean(f"train/{key}", value)
            self._last_obs = new_obs  # type: ignore[assignment]  # SB3 types VecEnv observations wider than _last_obs
            self._last_episode_starts = dones
            if done:
                self.policy.update_observation_statistics(self._observation_tensor(new_obs))  # the next episode's first
                self._episode_num += 1
                if log_interval is not None and self._episode_num % log_interval == 0:
                    self.dump_logs()
        callback.on_rollout_end()
        callback.on_training_end()
        return self

    def dump_logs(self) -> None:
        """Write the episode statistics, the means of the update statistics since the last dump, and timing."""
        time_elapsed = max((time.time_ns() - self.start_time) / 1e9, sys.float_info.epsilon)
        fps = int((self.num_timesteps - self._num_timesteps_at_start) / time_elapsed)
        self.logger.record("time/episodes", self._episode_num, exclude="tensorboard")
        assert self.ep_info_buffer is not None  # made by _setup_learn
        if len(self.ep_info_buffer) > 0:
            self.logger.record("rollout/ep_rew_mean", safe_mean([info["r"] for info in self.ep_info_buffer]))
            self.logger.record("rollout/ep_len_mean", safe_mean([info["l"] for info in self.ep_info_buffer]))
        self.logger.record("time/fps", fps)
        self.logger.record("time/time_elapsed", int(time_elapsed), exclude="tensorboard")
        self.logger.record("time/total_timesteps", self.num_timesteps, exclude="tensorboard")
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.dump(step=self.num_timesteps)
