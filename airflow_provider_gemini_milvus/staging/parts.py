"""
Staged rows as Parquet parts: written atomically, read back a record batch at a time.

A part holds embedding rows in :func:`row_schema` (vectors as ``fixed_size_list<float32>[dim]``, metadata as
compact JSON text) under a name ``part-<8-digit sequence>-<8 hex>.parquet`` that sorts in writing order and
never repeats. Id lists (the ids to delete) are Parquet files with one ``id`` column.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from itertools import islice
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from airflow.sdk import ObjectStoragePath

from airflow_provider_gemini_milvus.milvus.layout import (
    FIELD_CONTENT_HASH,
    FIELD_ID,
    FIELD_METADATA,
    FIELD_MODEL,
    FIELD_TEXT,
    FIELD_VECTOR,
    MAX_DIM,
)
from airflow_provider_gemini_milvus.staging.manifest import StagedPart
from airflow_provider_gemini_milvus.staging.storage import (
    TEMP_PREFIX,
    as_path,
    atomic_local_file,
    filesystem,
    is_local,
    list_entries,
    mark_task_folder,
)

__all__ = [
    "DELETE_LIST_NAME",
    "ID_SCHEMA",
    "PART_NAME",
    "ROW_COLUMNS",
    "ROW_GROUP_ROWS",
    "PartColumns",
    "PartInfo",
    "PartWriter",
    "ReusedParts",
    "count_rows",
    "describe_part",
    "id_list_schema",
    "iter_id_list",
    "iter_part_columns",
    "iter_part_ids",
    "iter_part_rows",
    "row_schema",
    "staged_fingerprints",
    "reuse_staged_parts",
    "staged_parts",
    "write_id_list",
]

log = logging.getLogger(__name__)

ROW_COLUMNS = (FIELD_ID, FIELD_VECTOR, FIELD_TEXT, FIELD_CONTENT_HASH, FIELD_MODEL, FIELD_METADATA)
ID_SCHEMA = pa.schema([pa.field(FIELD_ID, pa.string(), nullable=False)])
#: Rows per Parquet row group: readers stream a row group at a time, so this bounds their memory.
ROW_GROUP_ROWS = 2048
ID_CHUNK_ROWS = 10_000

#: The name of the ids to delete in a task instance's folder (see :func:`write_id_list`).
DELETE_LIST_NAME = "delete_ids.parquet"
PART_NAME = re.compile(r"part-(\d{8})-[0-9a-f]{8}\.parquet")
_ID_LIST_NAME = re.compile(r"[A-Za-z0-9_-]+")


def row_schema(dim: int) -> pa.Schema:
    """
    The schema of a part holding vectors of ``dim`` values (the width is part of the vector type).

    ``id`` string, ``vector`` fixed_size_list<float32>[dim], ``text`` string, ``content_hash`` string,
    ``model`` string, ``metadata`` string (compact JSON of a dict).
    """
    return pa.schema(
        [
            pa.field(FIELD_ID, pa.string(), nullable=False),
            pa.field(FIELD_VECTOR, pa.list_(pa.float32(), dim), nullable=False),
            pa.field(FIELD_TEXT, pa.string(), nullable=False),
            pa.field(FIELD_CONTENT_HASH, pa.string()),
            pa.field(FIELD_MODEL, pa.string()),
            pa.field(FIELD_METADATA, pa.string()),
        ]
    )


@dataclass(frozen=True)
class PartInfo:
    """What a part's footer tells: its rows and its vectors' dimension."""

    rows: int
    dim: int


@contextmanager
def _open_parquet(location: str | ObjectStoragePath) -> Iterator[pq.ParquetFile]:
    """
    Open a Parquet file for streaming reads (local files natively, others through fsspec).

    :raises ValueError: naming the file when it is not Parquet (empty, another format, cut short).
    """
    path = location if isinstance(location, ObjectStoragePath) else as_path(location)
    fs = filesystem(path)
    if is_local(fs):
        with _parquet_file(path.path, location) as parquet:
            yield parquet
        return
    with fs.open(path.path, "rb") as source, _parquet_file(source, location) as parquet:
        yield parquet


def _parquet_file(source: Any, location: str | ObjectStoragePath) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(source)
    except pa.ArrowInvalid as err:
        raise ValueError(f"{location} is not a Parquet file ({err})") from None


def _batches(
    parquet: pq.ParquetFile, location: str | ObjectStoragePath, batch_rows: int, columns: list[str]
) -> Iterator[pa.RecordBatch]:
    """The file's record batches; a damaged row group is named by file and first row."""
    batches = parquet.iter_batches(batch_size=batch_rows, columns=columns)
    row = 0
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except pa.ArrowException as err:
            if isinstance(err, FileNotFoundError):
                raise
            raise ValueError(f"{location} cannot be read from row {row} on ({err})") from None
        yield batch
        row += batch.num_rows


