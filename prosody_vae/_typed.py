"""Frozen dataclasses from plain data: each value converted to, and checked against, its field's type.

The door through which YAML and checkpoint dicts become :mod:`prosody_vae.config` sections. Supported
annotations: ``int``, ``float``, ``bool``, ``str``, ``X | None``, ``Literal[...]`` string choices,
``tuple[X, Y]``, ``tuple[X, ...]`` and nested dataclasses. Conversions:

* int: an int, an integral float (``2e4``), or a string holding one; ``16.5``, ``'abc'`` and bools
  are refused.
* float: any finite number, or a string holding one. PyYAML follows YAML 1.1, which reads ``1e-3``
  (an exponent without a dot) as a string; here it becomes 0.001. NaN and infinities are refused.
* bool: only true or false (YAML already maps yes/no/on/off); ``'maybe'`` is refused.
* str: only strings (a YAML ``2024`` must be quoted).
* tuples from lists, element by element; a ``Literal`` value must be one of its choices.
* a nested dataclass from a mapping; an empty one (YAML ``section:`` with nothing under it) takes the
  defaults.

Every error is a one-line ``ValueError`` naming the key (``train.log_every: expected an int, got
'abc'``). Imports only the standard library.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

__all__ = ["build", "check", "check_choice", "check_counts", "check_numbers", "field_type", "plain"]


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


def field_type(cls: type, name: str) -> Any:
    """The resolved annotation of ``cls.name``, or None when there is no such field."""
    return _hints(cls).get(name)


def build(cls: type, raw: Any, key: str = "") -> Any:
    """An instance of the dataclass ``cls`` from a mapping of (some of) its fields.

    Unknown keys are an error; missing keys take the field defaults. ``key`` is the dotted path of
    ``raw`` used in messages ("" at the top).
    """
    if not isinstance(raw, dict):
        raise ValueError(f"{key or 'config'}: expected a mapping, got {type(raw).__name__} {raw!r}")
    known = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(raw) - set(known), key=str)
    if unknown:
        raise ValueError(f"{key + ': ' if key else ''}unknown key(s) {unknown}; known: {known}")
    hints = _hints(cls)
    values = {
        name: _convert(value, hints[name], f"{key}.{name}" if key else name) for name, value in raw.items()
    }
    return cls(**values)


def plain(value: Any) -> Any:
    """``value`` with tuples turned into lists, recursively (for YAML and checkpoints)."""
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    return value


def _convert(value: Any, hint: Any, key: str) -> Any:
    origin, args = get_origin(hint), get_args(hint)
    if dataclasses.is_dataclass(hint):
        if isinstance(value, hint):
            return value
        return build(hint, {} if value is None else value, key)  # an empty YAML section: defaults
    if origin in (Union, types.UnionType):  # X | None
        if value is None and type(None) in args:
            return None
        (inner,) = [arg for arg in args if arg is not type(None)]
        return _convert(value, inner, key)
    if origin is Literal:
        if isinstance(value, str) and value in args:
            return value
        raise ValueError(_choice_message(key, value, args))
    if origin is tuple:
        return _to_tuple(value, args, key)
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ValueError(f"{key}: expected true or false, got {value!r}")
    if hint is int:
        return _to_int(value, key)
    if hint is float:
        return _to_float(value, key)
    if hint is str:
        if isinstance(value, str):
            return value
        raise ValueError(f"{key}: expected a string, got {value!r} (quote it in YAML)")
    raise TypeError(f"{key}: no conversion to {hint!r}")  # a field type this module does not handle


def _to_int(value: Any, key: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            pass
        try:
            value = float(value)  # '2e4'
        except ValueError:
            pass
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise ValueError(f"{key}: expected an int, got {value!r}")


def _to_float(value: Any, key: str) -> float:
    number = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)  # '1e-3'
        except ValueError:
            pass
    if number is None or not math.isfinite(number):
        raise ValueError(f"{key}: expected a finite number, got {value!r}")
    return number


def _to_tuple(value: Any, args: tuple[Any, ...], key: str) -> tuple[Any, ...]:
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{key}: expected a list, got {value!r}")
    if len(args) == 2 and args[1] is Ellipsis:  # tuple[X, ...]
        args = (args[0],) * len(value)
    elif len(value) != len(args):
        raise ValueError(f"{key}: expected a list of {len(args)} values, got {list(value)!r}")
    pairs = enumerate(zip(value, args, strict=True))
    return tuple(_convert(item, hint, f"{key}[{i}]") for i, (item, hint) in pairs)


# Range checks for __post_init__ (they also hold for sections built in Python, which skip _convert).


def check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def check_counts(config: Any, section: str, minimum: int, *names: str) -> None:
    """Each named field of ``config`` is an int (not a bool) of at least ``minimum``."""
    for name in names:
        value = getattr(config, name)
        check(
            isinstance(value, int) and not isinstance(value, bool) and value >= minimum,
            f"{section}.{name} must be an int >= {minimum}, got {value!r}",
        )


def check_numbers(config: Any, section: str, *names: str, zero_ok: bool = False) -> None:
    """Each named field of ``config`` is a finite number ``> 0`` (``>= 0`` with ``zero_ok``)."""
    for name in names:
        value = getattr(config, name)
        number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        check(
            number and (value >= 0 if zero_ok else value > 0),
            f"{section}.{name} must be a finite number {'>=' if zero_ok else '>'} 0, got {value!r}",
        )


def check_bools(config: Any, section: str, *names: str) -> None:
    """Each named field of ``config`` is a bool."""
    for name in names:
        value = getattr(config, name)
        check(isinstance(value, bool), f"{section}.{name} must be a bool, got {value!r}")


def check_choice(config: Any, section: str, name: str) -> None:
    """The field's value is one of the choices of its ``Literal`` annotation."""
    value, choices = getattr(config, name), get_args(field_type(type(config), name))
    check(value in choices, _choice_message(f"{section}.{name}", value, choices))


def _choice_message(key: str, value: Any, choices: tuple[Any, ...]) -> str:
    return f"{key}: unknown {value!r} (choices: {', '.join(map(repr, choices))})"
