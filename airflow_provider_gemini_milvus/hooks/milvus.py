"""
Hook for Milvus: a Milvus server, Zilliz Cloud, or a local Milvus Lite ``.db`` file.

The hook owns the collection layout this provider writes (see :data:`FIELD_ID` and the other ``FIELD_*``
constants), the checks that run before anything is written, and batched, size-bounded writes.

Milvus Lite accepts several things a Milvus server rejects (duplicate primary keys in one batch, NaN
vectors, VARCHAR lengths counted in characters rather than bytes, index types it cannot load later), so
:func:`prepare_rows` validates rows the way a server would, on every backend.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import numbers
import os
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from airflow.sdk import BaseHook

from airflow_provider_gemini_milvus.connection_extras import MILVUS_EXTRA_FIELDS, ConnectionExtras
from airflow_provider_gemini_milvus.exceptions import GeminiMilvusProviderError, MilvusCollectionMismatchError

if TYPE_CHECKING:
    from types import TracebackType

    from airflow.sdk import Connection
    from pymilvus import MilvusClient

# --- Collection layout ----------------------------------------------------------------------------

FIELD_ID = "id"
FIELD_VECTOR = "vector"
FIELD_TEXT = "text"
FIELD_CONTENT_HASH = "content_hash"
FIELD_MODEL = "model"
FIELD_METADATA = "metadata"

ID_MAX_LENGTH = 512
"""``max_length`` of the VARCHAR primary key ``id``, in UTF-8 bytes as a Milvus server counts."""
TEXT_MAX_LENGTH = 65535
"""Default (and largest) ``max_length`` of the VARCHAR ``text`` field, in UTF-8 bytes."""
CONTENT_HASH_MAX_LENGTH = 64
MODEL_MAX_LENGTH = 256
MAX_DIM = 32768
"""Largest vector dimension a Milvus server accepts."""

#: Every field :meth:`MilvusHook.ensure_collection` creates, with the Milvus data type name it must have.
REQUIRED_FIELD_TYPES: Mapping[str, str] = {
    FIELD_ID: "VARCHAR",
    FIELD_VECTOR: "FLOAT_VECTOR",
    FIELD_TEXT: "VARCHAR",
    FIELD_CONTENT_HASH: "VARCHAR",
    FIELD_MODEL: "VARCHAR",
    FIELD_METADATA: "JSON",
}

METRIC_TYPES = frozenset({"COSINE", "L2", "IP"})
"""Metric types Milvus supports for FLOAT_VECTOR fields."""
LITE_INDEX_TYPES = frozenset({"HNSW", "HNSW_SQ", "IVF_FLAT", "IVF_SQ8", "FLAT", "BRUTE_FORCE", "AUTOINDEX"})
"""Vector index types Milvus Lite can build and load again after a restart."""
LITE_FAISS_INDEX_TYPES = frozenset({"HNSW", "HNSW_SQ", "IVF_FLAT", "IVF_SQ8"})
"""Milvus Lite index types that need ``faiss-cpu`` installed."""

WRITE_MODES: tuple[str, ...] = ("upsert", "insert")

DEFAULT_MAX_BATCH_BYTES = 16 * 1024 * 1024
"""Default payload cap per insert/upsert request: well under the 64 MiB a Milvus server accepts."""
ROW_OVERHEAD_BYTES = 64
"""Allowance per row for protobuf framing and field headers in :func:`estimate_row_bytes`."""
ID_QUERY_BATCH = 1000
"""Ids per ``id in [...]`` query or delete."""
LIST_IDS_PAGE = 1000
DEFAULT_LITE_DIR = "milvus_lite"
DEFAULT_LITE_FILE = "milvus.db"
_SERVER_SCHEMES = ("http", "https", "tcp", "unix")
_STRONG = "Strong"


# --- Results --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CollectionInfo:
    """
    What the provider needs to know about an existing collection.

    :param name: collection name.
    :param dim: dimension of the ``vector`` field, or None if the collection has no such FLOAT_VECTOR field.
    :param metric_type: metric of the index on ``vector``, or None if it has no index.
    :param index_type: type of the index on ``vector``, or None if it has no index.
    :param id_max_length: ``max_length`` of the ``id`` field (bytes), or None if it is not a VARCHAR.
    :param text_max_length: ``max_length`` of the ``text`` field (bytes), or None if it is not a VARCHAR.
    :param field_types: every field name mapped to its Milvus data type name, e.g. ``{"id": "VARCHAR"}``.
    """

    name: str
    dim: int | None
    metric_type: str | None
    index_type: str | None
    id_max_length: int | None
    text_max_length: int | None
    field_types: Mapping[str, str]

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dict."""
        data = asdict(self)
        data["field_types"] = dict(self.field_types)
        return data


