"""How sb3-sparse plugs into SB3: policy names in the algorithms' ``policy_aliases``, and the
callbacks added to ``learn()`` (observation statistics, topology schedule), the closest names in
the message for an unknown policy string, and the check that a model is loaded by the class that
saved it. Run once by ``import sb3_sparse``."""

from __future__ import annotations

import functools
import importlib
import inspect
import warnings
from typing import Any

from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CallbackList, ConvertCallback

from sb3_sparse.algorithms import (
    ALGORITHM_TABLE,
    CNN_POLICY_NAME,
    MULTI_INPUT_POLICY_NAME,
    POLICY_NAME,
    UNSUPPORTED_ALGORITHMS,
    supported_names,
)
from sb3_sparse.callbacks import ObservationNormalizerCallback, SparsityLogCallback, TopologyScheduleCallback
from sb3_sparse.checks import did_you_mean
from sb3_sparse.reference.common import SAVED_BY


def _unsupported_policy(algorithm: type[BaseAlgorithm], name: str) -> type:
    """A stand-in whose construction explains that ``algorithm`` has no policy called ``name``."""
    supported = supported_names(name)

    class UnsupportedSparseSimBaPolicy:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            raise ValueError(f"{name} does not support {algorithm.__name__}: sb3-sparse's {name} is for {supported}")

    return UnsupportedSparseSimBaPolicy


def register_policies() -> None:
    """
    Make the policy names of :data:`sb3_sparse.algorithms.ALGORITHM_TABLE` valid policy strings of
    their algorithms, and a clear ``ValueError`` at construction for the other SB3 and sb3-contrib
    algorithms. Never replaces a name the algorithm already has.
    """
    for entry in ALGORITHM_TABLE:
        for name, policy in entry.policies.items():
            entry.algorithm.policy_aliases.setdefault(name, policy)
    sb3_algorithms = [entry.algorithm for entry in ALGORITHM_TABLE if entry.policies]
    for name in (POLICY_NAME, CNN_POLICY_NAME, MULTI_INPUT_POLICY_NAME):
        for algorithm in (*UNSUPPORTED_ALGORITHMS, *sb3_algorithms):
            algorithm.policy_aliases.setdefault(name, _unsupported_policy(algorithm, name))


def _contains_callback(callback: Any, callback_class: type[BaseCallback]) -> bool:
    if isinstance(callback, callback_class):
        return True
    if isinstance(callback, CallbackList):
        return any(_contains_callback(child, callback_class) for child in callback.callbacks)
    if isinstance(callback, list):
        return any(_contains_callback(child, callback_class) for child in callback)
    return False


def _as_callback_list(callback: Any) -> list[BaseCallback]:
    if callback is None:
        return []
    if isinstance(callback, list):
        return [child if isinstance(child, BaseCallback) else ConvertCallback(child) for child in callback]
    return [callback if isinstance(callback, BaseCallback) else ConvertCallback(callback)]


