"""
The row contract: what a row must hold before it is written, checked the way a Milvus server checks it,
and how rows are split into size-bounded requests. Pure code with no I/O.

Milvus Lite accepts several things a Milvus server rejects (duplicate primary keys in one batch, NaN
vectors, values that overflow float32, VARCHAR lengths counted in characters rather than bytes, JSON over
64 KiB, integers outside int64), so :func:`prepare_rows` validates rows the way a server would, on every
backend, before anything is written.
"""

from __future__ import annotations

import hashlib
import json
import numbers
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal, get_args

import numpy as np

from airflow_provider_gemini_milvus.milvus.layout import (
    CONTENT_HASH_MAX_LENGTH,
    FIELD_CONTENT_HASH,
    FIELD_ID,
    FIELD_METADATA,
    FIELD_MODEL,
    FIELD_TEXT,
    FIELD_VECTOR,
    ID_MAX_LENGTH,
    JSON_MAX_LENGTH,
    MAX_DIM,
    MODEL_MAX_LENGTH,
    REQUIRED_FIELD_TYPES,
    TEXT_MAX_LENGTH,
)
from airflow_provider_gemini_milvus.utils.unicode import check_utf8_encodable

__all__ = [
    "DEFAULT_MAX_BATCH_BYTES",
    "ID_QUERY_BATCH",
    "VECTOR_QUERY_BATCH",
    "WRITE_MODES",
    "WriteMode",
    "WriteResult",
    "check_id",
    "check_text",
    "chunked",
    "content_hash",
    "embedding_input_hash",
    "embedding_part",
    "estimate_row_bytes",
    "ids_after_filter",
    "ids_in_filter",
    "metadata_hash",
    "milvus_string_literal",
    "ModelFingerprint",
    "model_fingerprint",
    "parse_model_fingerprint",
    "prepare_columns",
    "prepare_rows",
    "row_sizes",
    "sized_batches",
    "skip_stored_rows",
    "split_batches",
]

#: How rows are written: ``upsert`` replaces rows with the same id, ``insert`` never replaces one.
WriteMode = Literal["upsert", "insert"]
WRITE_MODES: tuple[WriteMode, ...] = get_args(WriteMode)

ID_QUERY_BATCH = 1000
"""Ids per primary-key lookup or delete request: a filter Milvus parses quickly."""
VECTOR_QUERY_BATCH = 256
"""Ids per vector query: 256 vectors of 3,072 float32 values are 3 MB, well under a server's message limit."""

DEFAULT_MAX_BATCH_BYTES = 4 * 1024 * 1024
"""
Default payload cap per insert/upsert request: about 1,000 rows of 768 dimensions. pymilvus holds a
request's vectors as Python floats, about six times their bytes, so a larger cap costs memory (some 90 MB
more at 16 MiB) and no speed; a server accepts up to 64 MiB.
"""
ROW_OVERHEAD_BYTES = 64
"""Allowance per row for protobuf framing and field headers in :func:`estimate_row_bytes`."""
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
_CONFLICTS_SHOWN = 5
#: Bytes :func:`estimate_row_bytes` counts for the keys of a row :func:`prepare_rows` returns.
_ROW_KEY_BYTES = sum(
    len(key) for key in (FIELD_ID, FIELD_VECTOR, FIELD_TEXT, FIELD_CONTENT_HASH, FIELD_MODEL, FIELD_METADATA)
)
#: JSON text that may hold what :func:`_check_json` refuses: an integer of 19 or more digits (beyond int64),
#: a number with a large exponent (beyond float), an escaped surrogate (``\\ud800``). Such metadata is
#: checked in full.
_JSON_NEEDS_WALK = re.compile(r"\d{19}|\d[eE][+-]?\d{3}|\\u[dD][89a-fA-F]")