def _texts(column: pa.Array, location: str | ObjectStoragePath, name: str, first_row: int) -> list[Any]:
    """A string column as Python values; text that is not UTF-8 is named by file, row and column."""
    try:
        return list(column.to_pylist())
    except UnicodeDecodeError:
        for position in range(len(column)):
            try:
                column[position].as_py()
            except UnicodeDecodeError as err:
                raise ValueError(
                    f"{location} rows[{first_row + position}] column {name!r} is not valid UTF-8 "
                    f"({err.reason} at byte {err.start + 1})"
                ) from None
        raise


def _check_dim(dim: Any) -> int:
    if isinstance(dim, bool) or not isinstance(dim, int) or not 1 <= dim <= MAX_DIM:
        raise ValueError(f"dim must be an integer from 1 to {MAX_DIM}, got {dim!r}")
    return dim


class PartWriter:
    """
    Write rows as numbered Parquet parts into one folder (a task instance's staging folder).

    Numbering continues after the parts already in the folder, so an Airflow retry adds parts after those
    of the earlier try instead of replacing them. Each part is written atomically. The first write marks
    the folder as the provider's (see :func:`~.storage.mark_task_folder`).

    :param directory: the folder, e.g. from :func:`~.storage.task_staging_dir`.
    :param dim: the vector dimension every row must have.
    """

    def __init__(self, directory: str | ObjectStoragePath, dim: int) -> None:
        self.directory = directory if isinstance(directory, ObjectStoragePath) else as_path(directory)
        self.dim = _check_dim(dim)
        self._schema = row_schema(self.dim)
        numbers = [_sequence(part.uri) for part in staged_parts(self.directory, with_rows=False)]
        self._next_sequence = max(numbers, default=-1) + 1
        self._marked = False

    def write(self, rows: Sequence[Mapping[str, Any]]) -> StagedPart:
        """
        Write ``rows`` as one new part and return it.

        :param rows: dicts with ``id`` (non-empty string), ``vector`` (list or numpy array of ``dim``
            finite numbers), ``text`` (string), and optional ``content_hash``, ``model`` (strings) and
            ``metadata`` (JSON-serialisable dict).
        :raises ValueError: naming the first bad row as ``rows[i] (id '...')``; nothing is written then.
        """
        table = self._table(rows)
        name = f"part-{self._next_sequence:08d}-{uuid.uuid4().hex[:8]}.parquet"
        target = self.directory / name
        with atomic_local_file(target) as local_file:
            pq.write_table(
                table,
                local_file,
                row_group_size=ROW_GROUP_ROWS,
                use_dictionary=[FIELD_MODEL],
                compression="snappy",
            )
        self._next_sequence += 1
        if not self._marked:
            mark_task_folder(self.directory)
            self._marked = True
        return StagedPart(uri=str(target), rows=table.num_rows)

    def _table(self, rows: Sequence[Mapping[str, Any]]) -> pa.Table:
        if isinstance(rows, (str, bytes, Mapping)) or not isinstance(rows, Sequence):
            raise ValueError(f"rows must be a list of dicts, got {type(rows).__name__}")
        if not rows:
            raise ValueError("a part needs at least one row")
        count = len(rows)
        vectors = np.empty((count, self.dim), dtype=np.float32)
        ids: list[str] = []
        texts: list[str] = []
        hashes: list[str | None] = []
        models: list[str | None] = []
        metadata: list[str] = []
        for index, row in enumerate(rows):
            if not isinstance(row, Mapping):
                raise ValueError(f"rows[{index}] must be a dict, got {type(row).__name__}")
            row_id = row.get(FIELD_ID)
            where = f"rows[{index}] (id {row_id!r})"
            if not isinstance(row_id, str) or not row_id:
                raise ValueError(f"{where}: id must be a non-empty string")
            vectors[index] = self._vector(row.get(FIELD_VECTOR), where)
            text = row.get(FIELD_TEXT)
            if not isinstance(text, str):
                raise ValueError(f"{where}: text must be a string, got {type(text).__name__}")
            for key, column in ((FIELD_CONTENT_HASH, hashes), (FIELD_MODEL, models)):
                value = row.get(key)
                if value is not None and not isinstance(value, str):
                    raise ValueError(f"{where}: {key} must be a string, got {type(value).__name__}")
                column.append(value)
            metadata.append(_metadata_json(row.get(FIELD_METADATA), where))
            ids.append(row_id)
            texts.append(text)
        vector_array = pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), self.dim)
        return pa.Table.from_arrays(
            [
                pa.array(ids, pa.string()),
                vector_array,
                pa.array(texts, pa.string()),
                pa.array(hashes, pa.string()),
                pa.array(models, pa.string()),
                pa.array(metadata, pa.string()),
            ],
            schema=self._schema,
        )

    def _vector(self, value: Any, where: str) -> np.ndarray:
        if value is None or isinstance(value, (str, bytes, Mapping)):
            raise ValueError(
                f"{where}: vector must be a list of {self.dim} numbers, got {type(value).__name__}"
            )
        try:
            with np.errstate(over="ignore"):  # 1e39 becomes inf, refused below
                vector = np.asarray(value, dtype=np.float32)
        except (TypeError, ValueError, OverflowError):
            raise ValueError(f"{where}: vector must be a list of {self.dim} numbers") from None
        if vector.shape != (self.dim,):
            raise ValueError(f"{where}: vector has shape {vector.shape}, the part's dim is {self.dim}")
        if not np.isfinite(vector).all():
            raise ValueError(f"{where}: vector holds a value that is not finite as float32")
        return vector