@dataclass(frozen=True)
class WriteResult:
    """
    Outcome of :meth:`MilvusHook.write_rows`.

    :param collection: collection written to.
    :param mode: ``upsert`` or ``insert``.
    :param written: rows sent and acknowledged.
    :param batches: requests made.
    :param seconds: wall time of the writes and the final flush.
    """

    collection: str
    mode: str
    written: int
    batches: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dict."""
        return asdict(self)


# --- Pure helpers (no I/O) ------------------------------------------------------------------------


def milvus_string_literal(value: str) -> str:
    """
    Quote a string for a Milvus boolean expression, e.g. ``id in [...]``.

    pymilvus does not escape primary keys (``delete(ids=...)``, ``query_iterator``) and Milvus Lite has no
    filter templating and no ``\\uXXXX`` escapes, so this escapes only backslash, double quote and line
    breaks, and keeps every other character as it is.

    :param value: the string to quote.
    """
    escaped = (
        value.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )
    return f'"{escaped}"'


def ids_in_filter(ids: Iterable[str], field: str = FIELD_ID) -> str:
    """
    Build ``<field> in ["a", "b"]`` with every id quoted by :func:`milvus_string_literal`.

    :param ids: string primary keys.
    :param field: the primary key field name.
    """
    return f"{field} in [{', '.join(milvus_string_literal(i) for i in ids)}]"


def chunked(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    """
    Yield consecutive slices of ``items`` holding at most ``size`` elements.

    :param items: the sequence to split.
    :param size: the largest slice, at least 1.
    """
    if size < 1:
        raise ValueError(f"chunk size must be at least 1, got {size}")
    for start in range(0, len(items), size):
        yield items[start : start + size]


def content_hash(text: str) -> str:
    """
    Return the SHA-256 hex digest of ``text`` encoded as UTF-8 (what rows store as ``content_hash``).

    :param text: the text that was embedded.
    """
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _json_compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def estimate_row_bytes(row: Mapping[str, Any]) -> int:
    """
    Estimate how many bytes one row adds to an insert/upsert request.

    Vectors count 4 bytes per float32 value, strings their UTF-8 length, other values their compact JSON
    length, plus :data:`ROW_OVERHEAD_BYTES` per row and each key's length. The estimate errs on the high
    side, so batches built from it stay under the server's request limit.

    :param row: a row as produced by :func:`prepare_rows`.
    """
    size = ROW_OVERHEAD_BYTES
    for key, value in row.items():
        size += len(key)
        if key == FIELD_VECTOR:
            size += 4 * len(value)
        elif isinstance(value, str):
            size += len(value.encode("utf-8"))
        else:
            size += len(_json_compact(value).encode("utf-8"))
    return size


def split_batches(
    rows: Sequence[Mapping[str, Any]],
    *,
    max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES,
    max_batch_rows: int | None = None,
) -> list[list[Mapping[str, Any]]]:
    """
    Split rows, in order, into batches under a payload size and an optional row count.

    :param rows: rows as produced by :func:`prepare_rows`.
    :param max_batch_bytes: no batch's :func:`estimate_row_bytes` total exceeds this.
    :param max_batch_rows: no batch holds more rows than this; None means no row cap.
    :raises ValueError: when a single row is larger than ``max_batch_bytes``, or a limit is below 1.
    """
    if max_batch_bytes < 1:
        raise ValueError(f"max_batch_bytes must be at least 1, got {max_batch_bytes}")
    if max_batch_rows is not None and max_batch_rows < 1:
        raise ValueError(f"max_batch_rows must be at least 1, got {max_batch_rows}")
    batches: list[list[Mapping[str, Any]]] = []
    current: list[Mapping[str, Any]] = []
    current_bytes = 0
    for index, row in enumerate(rows):
        row_bytes = estimate_row_bytes(row)
        if row_bytes > max_batch_bytes:
            raise ValueError(
                f"row {index} (id {_show(row.get(FIELD_ID))}) is about {row_bytes} bytes, "
                f"more than max_batch_bytes={max_batch_bytes}"
            )
        row_cap_hit = max_batch_rows is not None and len(current) >= max_batch_rows
        if current and (current_bytes + row_bytes > max_batch_bytes or row_cap_hit):
            batches.append(current)
            current, current_bytes = [], 0
        current.append(row)
        current_bytes += row_bytes
    if current:
        batches.append(current)
    return batches


def _show(value: Any, limit: int = 80) -> str:
    """Repr of an id for error messages, shortened."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def _utf8_len(value: str) -> int:
    return len(value.encode("utf-8"))


def _check_id(value: Any, where: str, id_max_length: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where}: id must be a non-empty string, got {_show(value)}")
    if _utf8_len(value) > id_max_length:
        raise ValueError(
            f"{where}: id is {_utf8_len(value)} bytes in UTF-8, longer than the id field's "
            f"max_length {id_max_length}"
        )
    return value


def _check_vector(value: Any, where: str) -> list[float]:
    if value is None:
        raise ValueError(f"{where}: missing vector")
    if hasattr(value, "tolist") and not isinstance(value, list):  # numpy arrays
        value = value.tolist()
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
        raise ValueError(f"{where}: vector must be a list of numbers, got {type(value).__name__}")
    if not value:
        raise ValueError(f"{where}: vector is empty")
    floats: list[float] = []
    for position, number in enumerate(value):
        if isinstance(number, bool) or not isinstance(number, numbers.Real):
            raise ValueError(f"{where}: vector value {position} is not a number ({type(number).__name__})")
        as_float = float(number)
        if not math.isfinite(as_float):
            raise ValueError(f"{where}: vector value {position} is {as_float} (NaN and inf are not allowed)")
        floats.append(as_float)
    return floats


def _check_short_string(row: Mapping[str, Any], key: str, where: str, max_length: int) -> str | None:
    value = row.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{where}: {key} must be a string, got {type(value).__name__}")
    if _utf8_len(value) > max_length:
        raise ValueError(f"{where}: {key} is {_utf8_len(value)} bytes in UTF-8, max_length is {max_length}")
    return value


def _check_json(value: Any, where: str, what: str) -> None:
    try:
        _json_compact(value)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}: {what} is not JSON-serialisable: {err}") from err


