"""
The extras of the ``gemini`` and ``milvus`` connections: declared once, read by one reader.

Each extra is an :class:`ExtraField`. The same declaration gives the connection form its field (Airflow
3.2+ ``conn-fields``, see :mod:`~airflow_provider_gemini_milvus.provider_info`), its default, and the
conversion and validation the hooks apply through :class:`ConnectionExtras`. A hook can only read an
extra that is declared, so the form and the hooks cannot drift apart.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from airflow_provider_gemini_milvus.utils.converters import parse_bool

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = [
    "DEFAULT_LITE_LOCK_WAIT_SECONDS",
    "DEFAULT_MAX_CONCURRENCY",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_RETRY_INITIAL_DELAY",
    "DEFAULT_RETRY_MAX_DELAY",
    "DEFAULT_TIMEOUT_SECONDS",
    "GEMINI_EXTRA_FIELDS",
    "MILVUS_EXTRA_FIELDS",
    "ConnectionExtras",
    "ExtraField",
]

log = logging.getLogger(__name__)

ExtraKind = Literal["string", "number", "integer", "boolean", "json"]

DEFAULT_TIMEOUT_SECONDS = 60.0
"""Seconds per Gemini HTTP request."""
DEFAULT_MAX_CONCURRENCY = 32
"""Gemini requests in flight at once per task: the ceiling of the adaptive window, or the fixed count."""
DEFAULT_MAX_RETRIES = 6
"""Retries per Gemini request after the first attempt."""
DEFAULT_RETRY_INITIAL_DELAY = 1.0
"""Upper bound of the first backoff wait, in seconds; it doubles on each retry."""
DEFAULT_RETRY_MAX_DELAY = 60.0
"""Cap of any backoff wait the hook computes, in seconds."""
DEFAULT_LITE_LOCK_WAIT_SECONDS = 60.0
"""How long a task waits for another process to release a Milvus Lite file before it fails."""

_JSON_TYPES: Mapping[str, str] = {
    "string": "string",
    "number": "number",
    "integer": "integer",
    "boolean": "boolean",
    "json": "string",
}


@dataclass(frozen=True)
class ExtraField:
    """
    One connection extra: its type, default and form field.

    :param name: the key in the connection's extra (the form stores it as ``extra__<type>__<name>`` too).
    :param kind: ``string``, ``number``, ``integer``, ``boolean`` or ``json`` (a JSON object as text).
    :param label: the form label.
    :param description: the form help text.
    :param default: the value when the extra is absent or empty.
    :param minimum: the smallest value allowed (numbers and integers).
    :param positive: numbers must be greater than zero.
    :param secret: shown as a password field and never echoed in an error.
    """

    name: str
    kind: ExtraKind
    label: str
    description: str
    default: Any = None
    minimum: float | None = None
    positive: bool = False
    secret: bool = False

    def form_field(self) -> dict[str, Any]:
        """The ``conn-fields`` entry for this extra: label, description and a JSON Schema."""
        schema: dict[str, Any] = {"type": [_JSON_TYPES[self.kind], "null"]}
        if self.default is not None:
            schema["default"] = self.default
        if self.minimum is not None:
            schema["minimum"] = self.minimum
        elif self.positive:
            schema["exclusiveMinimum"] = 0
        if self.secret:
            schema["format"] = "password"
        return {"label": self.label, "description": self.description, "schema": schema}


class ConnectionExtras:
    """
    Typed, validated access to one connection's extras, for the fields declared for its type.

    Values may be stored plainly (``{"timeout": 30}``) or as the UI form stores them
    (``{"extra__gemini__timeout": "30"}``); an empty string counts as absent. Bad values raise
    ``ValueError`` naming the connection and the extra (never a secret's value). Reading an undeclared
    name, or with the wrong type, is a programming error (``KeyError``/``TypeError``).

    :param conn_type: ``gemini`` or ``milvus``.
    :param fields: the declared extras of that type.
    :param extra: the connection's ``extra_dejson``.
    :param conn_id: the connection id, for error messages.
    """

    def __init__(
        self,
        conn_type: str,
        fields: Sequence[ExtraField],
        extra: Mapping[str, Any] | None,
        *,
        conn_id: str | None = None,
    ) -> None:
        self.conn_type = conn_type
        self.fields = {field.name: field for field in fields}
        self.extra = dict(extra or {})
        self.conn_id = conn_id
        unknown = sorted(key for key in self.extra if self._declared_name(key) is None)
        if unknown:
            log.warning(
                "%s ignores unknown extra(s) %s; known extras: %s",
                self._where(),
                ", ".join(map(repr, unknown)),
                ", ".join(sorted(self.fields)),
            )

    def _declared_name(self, key: str) -> str | None:
        prefix = f"extra__{self.conn_type}__"
        name = key[len(prefix) :] if key.startswith(prefix) else key
        return name if name in self.fields else None

    def _where(self) -> str:
        return f"connection {self.conn_id!r}" if self.conn_id else f"the {self.conn_type} connection"

    def _field(self, name: str, kind: ExtraKind) -> ExtraField:
        field = self.fields[name]
        if field.kind != kind:
            raise TypeError(f"extra {name!r} is declared as {field.kind}, read as {kind}")
        return field

    def _raw(self, field: ExtraField) -> Any:
        value = self.extra.get(field.name)
        if value is None or value == "":
            value = self.extra.get(f"extra__{self.conn_type}__{field.name}")
        return None if value == "" else value

    def _invalid(self, field: ExtraField, expected: str, value: Any) -> ValueError:
        shown = "" if field.secret else f", got {value!r}"
        return ValueError(f"{self._where()}: extra {field.name!r} must be {expected}{shown}")

    def string(self, name: str) -> str | None:
        """A string extra, or its default."""
        field = self._field(name, "string")
        value = self._raw(field)
        return field.default if value is None else str(value)

    def number(self, name: str) -> float | None:
        """A number extra (a float, an int or numeric text), or its default."""
        field = self._field(name, "number")
        value = self._raw(field)
        if value is None:
            return None if field.default is None else float(field.default)
        expected = "a positive number" if field.positive else "a number"
        if field.minimum is not None:
            expected = f"a number >= {field.minimum:g}"
        try:
            number = float(value) if not isinstance(value, bool) else float("nan")
        except (TypeError, ValueError) as err:
            raise self._invalid(field, expected, value) from err
        if number != number or number in (float("inf"), float("-inf")):
            raise self._invalid(field, expected, value)
        if (field.positive and number <= 0) or (field.minimum is not None and number < field.minimum):
            raise self._invalid(field, expected, value)
        return number

    def integer(self, name: str) -> int | None:
        """An integer extra (an int, a whole float or digits as text), or its default."""
        field = self._field(name, "integer")
        value = self._raw(field)
        if value is None:
            return None if field.default is None else int(field.default)
        minimum = field.minimum if field.minimum is not None else (1 if field.positive else None)
        expected = "an integer" if minimum is None else f"an integer >= {minimum:g}"
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise self._invalid(field, expected, value)
        try:
            number = int(value.strip()) if isinstance(value, str) else int(value)
        except (TypeError, ValueError) as err:
            raise self._invalid(field, expected, value) from err
        if minimum is not None and number < minimum:
            raise self._invalid(field, expected, value)
        return number

    def boolean(self, name: str) -> bool:
        """A boolean extra: ``true``/``false`` (any case), ``1``/``0``, ``yes``/``no``; else an error."""
        field = self._field(name, "boolean")
        value = self._raw(field)
        if value is None:
            return bool(field.default)
        parsed = parse_bool(value)
        if parsed is None:
            raise self._invalid(field, "true or false", value)
        return parsed

    def json_object(self, name: str) -> dict[str, Any] | None:
        """A JSON object extra, given as an object or as JSON text; its value is never echoed."""
        field = self._field(name, "json")
        value = self._raw(field)
        if value is None or isinstance(value, dict):
            return value
        try:
            parsed = json.loads(str(value))
        except ValueError:
            # ``from None``: the decoder's message quotes the text, which may be a service-account key.
            raise ValueError(f"{self._where()}: extra {field.name!r} is not valid JSON") from None
        if not isinstance(parsed, dict):
            raise ValueError(f"{self._where()}: extra {field.name!r} must be a JSON object")
        return parsed


GEMINI_EXTRA_FIELDS: tuple[ExtraField, ...] = (
    ExtraField(
        "base_url",
        "string",
        "Base URL",
        "A proxy, gateway or the bundled emulator (https://, or http:// on a loopback address only). "
        "Empty means Google's endpoint.",
    ),
    ExtraField("api_version", "string", "API version", "For example v1 or v1beta. Empty: the SDK default."),
    ExtraField(
        "timeout", "number", "Timeout (seconds)", "Per HTTP request.", DEFAULT_TIMEOUT_SECONDS, positive=True
    ),
    ExtraField(
        "max_concurrency",
        "integer",
        "Max concurrent requests",
        "Most requests in flight at once per task: the ceiling of the adaptive window (which starts at 16), "
        "or the fixed number with adaptive concurrency off.",
        DEFAULT_MAX_CONCURRENCY,
        minimum=1,
    ),
    ExtraField(
        "adaptive_concurrency",
        "boolean",
        "Adaptive concurrency",
        "Grow the requests in flight while answers come fast and without 429, halve them on a 429 "
        "(AIMD). Off: always max_concurrency in flight.",
        True,
    ),
    ExtraField(
        "remember_quota",
        "boolean",
        "Remember the learned quota",
        "With adaptive concurrency: keep the request and token rates learned from 429 answers in an Airflow "
        "Variable per connection and model, and start the next task there instead of in slow start.",
        True,
    ),
    ExtraField(
        "requests_per_minute",
        "integer",
        "Requests per minute",
        "Pace requests to this quota. Empty means no pacing.",
        minimum=1,
    ),
    ExtraField(
        "tokens_per_minute",
        "integer",
        "Tokens per minute",
        "Pace input tokens to this quota. Empty means no pacing.",
        minimum=1,
    ),
    ExtraField(
        "max_retries",
        "integer",
        "Max retries",
        "Retries per request on 429, 5xx, timeouts, dropped connections and malformed answers.",
        DEFAULT_MAX_RETRIES,
        minimum=0,
    ),
    ExtraField(
        "retry_initial_delay",
        "number",
        "First retry delay (seconds)",
        "Upper bound of the first backoff wait; it doubles on each retry.",
        DEFAULT_RETRY_INITIAL_DELAY,
        positive=True,
    ),
    ExtraField(
        "retry_max_delay",
        "number",
        "Longest retry delay (seconds)",
        "Cap of any backoff wait the hook computes.",
        DEFAULT_RETRY_MAX_DELAY,
        positive=True,
    ),
    ExtraField(
        "vertexai",
        "boolean",
        "Use Vertex AI",
        "Call Gemini through Vertex AI (Google Cloud) instead of the Gemini API.",
        False,
    ),
    ExtraField("project", "string", "Google Cloud project", "Vertex AI only."),
    ExtraField("location", "string", "Google Cloud location", "Vertex AI only, for example us-central1."),
    ExtraField(
        "service_account_json",
        "json",
        "Service account JSON",
        "Vertex AI only. Empty means Application Default Credentials.",
        secret=True,
    ),
)
"""The extras of a ``gemini`` connection, in form order."""

MILVUS_EXTRA_FIELDS: tuple[ExtraField, ...] = (
    ExtraField("timeout", "number", "Timeout (seconds)", "Per Milvus call. Empty: none.", positive=True),
    ExtraField("secure", "boolean", "TLS", "Force TLS (https URIs use TLS anyway).", False),
    ExtraField(
        "lite_lock_wait",
        "number",
        "Milvus Lite lock wait (seconds)",
        "Milvus Lite only: how long to wait, retrying with logged backoff, for another process to release "
        "the .db file before failing; 0 fails at once.",
        DEFAULT_LITE_LOCK_WAIT_SECONDS,
        minimum=0,
    ),
)
"""The extras of a ``milvus`` connection, in form order."""
