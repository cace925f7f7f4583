"""The state of a vectorized environment as bytes, and back into a freshly built copy of it, so that
a resumed run continues the episodes in progress: every layer (the ``VecEnvWrapper`` chain, the
``DummyVecEnv`` and each environment's gymnasium wrappers down to the environment itself) by its
attributes, and the simulators' native state copied into the fresh environment's own objects:
MuJoCo's ``MjData`` (gymnasium's MuJoCo and robotics tasks), dm_control's physics, and the Arcade
Learning Environment's machine state with its random generator. Classic-control and other
pure-Python environments need nothing more.

What cannot be copied (an environment in another process, an open file or a window in a layer)
raises :class:`EnvStateError` naming it; the caller then resumes at an episode boundary."""

from __future__ import annotations

import io
import pickle
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cloudpickle
import gymnasium as gym
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecEnvWrapper


class EnvStateError(Exception):
    """An environment whose state cannot be copied, and why."""


@dataclass(frozen=True)
class _Native:
    """
    A simulator object that pickling cannot copy (or would copy as a new one): its state is saved,
    then written into the fresh environment's object of the same place.

    :param module: the module that defines it (no object of it exists until it is imported)
    :param type_name: its class, as ``module.attribute`` below ``module``
    :param save: its state, as a picklable value
    :param restore: write a saved state into a fresh object
    """

    module: str
    type_name: str
    save: Callable[[Any], Any]
    restore: Callable[[Any, Any], None]

    def type(self) -> type | None:
        """The class, or ``None`` when its module was never imported (so no object of it exists)."""
        value: Any = sys.modules.get(self.module)
        for name in self.type_name.split("."):
            value = getattr(value, name, None)
        return value if isinstance(value, type) else None


def _copy_mujoco_data(fresh: Any, saved: Any) -> None:
    import mujoco

    mujoco.mj_copyData(fresh, fresh.model, saved)


def _copy_dm_control_physics(fresh: Any, saved: Any) -> None:
    import mujoco

    mujoco.mj_copyData(fresh.data.ptr, fresh.model.ptr, saved)


#: Native objects by kind. MjData pickles whole (derived quantities and the solver's warm start
#: included), which a resumed step needs to be bit-identical; MjModel is constant.
_NATIVES = {
    "mujoco_data": _Native("mujoco", "MjData", lambda data: data, _copy_mujoco_data),
    "mujoco_model": _Native("mujoco", "MjModel", lambda model: None, lambda fresh, saved: None),
    "dm_control_physics": _Native(
        "dm_control.mujoco.engine", "Physics", lambda physics: physics.data.ptr, _copy_dm_control_physics
    ),
    "ale": _Native(
        "ale_py", "ALEInterface", lambda ale: ale.cloneState(include_rng=True), lambda fresh, saved: fresh.restoreState(saved)
    ),
}


def _native_kind(value: Any, types: dict[str, type]) -> str | None:
    for kind, native_type in types.items():
        if isinstance(value, native_type):
            return kind
    return None


def _layers(env: VecEnv) -> list[Any]:
    """Every layer of ``env``, outermost first: its wrappers, the ``DummyVecEnv``, then each environment's chain."""
    layers: list[Any] = []
    while isinstance(env, VecEnvWrapper):
        layers.append(env)
        env = env.venv
    if not isinstance(env, DummyVecEnv):
        raise EnvStateError(f"{type(env).__name__} steps its environments in other processes")
    layers.append(env)
    for inner in env.envs:
        layers.append(inner)
        while isinstance(inner, gym.Wrapper):
            inner = inner.env
            layers.append(inner)
    return layers


