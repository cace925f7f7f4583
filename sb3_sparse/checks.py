"""Argument checks shared by the whole package: each returns the value as a plain Python type
(numpy scalars welcome) or raises a ``ValueError`` that names the argument, the valid range and
the value. Nothing here imports torch or Stable-Baselines3.
"""

from __future__ import annotations

import difflib
import numbers
from collections.abc import Collection, Iterable
from typing import Any, TypeVar

from gymnasium import spaces

#: Largest seed accepted: torch generators take 64-bit seeds, and derived seeds add small offsets.
MAX_SEED = 2**63 - 2

T = TypeVar("T")


class ConfigurationError(SystemExit):
    """
    A flag, file key or value that a command refuses before it writes anything: the command
    prints the message as one line on stderr and exits with code 2 (argparse's code for usage
    errors); Python callers catch it as the ``SystemExit`` it is and read the message in ``str()``.

    :param message: names the flag or file, the key, the value and what is valid
    """

    def __init__(self, message: str) -> None:
        super().__init__(2)
        self.message = message

    def __str__(self) -> str:
        return self.message


def _is_int(value: Any) -> bool:
    # numbers.Integral covers Python and numpy integers; bool is an int but never a size.
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and type(value).__name__ != "bool_"


def plain_numbers(value: Any) -> Any:
    """
    ``value`` with every number-like (numpy and torch scalars, as Optuna and numpy grids produce)
    replaced by the Python number it prints as, inside dicts, lists and tuples too: names, JSON
    and comparisons then see ``0.8``, never ``np.float32(0.8)`` (``0.800000011920929``).

    :param value: a configuration value
    :return: the same value made of Python numbers
    """
    if value is None or type(value) in (bool, int, float, str):
        return value
    if isinstance(value, dict):
        return {plain_numbers(key): plain_numbers(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(plain_numbers(item) for item in value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):  # a float32 0.8 is the 0.8 its user wrote, not 0.800000011920929
        return float(value) if getattr(value, "itemsize", 8) >= 8 else float(str(value))
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "ndim", None) == 0:  # numpy booleans, 0-d arrays and tensors
        return plain_numbers(item())
    return value


def check_int(name: str, value: Any, minimum: int = 1, maximum: int | None = None) -> int:
    """
    Validate an integer (a size, a count, a frequency).

    :param name: argument name used in the error message
    :param value: the value to check (``int`` or a numpy integer)
    :param minimum: smallest allowed value
    :param maximum: largest allowed value (``None``: unbounded)
    :return: the value as an ``int``
    :raises ValueError: when ``value`` is not an integer in ``[minimum, maximum]``
    """
    if not _is_int(value) or value < minimum or (maximum is not None and value > maximum):
        bound = f"an integer >= {minimum}" if maximum is None else f"an integer in [{minimum}, {maximum}]"
        raise ValueError(f"{name} must be {bound}, got {value!r}")
    return int(value)


def check_fraction(name: str, value: Any, include_one: bool = False) -> float:
    """
    Validate a fraction in [0, 1) (or [0, 1] with ``include_one``), e.g. a sparsity.

    :param name: argument name used in the error message
    :param value: the value to check (Python or numpy number, not a bool)
    :param include_one: accept 1.0
    :return: the value as a ``float``
    :raises ValueError: when ``value`` is not a number in the range
    """
    if not is_fraction(value, include_one):
        raise ValueError(f"{name} must be in [0, {'1]' if include_one else '1)'}, got {value!r}")
    return float(value)


def is_fraction(value: Any, include_one: bool = False) -> bool:
    """
    Whether ``value`` is a number (not a bool) in [0, 1), or in [0, 1] with ``include_one``.

    :param value: the value to test
    :param include_one: accept 1.0
    :return: the answer
    """
    if isinstance(value, bool) or type(value).__name__ == "bool_" or not isinstance(value, numbers.Real):
        return False
    return 0.0 <= float(value) <= 1.0 if include_one else 0.0 <= float(value) < 1.0


def check_sparsity(name: str, value: Any) -> float:
    """
    Validate a sparsity level: the fraction of weights removed, in [0, 1).

    :param name: argument name used in the error message
    :param value: the value to check
    :return: the sparsity as a ``float``
    """
    return check_fraction(name, value)


def check_bool(name: str, value: Any) -> bool:
    """
    Validate a flag.

    :param name: argument name used in the error message
    :param value: ``True``/``False`` (or a numpy bool)
    :return: the value as a ``bool``
    :raises ValueError: for anything else (``0``, ``"yes"``, ``None``)
    """
    if not isinstance(value, bool) and type(value).__name__ != "bool_":
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_seed(name: str, value: Any, optional: bool = False) -> int | None:
    """
    Validate a random seed.

    :param name: argument name used in the error message
    :param value: an integer in ``[0, MAX_SEED]`` (or ``None`` when ``optional``)
    :param optional: accept ``None`` (returned as is)
    :return: the seed as an ``int``, or ``None``
    """
    if optional and value is None:
        return None
    either = "None or " if optional else ""
    if not _is_int(value) or value < 0:
        raise ValueError(f"{name} must be {either}an integer >= 0, got {value!r}")
    if value > MAX_SEED:
        raise ValueError(f"{name} must be {either}an integer <= {MAX_SEED} (2**63 - 2), got {value!r}")
    return int(value)


def closest_matches(value: object, choices: Iterable[object], count: int = 3) -> list[str]:
    """
    The choices closest to a mistyped value, best first: case-insensitive equality, then
    :func:`difflib.get_close_matches` on the lowercased names (a typo, a wrong case, a missing part).

    :param value: what was given
    :param choices: the valid values
    :param count: at most this many
    :return: the closest valid values as strings (none when nothing is close)
    """
    names = [str(choice) for choice in choices]
    lowered: dict[str, str] = {}
    for name in names:
        lowered.setdefault(name.lower(), name)
    text = str(value).lower()
    if text in lowered:
        return [lowered[text]]
    return [lowered[match] for match in difflib.get_close_matches(text, list(lowered), n=count, cutoff=0.6)]


def did_you_mean(value: object, choices: Iterable[object]) -> str:
    """``" (did you mean 'A' or 'B'?)"`` for the closest choices, or ``""`` when none is close."""
    return _suggestion(closest_matches(value, choices))


def _suggestion(matches: list[str]) -> str:
    return f" (did you mean {' or '.join(repr(match) for match in matches)}?)" if matches else ""


def unknown_names_message(what: str, unknown: Iterable[object], valid: Collection[object]) -> str:
    """
    One line about unknown names: each with its closest valid names, and the whole valid list only
    when some name has no close match.

    :param what: e.g. ``"sac.yml entry 'Pendulum-v1' has unknown keys"``
    :param unknown: the unknown names
    :param valid: the valid names
    :return: ``"<what> 'lerning_rate' (did you mean 'learning_rate'?)"``, and ``"; valid: ..."`` if needed
    """
    matches = [(name, closest_matches(name, valid)) for name in unknown]
    hints = [f"{name!r}{_suggestion(close)}" for name, close in matches]
    listed = "" if all(close for _, close in matches) else f"; valid: {', '.join(map(str, valid))}"
    return f"{what} {', '.join(hints)}{listed}"


def check_choice(name: str, value: T, choices: Collection[T]) -> T:
    """
    Validate one of a fixed set of values.

    :param name: argument name used in the error message
    :param value: the value to check
    :param choices: the valid values
    :return: the value
    """
    if value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}{did_you_mean(value, choices)}")
    return value


