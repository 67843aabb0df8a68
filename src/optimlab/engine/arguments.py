"""Keyword arguments checked against a constructor's signature before it is called.

Specs and TOML files give values as literals (``0.1``, ``true``, ``(0.9, 0.99)``, a bare word
as a string); a constructor then often accepts a wrong type silently — ``maximize='no'`` is
truthy, ``lr=None`` or ``lr=nan`` trains nonsense. :func:`check_arguments` compares each value
with the parameter's annotation (or, without one, its default's type):

- ``bool``: ``True``/``False`` only (not ``1``, not ``'no'``);
- ``float``: a finite real number (an int is accepted; ``nan``, ``inf``, ``1e999`` are not);
- ``int``: an integer; ``str``/``Literal``: a string (one of the literal's values);
- ``tuple[...]``/``list[...]``/``Iterable[...]``: a tuple or list whose items conform;
- unions: any member (a ``Tensor`` member is skipped: a spec cannot hold one);
- anything else (a callable, ``Any``, no annotation and no default): left to the constructor.

Used by the optimizer specs (:mod:`optimlab.lab.spec`) and the schedulers
(:mod:`optimlab.engine.schedules`).
"""

from __future__ import annotations

import collections.abc
import inspect
import math
import types
import typing
from typing import Any

from optimlab.errors import UserError

_SKIPPED = ("self", "params", "optimizer")
_NAMES: dict[str, Any] = {**{n: getattr(typing, n) for n in typing.__all__},
                          **{n: getattr(collections.abc, n) for n in collections.abc.__all__}}


def shown(value: Any, limit: int = 40) -> str:
    """``repr(value)`` on one line, cut to ``limit`` characters (a 5000-digit value stays short)."""
    try:
        text = " ".join(repr(value).split())
    except ValueError:  # an int past Python's 4300-digit conversion limit
        text = f"<an integer of {int(value.bit_length() * math.log10(2)) + 1} digits>"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def accepted_arguments(cls: Any) -> dict[str, inspect.Parameter]:
    """The keyword arguments ``cls(...)`` takes besides ``params``/``optimizer``."""
    return {n: p for n, p in inspect.signature(cls).parameters.items()
            if n not in _SKIPPED and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


def _hints(cls: Any) -> dict[str, Any]:
    init = cls.__init__ if inspect.isclass(cls) else cls
    try:
        return typing.get_type_hints(init, localns=_NAMES)
    except Exception:  # an annotation that does not resolve here: fall back to the defaults
        return {}


def _from_default(default: Any) -> Any:
    if default is inspect.Parameter.empty or default is None:
        return Any
    if isinstance(default, bool | int | float):
        return bool if isinstance(default, bool) else float
    if isinstance(default, tuple) and all(isinstance(v, int | float) for v in default):
        return tuple.__class_getitem__((float,) * len(default)) if default else tuple[float, ...]
    return type(default) if isinstance(default, str) else Any


def _is_real(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:  # an int beyond float range
        return False


def _describe(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is bool:
        return "true or false"
    if hint is float:
        return "a finite number"
    if hint is int:
        return "an integer"
    if hint is str:
        return "a string"
    if hint is type(None):
        return "None"
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in args if a is not _tensor())
    if origin is tuple and args and args[-1] is not Ellipsis:
        return f"a tuple of {len(args)} ({', '.join(_describe(a) for a in args)})"
    if origin is not None and args:
        return f"a list of ({_describe(args[0])})"
    return "a valid value"


def _tensor() -> Any:
    import torch

    return torch.Tensor


def conforms(value: Any, hint: Any) -> bool:
    """True when ``value`` fits the annotation ``hint`` (unknown kinds of hint always fit)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is bool:
        return isinstance(value, bool)
    if hint is float:
        return _is_real(value)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if hint is type(None):
        return value is None
    if origin is typing.Literal:
        return value in args
    if origin in (typing.Union, types.UnionType):
        members = [a for a in args if a is not _tensor()]
        return any(conforms(value, a) for a in members) if members else True
    if origin is tuple and args:
        if not isinstance(value, tuple | list):
            return False
        if args[-1] is Ellipsis:
            return all(conforms(v, args[0]) for v in value)
        return len(value) == len(args) and all(conforms(v, a) for v, a in zip(value, args,
                                                                                 strict=True))
    if origin in (list, collections.abc.Iterable, collections.abc.Sequence) and args:
        return isinstance(value, tuple | list) and all(conforms(v, args[0]) for v in value)
    return True


def check_arguments(cls: Any, kwargs: dict[str, Any], *, what: str,
                    noun: str = "argument") -> None:
    """Raise :class:`UserError` for an unknown key or a value of the wrong type.

    ``what`` names the thing in the message (``"optimizer 'sgd'"``), ``noun`` its keys
    (``"hyperparameter"``). Ranges (``lr >= 0``) are left to the constructor, whose own
    ``ValueError`` the callers turn into a UserError.
    """
    accepted = accepted_arguments(cls)
    for key in kwargs:
        if key not in accepted:
            raise UserError(f"unknown {noun} {shown(key)} for {what}; valid: "
                            f"{', '.join(accepted)}")
    hints = _hints(cls)
    for key, value in kwargs.items():
        hint = hints.get(key, _from_default(accepted[key].default))
        if not conforms(value, hint):
            raise UserError(f"{what}: {key}={shown(value)} is not allowed; {key} must be "
                            f"{_describe(hint)}")
