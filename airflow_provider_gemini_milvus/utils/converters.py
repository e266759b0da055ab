"""
Conversion and validation of operator arguments after Jinja has rendered them.

A templated argument reaches ``execute`` as whatever the template rendered: ``"{{ params.prune }}"``
becomes the string ``"False"``, which Python treats as true. Every operator of this provider converts its
arguments here, in one place, at the start of ``execute`` and before any request is paid for. Each
converter accepts the Python value and its rendered text, and refuses anything ambiguous with a message
that names the argument.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Sequence
from typing import Any, Literal, TypeVar, overload

__all__ = [
    "is_list_text",
    "parse_bool",
    "split_list_text",
    "to_bool",
    "to_choice",
    "to_float",
    "to_int",
    "to_str",
    "to_str_list",
    "unset_if_none",
]

_Choice = TypeVar("_Choice", bound=str)

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})
_RENDERED_HINT = "a Jinja template renders to a string; set render_template_as_native_obj=True on the DAG"


def parse_bool(value: Any) -> bool | None:
    """
    Return ``value`` as a bool, or None when it is not clearly one.

    Accepts ``True``/``False`` and, in any case and with surrounding spaces, the strings ``true``,
    ``false``, ``1``, ``0``, ``yes``, ``no``, ``on``, ``off``, and the integers 0 and 1. Anything else
    (``"treu"``, ``2``, ``None``) gives None, so the caller can refuse it.

    :param value: a rendered template, a connection extra or a Python value.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    return None


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def to_bool(value: Any, name: str) -> bool:
    """
    Return ``value`` as a bool: ``True``/``False``, or ``"true"``/``"false"`` in any case.

    :param value: the rendered argument.
    :param name: the argument's name, for the error.
    :raises ValueError: for anything else, ``"treu"``, ``""`` and ``None`` included.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return bool(parse_bool(value))
    raise ValueError(f"{name} must be true or false (or the text 'true'/'false'), got {value!r}")


@overload
def to_int(
    value: Any,
    name: str,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    optional: Literal[False] = False,
) -> int: ...


@overload
def to_int(
    value: Any, name: str, *, minimum: int | None = None, maximum: int | None = None, optional: bool
) -> int | None: ...


def to_int(
    value: Any,
    name: str,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    optional: bool = False,
) -> int | None:
    """
    Return ``value`` as an int: ``5`` or ``"5"``; ``None`` or ``""`` only when ``optional``.

    :param value: the rendered argument.
    :param name: the argument's name, for the error.
    :param minimum: the smallest value allowed.
    :param maximum: the largest value allowed.
    :param optional: accept ``None`` (and a blank rendered string) as "not set".
    :raises ValueError: for ``"5.5"``, ``5.5``, ``True``, out-of-range values, or a missing required value.
    """
    if _is_blank(value):
        if optional:
            return None
        raise ValueError(f"{name} is required: an integer, got {value!r}")
    bounds = _bounds_text(minimum, maximum)
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str):
        text = value.strip()
        if text.lstrip("+-").isdigit():
            number = int(text)
    if number is None:
        raise ValueError(f"{name} must be an integer{bounds}, got {value!r}")
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        raise ValueError(f"{name} must be an integer{bounds}, got {value!r}")
    return number


@overload
def to_float(
    value: Any,
    name: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    optional: Literal[False] = False,
) -> float: ...


@overload
def to_float(
    value: Any, name: str, *, minimum: float | None = None, maximum: float | None = None, optional: bool
) -> float | None: ...


def to_float(
    value: Any,
    name: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    optional: bool = False,
) -> float | None:
    """
    Return ``value`` as a finite float (``0.5``, ``1`` or ``"0.5"``); ``None`` or ``""`` only if ``optional``.

    :param value: the rendered argument.
    :param name: the argument's name, for the error.
    :param minimum: the smallest value allowed.
    :param maximum: the largest value allowed.
    :param optional: accept ``None`` (and a blank rendered string) as "not set".
    :raises ValueError: for non-numbers, NaN, infinities, booleans and out-of-range values.
    """
    if _is_blank(value):
        if optional:
            return None
        raise ValueError(f"{name} is required: a number, got {value!r}")
    bounds = _bounds_text(minimum, maximum)
    number: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if number is None or not math.isfinite(number):
        raise ValueError(f"{name} must be a number{bounds}, got {value!r}")
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        raise ValueError(f"{name} must be a number{bounds}, got {value!r}")
    return number


@overload
def to_str(
    value: Any, name: str, *, choices: Sequence[str] | None = None, optional: Literal[False] = False
) -> str: ...


@overload
def to_str(value: Any, name: str, *, choices: Sequence[str] | None = None, optional: bool) -> str | None: ...


def to_str(
    value: Any, name: str, *, choices: Sequence[str] | None = None, optional: bool = False
) -> str | None:
    """
    Return ``value`` as a non-blank string, checked against ``choices`` (case-sensitive) when given.

    :param value: the rendered argument.
    :param name: the argument's name, for the error.
    :param choices: the allowed values.
    :param optional: accept ``None`` (and a blank string) as "not set".
    :raises ValueError: for non-strings, blank strings (unless optional) and values outside ``choices``.
    """
    if _is_blank(value):
        if optional:
            return None
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string, got {type(value).__name__}")
    if choices is not None and value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")
    return value


@overload
def to_str_list(value: Any, name: str, *, optional: Literal[False] = False) -> list[str]: ...


@overload
def to_str_list(value: Any, name: str, *, optional: bool) -> list[str] | None: ...


def to_str_list(value: Any, name: str, *, optional: bool = False) -> list[str] | None:
    """
    Return ``value`` as a list of non-blank strings; a single string is refused, not split into letters.

    :param value: the rendered argument: a list or tuple of strings.
    :param name: the argument's name, for the error.
    :param optional: accept ``None`` as "not set".
    :raises ValueError: for a string, a non-sequence, or an item that is not a non-blank string.
    """
    if value is None and optional:
        return None
    if isinstance(value, str):
        raise ValueError(f"{name} must be a list of strings, got the string {value!r} ({_RENDERED_HINT})")
    if not isinstance(value, Sequence):
        raise ValueError(f"{name} must be a list of strings, got {type(value).__name__}")
    for index, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise ValueError(f"{name}[{index}] must be a non-empty string, got {item!r}")
    return list(value)


def to_choice(value: Any, name: str, choices: Sequence[_Choice]) -> _Choice:
    """
    Return ``value`` as one of ``choices`` (case-sensitive), typed as the choices are (a ``Literal``).

    :param value: the rendered argument.
    :param name: the argument's name, for the error.
    :param choices: the allowed values, e.g. ``typing.get_args(WriteMode)``.
    :raises ValueError: for anything else, naming the choices.
    """
    text = to_str(value, name, choices=choices)
    return next(choice for choice in choices if choice == text)


def _bounds_text(minimum: float | None, maximum: float | None) -> str:
    if minimum is not None and maximum is not None:
        return f" from {minimum:g} to {maximum:g}"
    if minimum is not None:
        return f" >= {minimum:g}"
    if maximum is not None:
        return f" <= {maximum:g}"
    return ""


def unset_if_none(value: Any) -> Any:
    """
    ``value``, or None when it is the text ``"None"``: what a template of an unset value renders.

    :param value: the rendered argument.
    """
    return None if isinstance(value, str) and value.strip() == "None" else value


def is_list_text(value: str) -> bool:
    """
    True when ``value`` is the text of a Python list (``"['a', 'b']"``): a list a template rendered.

    :param value: the rendered argument.
    """
    text = value.strip()
    if not (text.startswith("[") and text.endswith("]")):
        return False
    try:
        return isinstance(ast.literal_eval(text), list)
    except (ValueError, SyntaxError):
        return False


def split_list_text(value: str, name: str) -> list[Any]:
    """
    The items of a rendered list (``"[0.7, 0.3]"``, ``"['text']"``) or of comma-separated text
    (``"0.7, 0.3"``).

    :param value: the rendered argument.
    :param name: the argument's name, for the error.
    :raises ValueError: for text in brackets that is not a list.
    """
    text = value.strip()
    if text.startswith("[") and text.endswith("]"):
        try:
            parsed = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            raise ValueError(f"{name} must be a list, got the text {value!r}") from None
        if isinstance(parsed, list):
            return parsed
    return [item.strip() for item in text.split(",")]
