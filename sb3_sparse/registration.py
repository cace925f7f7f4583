"""How sb3-sparse plugs into SB3: policy names in the algorithms' ``policy_aliases``, and the
observation-statistics callback added to ``learn()``. Run once by ``import sb3_sparse``."""

from __future__ import annotations

import functools
from typing import Any

import sb3_contrib
import stable_baselines3
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CallbackList, ConvertCallback
from stable_baselines3.common.policies import BasePolicy

from sb3_sparse.callbacks import ObservationNormalizerCallback
from sb3_sparse.policies import (
    SparseSimBaCnnPolicy,
    SparseSimBaCnnTD3Policy,
    SparseSimBaCrossQPolicy,
    SparseSimBaPolicy,
    SparseSimBaTD3Policy,
    SparseSimBaTQCPolicy,
)

POLICY_NAME = "SparseSimBaPolicy"

#: The algorithms ``"SparseSimBaPolicy"`` works with, and the policy class each one gets.
#: DDPG shares TD3's alias dict (it is a TD3 subclass), so registering TD3 registers DDPG.
SUPPORTED_ALGORITHMS: dict[type[BaseAlgorithm], type[BasePolicy]] = {
    stable_baselines3.SAC: SparseSimBaPolicy,
    stable_baselines3.TD3: SparseSimBaTD3Policy,
    sb3_contrib.TQC: SparseSimBaTQCPolicy,
    sb3_contrib.CrossQ: SparseSimBaCrossQPolicy,
}
SUPPORTED_NAMES = "SAC, TD3, DDPG, TQC and CrossQ"
CNN_POLICY_NAME = "SparseSimBaCnnPolicy"
#: The algorithms ``"SparseSimBaCnnPolicy"`` (image observations) works with.
CNN_SUPPORTED_ALGORITHMS: dict[type[BaseAlgorithm], type[BasePolicy]] = {
    stable_baselines3.SAC: SparseSimBaCnnPolicy,
    stable_baselines3.TD3: SparseSimBaCnnTD3Policy,
}
CNN_SUPPORTED_NAMES = "SAC, TD3 and DDPG"
UNSUPPORTED_ALGORITHMS: tuple[type[BaseAlgorithm], ...] = (
    stable_baselines3.A2C,
    stable_baselines3.PPO,
    stable_baselines3.DQN,
    sb3_contrib.ARS,
    sb3_contrib.MaskablePPO,
    sb3_contrib.QRDQN,
    sb3_contrib.RecurrentPPO,
    sb3_contrib.TRPO,
)


def _unsupported_policy(algorithm: type[BaseAlgorithm], name: str = POLICY_NAME, supported: str = SUPPORTED_NAMES) -> type:
    """A stand-in whose construction explains that ``algorithm`` has no policy called ``name``."""

    class UnsupportedSparseSimBaPolicy:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            raise ValueError(
                f"{name} does not support {algorithm.__name__}: sb3-sparse's {name} is for the "
                f"off-policy algorithms with continuous actions, {supported}"
            )

    return UnsupportedSparseSimBaPolicy


def register_policies() -> None:
    """
    Make ``"SparseSimBaPolicy"`` (and ``"SparseSimBaCnnPolicy"`` for images) a valid policy string of
    the supported algorithms, and a clear ``ValueError`` at construction for the other SB3 and
    sb3-contrib algorithms.
    """
    for algorithm, policy in SUPPORTED_ALGORITHMS.items():
        algorithm.policy_aliases.setdefault(POLICY_NAME, policy)
    for algorithm in UNSUPPORTED_ALGORITHMS:
        algorithm.policy_aliases.setdefault(POLICY_NAME, _unsupported_policy(algorithm))  # type: ignore[arg-type]
    for algorithm, policy in CNN_SUPPORTED_ALGORITHMS.items():
        algorithm.policy_aliases.setdefault(CNN_POLICY_NAME, policy)
    for algorithm in (*UNSUPPORTED_ALGORITHMS, sb3_contrib.TQC, sb3_contrib.CrossQ):
        stand_in = _unsupported_policy(algorithm, CNN_POLICY_NAME, CNN_SUPPORTED_NAMES)
        algorithm.policy_aliases.setdefault(CNN_POLICY_NAME, stand_in)  # type: ignore[arg-type]


def _contains_normalizer_callback(callback: Any) -> bool:
    if isinstance(callback, ObservationNormalizerCallback):
        return True
    if isinstance(callback, CallbackList):
        return any(_contains_normalizer_callback(child) for child in callback.callbacks)
    if isinstance(callback, list):
        return any(_contains_normalizer_callback(child) for child in callback)
    return False


def _as_callback_list(callback: Any) -> list[BaseCallback]:
    if callback is None:
        return []
    if isinstance(callback, list):
        return [child if isinstance(child, BaseCallback) else ConvertCallback(child) for child in callback]
    return [callback if isinstance(callback, BaseCallback) else ConvertCallback(callback)]


def install_observation_normalizer_hook() -> None:
    """
    Wrap ``BaseAlgorithm._init_callback`` (the point where ``learn()`` assembles its callbacks) so
    that an algorithm whose policy keeps observation statistics gets an
    :class:`~sb3_sparse.callbacks.ObservationNormalizerCallback` first in its callback list.
    Other policies are untouched. Idempotent.
    """
    original = BaseAlgorithm._init_callback
    if getattr(original, "_sb3_sparse_hook", False):
        return

    @functools.wraps(original)
    def _init_callback(self: BaseAlgorithm, callback: Any = None, progress_bar: bool = False) -> BaseCallback:
        needs_statistics = getattr(self.policy, "observation_normalizer", None) is not None
        if needs_statistics and not _contains_normalizer_callback(callback):
            callback = [ObservationNormalizerCallback(), *_as_callback_list(callback)]
        return original(self, callback, progress_bar)

    _init_callback._sb3_sparse_hook = True  # type: ignore[attr-defined]
    BaseAlgorithm._init_callback = _init_callback  # type: ignore[method-assign]
