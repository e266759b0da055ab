"""
One check that a value can be sent as UTF-8: no lone surrogates anywhere inside it.

Python strings may hold lone surrogates (``"\\ud800"``, typically from a mis-decoded file or
``json.loads`` of an escaped half pair). They cannot be encoded as UTF-8, so the Gemini SDK and Milvus
fail on them late: after retries, mid-load, or with a bare ``UnicodeEncodeError`` naming nothing. Both
operators and the Gemini hook call :func:`check_utf8_encodable` before any request is paid for.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["check_utf8_encodable"]


def check_utf8_encodable(value: Any, where: str) -> None:
    """
    Raise ``ValueError`` naming ``where`` (and the key path inside ``value``) if any string in ``value``
    cannot be encoded as UTF-8.

    Dicts (keys and values), lists and tuples are walked; other types are ignored.

    :param value: a string, or a JSON-like structure of dicts, lists and strings.
    :param where: how the caller names the item, e.g. ``documents[3] text``.
    """
    problem = _first_unencodable(value, "")
    if problem is not None:
        path, code, position = problem
        raise ValueError(
            f"{where}{path} holds a lone surrogate (U+{code:04X} at character {position}), which is not "
            "valid UTF-8 and cannot be sent; fix how the text was decoded"
        )


def _first_unencodable(value: Any, path: str) -> tuple[str, int, int] | None:
    if isinstance(value, str):
        if value.isascii():
            return None
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as err:
            return path, ord(value[err.start]), err.start
        return None
    if isinstance(value, Mapping):
        for key, item in value.items():
            key_path = f"{path}[{key!r}]" if isinstance(key, str) else f"{path}[{key}]"
            if isinstance(key, str) and (found := _first_unencodable(key, f"{path} key")) is not None:
                return found
            if (found := _first_unencodable(item, key_path)) is not None:
                return found
        return None
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            if (found := _first_unencodable(item, f"{path}[{index}]")) is not None:
                return found
    return None