@dataclass(frozen=True)
class WriteResult:
    """
    Outcome of ``MilvusHook.write_batches``.

    :param collection: collection written to.
    :param mode: ``upsert`` or ``insert``.
    :param written: rows sent and acknowledged.
    :param batches: requests made.
    :param seconds: wall time of the writes and the final flush.
    :param skipped: ``insert`` only: rows not sent because their id was already stored with the same
        ``content_hash`` and ``model`` (by an earlier, interrupted attempt).
    """

    collection: str
    mode: WriteMode
    written: int
    batches: int
    seconds: float
    skipped: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dict."""
        return asdict(self)


def model_fingerprint(model: str, dim: int, task_type: str, request_format: str = "") -> str:
    """
    What the ``model`` field of a row records: name, dimensionality, task type and, where the model takes
    the task in the text, the request format (``gemini-embedding-2/768/RETRIEVAL_DOCUMENT/prompt-v1``), so
    that rows embedded in another format are embedded again.
    """
    fingerprint = f"{model}/{dim}/{task_type}"
    return f"{fingerprint}/{request_format}" if request_format else fingerprint


_TASK_TYPE_WORD = re.compile(r"[A-Z][A-Z_]*")


@dataclass(frozen=True)
class ModelFingerprint:
    """
    A ``model`` field read back: what :func:`model_fingerprint` was built from.

    :param model: the model name, e.g. ``gemini-embedding-001``.
    :param dim: the vector length.
    :param task_type: the documents' task type, e.g. ``RETRIEVAL_DOCUMENT``.
    :param request_format: ``""``, or the request format (``prompt-v1``).
    """

    model: str
    dim: int
    task_type: str
    request_format: str = ""


def parse_model_fingerprint(fingerprint: str) -> ModelFingerprint | None:
    """
    Read a row's ``model`` field back into its parts; None when it is not one :func:`model_fingerprint`
    builds (empty, or set by hand, such as ``"test-model"``).

    ``parse_model_fingerprint("gemini-embedding-2/768/RETRIEVAL_DOCUMENT/prompt-v1")`` is
    ``ModelFingerprint("gemini-embedding-2", 768, "RETRIEVAL_DOCUMENT", "prompt-v1")``. The task type is
    taken as written (upper case); whether Gemini knows it is for the caller to check.

    :param fingerprint: the stored ``model`` field.
    """
    if not isinstance(fingerprint, str):
        return None
    parts = fingerprint.split("/")
    request_format = ""
    if len(parts) > 3 and not _TASK_TYPE_WORD.fullmatch(parts[-1]):
        request_format = parts.pop()
        if not request_format.strip():
            return None
    if len(parts) < 3:
        return None
    model, dim, task_type = "/".join(parts[:-2]), parts[-2], parts[-1]
    if not model.strip() or not dim.isascii() or not dim.isdigit() or int(dim) < 1:
        return None
    if not _TASK_TYPE_WORD.fullmatch(task_type):
        return None
    return ModelFingerprint(model=model, dim=int(dim), task_type=task_type, request_format=request_format)


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


def ids_after_filter(last: str | None, field: str = FIELD_ID) -> str:
    """
    Build the filter of the next page of primary keys: every id after ``last`` (all ids when None).

    :param last: the last id of the previous page, or None for the first page.
    :param field: the primary key field name.
    """
    return f'{field} != ""' if last is None else f"{field} > {milvus_string_literal(last)}"


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


#: Hex digits kept of the embedding-input half of ``content_hash`` (128 bits).
EMBEDDING_HASH_HEX = 32
#: Hex digits kept of the metadata half (124 bits): the two halves and their ``:`` fill the 64 characters
#: the ``content_hash`` field holds in every collection, so existing collections keep their schema.
METADATA_HASH_HEX = 31
CONTENT_HASH_SEPARATOR = ":"


def _sha256_hex(value: Any) -> str:
    payload = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def embedding_input_hash(text: str, title: str | None = None, media: str | None = None) -> str:
    """
    Return the hash of what Gemini embeds for a document: its text, title and media.

    The model, dimensionality and task type are recorded apart, in the row's ``model`` field.

    :param text: the text that is embedded.
    :param title: the document title sent with the text, if any.
    :param media: ``<MIME type>:<SHA-256 of the bytes>`` of the document's media, if any: the same bytes
        at another URI are the same input.
    """
    embedded: dict[str, Any] = {"text": text, "title": title}
    if media is not None:
        embedded["media"] = media
    return _sha256_hex(embedded)[:EMBEDDING_HASH_HEX]


def metadata_hash(metadata: Mapping[str, Any] | None = None) -> str:
    """
    Return the hash of a row's metadata, which is stored but never embedded.

    :param metadata: the metadata stored with the row; None means ``{}``.
    """
    return _sha256_hex(dict(metadata or {}))[:METADATA_HASH_HEX]


def content_hash(
    text: str,
    *,
    title: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    media: str | None = None,
) -> str:
    """
    Return the fingerprint rows store as ``content_hash``: ``<embedding-input hash>:<metadata hash>``.

    The first half (:func:`embedding_input_hash`) covers what feeds the vector, the second
    (:func:`metadata_hash`) what does not, so an incremental run tells a document whose vector must change
    from one whose stored row only needs new metadata. Both halves are truncated SHA-256 hex digests of
    the UTF-8 compact JSON with sorted keys; together they are 64 characters. Both operators compute it
    with this function, so a row loaded by either one matches the hash the incremental embedding run
    computes for the same document.

    :param text: the text that was embedded.
    :param title: the document title sent with the text, if any.
    :param metadata: the metadata stored with the row; None means ``{}``.
    :param media: the document's media as :func:`embedding_input_hash` takes it, if any.
    """
    return f"{embedding_input_hash(text, title, media)}{CONTENT_HASH_SEPARATOR}{metadata_hash(metadata)}"


def embedding_part(stored_hash: str) -> str | None:
    """
    Return the embedding-input half of a stored ``content_hash``, or None when it has no such half.

    Rows written before the hash had two halves (one SHA-256 over text, title and metadata) and hashes a
    user supplied have none: an incremental run cannot tell what changed in them and re-embeds them.

    :param stored_hash: the ``content_hash`` value of a stored row.
    """
    head, separator, tail = stored_hash.partition(CONTENT_HASH_SEPARATOR)
    if separator and len(head) == EMBEDDING_HASH_HEX and len(tail) == METADATA_HASH_HEX:
        return head
    return None


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
    sizes = row_sizes(rows, max_batch_bytes=max_batch_bytes, max_batch_rows=max_batch_rows)
    return list(
        sized_batches([(rows, sizes)], max_batch_bytes=max_batch_bytes, max_batch_rows=max_batch_rows)
    )


def row_sizes(
    rows: Sequence[Mapping[str, Any]], *, max_batch_bytes: int, max_batch_rows: int | None = None
) -> list[int]:
    """
    :func:`estimate_row_bytes` of each row, checked against the limits of :func:`split_batches`.

    :param rows: rows as produced by :func:`prepare_rows`.
    :param max_batch_bytes: no row may be larger than this.
    :param max_batch_rows: checked to be at least 1 (None means no row cap).
    :raises ValueError: when a single row is larger than ``max_batch_bytes``, or a limit is below 1.
    """
    _check_batch_limits(max_batch_bytes, max_batch_rows)
    sizes: list[int] = []
    for index, row in enumerate(rows):
        row_bytes = estimate_row_bytes(row)
        if row_bytes > max_batch_bytes:
            raise ValueError(
                f"rows[{index}] (id {_show(row.get(FIELD_ID))}) is about {row_bytes} bytes, "
                f"more than max_batch_bytes={max_batch_bytes}"
            )
        sizes.append(row_bytes)
    return sizes


def _check_batch_limits(max_batch_bytes: int, max_batch_rows: int | None) -> None:
    if max_batch_bytes < 1:
        raise ValueError(f"max_batch_bytes must be at least 1, got {max_batch_bytes}")
    if max_batch_rows is not None and max_batch_rows < 1:
        raise ValueError(f"max_batch_rows must be at least 1, got {max_batch_rows}")


def sized_batches(
    chunks: Iterable[tuple[Sequence[Mapping[str, Any]], Sequence[int]]],
    *,
    max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES,
    max_batch_rows: int | None = None,
) -> Iterator[list[Mapping[str, Any]]]:
    """
    Fill batches, in order, with the rows of consecutive chunks: a batch runs on across chunks until the
    next row would take it over ``max_batch_bytes`` or ``max_batch_rows``.

    :param chunks: ``(rows, sizes)`` pairs, each row's size from :func:`row_sizes` (or an estimate as high).
    :param max_batch_bytes: no batch's total size exceeds this (a row larger than this is a batch alone).
    :param max_batch_rows: no batch holds more rows than this; None means no row cap.
    """
    current: list[Mapping[str, Any]] = []
    current_bytes = 0
    for rows, sizes in chunks:
        for row, row_bytes in zip(rows, sizes, strict=True):
            row_cap_hit = max_batch_rows is not None and len(current) >= max_batch_rows
            if current and (current_bytes + row_bytes > max_batch_bytes or row_cap_hit):
                yield current
                current, current_bytes = [], 0
            current.append(row)
            current_bytes += row_bytes
    if current:
        yield current


def _show(value: Any, limit: int = 80) -> str:
    """Repr of an id for error messages, shortened."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def _utf8_len(value: str, where: str, what: str) -> int:
    """UTF-8 length of ``value``; a lone surrogate (``"\\ud800"``) cannot be encoded and is refused."""
    check_utf8_encodable(value, f"{where}: {what}")
    return len(value.encode("utf-8"))