def prepare_rows(
    rows: Sequence[Any],
    *,
    dim: int | None = None,
    id_max_length: int = ID_MAX_LENGTH,
    text_max_length: int = TEXT_MAX_LENGTH,
) -> tuple[list[dict[str, Any]], int | None]:
    """
    Validate rows the way a Milvus server would and return them ready to write, with the vector dimension.

    Every row must be a dict with a non-empty string ``id``, a ``vector`` of finite numbers and a string
    ``text``; ``metadata`` (a JSON-serialisable dict), ``content_hash`` and ``model`` are optional.
    A missing ``content_hash`` becomes the SHA-256 of the text, a missing ``model`` becomes ``""``, a
    missing ``metadata`` becomes ``{}``. Other keys are kept as dynamic fields and must be JSON-serialisable.
    Lengths are counted in UTF-8 bytes, as a Milvus server counts them (Milvus Lite counts characters).

    :param rows: the rows to check; nothing is modified in place.
    :param dim: the dimension every vector must have; None means the first row's.
    :param id_max_length: the id field's ``max_length`` in bytes.
    :param text_max_length: the text field's ``max_length`` in bytes.
    :raises ValueError: naming the first bad row's index and id.
    :return: the normalised rows and the dimension (None when there are no rows and ``dim`` is None).
    """
    if isinstance(rows, (str, bytes, Mapping)) or not isinstance(rows, Sequence):
        raise ValueError(f"rows must be a list of dicts, got {type(rows).__name__}")
    prepared: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    expected_dim = dim
    for index, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise ValueError(f"row {index} must be a dict, got {type(row).__name__}")
        where = f"row {index} (id {_show(row.get(FIELD_ID))})"
        row_id = _check_id(row.get(FIELD_ID), where, id_max_length)
        if row_id in seen:
            raise ValueError(f"{where}: duplicate id, also used by row {seen[row_id]}")
        seen[row_id] = index
        vector = _check_vector(row.get(FIELD_VECTOR), where)
        if expected_dim is None:
            if len(vector) > MAX_DIM:
                raise ValueError(f"{where}: vector has {len(vector)} values, Milvus allows at most {MAX_DIM}")
            expected_dim = len(vector)
        elif len(vector) != expected_dim:
            origin = "the collection has" if dim is not None else "row 0 has"
            raise ValueError(f"{where}: vector has {len(vector)} values, {origin} dim {expected_dim}")
        text = row.get(FIELD_TEXT)
        if not isinstance(text, str):
            raise ValueError(f"{where}: text must be a string, got {type(text).__name__}")
        if _utf8_len(text) > text_max_length:
            raise ValueError(
                f"{where}: text is {_utf8_len(text)} bytes in UTF-8, longer than the text field's "
                f"max_length {text_max_length}"
            )
        metadata = row.get(FIELD_METADATA)
        if metadata is None:
            metadata = {}
        if not isinstance(metadata, Mapping):
            raise ValueError(f"{where}: metadata must be a dict, got {type(metadata).__name__}")
        _check_json(metadata, where, "metadata")
        hash_value = _check_short_string(row, FIELD_CONTENT_HASH, where, CONTENT_HASH_MAX_LENGTH)
        model = _check_short_string(row, FIELD_MODEL, where, MODEL_MAX_LENGTH)
        extras = {key: value for key, value in row.items() if key not in REQUIRED_FIELD_TYPES}
        for key, value in extras.items():
            if not isinstance(key, str) or not key or key.startswith("$"):
                raise ValueError(f"{where}: extra key {_show(key)} is not a valid dynamic field name")
            _check_json(value, where, f"extra field {key!r}")
        prepared.append(
            {
                **extras,
                FIELD_ID: row_id,
                FIELD_VECTOR: vector,
                FIELD_TEXT: text,
                FIELD_CONTENT_HASH: hash_value if hash_value else content_hash(text),
                FIELD_MODEL: model or "",
                FIELD_METADATA: dict(metadata),
            }
        )
    return prepared, expected_dim


def check_collection_matches(info: CollectionInfo, *, dim: int, metric_type: str | None = None) -> None:
    """
    Raise :class:`MilvusCollectionMismatchError` if ``info`` cannot hold this provider's rows.

    :param info: the existing collection, from :meth:`MilvusHook.describe`.
    :param dim: the vectors' dimension.
    :param metric_type: the metric the caller expects; None skips the metric check.
    """
    for field, expected in REQUIRED_FIELD_TYPES.items():
        actual = info.field_types.get(field)
        if actual is None:
            raise MilvusCollectionMismatchError(
                f"collection {info.name!r} has no field {field!r} ({expected}); it was not created by this "
                "provider. Use another collection name, or drop and recreate it."
            )
        if actual != expected:
            raise MilvusCollectionMismatchError(
                f"collection {info.name!r} field {field!r} is {actual}, this provider needs {expected}"
            )
    if info.dim != dim:
        raise MilvusCollectionMismatchError(
            f"collection {info.name!r} has dim {info.dim}, the vectors have dim {dim}"
        )
    if metric_type is not None and info.metric_type is not None and info.metric_type != metric_type.upper():
        raise MilvusCollectionMismatchError(
            f"collection {info.name!r} is indexed with metric {info.metric_type}, the task asks for "
            f"{metric_type.upper()}"
        )


def _is_lite_uri(uri: str) -> bool:
    scheme = urlsplit(uri).scheme.lower()
    return uri.endswith(".db") and scheme not in _SERVER_SCHEMES


