"""The values an entry's keys may take, as SB3 and the algorithms need them (whole numbers where
SB3 indexes or reshapes with them, ranges where a value outside trains on NaN or silently
nothing), checked before anything is built or written: :func:`check_entry_values` names the
file or flag, the key, the value and what is valid, in one line."""

from __future__ import annotations

import importlib
import inspect
import math
from collections.abc import Callable
from typing import Any

#: A rule: ``None`` for a valid value, else what a valid one is ("a whole number >= 1").
Rule = Callable[[Any], str | None]


def _yaml_hint(value: Any) -> str:
    """For a number YAML 1.1 read as text (``1e-3``): how to write it."""
    try:
        float(value)
    except (TypeError, ValueError):
        return ""
    return (
        f" (YAML 1.1 reads {value} as text: write it with a dot, 1.0e-3, or as !!float {value})"
        if isinstance(value, str)
        else ""
    )


def _is_whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def whole(minimum: int, also: tuple[int, ...] = (), written_as_float: bool = False) -> Rule:
    """
    A whole number ``>= minimum`` (or one of ``also``, SB3's -1 for "as many as collected");
    ``written_as_float``: ``!!float 1e6`` too, where the reader converts it (``n_timesteps``).
    """
    valid = f"a whole number >= {minimum}" + "".join(f" or {value}" for value in also)

    def rule(value: Any) -> str | None:
        if written_as_float and _is_number(value) and float(value).is_integer():
            value = int(value)
        return None if _is_whole(value) and (value >= minimum or value in also) else valid

    return rule