def check_id(value: Any, where: str, id_max_length: int = ID_MAX_LENGTH) -> str:
    """
    Return ``value`` if it is a usable primary key, else raise ``ValueError`` starting with ``where``.

    :param value: the id.
    :param where: how the caller names the item, e.g. ``documents[3]`` or ``rows[3] (id 'a')``.
    :param id_max_length: the id field's ``max_length`` in UTF-8 bytes.
    """
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where}: id must be a non-empty string, got {_show(value)}")
    size = _utf8_len(value, where, "id")
    if size > id_max_length:
        raise ValueError(
            f"{where}: id is {size} bytes in UTF-8, longer than the id field's max_length {id_max_length}"
        )
    return value


def check_text(value: Any, where: str, text_max_length: int = TEXT_MAX_LENGTH, *, what: str = "text") -> str:
    """
    Return ``value`` if the ``text`` field can store it, else raise ``ValueError`` starting with ``where``.

    :param value: the text.
    :param where: how the caller names the item, e.g. ``documents[3]``.
    :param text_max_length: the text field's ``max_length`` in UTF-8 bytes.
    :param what: what the value is, for the message (``text``, ``title``).
    """
    if not isinstance(value, str):
        raise ValueError(f"{where}: {what} must be a string, got {type(value).__name__}")
    size = _utf8_len(value, where, what)
    if size > text_max_length:
        raise ValueError(
            f"{where}: {what} is {size} bytes in UTF-8, longer than the text field's max_length "
            f"{text_max_length}"
        )
    return value