def default_lite_path() -> str:
    """Return ``$AIRFLOW_HOME/milvus_lite/milvus.db`` (``AIRFLOW_HOME`` defaults to ``~/airflow``)."""
    airflow_home = os.path.expanduser(os.path.expandvars(os.environ.get("AIRFLOW_HOME", "~/airflow")))
    return os.path.join(airflow_home, DEFAULT_LITE_DIR, DEFAULT_LITE_FILE)


def build_client_kwargs(
    *,
    host: str | None,
    login: str | None = None,
    password: str | None = None,
    schema: str | None = None,
    port: int | None = None,
    extra: Mapping[str, Any] | ConnectionExtras | None = None,
    conn_id: str | None = None,
) -> dict[str, Any]:
    """
    Turn Airflow connection fields into ``pymilvus.MilvusClient`` keyword arguments, without connecting.

    * ``host`` is the URI: ``http(s)://host:port`` for a server or Zilliz Cloud, or a path ending in
      ``.db`` for Milvus Lite (made absolute). A bare host name gets ``http://`` (``https://`` when
      ``secure``) and ``port`` if set; pymilvus defaults the port to 19530 (443 for https). Empty means
      :func:`default_lite_path`.
    * ``password`` is the token; with ``login`` it becomes ``user:password``. Credentials written in the URI
      (``https://user:pass@host``) are moved into the token, so the URI passed on never holds a secret.
    * ``schema`` is the database name; extras ``timeout`` (seconds) and ``secure`` (TLS).

    :param conn_id: the connection id, for error messages.
    :raises ValueError: when ``login`` is set without a password, or an extra has a bad value.
    """
    extras = (
        extra
        if isinstance(extra, ConnectionExtras)
        else ConnectionExtras("milvus", MILVUS_EXTRA_FIELDS, extra, conn_id=conn_id)
    )
    raw = (host or "").strip()
    if not raw:
        raw = default_lite_path()
    kwargs: dict[str, Any] = {}
    uri_token = ""
    if _is_lite_uri(raw):
        uri = os.path.abspath(os.path.expanduser(raw))
        # A dedicated channel is closed by ``close()``; a shared one would outlive the Lite server.
        kwargs["dedicated"] = True
    else:
        secure = extras.boolean("secure")
        if "://" not in raw and not raw.startswith("unix:"):
            raw = f"{'https' if secure else 'http'}://{raw}"
            if port and urlsplit(raw).port is None:
                raw = f"{raw}:{port}"
        parts = urlsplit(raw)
        if parts.username or parts.password:
            uri_token = parts.username or ""
            if parts.password:
                uri_token = f"{uri_token}:{parts.password}"
            netloc = parts.hostname or ""
            if parts.port:
                netloc = f"{netloc}:{parts.port}"
            parts = parts._replace(netloc=netloc)
        uri = urlunsplit(parts)
        if secure:
            kwargs["secure"] = True
    kwargs["uri"] = uri
    if login and not password:
        where = f"Milvus connection {conn_id!r}" if conn_id else "the Milvus connection"
        raise ValueError(f"{where}: User is set but Password is empty")
    token = f"{login}:{password}" if login and password else (password or uri_token)
    if token:
        kwargs["token"] = token
    if schema:
        kwargs["db_name"] = schema
    timeout = extras.number("timeout")
    if timeout is not None:
        kwargs["timeout"] = timeout
    return kwargs


def _deleted_count(result: Any, requested: int) -> int:
    """Count from ``delete``: a dict ``{"delete_count": n}`` on a server, a list of keys on Milvus Lite."""
    if isinstance(result, Mapping):
        return int(result.get("delete_count", requested))
    if isinstance(result, Sequence) and not isinstance(result, (str, bytes)):
        return len(result)
    return requested


def _type_name(value: Any) -> str:
    name = getattr(value, "name", None)
    return str(name if name is not None else value).upper()


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# --- The hook -------------------------------------------------------------------------------------


