"""DeepMind Control tasks as flat-observation gymnasium environments, with the reference wrappers.

``import sb3_sparse`` registers one gymnasium id per DeepMind Control suite task,
``sb3_sparse/dmc-<domain>-<task>-v0`` (e.g. ``sb3_sparse/dmc-humanoid-run-v0``,
``sb3_sparse/dmc-dog-trot-v0``), usable anywhere a gymnasium id goes (``gym.make``, SB3,
``rl_zoo3.train --env``). Each is the dm_control task through shimmy with the wrappers of the
paper's reference code:

* the Dict observation flattened (keys in sorted order) and cast to float32;
* actions rescaled to [-1, 1];
* action repeat 2: one agent step is 2 physics control steps, rewards summed;
* dm_control's own time limit of 1000 environment steps (500 agent steps), reported as truncation.

dm_control is imported only when an environment is made (``pip install "sb3-sparse[dmc]"``).
Without a display and without ``MUJOCO_GL`` set, this module sets ``MUJOCO_GL=disable`` before
dm_control is first imported, so training never needs OpenGL; set ``MUJOCO_GL=egl`` (or
``osmesa``) yourself to render.
"""

from __future__ import annotations

import os

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.wrappers import FlattenObservation, RepeatAction, RescaleAction, TransformObservation

NAMESPACE = "sb3_sparse"
ACTION_REPEAT = 2

# The paper's hard tasks (observation and action sizes after flattening).
DMC_HARD_TASKS = (
    "humanoid-stand",
    "humanoid-walk",
    "humanoid-run",
    "dog-stand",
    "dog-walk",
    "dog-trot",
    "dog-run",
)
OBSERVATION_SIZES = {"humanoid": 67, "dog": 223}
ACTION_SIZES = {"humanoid": 21, "dog": 38}

# Every task of dm_control.suite (dm_control 1.0.x), listed here so that registering them needs no
# dm_control import.
DMC_SUITE_TASKS = (
    "acrobot-swingup",
    "acrobot-swingup_sparse",
    "ball_in_cup-catch",
    "cartpole-balance",
    "cartpole-balance_sparse",
    "cartpole-swingup",
    "cartpole-swingup_sparse",
    "cartpole-three_poles",
    "cartpole-two_poles",
    "cheetah-run",
    "dog-fetch",
    "dog-run",
    "dog-stand",
    "dog-trot",
    "dog-walk",
    "finger-spin",
    "finger-turn_easy",
    "finger-turn_hard",
    "fish-swim",
    "fish-upright",
    "hopper-hop",
    "hopper-stand",
    "humanoid-run",
    "humanoid-run_pure_state",
    "humanoid-stand",
    "humanoid-walk",
    "humanoid_CMU-run",
    "humanoid_CMU-stand",
    "humanoid_CMU-walk",
    "lqr-lqr_2_1",
    "lqr-lqr_6_2",
    "manipulator-bring_ball",
    "manipulator-bring_peg",
    "manipulator-insert_ball",
    "manipulator-insert_peg",
    "pendulum-swingup",
    "point_mass-easy",
    "point_mass-hard",
    "quadruped-escape",
    "quadruped-fetch",
    "quadruped-run",
    "quadruped-walk",
    "reacher-easy",
    "reacher-hard",
    "stacker-stack_2",
    "stacker-stack_4",
    "swimmer-swimmer15",
    "swimmer-swimmer6",
    "walker-run",
    "walker-stand",
    "walker-walk",
)


def dmc_env_id(task: str) -> str:
    """
    The gymnasium id of a dm_control suite task.

    :param task: ``"<domain>-<task>"``, e.g. ``"humanoid-run"``
    :return: e.g. ``"sb3_sparse/dmc-humanoid-run-v0"``
    """
    if task not in DMC_SUITE_TASKS:
        raise ValueError(f"unknown DeepMind Control task {task!r}; valid tasks: {', '.join(DMC_SUITE_TASKS)}")
    return f"{NAMESPACE}/dmc-{task}-v0"


def _headless_rendering_default() -> None:
    # dm_control picks its OpenGL backend once, at its first import; with no display, GLFW only warns.
    if "MUJOCO_GL" not in os.environ and not os.environ.get("DISPLAY"):
        os.environ["MUJOCO_GL"] = "disable"


def make_dmc_env(task: str, action_repeat: int = ACTION_REPEAT, render_mode: str | None = None) -> gym.Env:
    """
    Build a dm_control suite task with the reference wrappers (see the module docstring).

    :param task: ``"<domain>-<task>"``, e.g. ``"dog-run"``
    :param action_repeat: physics control steps per agent step (rewards summed); 2 in the paper
    :param render_mode: shimmy's render mode (``None``, ``"rgb_array"``, ...); needs ``MUJOCO_GL``
    :return: a gymnasium environment with flat float32 observations and actions in [-1, 1]
    """
    if task not in DMC_SUITE_TASKS:
        raise ValueError(f"unknown DeepMind Control task {task!r}; valid tasks: {', '.join(DMC_SUITE_TASKS)}")
    if isinstance(action_repeat, bool) or not isinstance(action_repeat, int) or action_repeat < 1:
        raise ValueError(f"action_repeat must be an integer >= 1, got {action_repeat!r}")
    _headless_rendering_default()
    try:
        from dm_control import suite
        from shimmy.dm_control_compatibility import DmControlCompatibilityV0
    except ImportError as error:
        raise ImportError(
            f"DeepMind Control tasks need dm_control, mujoco<4 and shimmy: pip install 'sb3-sparse[dmc]' ({error})"
        ) from error
    domain, task_name = task.split("-", 1)
    env: gym.Env = DmControlCompatibilityV0(suite.load(domain, task_name), render_mode=render_mode)
    env = FlattenObservation(env)
    # float32 halves replay memory; the space is built directly (casting the float64 bounds only warns).
    float32_space = spaces.Box(-np.inf, np.inf, shape=env.observation_space.shape, dtype=np.float32)
    env = TransformObservation(env, lambda observation: observation.astype(np.float32), float32_space)
    env = RescaleAction(env, -1.0, 1.0)
    return RepeatAction(env, num_repeats=action_repeat)


def register_dmc_envs() -> None:
    """Register ``sb3_sparse/dmc-<domain>-<task>-v0`` for every dm_control suite task (idempotent)."""
    for task in DMC_SUITE_TASKS:
        env_id = dmc_env_id(task)
        if env_id not in gym.registry:
            # No max_episode_steps: dm_control truncates after 1000 environment steps itself.
            gym.register(env_id, entry_point=make_dmc_env, kwargs=dict(task=task))