def _metadata_json(value: Any, where: str) -> str:
    if value is None:
        return "{}"
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}: metadata must be a dict, got {type(value).__name__}")
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}: metadata is not JSON-serialisable: {err}") from None


def _sequence(uri: str) -> int:
    match = PART_NAME.fullmatch(uri.rsplit("/", 1)[-1])
    return int(match.group(1)) if match else -1


def describe_part(uri: str | ObjectStoragePath) -> PartInfo:
    """
    Read a part's footer only and return its row count and vector dimension.

    :raises FileNotFoundError: when the part does not exist.
    :raises ValueError: when the file is not a staged part (columns or vector type differ).
    """
    with _open_parquet(uri) as parquet:
        schema = parquet.schema_arrow
        rows = parquet.metadata.num_rows
    missing = [column for column in ROW_COLUMNS if column not in schema.names]
    if missing:
        raise ValueError(f"not a staged part: it has no column(s) {missing}")
    vector_type = schema.field(FIELD_VECTOR).type
    if not (pa.types.is_fixed_size_list(vector_type) and pa.types.is_float32(vector_type.value_type)):
        raise ValueError(
            f"not a staged part: its vector column is {vector_type}, not fixed_size_list<float32>"
        )
    return PartInfo(rows=rows, dim=vector_type.list_size)