class _LayerPickler(cloudpickle.Pickler):
    """
    Pickles layers' attributes: other layers by their place, native objects by their saved state.

    :param file: where the pickle goes
    :param layers: the layers (:func:`_layers`)
    :param save_natives: save the native objects' state (``False``: only list them, in the order met)
    """

    def __init__(self, file: io.BytesIO, layers: list[Any], save_natives: bool = True) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.save_natives = save_natives
        self.layer_places = {id(layer): place for place, layer in enumerate(layers)}
        self.types = {kind: native_type for kind, native in _NATIVES.items() if (native_type := native.type()) is not None}
        self.natives: list[Any] = []
        self.native_places: dict[int, int] = {}

    def persistent_id(self, obj: Any) -> Any:
        place = self.layer_places.get(id(obj))
        if place is not None:
            return ("layer", place)
        kind = _native_kind(obj, self.types)
        if kind is None:
            return None
        seen = self.native_places.get(id(obj))
        if seen is not None:  # a second reference (a renderer's): the same fresh object
            return ("native", kind, seen, None)
        self.native_places[id(obj)] = place = len(self.natives)
        self.natives.append(obj)
        if not self.save_natives:
            return ("native", kind, place, None)
        # As bytes: the pickler would otherwise meet the saved MjData again and reference it.
        return ("native", kind, place, pickle.dumps(_NATIVES[kind].save(obj), pickle.HIGHEST_PROTOCOL))


#: Attributes a layer derives from its class (``VecEnvWrapper``'s members), kept as built.
_FROM_CLASS = {"class_attributes"}


def _attributes(layer: Any) -> dict[str, Any]:
    return {name: value for name, value in vars(layer).items() if name not in _FROM_CLASS}


def _classes(layers: list[Any]) -> list[str]:
    return [f"{type(layer).__module__}.{type(layer).__qualname__}" for layer in layers]


def _unpicklable_attribute(layers: list[Any]) -> str:
    """``"Layer.attribute (error)"`` for the first attribute that does not pickle, to name in a message."""
    for layer in layers:
        for name, value in _attributes(layer).items():
            try:
                _LayerPickler(io.BytesIO(), layers).dump(value)
            except Exception as error:
                return f"{type(layer).__name__}.{name} ({type(error).__name__}: {error})"
    return "an attribute"


def capture_env_state(env: VecEnv) -> bytes:
    """
    The state of every environment of ``env`` and of every wrapper around them, as bytes.

    :param env: the training environment (a ``DummyVecEnv`` under any ``VecEnvWrapper``)
    :return: what :func:`restore_env_state` takes
    :raises EnvStateError: a layer holds something that cannot be copied (named in the message)
    """
    layers = _layers(env)
    buffer = io.BytesIO()
    pickler = _LayerPickler(buffer, layers)
    pickler.dump(_classes(layers))
    try:
        pickler.dump([_attributes(layer) for layer in layers])
    except Exception as error:
        raise EnvStateError(f"{_unpicklable_attribute(layers)} cannot be copied") from error
    return buffer.getvalue()


def restore_env_state(env: VecEnv, state: bytes) -> None:
    """
    Put a state from :func:`capture_env_state` into ``env``, an environment built as the captured one was.

    :param env: the fresh environment
    :param state: the captured state
    :raises EnvStateError: ``env`` is not built as the captured one was
    """
    layers = _layers(env)
    fresh = _LayerPickler(io.BytesIO(), layers, save_natives=False)
    fresh.dump([_attributes(layer) for layer in layers])  # the fresh native objects, in the order the saved ones were met

    class LayerUnpickler(pickle.Unpickler):
        def persistent_load(self, pid: Any) -> Any:
            if pid[0] == "layer":
                return layers[pid[1]]
            _, kind, place, saved = pid
            if place >= len(fresh.natives) or _native_kind(fresh.natives[place], fresh.types) != kind:
                raise EnvStateError(f"the environment holds no {kind} where the saved one did")
            if saved is not None:
                _NATIVES[kind].restore(fresh.natives[place], pickle.loads(saved))
            return fresh.natives[place]

    unpickler = LayerUnpickler(io.BytesIO(state))
    classes, saved_classes = _classes(layers), unpickler.load()
    if saved_classes != classes:
        raise EnvStateError(f"the environment is built of {classes}, the saved one of {saved_classes}")
    for layer, attributes in zip(layers, unpickler.load(), strict=True):
        vars(layer).update(attributes)