def _to_floats(value: Sequence[Any], where: str) -> list[float]:
    floats: list[float] = []
    for position, number in enumerate(value):
        if isinstance(number, bool) or not isinstance(number, numbers.Real):
            raise ValueError(f"{where}: vector value {position} is not a number ({type(number).__name__})")
        try:
            floats.append(float(number))
        except OverflowError:  # an int too large for a float
            raise ValueError(f"{where}: vector value {position} is too large for float32") from None
    return floats


def _check_vector(value: Any, where: str) -> list[float] | np.ndarray:
    if value is None:
        raise ValueError(f"{where}: missing vector")
    if isinstance(value, np.ndarray) and value.dtype == np.float32 and value.ndim == 1 and value.size:
        # Staged parts give float32 rows: one vectorised finiteness check, and the array goes to pymilvus
        # as it is (pymilvus turns a list into an array and back; an array it converts once).
        finite = np.isfinite(value)
        if not finite.all():
            position = int(np.argmin(finite))
            raise ValueError(f"{where}: vector value {position} is {value[position]}, which is not finite")
        return value
    if hasattr(value, "tolist") and not isinstance(value, list):  # numpy arrays
        value = value.tolist()
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
        raise ValueError(f"{where}: vector must be a list of numbers, got {type(value).__name__}")
    if not value:
        raise ValueError(f"{where}: vector is empty")
    if isinstance(value, list) and all(type(number) is float for number in value):
        floats = list(value)  # plain floats (numpy arrays and staged parts give them): nothing to convert
    else:
        floats = _to_floats(value, where)
    # Milvus stores float32: 1e39 is finite as a Python float and +inf once stored.
    with np.errstate(over="ignore"):
        finite = np.isfinite(np.asarray(floats, dtype=np.float32))
    if not finite.all():
        position = int(np.argmin(finite))
        raise ValueError(
            f"{where}: vector value {position} is {floats[position]}, which is not finite as float32 "
            "(NaN, inf and values beyond +-3.4e38 are not allowed)"
        )
    return floats