@dataclass(frozen=True)
class PartColumns:
    """
    Consecutive rows of a part, column by column, as stored: what a loader checks without a dict per row.

    :param uri: the part's URI.
    :param offset: the part's row number of the first row here.
    :param ids: the ``id`` column.
    :param vectors: the ``vector`` column, a float32 ``(rows, dim)`` array (the stored values exactly).
    :param texts: the ``text`` column.
    :param hashes: the ``content_hash`` column (None where it is null).
    :param models: the ``model`` column (None where it is null).
    :param metadata: the ``metadata`` column, JSON text as stored (None where it is null).
    """

    uri: str
    offset: int
    ids: list[Any]
    vectors: np.ndarray
    texts: list[Any]
    hashes: list[Any]
    models: list[Any]
    metadata: list[Any]

    def rows(self) -> list[dict[str, Any]]:
        """
        The rows as dicts (:func:`iter_part_rows`): ``vector`` a float32 numpy row, ``metadata`` a dict.

        :raises ValueError: naming the file, row and id of metadata that is not a JSON object.
        """
        return [
            {
                FIELD_ID: self.ids[index],
                FIELD_VECTOR: self.vectors[index],
                FIELD_TEXT: self.texts[index],
                FIELD_CONTENT_HASH: self.hashes[index],
                FIELD_MODEL: self.models[index],
                FIELD_METADATA: _metadata_of(
                    self.metadata[index], self.uri, self.offset + index, self.ids[index]
                ),
            }
            for index in range(len(self.ids))
        ]


def iter_part_columns(uri: str | ObjectStoragePath, *, batch_rows: int = 2048) -> Iterator[PartColumns]:
    """
    Yield a part's rows in column chunks of at most ``batch_rows`` rows, reading one row group at a time.

    :param uri: the part's URI (:attr:`StagedPart.uri`).
    :param batch_rows: most rows per chunk.
    :raises ValueError: naming the file (and row and column) when a vector is missing or text is not UTF-8.
    """
    if batch_rows < 1:
        raise ValueError(f"batch_rows must be at least 1, got {batch_rows}")
    offset = 0
    with _open_parquet(uri) as parquet:
        for batch in _batches(parquet, uri, batch_rows, list(ROW_COLUMNS)):
            yield _batch_columns(batch, uri, offset)
            offset += batch.num_rows


def iter_part_rows(uri: str | ObjectStoragePath, *, batch_rows: int = 2048) -> Iterator[list[dict[str, Any]]]:
    """
    Yield a part's rows in lists of at most ``batch_rows``, reading one row group at a time.

    Rows are dicts as :func:`~airflow_provider_gemini_milvus.milvus.rows.prepare_rows` takes them:
    ``vector`` a float32 numpy row (the stored values exactly), ``metadata`` a dict.

    :param uri: the part's URI (:attr:`StagedPart.uri`).
    :param batch_rows: most rows per list.
    """
    for columns in iter_part_columns(uri, batch_rows=batch_rows):
        yield columns.rows()


def _batch_columns(batch: pa.RecordBatch, uri: str | ObjectStoragePath, offset: int) -> PartColumns:
    vector_column = batch.column(FIELD_VECTOR)
    if vector_column.null_count:
        raise ValueError(f"{uri}: {vector_column.null_count} row(s) have no vector")
    count = batch.num_rows
    dim = vector_column.type.list_size
    # One float32 array for the chunk: the row check tests it in one vectorised step (see milvus/rows.py).
    vectors = vector_column.flatten().to_numpy(zero_copy_only=False).reshape(count, dim)
    ids, texts, hashes, models, metadata = (
        _texts(batch.column(name), uri, name, offset)
        for name in (FIELD_ID, FIELD_TEXT, FIELD_CONTENT_HASH, FIELD_MODEL, FIELD_METADATA)
    )
    return PartColumns(str(uri), offset, ids, vectors, texts, hashes, models, metadata)


def _metadata_of(text: str | None, uri: str | ObjectStoragePath, row: int, row_id: Any) -> dict[str, Any]:
    if not text:
        return {}
    where = f"{uri} rows[{row}] (id {row_id!r})"
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{where}: metadata is not JSON ({err.msg})") from None
    except RecursionError:
        raise ValueError(f"{where}: metadata nests arrays or objects too deeply") from None
    if not isinstance(value, dict):
        raise ValueError(f"{where}: metadata must be a JSON object, got {type(value).__name__}")
    return value


def iter_part_ids(uri: str | ObjectStoragePath, *, batch_rows: int = ID_CHUNK_ROWS) -> Iterator[list[str]]:
    """Yield a part's ids (only that column is read), at most ``batch_rows`` at a time."""
    return _iter_ids(uri, batch_rows)