def check_flat_box_spaces(observation_space: spaces.Space, action_space: spaces.Space, owner: str) -> None:
    """
    Raise a ValueError unless the observations are a flat (1-D) Box and the actions a 1-D Box.

    :param observation_space: the environment's observation space
    :param action_space: the environment's action space
    :param owner: the class named in the message (e.g. the policy)
    """
    check_flat_box_observations(observation_space, owner)
    check_flat_box_actions(action_space, owner)


def check_flat_box_actions(action_space: spaces.Space, owner: str) -> None:
    """
    Raise a ValueError unless the actions are a 1-D Box (continuous).

    :param action_space: the environment's action space
    :param owner: the class named in the message (e.g. the policy)
    """
    if not isinstance(action_space, spaces.Box) or len(action_space.shape) != 1:
        raise ValueError(
            f"{owner} needs a 1-D Box (continuous) action space, got {type(action_space).__name__} "
            f"of shape {getattr(action_space, 'shape', None)}"
        )


def check_box_actions(action_space: spaces.Space, owner: str) -> None:
    """
    Raise a ValueError unless the actions are a Box (continuous; SB3 flattens a multi-dimensional one).

    :param action_space: the environment's action space
    :param owner: the class named in the message (e.g. the policy)
    """
    if not isinstance(action_space, spaces.Box):
        raise ValueError(
            f"{owner} needs a Box (continuous) action space, got {type(action_space).__name__} "
            f"{action_space}; for Discrete actions use DQN, QR-DQN, PPO, A2C or TRPO"
        )


def check_flat_box_observations(observation_space: spaces.Space, owner: str) -> None:
    """
    Raise a ValueError unless the observations are a flat (1-D) Box.

    :param observation_space: the environment's observation space
    :param owner: the class named in the message (e.g. the policy)
    """
    if isinstance(observation_space, spaces.Dict):
        raise ValueError(
            f"{owner} needs a flat Box observation space, got a Dict space with keys {list(observation_space.spaces)}; "
            "flatten it with gymnasium.wrappers.FlattenObservation, or use SparseSimBaMultiInputPolicy with an SB3 or "
            "sb3-contrib algorithm"
        )
    if not isinstance(observation_space, spaces.Box) or len(observation_space.shape) != 1:
        shape = getattr(observation_space, "shape", None)
        raise ValueError(
            f"{owner} needs a flat (1-D) Box observation space, got {type(observation_space).__name__} "
            f"of shape {shape}; flatten it with gymnasium.wrappers.FlattenObservation (images: SparseSimBaCnnPolicy)"
        )
