"""
The environments of a run, built as the RL Baselines3 Zoo builds them; the action repeat that
converts agent steps into environment steps; and what to say about an environment id that
gymnasium does not know.
"""

from __future__ import annotations

from typing import Any, cast

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.wrappers import RepeatAction
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.preprocessing import is_image_space, is_image_space_channels_first
from stable_baselines3.common.vec_env import (
    DummyVecEnv,
    SubprocVecEnv,
    VecEnv,
    VecEnvWrapper,
    VecFrameStack,
    VecNormalize,
    VecTransposeImage,
)

from sb3_sparse.checks import ConfigurationError, closest_matches
from sb3_sparse.envs import ATARI_EXTRA, DMC_HARD_TASKS, dmc_env_id, looks_like_atari, register_atari_envs
from sb3_sparse.hyperparams import EnvironmentSettings, environment_settings, load_hyperparams
from sb3_sparse.robotics import ROBOTICS_EXTRA, looks_like_robotics, register_robotics_envs
from sb3_sparse.run_config import EVAL_SEED_OFFSET, RunConfig


class EnvironmentValueError(ValueError):
    """An environment returned a value training cannot take (NaN, infinity): the message names which."""


class VecCheckFinite(VecEnvWrapper):
    """
    Stop at the first non-finite observation or reward with an error naming the environment, the
    agent step and the value (SB3's ``VecCheckNan`` says less; torch would fail later, at a
    distribution's check, without naming the environment).

    :param venv: the environments
    :param env_id: their id, for the message
    """

    def __init__(self, venv: VecEnv, env_id: str) -> None:
        super().__init__(venv)
        self.env_id, self.agent_steps = env_id, 0

    def reset(self) -> Any:
        observations = self.venv.reset()
        self._check(observations, None, "reset")
        return observations

    def step_wait(self) -> Any:
        observations, rewards, dones, infos = self.venv.step_wait()
        self.agent_steps += self.num_envs
        self._check(observations, rewards, f"agent step {self.agent_steps:,}")
        return observations, rewards, dones, infos

    def _check(self, observations: Any, rewards: np.ndarray | None, when: str) -> None:
        parts = observations.items() if isinstance(observations, dict) else [("", observations)]
        values = [(f"observation{f'[{key!r}]' if key else ''}", np.asarray(part)) for key, part in parts]
        values += [("reward", np.asarray(rewards))] if rewards is not None else []
        for name, value in values:
            if np.issubdtype(value.dtype, np.floating) and not np.isfinite(value).all():
                index = np.argwhere(~np.isfinite(value))[0]
                raise EnvironmentValueError(
                    f"{self.env_id} returned a non-finite {name} at {when} (environment {int(index[0])} of "
                    f"{self.num_envs}, entry {tuple(int(i) for i in index[1:])}: {value[tuple(index)]}); "
                    "the run stops, its last checkpoint stays"
                )


def action_repeat_of(env: gym.Env | VecEnv) -> int:
    """
    Environment steps per agent step: the product of the ``RepeatAction`` wrappers around ``env``.

    :param env: a (wrapped) environment, or a ``DummyVecEnv`` of them (under any ``VecEnvWrapper``)
    :return: the action repeat (1 without such a wrapper)
    """
    while isinstance(env, VecEnvWrapper):
        env = env.venv
    if isinstance(env, DummyVecEnv):
        env = env.envs[0]
    repeat = 1
    while isinstance(env, gym.Wrapper):
        if isinstance(env, RepeatAction):
            repeat *= env.num_repeats
        env = env.env
    return repeat


def unknown_env_message(env_id: str, algo: str) -> str:
    """What to say about an id that gymnasium does not know: the closest known ids, in one line."""
    if looks_like_atari(env_id) and not register_atari_envs():
        return f"unknown environment id {env_id!r}: Atari games need the Arcade Learning Environment: {ATARI_EXTRA}"
    if looks_like_robotics(env_id) and not register_robotics_envs():
        return f"unknown environment id {env_id!r}: goal-conditioned robotics tasks need gymnasium-robotics: {ROBOTICS_EXTRA}"
    entries = list(load_hyperparams(algo))
    known = dict.fromkeys([*entries, *(dmc_env_id(task) for task in DMC_HARD_TASKS), *gym.registry])
    matches = closest_matches(env_id, known)
    if matches:
        return f"unknown environment id {env_id!r}: did you mean {' or '.join(repr(match) for match in matches)}?"
    return (
        f"unknown environment id {env_id!r}: {algo}.yml has entries for {len(entries)} ids, e.g. "
        f"{', '.join(entries[:3])} (python -m sb3_sparse.hyperparams {algo} prints its path); every dm_control "
        "suite task is sb3_sparse/dmc-<domain>-<task>-v0"
    )


def make_configured_envs(config: RunConfig) -> tuple[EnvironmentSettings, VecEnv, VecEnv]:
    """
    A run's environment keys (a bad entry: one-line :class:`~sb3_sparse.checks.ConfigurationError`)
    and its training and evaluation environments (:func:`make_run_envs`).

    :param config: the run
    :return: ``(settings, training environment, evaluation environment)``
    """
    try:
        settings = environment_settings(config.algo, config.env, config.conf, config.hyperparams)
    except ValueError as error:
        raise ConfigurationError(str(error)) from error
    return settings, *make_run_envs(config, settings)


def make_run_envs(config: RunConfig, settings: EnvironmentSettings) -> tuple[VecEnv, VecEnv]:
    """
    The training and evaluation environments of a run, built as the zoo builds them: ``n_envs``
    monitored copies with the entry's wrappers, ``VecNormalize`` (evaluation: frozen statistics,
    raw rewards), frame stacking and channel-first images; the evaluation environments
    (``config.n_eval_envs``, default 1), seeded apart. ``config.vec_env="subproc"`` steps the
    training environments in processes (SB3's ``SubprocVecEnv``), as the zoo's ``--vec-env``.

    :param config: the run
    :param settings: the entry's environment keys
    :return: ``(training environment, evaluation environment)``
    """

    def build(n_envs: int, seed: int, evaluation: bool) -> VecEnv:
        processes = config.vec_env == "subproc" and not evaluation
        env = make_vec_env(
            config.env, n_envs=n_envs, seed=seed, wrapper_class=settings.env_wrapper,
            env_kwargs=settings.env_kwargs, monitor_kwargs=settings.monitor_kwargs,
            vec_env_cls=SubprocVecEnv if processes else DummyVecEnv,
        )  # fmt: skip
        env = VecCheckFinite(env, config.env + (" (evaluation)" if evaluation else ""))
        if settings.vec_env_wrapper is not None:
            env = settings.vec_env_wrapper(env)
        if settings.normalize:
            frozen = dict(training=False, norm_reward=False) if evaluation else {}  # replace the entry's
            env = VecNormalize(env, **{**settings.normalize_kwargs, **frozen})
        if settings.frame_stack is not None:
            env = VecFrameStack(env, settings.frame_stack)
        space = env.observation_space
        if is_image_space(space) and not is_image_space_channels_first(cast(spaces.Box, space)):
            env = VecTransposeImage(env)  # as the zoo does: SB3 would transpose the training env only
        return env

    return build(settings.n_envs, config.seed, False), build(config.n_eval_envs or 1, config.seed + EVAL_SEED_OFFSET, True)