def _iter_ids(uri: str | ObjectStoragePath, batch_rows: int) -> Iterator[list[str]]:
    if batch_rows < 1:
        raise ValueError(f"batch_rows must be at least 1, got {batch_rows}")
    offset = 0
    with _open_parquet(uri) as parquet:
        for batch in _batches(parquet, uri, batch_rows, [FIELD_ID]):
            yield _texts(batch.column(0), uri, FIELD_ID, offset)
            offset += batch.num_rows


def staged_parts(directory: str | ObjectStoragePath, *, with_rows: bool = True) -> list[StagedPart]:
    """
    Return the complete parts already in ``directory`` (written by an earlier try), in writing order.

    Only finished parts are seen: temporary files of an interrupted write never are.

    :param directory: a task instance's staging folder; a missing folder has no parts.
    :param with_rows: read each part's footer for its row count; False leaves ``rows`` at 0.
    """
    folder = directory if isinstance(directory, ObjectStoragePath) else as_path(directory)
    names = sorted(
        name
        for name in (
            entry["name"].rsplit("/", 1)[-1] for entry in list_entries(folder) if entry["type"] == "file"
        )
        if PART_NAME.fullmatch(name)
    )
    parts = []
    for name in names:
        path = folder / name
        parts.append(StagedPart(uri=str(path), rows=count_rows(path) if with_rows else 0))
    return parts


def staged_fingerprints(directory: str | ObjectStoragePath) -> dict[str, tuple[str, str]]:
    """
    Return ``{id: (content_hash, model)}`` of the rows staged in ``directory``, reading only those columns.

    A later part wins when an id is staged twice.
    """
    fingerprints: dict[str, tuple[str, str]] = {}
    columns = [FIELD_ID, FIELD_CONTENT_HASH, FIELD_MODEL]
    for part in staged_parts(directory, with_rows=False):
        with _open_parquet(part.uri) as parquet:
            for batch in parquet.iter_batches(batch_size=ID_CHUNK_ROWS, columns=columns):
                ids, hashes, models = (batch.column(name).to_pylist() for name in columns)
                for row_id, hash_value, model in zip(ids, hashes, models, strict=True):
                    fingerprints[row_id] = (hash_value or "", model or "")
    return fingerprints


@dataclass(frozen=True)
class ReusedParts:
    """
    What :func:`reuse_staged_parts` kept of an earlier try's parts.

    :param parts: the parts kept (some rewritten), in writing order.
    :param hashes: ``{id: content_hash}`` of every row they hold (each id once).
    :param dropped: how many staged rows were left out (stale, of other settings, repeated, unreadable).
    """

    parts: list[StagedPart]
    hashes: dict[str, str]
    dropped: int


def reuse_staged_parts(
    directory: str | ObjectStoragePath, current: Mapping[str, str], model: str, dim: int
) -> ReusedParts:
    """
    Keep of the parts an earlier try staged in ``directory`` only the rows still wanted, each id once.

    A row is kept when ``current`` holds its id with the same content hash and it was embedded with
    ``model``: a document gone from the source, edited since, or embedded with other settings is not
    handed on again. A part holding only such rows is kept as it is; a part holding others too is
    rewritten with the good rows (the new part first, then the old one removed: a crash in between leaves
    a repeat, which the next try drops); a part holding none, or that cannot be read, is removed. The
    temporary files of a write that was killed are removed too. Rows kept are paid for once only.

    :param directory: the task instance's staging folder.
    :param current: ``{id: content_hash}`` of the rows this try hands on.
    :param model: the rows' ``model`` value this try writes.
    :param dim: the vectors' dimension this try writes.
    """
    folder = directory if isinstance(directory, ObjectStoragePath) else as_path(directory)
    _remove_temporary_files(folder)
    kept: list[StagedPart] = []
    hashes: dict[str, str] = {}
    dropped = 0
    writer: PartWriter | None = None
    for part in staged_parts(folder, with_rows=False):
        try:
            good, total = _good_rows(part.uri, current, model, dim, hashes)
        except ValueError as err:
            log.warning("Removing staged part %s, which cannot be read: %s", part.uri, err)
            as_path(part.uri).unlink()
            continue
        dropped += total - len(good)
        if len(good) == total and total:
            kept.append(StagedPart(uri=part.uri, rows=total))
        elif good:
            writer = writer or PartWriter(folder, dim)
            kept.append(writer.write(good))
            as_path(part.uri).unlink()
        else:
            as_path(part.uri).unlink()
        hashes.update((row[FIELD_ID], row[FIELD_CONTENT_HASH]) for row in good)
    return ReusedParts(parts=kept, hashes=hashes, dropped=dropped)