class _LiteUnimplementedRpcFilter(logging.Filter):
    """
    Drop gRPC's report of an RPC that Milvus Lite does not implement.

    pymilvus calls ``AllocTimestamp`` while creating a collection and ignores the failure, but the
    in-process Lite server logs it at ERROR with a traceback, which reads like a failed task.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not (isinstance(error, NotImplementedError) and "Method not implemented" in str(error))


def _quiet_lite_unimplemented_rpc_errors() -> None:
    grpc_server_log = logging.getLogger("grpc._server")
    if not any(isinstance(existing, _LiteUnimplementedRpcFilter) for existing in grpc_server_log.filters):
        grpc_server_log.addFilter(_LiteUnimplementedRpcFilter())


class MilvusHook(BaseHook):
    """
    Talk to Milvus through a cached ``pymilvus.MilvusClient`` built from an Airflow connection.

    Connection fields: **host** is the URI (``http(s)://host:port`` for a server or Zilliz Cloud, or a
    local ``*.db`` path for Milvus Lite, whose parent folder is created if missing); **password** is the
    token, or with **login** the password of ``user:password``; **schema** is the database name; extras
    ``timeout`` (seconds, per call) and ``secure`` (TLS). With no host the hook uses a Milvus Lite file at
    ``$AIRFLOW_HOME/milvus_lite/milvus.db``.

    Milvus Lite keeps a lock on its ``.db`` folder while its in-process server runs, even after the client
    is closed. :meth:`close` stops that server, so the next task in the same process, or another process,
    can open the file. Milvus Lite serves one process per file: run tasks that share a ``.db`` one at a
    time (for example with a pool of size 1), and do not close a hook while another hook in the same
    process still uses the same file.

    The hook is also a context manager: ``with MilvusHook() as hook: ...`` closes it on exit.

    .. seealso:: https://milvus.io/docs/quickstart.md

    :param milvus_conn_id: the Airflow connection id.
    """

    conn_name_attr = "milvus_conn_id"
    default_conn_name = "milvus_default"
    conn_type = "milvus"
    hook_name = "Milvus"

    def __init__(self, milvus_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.milvus_conn_id = milvus_conn_id
        self._client: MilvusClient | None = None
        self._loaded: set[str] = set()

    # -- connection --------------------------------------------------------------------------------

    @cached_property
    def _connection(self) -> Connection:
        return self.get_connection(self.milvus_conn_id)

    @cached_property
    def _extras(self) -> ConnectionExtras:
        return ConnectionExtras(
            self.conn_type, MILVUS_EXTRA_FIELDS, self._connection.extra_dejson, conn_id=self.milvus_conn_id
        )

    @cached_property
    def client_kwargs(self) -> dict[str, Any]:
        """``MilvusClient`` keyword arguments built from the connection (holds the token: never log it)."""
        conn = self._connection
        return build_client_kwargs(
            host=conn.host,
            login=conn.login,
            password=conn.password,
            schema=conn.schema,
            port=conn.port,
            extra=self._extras,
            conn_id=self.milvus_conn_id,
        )

    @property
    def lite_lock_wait(self) -> float:
        """Seconds to wait for another process to release a Milvus Lite file (extra ``lite_lock_wait``)."""
        return self._extras.number("lite_lock_wait") or 0.0

    @property
    def uri(self) -> str:
        """The resolved URI (a server address without credentials, or the absolute Milvus Lite path)."""
        return str(self.client_kwargs["uri"])

    @property
    def is_lite(self) -> bool:
        """True when the connection points at a local Milvus Lite ``.db`` file."""
        return _is_lite_uri(self.uri)

    @property
    def timeout(self) -> float | None:
        """Per-call timeout in seconds from the connection's ``timeout`` extra, or None."""
        value = self.client_kwargs.get("timeout")
        return None if value is None else float(value)

    def get_conn(self) -> MilvusClient:
        """Return the cached ``MilvusClient``, connecting (or starting Milvus Lite) on first use."""
        if self._client is not None:
            return self._client
        from pymilvus import MilvusClient

        kwargs = dict(self.client_kwargs)
        if self.is_lite:
            os.makedirs(os.path.dirname(self.uri), exist_ok=True)
            _quiet_lite_unimplemented_rpc_errors()
        self.log.info("Connecting to Milvus%s at %s", " Lite" if self.is_lite else "", self.uri)
        try:
            self._client = MilvusClient(**kwargs)
        except Exception as err:
            hint = ""
            if self.is_lite:
                self._release_lite()
                hint = " Milvus Lite lets one process open a .db file at a time: another process may hold it."
            raise GeminiMilvusProviderError(
                f"Could not open Milvus at {self.uri} (connection {self.milvus_conn_id!r}): "
                f"{self._redact(str(err))}.{hint}"
            ) from err
        return self._client

    def close(self) -> None:
        """Close the client and, for Milvus Lite, stop the in-process server so its file lock is released."""
        client, self._client = self._client, None
        self._loaded.clear()
        if client is None:
            return
        try:
            client.close()
        finally:
            if self.is_lite:
                self._release_lite()
                self.log.info("Released Milvus Lite file %s", self.uri)

    def _release_lite(self) -> None:
        """Stop the in-process Milvus Lite server for this file, which releases its lock (no-op if none)."""
        from milvus_lite.server_manager import server_manager_instance

        server_manager_instance.release_server(self.uri)

    def __enter__(self) -> MilvusHook:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def test_connection(self) -> tuple[bool, str]:
        """Connect and list collections; return ``(ok, message)``."""
        try:
            names = self.get_conn().list_collections(timeout=self.timeout)
        except Exception as err:
            return False, f"Could not list collections at {self._safe_uri()}: {self._safe_message(err)}"
        finally:
            self.close()
        return True, f"Connected to Milvus at {self.uri}: {len(names)} collection(s)."

    def _redact(self, text: str) -> str:
        """Remove the token, and the password inside it, from a message."""
        token = str(self.client_kwargs.get("token") or "")
        for secret in (token, token.partition(":")[2]):
            if len(secret) >= 4:
                text = text.replace(secret, "***")
        return text

    def _safe_message(self, err: BaseException) -> str:
        try:
            return self._redact(str(err))
        except Exception:
            return type(err).__name__

    def _safe_uri(self) -> str:
        try:
            return self.uri
        except Exception:
            return f"connection {self.milvus_conn_id!r}"

    # -- collections -------------------------------------------------------------------------------

    def has_collection(self, name: str) -> bool:
        """
        Return True if the collection (or an alias of that name) exists.

        :param name: collection name.
        """
        return bool(self.get_conn().has_collection(name, timeout=self.timeout))

    def describe(self, name: str) -> CollectionInfo | None:
        """
        Describe a collection's vector dimension, metric and field limits, or return None if it is missing.

        :param name: collection name.
        """
        client = self.get_conn()
        if not client.has_collection(name, timeout=self.timeout):
            return None
        description = client.describe_collection(name, timeout=self.timeout)
        fields = {field["name"]: field for field in description.get("fields", [])}
        field_types = {field_name: _type_name(field.get("type")) for field_name, field in fields.items()}

        def param(field_name: str, key: str, expected_type: str) -> int | None:
            field = fields.get(field_name)
            if field is None or field_types[field_name] != expected_type:
                return None
            return _int_or_none(field.get("params", {}).get(key))

        metric_type = index_type = None
        if FIELD_VECTOR in fields:
            index_names = client.list_indexes(name, field_name=FIELD_VECTOR, timeout=self.timeout)
            if index_names:
                index = client.describe_index(name, index_names[0], timeout=self.timeout) or {}
                metric_type = str(index["metric_type"]).upper() if index.get("metric_type") else None
                index_type = str(index["index_type"]).upper() if index.get("index_type") else None
        return CollectionInfo(
            name=name,
            dim=param(FIELD_VECTOR, "dim", "FLOAT_VECTOR"),
            metric_type=metric_type,
            index_type=index_type,
            id_max_length=param(FIELD_ID, "max_length", "VARCHAR"),
            text_max_length=param(FIELD_TEXT, "max_length", "VARCHAR"),
            field_types=field_types,
        )

    def check_index_choice(self, metric_type: str, index_type: str) -> tuple[str, str]:
        """
        Validate a metric and index type for this connection and return them upper-cased.

        :param metric_type: COSINE, L2 or IP.
        :param index_type: any Milvus index type on a server; on Milvus Lite one of :data:`LITE_INDEX_TYPES`.
        :raises ValueError: for an unknown metric, or an index type Milvus Lite cannot build.
        """
        metric = str(metric_type).upper()
        if metric not in METRIC_TYPES:
            raise ValueError(f"unknown metric_type {metric_type!r}; use one of {sorted(METRIC_TYPES)}")
        index = str(index_type).upper()
        if self.is_lite:
            if index not in LITE_INDEX_TYPES:
                raise ValueError(
                    f"Milvus Lite ({self.uri}) cannot build index_type {index_type!r}; use one of "
                    f"{sorted(LITE_INDEX_TYPES)}, or a Milvus server"
                )
            if index in LITE_FAISS_INDEX_TYPES and not _lite_has_faiss():
                raise ValueError(f"Milvus Lite needs faiss-cpu installed to build index_type {index}")
        return metric, index

    def ensure_collection(
        self,
        name: str,
        dim: int,
        *,
        metric_type: str = "COSINE",
        index_type: str = "AUTOINDEX",
        index_params: Mapping[str, Any] | None = None,
        text_max_length: int = TEXT_MAX_LENGTH,
    ) -> bool:
        """
        Create the collection if it is missing, or check that the existing one fits; make sure it is loaded.

        The schema: VARCHAR primary key ``id`` (512), FLOAT_VECTOR ``vector`` (``dim``), VARCHAR ``text``
        (``text_max_length``), VARCHAR ``content_hash`` (64), VARCHAR ``model`` (256), JSON ``metadata``,
        dynamic fields on; one vector index on ``vector``.

        :param name: collection name.
        :param dim: vector dimension, 1 to 32,768.
        :param metric_type: COSINE, L2 or IP.
        :param index_type: vector index type; on Milvus Lite one of :data:`LITE_INDEX_TYPES`.
        :param index_params: index build parameters, e.g. ``{"M": 16, "efConstruction": 200}`` for HNSW.
        :param text_max_length: ``max_length`` of ``text`` in bytes, 1 to 65,535 (new collections only).
        :raises MilvusCollectionMismatchError: if the existing collection has another dim, metric or fields.
        :raises ValueError: for bad arguments, before anything is created.
        :return: True if the collection was created.
        """
        metric, index = self.check_index_choice(metric_type, index_type)
        if isinstance(dim, bool) or not isinstance(dim, int) or not 1 <= dim <= MAX_DIM:
            raise ValueError(f"dim must be an integer from 1 to {MAX_DIM}, got {dim!r}")
        if not 1 <= text_max_length <= TEXT_MAX_LENGTH:
            raise ValueError(f"text_max_length must be from 1 to {TEXT_MAX_LENGTH}, got {text_max_length}")
        info = self.describe(name)
        if info is not None:
            check_collection_matches(info, dim=dim, metric_type=metric)
            if info.metric_type is None:
                self._create_vector_index(name, metric, index, index_params)
            self.ensure_loaded(name)
            return False
        client = self.get_conn()
        try:
            client.create_collection(
                name,
                schema=self._build_schema(dim, text_max_length),
                index_params=self._index_params(metric, index, index_params),
                timeout=self.timeout,
            )
        except Exception as err:
            raced = self.describe(name) if "already exists" in str(err) else None
            if raced is None:
                raise
            # Another task created it between describe and create: check it like any existing collection.
            check_collection_matches(raced, dim=dim, metric_type=metric)
            self.ensure_loaded(name)
            return False
        self.log.info(
            "Created collection %s (dim %s, metric %s, index %s) at %s", name, dim, metric, index, self.uri
        )
        self.ensure_loaded(name)
        return True

    def _build_schema(self, dim: int, text_max_length: int) -> Any:
        from pymilvus import DataType, MilvusClient

        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=True)
        schema.add_field(FIELD_ID, DataType.VARCHAR, is_primary=True, max_length=ID_MAX_LENGTH)
        schema.add_field(FIELD_VECTOR, DataType.FLOAT_VECTOR, dim=dim)
        schema.add_field(FIELD_TEXT, DataType.VARCHAR, max_length=text_max_length)
        schema.add_field(FIELD_CONTENT_HASH, DataType.VARCHAR, max_length=CONTENT_HASH_MAX_LENGTH)
        schema.add_field(FIELD_MODEL, DataType.VARCHAR, max_length=MODEL_MAX_LENGTH)
        schema.add_field(FIELD_METADATA, DataType.JSON)
        return schema

    def _index_params(self, metric: str, index: str, params: Mapping[str, Any] | None) -> Any:
        index_params = self.get_conn().prepare_index_params()
        index_params.add_index(
            field_name=FIELD_VECTOR, index_type=index, metric_type=metric, params=dict(params or {})
        )
        return index_params

    def _create_vector_index(
        self, name: str, metric: str, index: str, params: Mapping[str, Any] | None
    ) -> None:
        self.log.info("Collection %s has no vector index: creating %s (%s)", name, index, metric)
        self.get_conn().create_index(name, self._index_params(metric, index, params), timeout=self.timeout)

    def ensure_loaded(self, name: str) -> None:
        """
        Load the collection unless it already is (Milvus Lite forgets the load state when it restarts).

        :param name: collection name.
        """
        if name in self._loaded:
            return
        client = self.get_conn()
        state = client.get_load_state(name, timeout=self.timeout).get("state")
        if _type_name(state) != "LOADED":
            self.log.info("Loading collection %s", name)
            client.load_collection(name, timeout=self.timeout)
        self._loaded.add(name)

    def has_partition(self, collection: str, partition: str) -> bool:
        """
        Return True if the partition exists.

        :param collection: collection name.
        :param partition: partition name.
        """
        return bool(self.get_conn().has_partition(collection, partition, timeout=self.timeout))

    def ensure_partition(self, collection: str, partition: str) -> bool:
        """
        Create the partition if it is missing; return True if it was created.

        :param collection: collection name.
        :param partition: partition name.
        """
        if self.has_partition(collection, partition):
            return False
        self.get_conn().create_partition(collection, partition, timeout=self.timeout)
        self.log.info("Created partition %s in collection %s", partition, collection)
        return True

    # -- reads -------------------------------------------------------------------------------------

    def _query_by_ids(self, collection: str, ids: Sequence[str], output_fields: list[str]) -> list[dict]:
        """Rows whose id is in ``ids``, :data:`ID_QUERY_BATCH` ids per query, with Strong consistency."""
        self.ensure_loaded(collection)
        client = self.get_conn()
        found: list[dict] = []
        for batch in chunked(list(dict.fromkeys(ids)), ID_QUERY_BATCH):
            found.extend(
                client.query(
                    collection,
                    filter=ids_in_filter(batch),
                    output_fields=output_fields,
                    consistency_level=_STRONG,
                    timeout=self.timeout,
                )
            )
        return found

    def fetch_fingerprints(self, collection: str, ids: Sequence[str]) -> dict[str, tuple[str, str]]:
        """
        Return ``{id: (content_hash, model)}`` for those ids that exist; ``{}`` if the collection is missing.

        Used to re-embed only texts whose hash or model changed.

        :param collection: collection name.
        :param ids: primary keys to look up (any characters, quotes and backslashes included).
        """
        if not ids or not self.has_collection(collection):
            return {}
        rows = self._query_by_ids(collection, ids, [FIELD_ID, FIELD_CONTENT_HASH, FIELD_MODEL])
        return {
            str(row[FIELD_ID]): (str(row.get(FIELD_CONTENT_HASH) or ""), str(row.get(FIELD_MODEL) or ""))
            for row in rows
        }

    def existing_ids(self, collection: str, ids: Sequence[str]) -> set[str]:
        """
        Return the subset of ``ids`` present in the collection (empty if the collection is missing).

        :param collection: collection name.
        :param ids: primary keys to look up.
        """
        if not ids or not self.has_collection(collection):
            return set()
        return {str(row[FIELD_ID]) for row in self._query_by_ids(collection, ids, [FIELD_ID])}

    def list_ids(self, collection: str) -> list[str]:
        """
        Return every primary key in the collection, in ascending order ([] if the collection is missing).

        Pages by primary key like ``query_iterator``, but quotes the cursor with
        :func:`milvus_string_literal`: pymilvus 3.0.2's ``query_iterator`` does not escape it, and fails on
        ids that contain ``"`` or ``\\``.

        :param collection: collection name.
        """
        if not self.has_collection(collection):
            return []
        self.ensure_loaded(collection)
        client = self.get_conn()
        ids: list[str] = []
        last: str | None = None
        while True:
            expression = (
                f'{FIELD_ID} != ""' if last is None else f"{FIELD_ID} > {milvus_string_literal(last)}"
            )
            page = client.query(
                collection,
                filter=expression,
                output_fields=[FIELD_ID],
                limit=LIST_IDS_PAGE,
                iterator="True",
                reduce_stop_for_best="True",
                consistency_level=_STRONG,
                timeout=self.timeout,
            )
            page_ids = [str(row[FIELD_ID]) for row in page]
            ids.extend(page_ids)
            if len(page_ids) < LIST_IDS_PAGE:
                return ids
            last = page_ids[-1]

    def count(self, collection: str) -> int:
        """
        Return the exact number of rows (``count(*)``, which, unlike collection stats, reflects deletes).

        :param collection: collection name.
        """
        self.ensure_loaded(collection)
        result = self.get_conn().query(
            collection, filter="", output_fields=["count(*)"], consistency_level=_STRONG, timeout=self.timeout
        )
        return int(result[0]["count(*)"]) if result else 0

    def search(
        self,
        collection: str,
        vectors: Sequence[Sequence[float]],
        *,
        limit: int = 5,
        output_fields: Sequence[str] = (FIELD_TEXT, FIELD_METADATA),
    ) -> list[list[dict[str, Any]]]:
        """
        Return the nearest rows for each query vector as JSON-safe dicts: ``id``, ``distance`` and the fields.

        :param collection: collection name.
        :param vectors: query vectors, each with the collection's dimension.
        :param limit: hits per query vector.
        :param output_fields: fields to return with each hit.
        """
        self.ensure_loaded(collection)
        fields = list(output_fields)
        results = self.get_conn().search(
            collection,
            data=[list(map(float, vector)) for vector in vectors],
            limit=limit,
            output_fields=fields,
            anns_field=FIELD_VECTOR,
            timeout=self.timeout,
        )
        return [
            [
                {
                    FIELD_ID: hit["id"],
                    "distance": float(hit["distance"]),
                    **{field: (hit.get("entity") or {}).get(field) for field in fields},
                }
                for hit in hits
            ]
            for hits in results
        ]

    # -- writes ------------------------------------------------------------------------------------

    def delete_ids(self, collection: str, ids: Sequence[str]) -> int:
        """
        Delete rows by primary key, :data:`ID_QUERY_BATCH` at a time; return how many were deleted.

        Ids are looked up first, so the count is the same on Milvus Lite (whose ``delete`` returns the
        requested keys, existing or not) and on a server (``{"delete_count": n}``). A missing collection
        deletes nothing.

        :param collection: collection name.
        :param ids: primary keys (any characters, quotes and backslashes included).
        """
        present = self.existing_ids(collection, ids)
        if not present:
            return 0
        client = self.get_conn()
        ordered = [row_id for row_id in dict.fromkeys(ids) if row_id in present]
        deleted = 0
        for batch in chunked(ordered, ID_QUERY_BATCH):
            result = client.delete(collection, filter=ids_in_filter(batch), timeout=self.timeout)
            deleted += _deleted_count(result, len(batch))
        self.log.info("Deleted %s of %s requested ids from %s", deleted, len(ids), collection)
        return deleted

    def write_rows(
        self,
        collection: str,
        rows: Sequence[Mapping[str, Any]],
        *,
        mode: str = "upsert",
        partition_name: str | None = None,
        max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES,
        max_batch_rows: int | None = None,
    ) -> WriteResult:
        """
        Write rows in size-bounded batches, then flush once.

        Rows should come from :func:`prepare_rows`; the collection should exist (see
        :meth:`ensure_collection`). ``upsert`` replaces rows with the same id, so re-runs are idempotent;
        ``insert`` does not deduplicate on a Milvus server and is for fresh collections.

        :param collection: collection name.
        :param rows: rows to write.
        :param mode: ``upsert`` (default) or ``insert``.
        :param partition_name: partition to write to; None means the default partition.
        :param max_batch_bytes: payload cap per request (default 16 MiB; a server accepts 64 MiB).
        :param max_batch_rows: row cap per request; None means only the payload size caps batches.
        """
        batches = split_batches(rows, max_batch_bytes=max_batch_bytes, max_batch_rows=max_batch_rows)
        return self.write_batches(collection, batches, mode=mode, partition_name=partition_name)

    def write_batches(
        self,
        collection: str,
        batches: Sequence[Sequence[Mapping[str, Any]]],
        *,
        mode: str = "upsert",
        partition_name: str | None = None,
    ) -> WriteResult:
        """
        Write batches made by :func:`split_batches`, one request each, then flush once.

        :param collection: collection name.
        :param batches: the rows, already split into requests.
        :param mode: ``upsert`` (default) or ``insert``.
        :param partition_name: partition to write to; None means the default partition.
        """
        if mode not in WRITE_MODES:
            raise ValueError(f"unknown mode {mode!r}; use one of {list(WRITE_MODES)}")
        total = sum(len(batch) for batch in batches)
        started = time.monotonic()
        if not batches:
            return WriteResult(collection=collection, mode=mode, written=0, batches=0, seconds=0.0)
        self.ensure_loaded(collection)
        client = self.get_conn()
        write = client.upsert if mode == "upsert" else client.insert
        written = 0
        for number, batch in enumerate(batches, start=1):
            result = write(collection, list(batch), partition_name=partition_name or "", timeout=self.timeout)
            written += int(result.get(f"{mode}_count", len(batch)))
            elapsed = max(time.monotonic() - started, 1e-9)
            self.log.info(
                "%s %s/%s rows into %s (batch %s/%s, %.0f rows/s)",
                "Upserted" if mode == "upsert" else "Inserted",
                written,
                total,
                collection,
                number,
                len(batches),
                written / elapsed,
            )
        client.flush(collection, timeout=self.timeout)
        seconds = time.monotonic() - started
        self.log.info(
            "Flushed %s after %s rows in %s batch(es), %.2f s", collection, written, len(batches), seconds
        )
        return WriteResult(
            collection=collection, mode=mode, written=written, batches=len(batches), seconds=round(seconds, 3)
        )


def _lite_has_faiss() -> bool:
    try:
        from milvus_lite.index import is_faiss_available
    except ImportError:
        return False
    return bool(is_faiss_available())
