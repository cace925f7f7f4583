"""Goal-conditioned robotics tasks (gymnasium-robotics: FetchReach, FetchPush, ...) for HER with the
``SparseSimBaMultiInputPolicy`` policies: registration, the success rate of a trained model, and one
fix that gymnasium-robotics 1.4.2 needs with MuJoCo 3.17.

The fix: gymnasium-robotics' ``mujoco_utils`` reads a joint's type from ``model.jnt_type`` (a numpy
integer) and compares it with MuJoCo's ``mjtJoint`` enum, which MuJoCo 3.17 no longer makes equal
to integers, so every Fetch reset fails an assertion in ``set_joint_qpos``. The four joint
accessors (``set_joint_qpos``, ``set_joint_qvel``, ``get_joint_qpos``, ``get_joint_qvel``) are
replaced by ones that compare integers; they are installed only where the comparison fails.
(Upstream's ``get_joint_qvel`` gives a ball joint 4 velocities; here it has 3, as MuJoCo defines.)
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import sys
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecNormalize

#: How to install what this module needs.
ROBOTICS_EXTRA = "pip install 'sb3-sparse[robotics]'"


#: Name prefixes of gymnasium-robotics' task ids (Fetch, Shadow hand, mazes, Adroit, the kitchen).
ROBOTICS_PREFIXES = ("Fetch", "HandManipulate", "HandReach", "AntMaze", "PointMaze", "Adroit", "FrankaKitchen")


def looks_like_robotics(env_id: str) -> bool:
    """Whether an id that gymnasium does not know has a gymnasium-robotics task's form (``FetchReach-v4``)."""
    return env_id.startswith(ROBOTICS_PREFIXES)


def success_rate(
    model: BaseAlgorithm, env_id: str, episodes: int = 20, seed: int = 100, vec_normalize: VecNormalize | None = None
) -> float:
    """
    The deterministic policy's success rate on a goal-conditioned task: the fraction of episodes
    whose last step reports ``info["is_success"]``.

    :param model: the trained model
    :param env_id: e.g. ``"FetchReach-v4"``
    :param episodes: episodes, reset with seeds ``seed``, ``seed + 1``, ...
    :param seed: seed of the first episode
    :param vec_normalize: the training's ``VecNormalize``, whose statistics the policy reads observations through
    :return: the success rate, in [0, 1]
    """
    env, successes = gym.make(env_id), []
    for episode in range(episodes):
        observation, _ = env.reset(seed=seed + episode)
        done = False
        while not done:
            seen = vec_normalize.normalize_obs(observation) if vec_normalize is not None else observation
            action, _ = model.predict(seen, deterministic=True)
            observation, _, terminated, truncated, info = env.step(action)
            done = terminated or truncated
        successes.append(float(info["is_success"]))
    env.close()
    return float(np.mean(successes))


def register_robotics_envs() -> bool:
    """
    Register gymnasium-robotics' ids (``FetchReach-v4``, ...) when it is installed (the
    ``robotics`` extra), with the joint-type fix where MuJoCo needs it; idempotent.

    :return: whether gymnasium-robotics is installed
    """
    if importlib.util.find_spec("gymnasium_robotics") is None:
        return False
    printed = io.StringIO()
    try:
        with contextlib.redirect_stderr(printed):  # its import prints a notice on the Adroit tasks' rewards
            import gymnasium_robotics
    finally:  # the rest of what it printed passes through
        sys.stderr.write("".join(line for line in printed.getvalue().splitlines(True) if not _is_adroit_notice(line)))
    from gymnasium_robotics.utils import mujoco_utils

    gym.register_envs(gymnasium_robotics)
    if not _enum_equals_integers():
        for name in ("set_joint_qpos", "set_joint_qvel", "get_joint_qpos", "get_joint_qvel"):
            setattr(mujoco_utils, name, globals()[name])
    return True


def _is_adroit_notice(line: str) -> bool:
    """
    Whether ``line`` is the notice that gymnasium-robotics 1.2.1 to 1.4.2 print on import (from
    farama-notifications: the AdroitHand*Dense-v1 rewards changed without a new version). Every
    ``import sb3_sparse`` and every command would print it, for tasks the package does not use.
    """
    return line.startswith("AdroitHand") and "reward functions were updated" in line


def _enum_equals_integers() -> bool:
    """Whether this MuJoCo's ``mjtJoint`` values equal the integers ``model.jnt_type`` holds."""
    import mujoco

    hinge = mujoco.mjtJoint.mjJNT_HINGE
    return bool(hinge == np.int32(int(hinge)))  # the enum's side: ``joint_type in (enum, ...)`` asks it


def _joint_slice(model: Any, name: str, velocities: bool) -> slice:
    """Where one joint's positions (or velocities) sit in ``data.qpos`` (``data.qvel``)."""
    import mujoco

    joint_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, name)
    if joint_id == -1:
        raise ValueError(f"joint {name!r} is not part of the model")
    kind = int(model.jnt_type[joint_id])
    # Free joint: 3 positions and a quaternion (6 velocities); ball: a quaternion (3); hinge, slide: 1.
    widths = {int(mujoco.mjtJoint.mjJNT_FREE): 6 if velocities else 7, int(mujoco.mjtJoint.mjJNT_BALL): 3 if velocities else 4}
    start = int((model.jnt_dofadr if velocities else model.jnt_qposadr)[joint_id])
    return slice(start, start + widths.get(kind, 1))


def set_joint_qpos(model: Any, data: Any, name: str, value: Any) -> None:
    """Set a joint's positions (gymnasium-robotics' ``mujoco_utils.set_joint_qpos``)."""
    data.qpos[_joint_slice(model, name, velocities=False)] = np.asarray(value)


def set_joint_qvel(model: Any, data: Any, name: str, value: Any) -> None:
    """Set a joint's velocities (``mujoco_utils.set_joint_qvel``)."""
    data.qvel[_joint_slice(model, name, velocities=True)] = np.asarray(value)


def get_joint_qpos(model: Any, data: Any, name: str) -> np.ndarray:
    """A copy of a joint's positions (``mujoco_utils.get_joint_qpos``)."""
    return data.qpos[_joint_slice(model, name, velocities=False)].copy()


def get_joint_qvel(model: Any, data: Any, name: str) -> np.ndarray:
    """A copy of a joint's velocities (``mujoco_utils.get_joint_qvel``)."""
    return data.qvel[_joint_slice(model, name, velocities=True)].copy()
