"""A Pendulum that crashes its process once, mid-run (imported by sweep workers as a gym package)."""

import os

import gymnasium as gym

# The marker file makes the crash happen once: the re-run goes through.
MARKER_ENV_VARIABLE = "SB3_SPARSE_TEST_CRASH_MARKER"


class CrashOnceWrapper(gym.Wrapper):
    """Kills the whole process (no exception to catch) at the ``crash_at``-th step of the first instance."""

    instances = 0

    def __init__(self, env: gym.Env, crash_at: int) -> None:
        super().__init__(env)
        CrashOnceWrapper.instances += 1
        self.first, self.crash_at, self.steps = CrashOnceWrapper.instances == 1, crash_at, 0

    def step(self, action):
        self.steps += 1
        marker = os.environ.get(MARKER_ENV_VARIABLE)
        if self.first and self.steps == self.crash_at and marker and not os.path.exists(marker):
            open(marker, "w").close()
            os._exit(1)  # like a killed machine: nothing is cleaned up
        return self.env.step(action)


def make_crash_once_pendulum(crash_at: int = 150) -> gym.Env:
    return CrashOnceWrapper(gym.make("Pendulum-v1"), crash_at)


if "CrashOncePendulum-v0" not in gym.registry:
    gym.register("CrashOncePendulum-v0", entry_point=make_crash_once_pendulum, max_episode_steps=200)


class NaNRewardWrapper(gym.Wrapper):
    """Returns a NaN reward at its ``at``-th step, as a broken simulator would."""

    def __init__(self, env: gym.Env, at: int) -> None:
        super().__init__(env)
        self.at, self.steps = at, 0

    def step(self, action):
        self.steps += 1
        observation, reward, terminated, truncated, info = self.env.step(action)
        return observation, float("nan") if self.steps == self.at else reward, terminated, truncated, info


def make_nan_reward_pendulum(at: int = 60) -> gym.Env:
    return NaNRewardWrapper(gym.make("Pendulum-v1"), at)


if "NaNRewardPendulum-v0" not in gym.registry:
    gym.register("NaNRewardPendulum-v0", entry_point=make_nan_reward_pendulum, max_episode_steps=200)
