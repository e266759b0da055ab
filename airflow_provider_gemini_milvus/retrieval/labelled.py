"""
Labelled queries: search queries with the ids a person marked relevant, the yardstick of search quality.

:func:`labelled_queries` is the one converter for what a user passes (a templated operator argument, so a
native list or mapping from XCom, or a rendered string). It accepts:

- a list of objects ``{"query": "how do I reset the pump?", "relevant": ...}`` where ``relevant`` is a
  list of ids (each grade 1), one id, or ``{id: grade}`` with positive grades (graded relevance for nDCG);
- a mapping ``{query: relevant}``, ``relevant`` in any of those three forms;
- a string of JSON text of either (it starts with ``[`` or ``{``);
- a path (a string or :class:`os.PathLike`) to a local ``.json`` file holding either, or to a ``.jsonl``
  file: one ``{"query": ..., "relevant": ...}`` object per line, blank lines skipped. This is the format
  to bring your own set in, and what :func:`dump_labelled_queries` writes::

      {"query": "pump PX-4410 loses pressure", "relevant": ["kb-017"]}
      {"query": "how do I descale the boiler?", "relevant": {"kb-004": 2, "kb-009": 1}}

Ids are strings, as the provider's ids are (VARCHAR): a number in JSON is refused, not converted, so
``17`` never silently fails to match ``"017"``. Each query text appears once. Every bad input raises
:class:`ValueError` naming the item (``labelled_queries[3]``, ``queries.jsonl line 4``) and the fault.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["LabelledQuery", "dump_labelled_queries", "labelled_queries"]

_KEYS = ("query", "relevant")
_SHAPES = (
    'a list of {"query", "relevant"} objects, a {query: relevant ids} mapping, JSON text of either, '
    "or the path of a local .json or .jsonl file"
)
_SHOWN_CHARS = 60


@dataclass(frozen=True)
class LabelledQuery:
    """
    One query and the ids relevant to it.

    :param query: the query text, as searched.
    :param relevant: ``{id: grade}``, every grade positive (binary relevance: every grade 1.0).
    """

    query: str
    relevant: Mapping[str, float] = field(hash=False)


def _shown(text: str) -> str:
    """A query text for an error message, shortened."""
    short = text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "..."
    return json.dumps(short, ensure_ascii=False)


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _check_id(value: Any, where: str) -> str:
    if isinstance(value, int | float):  # bool is an int
        raise ValueError(
            f"{where} is the number {value!r}: ids are strings (the provider's ids are VARCHAR); "
            f'write "{value}" if that is the id'
        )
    if not isinstance(value, str) or not value:
        raise ValueError(f"{where} must be an id, a non-empty string, got {value!r}")
    return value


def _check_grade(value: Any, where: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValueError(f"{where} must be a grade, a positive number, got {value!r}")
    return float(value)


def _relevant(value: Any, where: str) -> dict[str, float]:
    """``relevant`` in any of its three forms, as ``{id: grade}``."""
    if isinstance(value, str):
        return {_check_id(value, where): 1.0}
    grades: dict[str, float] = {}
    if isinstance(value, Mapping):
        for key, grade in value.items():
            identifier = _check_id(key, f"{where} key {key!r}")
            grades[identifier] = _check_grade(grade, f"{where}[{json.dumps(identifier)}]")
    elif isinstance(value, Sequence):
        for position, item in enumerate(value):
            identifier = _check_id(item, f"{where}[{position}]")
            if identifier in grades:
                raise ValueError(f"{where} names the id {identifier!r} twice")
            grades[identifier] = 1.0
    else:
        raise ValueError(
            f"{where} must be a list of ids, one id or an {{id: grade}} mapping, got {_type_name(value)}"
        )
    if not grades:
        raise ValueError(f"{where} is empty: a labelled query needs at least one relevant id")
    return grades


def _query_text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where} must be the query text, a non-empty string, got {value!r}")
    return value


def _from_object(item: Any, where: str) -> LabelledQuery:
    """One ``{"query", "relevant"}`` object (or a :class:`LabelledQuery`)."""
    if isinstance(item, LabelledQuery):
        return LabelledQuery(
            query=_query_text(item.query, f"{where}.query"),
            relevant=_relevant(item.relevant, f"{where}.relevant"),
        )
    if not isinstance(item, Mapping):
        raise ValueError(f'{where} must be a {{"query", "relevant"}} object, got {_type_name(item)}')
    for key in _KEYS:
        if key not in item:
            raise ValueError(f'{where} has no "{key}"')
    unknown = sorted(str(key) for key in item if key not in _KEYS)
    if unknown:
        raise ValueError(f'{where} has unknown keys {unknown} (a labelled query has "query" and "relevant")')
    return LabelledQuery(
        query=_query_text(item["query"], f'{where}["query"]'),
        relevant=_relevant(item["relevant"], f'{where}["relevant"]'),
    )


def _from_list(items: Sequence[Any], name: str) -> list[tuple[LabelledQuery, str]]:
    return [
        (_from_object(item, f"{name}[{position}]"), f"{name}[{position}]")
        for position, item in enumerate(items)
    ]


def _from_mapping(items: Mapping[Any, Any], name: str) -> list[tuple[LabelledQuery, str]]:
    if set(items) == set(_KEYS):
        raise ValueError(f'{name} is one {{"query", "relevant"}} object; pass a list of them')
    result: list[tuple[LabelledQuery, str]] = []
    for query, relevant in items.items():
        where = f"{name}[{_shown(query)}]" if isinstance(query, str) else f"{name} key {query!r}"
        text = _query_text(query, where)
        result.append((LabelledQuery(query=text, relevant=_relevant(relevant, where)), where))
    return result


def _from_json_value(value: Any, name: str) -> list[tuple[LabelledQuery, str]]:
    if isinstance(value, Mapping):
        return _from_mapping(value, name)
    if isinstance(value, list):
        return _from_list(value, name)
    raise ValueError(f"{name} must hold {_SHAPES}; its JSON is a {_type_name(value)}")


def _read_text(path: Path, name: str) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ValueError(f"{name}: the file {str(path)!r} does not exist") from None
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    except OSError as error:
        raise ValueError(f"{name}: the file {str(path)!r} cannot be read ({error.strerror})") from None


def _from_file(path: Path, name: str) -> list[tuple[LabelledQuery, str]]:
    suffix = path.suffix.lower()
    if suffix not in (".json", ".jsonl"):
        raise ValueError(f"{name}: the file {str(path)!r} must end in .json or .jsonl")
    text = _read_text(path, name)
    if suffix == ".json":
        try:
            value = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(
                f"{path}: not JSON ({error.msg}, line {error.lineno} column {error.colno})"
            ) from None
        return _from_json_value(value, str(path))
    result: list[tuple[LabelledQuery, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path} line {number}"
        try:
            item = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{where}: not JSON ({error.msg}, column {error.colno})") from None
        result.append((_from_object(item, where), where))
    return result


def _from_string(value: str, name: str) -> list[tuple[LabelledQuery, str]]:
    stripped = value.strip()
    if stripped.startswith(("[", "{")):
        try:
            parsed = json.loads(stripped)
        except json.JSONDecodeError as error:
            raise ValueError(
                f"{name} is not JSON ({error.msg}, line {error.lineno} column {error.colno})"
            ) from None
        return _from_json_value(parsed, name)
    if not stripped:
        raise ValueError(f"{name} is empty: pass {_SHAPES}")
    path = Path(stripped)
    if path.suffix.lower() not in (".json", ".jsonl"):
        raise ValueError(
            f"{name} is neither JSON text (starting with [ or {{) nor the path of a .json or .jsonl file: "
            f"{_shown(stripped)}"
        )
    return _from_file(path, name)


def labelled_queries(value: Any, name: str = "labelled_queries") -> list[LabelledQuery]:
    """
    Convert what a user passes as labelled queries (see the module docstring for the forms).

    :param value: a list of ``{"query", "relevant"}`` objects (or :class:`LabelledQuery`), a
        ``{query: relevant}`` mapping, JSON text of either, or the path of a ``.json``/``.jsonl`` file.
    :param name: the argument's name, for the errors.
    :return: the queries, in the order given, each with ``{id: grade}``.
    :raises ValueError: naming the item and the fault: no query, an empty or malformed ``relevant``, an id
        that is not a non-empty string, a grade that is not a positive number, a repeated query text, a line
        that is not JSON, an unreadable file, or no queries at all.
    """
    if isinstance(value, os.PathLike):
        items = _from_file(Path(value), name)
    elif isinstance(value, str):
        items = _from_string(value, name)
    elif isinstance(value, Mapping):
        items = _from_mapping(value, name)
    elif isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        items = _from_list(value, name)
    else:
        raise ValueError(f"{name} must be {_SHAPES}; got {_type_name(value)}")
    if not items:
        raise ValueError(f"{name} holds no queries: quality is measured on at least one labelled query")
    seen: dict[str, str] = {}
    for query, where in items:
        key = query.query.strip()
        if key in seen:
            raise ValueError(f"{where} repeats the query {_shown(key)} of {seen[key]}")
        seen[key] = where
    return [query for query, _ in items]


def _grade_json(grade: float) -> float | int:
    return int(grade) if grade.is_integer() else grade


def dump_labelled_queries(queries: Iterable[LabelledQuery], path: str | os.PathLike[str]) -> Path:
    """
    Write labelled queries as JSONL, the form :func:`labelled_queries` reads back: one
    ``{"query", "relevant"}`` object per line, ``relevant`` a list of ids when every grade is 1, else
    ``{id: grade}``.

    :param queries: the labelled queries.
    :param path: the file to write (UTF-8, replaced if it exists).
    :return: the path written.
    """
    target = Path(path)
    lines = []
    for query in queries:
        grades = dict(query.relevant)
        relevant: list[str] | dict[str, float | int] = (
            list(grades)
            if all(grade == 1 for grade in grades.values())
            else {identifier: _grade_json(grade) for identifier, grade in grades.items()}
        )
        lines.append(json.dumps({"query": query.query, "relevant": relevant}, ensure_ascii=False))
    target.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return target