def _check_short_string(row: Mapping[str, Any], key: str, where: str, max_length: int) -> str | None:
    value = row.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{where}: {key} must be a string, got {type(value).__name__}")
    size = _utf8_len(value, where, key)
    if size > max_length:
        raise ValueError(f"{where}: {key} is {size} bytes in UTF-8, max_length is {max_length}")
    return value


def _check_json_values(value: Any, where: str, path: str) -> None:
    """Refuse integers outside int64 and strings that are not valid UTF-8, at any depth."""
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            shown = repr(value) if value.bit_length() <= 128 else f"an integer of {value.bit_length()} bits"
            raise ValueError(f"{where}: {path} is {shown}, outside the int64 range Milvus stores in JSON")
    elif isinstance(value, str):
        _utf8_len(value, where, path)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(key, str):
                _utf8_len(key, where, f"a key of {path}")
            _check_json_values(item, where, f"{path}[{key!r}]")
    elif isinstance(value, (list, tuple)):
        for position, item in enumerate(value):
            _check_json_values(item, where, f"{path}[{position}]")


def _check_json(value: Any, where: str, what: str) -> None:
    """A value stored in a JSON field: serialisable, int64 integers, valid UTF-8, at most 64 KiB."""
    _check_json_values(value, where, what)
    try:
        size = len(_json_compact(value).encode("utf-8"))
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}: {what} is not JSON-serialisable: {err}") from err
    if size > JSON_MAX_LENGTH:
        raise ValueError(
            f"{where}: {what} is {size} bytes as JSON, more than the {JSON_MAX_LENGTH} bytes a Milvus "
            "JSON field holds"
        )


def prepare_rows(
    rows: Sequence[Any],
    *,
    dim: int | None = None,
    id_max_length: int = ID_MAX_LENGTH,
    text_max_length: int = TEXT_MAX_LENGTH,
) -> tuple[list[dict[str, Any]], int | None]:
    """
    Validate rows the way a Milvus server would and return them ready to write, with the vector dimension.

    Every row must be a dict with a non-empty string ``id``, a ``vector`` of numbers finite as float32 and a
    string ``text``; ``metadata`` (a JSON-serialisable dict), ``content_hash`` and ``model`` are optional.
    A missing ``content_hash`` becomes :func:`content_hash` of the text, the row's ``title`` (when it is a
    string) and metadata; a missing ``model`` becomes ``""``, a missing ``metadata`` ``{}``. Other keys are
    kept as dynamic fields and must be JSON-serialisable. Lengths are counted in UTF-8 bytes, as a Milvus
    server counts them (Milvus Lite counts characters); ``metadata`` and the dynamic fields each hold at
    most 65,536 bytes of JSON and only integers within int64.

    :param rows: the rows to check; nothing is modified in place.
    :param dim: the dimension every vector must have; None means the first row's.
    :param id_max_length: the id field's ``max_length`` in bytes.
    :param text_max_length: the text field's ``max_length`` in bytes.
    :raises ValueError: naming the first bad row as ``rows[i] (id '...')``.
    :return: the normalised rows and the dimension (None when there are no rows and ``dim`` is None).
    """
    if isinstance(rows, (str, bytes, Mapping)) or not isinstance(rows, Sequence):
        raise ValueError(f"rows must be a list of dicts, got {type(rows).__name__}")
    prepared: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    expected_dim = dim
    for index, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise ValueError(f"rows[{index}] must be a dict, got {type(row).__name__}")
        where = f"rows[{index}] (id {_show(row.get(FIELD_ID))})"
        row_id = check_id(row.get(FIELD_ID), where, id_max_length)
        if row_id in seen:
            raise ValueError(f"{where}: duplicate id, also used by rows[{seen[row_id]}]")
        seen[row_id] = index
        vector = _check_vector(row.get(FIELD_VECTOR), where)
        if expected_dim is None:
            if len(vector) > MAX_DIM:
                raise ValueError(f"{where}: vector has {len(vector)} values, Milvus allows at most {MAX_DIM}")
            expected_dim = len(vector)
        elif len(vector) != expected_dim:
            origin = "the collection has" if dim is not None else "rows[0] has"
            raise ValueError(f"{where}: vector has {len(vector)} values, {origin} dim {expected_dim}")
        text = check_text(row.get(FIELD_TEXT), where, text_max_length)
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
        if len(extras) > 1:
            # Milvus keeps the dynamic fields together in one JSON field, ``$meta``.
            _check_json(extras, where, "the extra (dynamic) fields together")
        if not hash_value:
            title = row.get("title")
            hash_value = content_hash(
                text, title=title if isinstance(title, str) else None, metadata=metadata
            )
        prepared.append(
            {
                **extras,
                FIELD_ID: row_id,
                FIELD_VECTOR: vector,
                FIELD_TEXT: text,
                FIELD_CONTENT_HASH: hash_value,
                FIELD_MODEL: model or "",
                FIELD_METADATA: dict(metadata),
            }
        )
    return prepared, expected_dim