def _good_rows(
    uri: str, current: Mapping[str, str], model: str, dim: int, seen: Mapping[str, str]
) -> tuple[list[dict[str, Any]], int]:
    """The rows of a part still wanted (not in ``seen`` already), and how many rows it holds."""
    if describe_part(uri).dim != dim:
        return [], count_rows(uri)
    good: list[dict[str, Any]] = []
    ids: set[str] = set()
    total = 0
    for rows in iter_part_rows(uri):
        total += len(rows)
        for row in rows:
            row_id = row[FIELD_ID]
            if (
                row[FIELD_MODEL] == model
                and current.get(row_id) == row[FIELD_CONTENT_HASH]
                and row_id not in seen
                and row_id not in ids
            ):
                ids.add(row_id)
                good.append(row)
    return good, total


def _remove_temporary_files(folder: ObjectStoragePath) -> None:
    """Remove what a killed atomic write left beside the parts (local folders only)."""
    fs = filesystem(folder)
    if not is_local(fs):
        return
    fs.invalidate_cache(folder.path)
    try:
        names = fs.ls(folder.path, detail=False)
    except FileNotFoundError:
        return
    for name in names:
        if name.rstrip("/").rsplit("/", 1)[-1].startswith(TEMP_PREFIX):
            with suppress(FileNotFoundError):
                fs.rm_file(name)
            log.info("Removed %s, left by a write that did not finish", name)


def count_rows(uri: str | ObjectStoragePath) -> int:
    """The number of rows of a Parquet file (a part or an id list), read from its footer."""
    with _open_parquet(uri) as parquet:
        return int(parquet.metadata.num_rows)


def id_list_schema(uri: str | ObjectStoragePath) -> pa.Schema:
    """The schema of a Parquet file, read from its footer (an id list has exactly :data:`ID_SCHEMA`)."""
    with _open_parquet(uri) as parquet:
        return parquet.schema_arrow


def write_id_list(directory: str | ObjectStoragePath, ids: Iterable[str], name: str = "delete_ids") -> str:
    """
    Write ids as a Parquet file ``directory/{name}.parquet`` (one ``id`` column), atomically; return its URI.

    ``ids`` may be any iterable, even a generator: it is written ``10,000`` ids at a time.

    :raises ValueError: for a name that is not letters, digits, ``_`` and ``-``, or an id that is not a
        non-empty string (named as ``ids[i]``).
    """
    if not _ID_LIST_NAME.fullmatch(name) or name.startswith("part-"):
        raise ValueError(f"id list name must be letters, digits, '_' and '-' (not 'part-...'), got {name!r}")
    folder = directory if isinstance(directory, ObjectStoragePath) else as_path(directory)
    target = folder / f"{name}.parquet"
    iterator = iter(ids)
    position = 0
    with atomic_local_file(target) as local_file, pq.ParquetWriter(local_file, ID_SCHEMA) as writer:
        while chunk := list(islice(iterator, ID_CHUNK_ROWS)):
            for offset, row_id in enumerate(chunk):
                if not isinstance(row_id, str) or not row_id:
                    raise ValueError(f"ids[{position + offset}] must be a non-empty string, got {row_id!r}")
            writer.write_batch(pa.record_batch([pa.array(chunk, pa.string())], schema=ID_SCHEMA))
            position += len(chunk)
    mark_task_folder(folder)
    return str(target)


def iter_id_list(uri: str | ObjectStoragePath, *, batch_rows: int = ID_CHUNK_ROWS) -> Iterator[list[str]]:
    """Yield the ids of a file written by :func:`write_id_list`, at most ``batch_rows`` at a time."""
    return _iter_ids(uri, batch_rows)