def number(low: float, high: float = math.inf, low_open: bool = False, high_open: bool = False) -> Rule:
    """A finite number in the interval (``low_open``: ``low`` excluded; ``high_open``: ``high`` excluded)."""
    left, right = "(" if low_open else "[", ")" if high_open or math.isinf(high) else "]"
    valid = f"a number in {left}{low:g}, {'inf' if math.isinf(high) else f'{high:g}'}{right}"

    def rule(value: Any) -> str | None:
        if not _is_number(value):
            return valid + _yaml_hint(value)
        inside = (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
        return None if inside else valid

    return rule


def positive_or_schedule(value: Any) -> str | None:
    """A number > 0, or the zoo's schedule ``lin_<number > 0>`` (``learning_rate``, ``clip_range``)."""
    valid = "a number > 0 or a schedule lin_<number > 0>"
    if isinstance(value, str) and value.startswith("lin_"):
        try:
            return None if float(value[4:]) > 0 else valid
        except ValueError:
            return valid
    if callable(value):  # a schedule given from Python
        return None
    return None if _is_number(value) and value > 0 else valid + _yaml_hint(value)


def optional(rule: Rule) -> Rule:
    """``None`` (null: the default) or what ``rule`` accepts."""

    def check(value: Any) -> str | None:
        return None if value is None else rule(value)

    return check


def boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else "true or false"


def mapping(value: Any) -> str | None:
    """A mapping, or the zoo's string of one (``"dict(net_arch=[64])"``)."""
    if isinstance(value, dict):
        return None
    if isinstance(value, str):
        from sb3_sparse.hyperparams import zoo_eval

        try:
            evaluated = zoo_eval(value)
        except Exception as error:
            return f"a mapping or a string of one (it does not evaluate: {type(error).__name__}: {error})"
        return None if isinstance(evaluated, dict) else f"a mapping or a string of one (it evaluates to {evaluated!r})"
    return "a mapping or a string of one, e.g. dict(critic_hidden_dim=256)"


def normalize(value: Any) -> str | None:
    """The zoo's ``normalize``: true, false, a mapping of VecNormalize's arguments or a string of one."""
    return None if isinstance(value, bool) or mapping(value) is None else "true, false or VecNormalize's arguments"


def ent_coef(value: Any) -> str | None:
    """SAC's ``ent_coef``: a number >= 0, ``auto`` or ``auto_<initial value > 0>``."""
    valid = "a number >= 0, auto or auto_<number > 0>"
    if isinstance(value, str) and value.startswith("auto"):
        if value == "auto":
            return None
        try:
            return None if value.startswith("auto_") and float(value[5:]) > 0 else valid
        except ValueError:
            return valid
    return None if _is_number(value) and value >= 0 else valid


def train_freq(value: Any) -> str | None:
    """A whole number >= 1 of steps, or ``[n, step]`` / ``[n, episode]``."""
    valid = "a whole number >= 1, or [n >= 1, step] or [n >= 1, episode]"
    if _is_whole(value):
        return None if value >= 1 else valid
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return None if _is_whole(value[0]) and value[0] >= 1 and value[1] in ("step", "episode") else valid
    return valid


def importable(value: Any) -> str | None:
    """The zoo's ``callback``/``env_wrapper``: ``module.Name``, ``{module.Name: kwargs}`` or a list of them."""
    names = value if isinstance(value, list) else [value]
    for item in names:
        name = next(iter(item)) if isinstance(item, dict) and len(item) == 1 else item
        if not isinstance(name, str) or "." not in name:
            return "module.Name, {module.Name: {arguments}} or a list of them"
        module, _, attribute = name.rpartition(".")
        try:
            found = hasattr(importlib.import_module(module), attribute)
        except Exception as error:  # ImportError, or the module's own error
            return f"importable names (importing {module}: {type(error).__name__}: {error})"
        if not found:
            return f"importable names ({module} has no {attribute})"
    return None


#: The rules by key (keys without one take what the algorithm takes).
VALUE_RULES: dict[str, Rule] = {
    "n_timesteps": whole(1, written_as_float=True),
    "batch_size": whole(1),
    "buffer_size": whole(1),
    "learning_starts": whole(0),
    "n_envs": whole(1),
    "gradient_steps": whole(1, also=(-1,)),
    "target_update_interval": whole(1),
    "n_steps": whole(1),
    "n_epochs": whole(1),
    "frame_stack": optional(whole(1)),
    "policy_delay": whole(1),
    "sde_sample_freq": whole(-1),
    "stats_window_size": whole(1),
    "top_quantiles_to_drop_per_net": whole(0),
    "n_critic_updates": whole(1),
    "train_freq": train_freq,
    "gamma": number(0, 1, low_open=True),
    "tau": number(0, 1, low_open=True),
    "gae_lambda": number(0, 1),
    "vf_coef": number(0),
    "max_grad_norm": number(0, low_open=True),
    "noise_std": number(0),
    "target_policy_noise": number(0),
    "target_noise_clip": number(0),
    "exploration_fraction": number(0, 1),
    "exploration_initial_eps": number(0, 1),
    "exploration_final_eps": number(0, 1),
    "learning_rate": positive_or_schedule,
    "clip_range": positive_or_schedule,
    "clip_range_vf": optional(positive_or_schedule),
    "ent_coef": ent_coef,
    "use_sde": boolean,
    "use_sde_at_warmup": boolean,
    "optimize_memory_usage": boolean,
    "normalize_advantage": boolean,
    "handle_timeout_termination": boolean,
    "policy_kwargs": optional(mapping),
    "env_kwargs": optional(mapping),
    "monitor_kwargs": optional(mapping),
    "replay_buffer_kwargs": optional(mapping),
    "normalize": normalize,
    "callback": optional(importable),
    "env_wrapper": optional(importable),
    "vec_env_wrapper": optional(importable),
}


def check_entry_values(entry: dict[str, Any], source: str, algorithm: type | None = None) -> None:
    """
    Check every key of ``entry`` that has a rule, then that an off-policy buffer holds a batch.

    :param entry: the entry (or the ``-params`` overrides alone)
    :param source: how the message names where the values come from (``"sac.yml entry 'Pendulum-v1'"``)
    :param algorithm: the algorithm class, whose defaults complete ``buffer_size >= batch_size``
    :raises ValueError: one line naming the source, the key, the value and what is valid
    """
    for key, value in entry.items():
        rule = VALUE_RULES.get(key)
        problem = None if rule is None else rule(value)
        if problem is not None:
            raise ValueError(f"{source}: {key}: {value!r} is not {problem}")
    if algorithm is None:
        return
    defaults = {name: parameter.default for name, parameter in inspect.signature(algorithm).parameters.items()}
    if "buffer_size" in defaults and "batch_size" in defaults and ("buffer_size" in entry or "batch_size" in entry):
        buffer_size, batch_size = (
            entry.get("buffer_size", defaults["buffer_size"]),
            entry.get("batch_size", defaults["batch_size"]),
        )
        if buffer_size < batch_size:
            raise ValueError(
                f"{source}: buffer_size: {buffer_size!r} is not >= batch_size ({batch_size!r}): a batch is drawn from it"
            )
