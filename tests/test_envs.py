"""DeepMind Control tasks through the package's registered ids."""

import gymnasium as gym
import numpy as np
import pytest

import sb3_sparse  # noqa: F401  (registers the ids)
from sb3_sparse.envs import (
    ACTION_SIZES,
    DMC_HARD_TASKS,
    DMC_SUITE_TASKS,
    OBSERVATION_SIZES,
    dmc_env_id,
    dmc_pixel_env_id,
    make_dmc_env,
    make_dmc_pixel_env,
)


@pytest.mark.parametrize("task", DMC_HARD_TASKS)
def test_hard_task_builds_resets_and_steps_with_flat_float32_observations(task):
    domain = task.split("-")[0]
    env = gym.make(dmc_env_id(task))
    assert env.observation_space.shape == (OBSERVATION_SIZES[domain],)
    assert env.observation_space.dtype == np.float32
    assert env.action_space.shape == (ACTION_SIZES[domain],)
    assert np.all(env.action_space.low == -1.0) and np.all(env.action_space.high == 1.0)
    observation, _ = env.reset(seed=0)
    assert observation.dtype == np.float32 and observation.shape == env.observation_space.shape
    observation, reward, terminated, truncated, _ = env.step(env.action_space.sample())
    assert observation.dtype == np.float32 and np.isfinite(observation).all()
    assert 0.0 <= reward <= 2.0 and not terminated and not truncated  # dm_control rewards are in [0, 1] per step
    env.close()


def test_one_agent_step_is_two_physics_steps_with_summed_rewards():
    repeated, single = make_dmc_env("humanoid-walk"), make_dmc_env("humanoid-walk", action_repeat=1)
    repeated.reset(seed=3)
    single.reset(seed=3)
    physics = repeated.unwrapped.physics
    control_timestep = repeated.unwrapped._env.control_timestep()
    action = np.random.default_rng(0).uniform(-1, 1, size=21)
    observation, reward, *_ = repeated.step(action)
    assert physics.data.time == pytest.approx(2 * control_timestep)
    single_rewards = []
    for _ in range(2):
        single_observation, single_reward, *_ = single.step(action)
        single_rewards.append(single_reward)
    np.testing.assert_array_equal(observation, single_observation)
    assert reward == pytest.approx(sum(single_rewards))
    assert single_rewards[0] != 0.0 or single_rewards[1] != 0.0  # the sum is not trivially 0


def test_episode_is_truncated_after_1000_environment_steps():
    env = gym.make(dmc_env_id("humanoid-stand"))
    env.reset(seed=0)
    zeros = np.zeros(21)
    for step in range(1, 501):  # noqa: B007  (read after the loop)
        _, _, terminated, truncated, _ = env.step(zeros)
        assert not terminated
        if truncated:
            break
    assert step == 500 and truncated


def test_actions_are_rescaled_from_the_unit_box():
    env = make_dmc_env("cartpole-swingup")
    assert np.all(env.action_space.low == -1.0) and np.all(env.action_space.high == 1.0)
    inner_spec = env.unwrapped._env.action_spec()
    assert env.unwrapped.action_space.shape == inner_spec.shape


def test_every_suite_task_is_registered():
    # dm_control picks its OpenGL backend at its first import: load a task through the package first, which
    # sets the headless default, or a pixel test that runs later in this worker cannot render (it aborted).
    make_dmc_env("cartpole-swingup").close()
    from dm_control import suite

    assert sorted(DMC_SUITE_TASKS) == sorted(f"{domain}-{task}" for domain, task in suite.ALL_TASKS)
    assert all(dmc_env_id(task) in gym.registry for task in DMC_SUITE_TASKS)


def test_unknown_tasks_and_bad_repeats_are_named():
    with pytest.raises(ValueError, match="unknown DeepMind Control task 'humanoid-fly'; valid tasks: acrobot-swingup"):
        dmc_env_id("humanoid-fly")
    with pytest.raises(ValueError, match="action_repeat must be an integer >= 1, got 0"):
        make_dmc_env("humanoid-run", action_repeat=0)


def test_import_and_make_are_safe_without_a_display():
    import ctypes.util
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "MUJOCO_GL", "WAYLAND_DISPLAY")}
    code = (
        "import os, gymnasium as gym, sb3_sparse; e = gym.make('sb3_sparse/dmc-humanoid-run-v0'); e.reset(seed=0); "
        "print(os.environ['MUJOCO_GL'])"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120, check=True)
    assert result.stdout.strip() == ("egl" if ctypes.util.find_library("EGL") else "disable")
    assert "GLFW" not in result.stderr


def test_pixel_ids_render_headless_to_stacked_uint8_frames():
    assert dmc_pixel_env_id("quadruped-run") == "sb3_sparse/dmc-pixels-quadruped-run-v0"
    env = gym.make("sb3_sparse/dmc-pixels-cheetah-run-v0")
    observation, _ = env.reset(seed=0)
    assert env.observation_space == gym.spaces.Box(0, 255, (9, 84, 84), np.uint8)
    assert observation.shape == (9, 84, 84) and observation.dtype == np.uint8
    assert np.array_equal(observation[0:3], observation[6:9])  # the first frame fills the stack at reset
    assert observation.std() > 10  # a rendered scene, not a blank frame
    first, *_ = env.step(env.action_space.sample())
    second, *_ = env.step(env.action_space.sample())
    assert np.array_equal(second[3:6], first[6:9]) and np.array_equal(second[0:3], first[3:6])  # the stack shifts
    assert not np.array_equal(second[6:9], first[6:9])  # the newest frame moved
    with pytest.raises(ValueError, match="frame_stack must be an integer >= 1, got 0"):
        make_dmc_pixel_env("cheetah-run", frame_stack=0)
