"""Plain YAML data to typed config dataclasses, naming the dotted field of any problem.

:func:`from_dict` builds a dataclass from its type hints: nested dataclasses, ``X | None``,
mappings, tuples, bools, ints and finite floats, each checked with a one-line
:class:`ConfigError`; a class with a ``from_raw(data, where)`` classmethod reads itself. A
section's own ``__post_init__`` check (a ``ValueError("<field>: <problem>")``) comes back prefixed
with the section's path.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import math
import reprlib
import types
import typing
from typing import Any


class ConfigError(ValueError):
    """A bad search config; the message is one line: ``<field>: <problem>; <what is allowed>``."""


SHOWN = 120  # characters of a bad value a message repeats (a hostile file's value can be huge)


def shown(value: Any) -> str:
    """``repr(value)`` for a message, cut to :data:`SHOWN` characters (a deep or aliased value is
    never expanded past that)."""
    short = reprlib.Repr()  # keyword arguments only from Python 3.12
    short.maxlevel, short.maxlist, short.maxdict, short.maxstring, short.maxother = 3, 6, 6, SHOWN, SHOWN
    text = short.repr(value)
    return text if len(text) <= SHOWN else text[:SHOWN - 3] + "..."


def from_dict(cls: type, data: Any, where: str) -> Any:
    """Build dataclass ``cls`` from plain data, naming the dotted field of any problem."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping, got {shown(data)}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(str(key) for key in set(data) - set(names))  # YAML keys may be numbers too
    if unknown:
        path = f"{where}.{shown(unknown[0])[1:-1]}" if where else shown(unknown[0])[1:-1]
        raise ConfigError(f"{path}: unknown field; allowed here: {', '.join(names)}")
    values = {name: coerce_value(hints[name], data[name], f"{where}.{name}" if where else name)
              for name in names if name in data}
    try:
        return cls(**values)
    except ConfigError:
        raise
    except ValueError as exc:  # a section's own check: "<field>: <problem>"
        raise ConfigError(f"{where}.{exc}" if where else str(exc)) from None


def coerce_value(hint: Any, value: Any, where: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hasattr(hint, "from_raw"):
        return hint.from_raw(value, where)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return from_dict(hint, value, where)
    if origin in (typing.Union, types.UnionType):  # X | None
        if value is None and type(None) in args:
            return None
        return coerce_value(next(a for a in args if a is not type(None)), value, where)
    if origin in (dict, collections.abc.Mapping):
        if value is None:  # a YAML key with only comments under it
            return {}
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {shown(value)}")
        return {str(k): coerce_value(args[1], v, f"{where}.{k}") for k, v in value.items()}
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {shown(value)}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(coerce_value(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{where}: expected {len(args)} values, got {len(value)}")
        return tuple(coerce_value(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
    if hint in (bool, int, float, str):
        return _scalar(hint, value, where)
    raise TypeError(f"{where}: unsupported field type {hint}")


def _scalar(hint: type, value: Any, where: str) -> bool | int | float | str:
    """A YAML scalar as ``hint`` (bool, int, float or str), refusing what only looks like one."""
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {shown(value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {shown(value)}")
        return value
    if hint is float:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected a number, got {shown(value)}")
        try:  # YAML 1.1 reads "1e-4" (no dot) as a string
            number = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected a number, got {shown(value)}") from None
        if not math.isfinite(number):
            raise ConfigError(f"{where}: expected a finite number, got {shown(value)}")
        return number
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {shown(value)}")
        return value
    raise TypeError(f"{where}: unsupported field type {hint}")
