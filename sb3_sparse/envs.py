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

Pixel versions for visual RL, ``sb3_sparse/dmc-pixels-<domain>-<task>-v0`` (e.g.
``sb3_sparse/dmc-pixels-quadruped-run-v0``), follow DrQ-v2: the same action rescaling and action
repeat 2, then one 84x84 RGB frame rendered per agent step (camera 2 for quadruped, 0 otherwise),
the last 3 frames stacked channel-first: uint8 observations of shape (9, 84, 84).

dm_control is imported only when an environment is made (``pip install "sb3-sparse[dmc]"``).
It picks its OpenGL backend once, at its first import, from ``MUJOCO_GL``. Without a display and
without ``MUJOCO_GL`` set, this module sets ``MUJOCO_GL=egl`` when an EGL library is installed
(headless rendering on CPU or GPU; Debian: ``libegl1``) and ``MUJOCO_GL=disable`` otherwise (state
observations need no rendering). Set ``MUJOCO_GL`` yourself (``egl``, ``osmesa``, ``glfw``) to choose.
"""

from __future__ import annotations

import ctypes.util
import os
from typing import cast

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.wrappers import (
    FlattenObservation,
    FrameStackObservation,
    RepeatAction,
    RescaleAction,
    TransformObservation,
)

from sb3_sparse.checks import check_int

NAMESPACE = "sb3_sparse"
ACTION_REPEAT = 2
PIXEL_SIZE = 84
FRAME_STACK = 3

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


def dmc_pixel_env_id(task: str) -> str:
    """
    The gymnasium id of a dm_control suite task from pixels.

    :param task: ``"<domain>-<task>"``, e.g. ``"quadruped-run"``
    :return: e.g. ``"sb3_sparse/dmc-pixels-quadruped-run-v0"``
    """
    if task not in DMC_SUITE_TASKS:
        raise ValueError(f"unknown DeepMind Control task {task!r}; valid tasks: {', '.join(DMC_SUITE_TASKS)}")
    return f"{NAMESPACE}/dmc-pixels-{task}-v0"


def _headless_rendering_default() -> None:
    # dm_control picks its OpenGL backend once, at its first import; with no display, GLFW only warns.
    if "MUJOCO_GL" not in os.environ and not os.environ.get("DISPLAY"):
        os.environ["MUJOCO_GL"] = "egl" if ctypes.util.find_library("EGL") else "disable"


def _load_suite_task(task: str, render_mode: str | None, render_kwargs: dict | None = None) -> gym.Env:
    """The dm_control task through shimmy, after checking the arguments and the installation."""
    if task not in DMC_SUITE_TASKS:
        raise ValueError(f"unknown DeepMind Control task {task!r}; valid tasks: {', '.join(DMC_SUITE_TASKS)}")
    _headless_rendering_default()
    try:
        from dm_control import suite
        from shimmy.dm_control_compatibility import DmControlCompatibilityV0
    except ImportError as error:
        raise ImportError(
            f"DeepMind Control tasks need dm_control, mujoco<4 and shimmy: pip install 'sb3-sparse[dmc]' ({error})"
        ) from error
    domain, task_name = task.split("-", 1)
    return DmControlCompatibilityV0(suite.load(domain, task_name), render_mode=render_mode, render_kwargs=render_kwargs)


def make_dmc_env(task: str, action_repeat: int = ACTION_REPEAT, render_mode: str | None = None) -> gym.Env:
    """
    Build a dm_control suite task with the reference wrappers (see the module docstring).

    :param task: ``"<domain>-<task>"``, e.g. ``"dog-run"``
    :param action_repeat: physics control steps per agent step (rewards summed); 2 in the paper
    :param render_mode: shimmy's render mode (``None``, ``"rgb_array"``, ...); needs ``MUJOCO_GL``
    :return: a gymnasium environment with flat float32 observations and actions in [-1, 1]
    """
    action_repeat = check_int("action_repeat", action_repeat)
    env: gym.Env = FlattenObservation(_load_suite_task(task, render_mode))
    # float32 halves replay memory; the space is built directly (casting the float64 bounds only warns).
    float32_space = spaces.Box(-np.inf, np.inf, shape=env.observation_space.shape, dtype=np.float32)
    env = TransformObservation(env, lambda observation: observation.astype(np.float32), float32_space)
    env = RescaleAction(env, np.float32(-1.0), np.float32(1.0))
    return RepeatAction(env, num_repeats=action_repeat)


class PixelObservation(gym.ObservationWrapper):
    """
    Replace the observation with the frame the environment renders (``render_mode="rgb_array"``),
    channel-first: uint8 of shape ``(3, height, width)``.

    :param env: an environment that renders ``(height, width, 3)`` uint8 frames
    :param size: frame height and width
    """

    def __init__(self, env: gym.Env, size: int) -> None:
        super().__init__(env)
        self.observation_space = spaces.Box(0, 255, shape=(3, size, size), dtype=np.uint8)

    def observation(self, observation: object) -> np.ndarray:
        frame = cast(np.ndarray, self.env.render())
        return np.ascontiguousarray(frame.transpose(2, 0, 1))


def make_dmc_pixel_env(
    task: str,
    action_repeat: int = ACTION_REPEAT,
    size: int = PIXEL_SIZE,
    frame_stack: int = FRAME_STACK,
    camera_id: int | None = None,
) -> gym.Env:
    """
    Build a dm_control suite task from pixels, as DrQ-v2 does (see the module docstring).

    :param task: ``"<domain>-<task>"``, e.g. ``"quadruped-run"``
    :param action_repeat: physics control steps per agent step (rewards summed); one frame is rendered per agent step
    :param size: frame height and width
    :param frame_stack: frames stacked along the channels
    :param camera_id: camera (``None``: 2 for quadruped, 0 otherwise, as DrQ-v2)
    :return: a gymnasium environment with uint8 observations of shape ``(3 * frame_stack, size, size)``
    """
    action_repeat = check_int("action_repeat", action_repeat)
    size, frame_stack = check_int("size", size), check_int("frame_stack", frame_stack)
    if camera_id is None:
        camera_id = 2 if task.startswith("quadruped-") else 0
    env = _load_suite_task(task, "rgb_array", dict(height=size, width=size, camera_id=camera_id))
    if os.environ.get("MUJOCO_GL") == "disable":
        raise RuntimeError(
            "pixel observations need rendering, but MUJOCO_GL=disable (no EGL library was found, or it was set "
            "so); install an EGL library (Debian: apt install libegl1) or set MUJOCO_GL=egl or osmesa before "
            "anything imports dm_control"
        )
    env = RescaleAction(env, np.float32(-1.0), np.float32(1.0))
    # Repeat first, then render: one frame per agent step, not per physics step.
    env = PixelObservation(RepeatAction(env, num_repeats=action_repeat), size)
    return stack_frames(env, frame_stack)


def stack_frames(env: gym.Env, frame_stack: int) -> gym.Env:
    """
    Stack the last ``frame_stack`` channel-first frames along the channels, the first frame of an
    episode repeated to fill the stack at reset (DrQ-v2's frame stacking).

    :param env: an environment with ``(channels, height, width)`` uint8 observations
    :param frame_stack: frames per observation
    :return: an environment with ``(frame_stack * channels, height, width)`` observations
    """
    channels, height, width = cast(tuple[int, int, int], env.observation_space.shape)
    env = FrameStackObservation(env, frame_stack)  # (frame_stack, channels, h, w); padding: the reset frame
    stacked = spaces.Box(0, 255, shape=(frame_stack * channels, height, width), dtype=np.uint8)
    return TransformObservation(env, lambda frames: frames.reshape(stacked.shape), stacked)


def register_dmc_envs() -> None:
    """
    Register ``sb3_sparse/dmc-<domain>-<task>-v0`` and ``sb3_sparse/dmc-pixels-<domain>-<task>-v0``
    for every dm_control suite task (idempotent).
    """
    for task in DMC_SUITE_TASKS:
        # No max_episode_steps: dm_control truncates after 1000 environment steps itself.
        if dmc_env_id(task) not in gym.registry:
            gym.register(dmc_env_id(task), entry_point=make_dmc_env, kwargs=dict(task=task))  # type: ignore[arg-type]
        if dmc_pixel_env_id(task) not in gym.registry:
            gym.register(dmc_pixel_env_id(task), entry_point=make_dmc_pixel_env, kwargs=dict(task=task))  # type: ignore[arg-type]


#: The extra that installs the Arcade Learning Environment (ale-py, with its ROMs, and OpenCV for SB3's AtariWrapper).
ATARI_EXTRA = "pip install 'sb3-sparse[atari]'"


def register_atari_envs() -> bool:
    """
    Register the Arcade Learning Environment's ids (``ALE/Pong-v5``, ``PongNoFrameskip-v4``, ...)
    when ale-py is installed (the ``atari`` extra), as rl_zoo3 users expect after
    ``--gym-packages sb3_sparse``; idempotent.

    :return: whether ale-py is installed
    """
    try:
        import ale_py
    except ImportError:
        return False
    gym.register_envs(ale_py)
    return True


def is_atari(env_id: str) -> bool:
    """Whether a registered id is an Atari game of the ALE (rl_zoo3's test: its entry point is ``AtariEnv``)."""
    spec = gym.registry.get(env_id)
    return spec is not None and "AtariEnv" in str(spec.entry_point)


def looks_like_atari(env_id: str) -> bool:
    """Whether an id that gymnasium does not know has an Atari id's form (``ALE/...``, ``...NoFrameskip-v4``)."""
    return env_id.startswith("ALE/") or "NoFrameskip" in env_id