class _NotPlain(Exception):
    """A staged value :func:`prepare_columns` leaves to the row-by-row check."""


def _refuse_constant(name: str) -> Any:
    raise _NotPlain(name)


#: Parses metadata JSON text, refusing ``NaN`` and ``Infinity`` (which :func:`_check_json` refuses too).
_METADATA_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)


def _plain_metadata(text: Any, where: str) -> tuple[str, int]:
    """
    Staged metadata JSON text as sent (a JSON object, ``{}`` for none) and its UTF-8 size, when it passes
    every check :func:`prepare_rows` makes of metadata.

    :raises _NotPlain: when it does not, or cannot be told without the row-by-row check.
    """
    if text is None or text == "":
        return "{}", 2
    if not isinstance(text, str):
        raise _NotPlain(where)
    size = len(text.encode("utf-8"))
    if size > JSON_MAX_LENGTH:
        raise _NotPlain(where)
    try:
        value = _METADATA_DECODER.decode(text)
    except (ValueError, RecursionError):
        raise _NotPlain(where) from None
    if not isinstance(value, dict):
        raise _NotPlain(where)
    if _JSON_NEEDS_WALK.search(text):
        try:
            _check_json(value, where, "metadata")
        except ValueError:
            raise _NotPlain(where) from None
    return text, size


def _utf8_size(value: Any, max_length: int, *, empty: bool = True) -> int:
    """UTF-8 size of a string within ``max_length`` bytes (non-blank unless ``empty``), else _NotPlain."""
    if not isinstance(value, str) or (not empty and not value.strip()):
        raise _NotPlain(value)
    if value.isascii():
        size = len(value)
    else:
        try:
            size = len(value.encode("utf-8"))
        except UnicodeEncodeError:
            raise _NotPlain(value) from None
    if size > max_length:
        raise _NotPlain(value)
    return size