def install_policy_callbacks_hook() -> None:
    """
    Wrap ``BaseAlgorithm._init_callback`` (the point where ``learn()`` assembles its callbacks) so
    that an algorithm whose policy keeps observation statistics gets an
    :class:`~sb3_sparse.callbacks.ObservationNormalizerCallback`, one whose policy has a dynamic
    topology a :class:`~sb3_sparse.callbacks.TopologyScheduleCallback`, and every sparse SimBa policy a
    :class:`~sb3_sparse.callbacks.SparsityLogCallback`, first in its callback list (unless the list
    has one). Other policies are untouched. Idempotent.
    """
    original = BaseAlgorithm._init_callback
    if getattr(original, "_sb3_sparse_hook", False):
        return
    parameters = list(inspect.signature(original).parameters)
    if parameters != ["self", "callback", "progress_bar"]:  # the hook passes exactly these through
        raise RuntimeError(
            f"sb3-sparse cannot hook BaseAlgorithm._init_callback{inspect.signature(original)} of this "
            "stable-baselines3 version (expected (self, callback, progress_bar)): please report it"
        )

    @functools.wraps(original)
    def _init_callback(self: BaseAlgorithm, callback: Any = None, progress_bar: bool = False) -> BaseCallback:
        mismatch = saved_algorithm_mismatch(self)
        if mismatch is not None:  # training would run another algorithm's update than the one saved
            raise ValueError(mismatch)
        needed: list[BaseCallback] = []
        if getattr(self.policy, "observation_normalizer", None) is not None:
            needed.append(ObservationNormalizerCallback())
        if getattr(self.policy, "dynamic_topology", False):
            needed.append(TopologyScheduleCallback())
        if callable(getattr(self.policy, "pruned_networks", None)):
            needed.append(SparsityLogCallback())
        needed = [child for child in needed if not _contains_callback(callback, type(child))]
        if needed:
            callback = [*needed, *_as_callback_list(callback)]
        return original(self, callback, progress_bar)

    _init_callback._sb3_sparse_hook = True  # type: ignore[attr-defined]
    BaseAlgorithm._init_callback = _init_callback  # type: ignore[method-assign]


def saved_algorithm_mismatch(model: BaseAlgorithm) -> str | None:
    """
    What is wrong when a model saved by one of the package's own algorithms (``ReferenceSAC``,
    ``ReferenceDDPG``) was loaded by another class, e.g. SB3's ``SAC.load``, which would train it
    with SB3's update; ``None`` when nothing is.

    :param model: a loaded model
    :return: the message naming the right class, or ``None``
    """
    saved_by = getattr(model, SAVED_BY, None)
    if saved_by is None:
        return None
    module, _, name = saved_by.rpartition(".")
    saved_class = getattr(importlib.import_module(module), name, None)
    if saved_class is None or isinstance(model, saved_class):
        return None
    return (
        f"this model was saved by {name} and loaded as {type(model).__name__}, which trains with another update: "
        f"load it with {name}.load (from {module} import {name})"
    )


def install_saved_algorithm_check() -> None:
    """
    Wrap ``BaseAlgorithm.load`` so that a model saved by one of the package's algorithms and loaded
    by another class warns at once (:func:`saved_algorithm_mismatch`); its ``learn()`` then refuses
    (the ``_init_callback`` hook). Idempotent.
    """
    original = BaseAlgorithm.load.__func__  # type: ignore[attr-defined]
    if getattr(original, "_sb3_sparse_hook", False):
        return

    @functools.wraps(original)
    def load(cls: type[BaseAlgorithm], *args: Any, **kwargs: Any) -> BaseAlgorithm:
        model = original(cls, *args, **kwargs)
        mismatch = saved_algorithm_mismatch(model)
        if mismatch is not None:
            warnings.warn(mismatch, stacklevel=2)
        return model

    load._sb3_sparse_hook = True  # type: ignore[attr-defined]
    BaseAlgorithm.load = classmethod(load)  # type: ignore[method-assign, assignment]


def install_policy_name_hint() -> None:
    """
    Wrap ``BaseAlgorithm._get_policy_from_name`` so that an unknown policy string names the closest
    registered ones (``"SparseSimbaPolicy"``: did you mean ``'SparseSimBaPolicy'``?). Idempotent.
    """
    original = BaseAlgorithm._get_policy_from_name
    if getattr(original, "_sb3_sparse_hook", False):
        return

    @functools.wraps(original)
    def _get_policy_from_name(self: BaseAlgorithm, policy_name: str) -> Any:
        if policy_name not in self.policy_aliases:
            raise ValueError(f"Policy {policy_name} unknown{did_you_mean(policy_name, self.policy_aliases)}")
        return original(self, policy_name)

    _get_policy_from_name._sb3_sparse_hook = True  # type: ignore[attr-defined]
    BaseAlgorithm._get_policy_from_name = _get_policy_from_name  # type: ignore[method-assign]
