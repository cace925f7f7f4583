"""How sb3-sparse plugs into SB3: policy names in the algorithms' ``policy_aliases``, and the
observation-statistics callback added to ``learn()``. Run once by ``import sb3_sparse``."""

from __future__ import annotations

import functools
from typing import Any

from stable_baselines3 import SAC
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CallbackList, ConvertCallback

from sb3_sparse.callbacks import ObservationNormalizerCallback
from sb3_sparse.policies.sac import SparseSimBaPolicy

POLICY_NAME = "SparseSimBaPolicy"


def register_policies() -> None:
    """Make ``"SparseSimBaPolicy"`` a valid policy string of the supported algorithms."""
    SAC.policy_aliases.setdefault(POLICY_NAME, SparseSimBaPolicy)


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