def prepare_columns(
    ids: Sequence[Any],
    vectors: np.ndarray,
    texts: Sequence[Any],
    hashes: Sequence[Any],
    models: Sequence[Any],
    metadata: Sequence[Any],
    *,
    dim: int,
    id_max_length: int = ID_MAX_LENGTH,
    text_max_length: int = TEXT_MAX_LENGTH,
    max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES,
) -> tuple[list[dict[str, Any]], list[int]] | None:
    """
    Check staged rows given column by column, as :func:`prepare_rows` and :func:`row_sizes` would, without
    building a dict per row until the rows pass; return the rows and their sizes.

    Vectors are checked in one vectorised step; ``metadata`` stays the JSON text it was staged as (Milvus
    takes a JSON field as text: it is parsed once here, to check it, and not serialised again). The rows
    are those :func:`prepare_rows` gives, except that ``metadata`` is JSON text (``vector`` stays a float32
    row of ``vectors``: pymilvus converts one row at a time, where a list of Python floats would take eight
    times the memory). Returns None when a row needs the row-by-row check: it fails a check (the row-by-row
    check then names it), lacks a ``content_hash`` (which is computed there), or holds metadata this check
    cannot tell apart from what the row-by-row check refuses.

    :param ids: the ``id`` column.
    :param vectors: the vectors, a float32 ``(rows, dim)`` array.
    :param texts: the ``text`` column.
    :param hashes: the ``content_hash`` column.
    :param models: the ``model`` column (None means ``""``).
    :param metadata: the ``metadata`` column, JSON text of an object (None or ``""`` means ``{}``).
    :param dim: the dimension every vector must have.
    :param id_max_length: the id field's ``max_length`` in bytes.
    :param text_max_length: the text field's ``max_length`` in bytes.
    :param max_batch_bytes: no row may be larger than this (see :func:`row_sizes`).
    """
    count = len(ids)
    if max_batch_bytes < 1 or not (len(texts) == len(hashes) == len(models) == len(metadata) == count):
        return None
    if vectors.dtype != np.float32 or vectors.shape != (count, dim) or not np.isfinite(vectors).all():
        return None
    if len(set(ids)) != count:
        return None
    fixed = ROW_OVERHEAD_BYTES + _ROW_KEY_BYTES + 4 * dim
    rows: list[dict[str, Any]] = []
    sizes: list[int] = []
    try:
        for index in range(count):
            model = models[index]
            json_text, json_size = _plain_metadata(metadata[index], f"rows[{index}]")
            row_bytes = (
                fixed
                + _utf8_size(ids[index], id_max_length, empty=False)
                + _utf8_size(texts[index], text_max_length)
                + _utf8_size(hashes[index], CONTENT_HASH_MAX_LENGTH, empty=False)
                + (0 if model is None else _utf8_size(model, MODEL_MAX_LENGTH))
                + json_size
            )
            if row_bytes > max_batch_bytes:
                return None
            rows.append(
                {
                    FIELD_ID: ids[index],
                    FIELD_VECTOR: vectors[index],
                    FIELD_TEXT: texts[index],
                    FIELD_CONTENT_HASH: hashes[index],
                    FIELD_MODEL: model or "",
                    FIELD_METADATA: json_text,
                }
            )
            sizes.append(row_bytes)
    except _NotPlain:
        return None
    return rows, sizes


def skip_stored_rows(
    batches: Iterable[Sequence[Mapping[str, Any]]],
    stored: Mapping[str, tuple[str, str]],
    collection: str,
) -> tuple[list[list[Mapping[str, Any]]], int]:
    """
    Make ``mode="insert"`` retryable: drop rows already stored with the same content, refuse the others.

    A row whose id is stored with the same ``content_hash`` and ``model`` was written by an earlier,
    interrupted attempt and is skipped; a row whose id is stored with other content is an error, because
    insert never replaces rows. Rows are numbered across all batches, as :func:`prepare_rows` numbers them.

    :param batches: the rows, split into requests by :func:`split_batches`.
    :param stored: ``{id: (content_hash, model)}`` of the ids already in the collection.
    :param collection: the collection name, for the message.
    :raises ValueError: naming the rows whose id is stored with other content.
    :return: the batches without the stored rows (empty batches dropped) and how many rows were skipped.
    """
    kept_batches: list[list[Mapping[str, Any]]] = []
    conflicts: list[str] = []
    skipped = index = 0
    for batch in batches:
        kept: list[Mapping[str, Any]] = []
        for row in batch:
            fingerprint = stored.get(row[FIELD_ID])
            if fingerprint is None:
                kept.append(row)
            elif fingerprint == (row.get(FIELD_CONTENT_HASH) or "", row.get(FIELD_MODEL) or ""):
                skipped += 1
            else:
                conflicts.append(f"rows[{index}] (id {_show(row[FIELD_ID])})")
            index += 1
        if kept:
            kept_batches.append(kept)
    if conflicts:
        shown = ", ".join(conflicts[:_CONFLICTS_SHOWN])
        more = f" and {len(conflicts) - _CONFLICTS_SHOWN} more" if len(conflicts) > _CONFLICTS_SHOWN else ""
        raise ValueError(
            f"{shown}{more}: id already exists in collection {collection!r} with another content_hash or "
            f"model ({len(conflicts)} row(s)); mode='insert' never replaces rows, use mode='upsert' to "
            "replace them"
        )
    return kept_batches, skipped
