"""
Bulk import of staged parts into a fresh collection on a Milvus server, instead of batched writes.

A Milvus server reads Parquet files from its own storage and builds segments from them directly
(``Import``), which skips the per-row write path: no write-ahead log, no growing segment, no flush per
batch. This module decides when that route is used (:func:`bulk_import_refusal`), rewrites each staged part
in the layout every server version's Parquet reader takes (:func:`write_import_files`: ``vector`` as
``list<float>``; Milvus 2.3 refuses the staged ``fixed_size_list<float32>``), starts one import job per
part through pymilvus' gRPC ``do_bulk_insert`` and waits for them and for the rows to be visible
(:func:`run_bulk_import`).

Where the server reads the files: a local staging folder is read by absolute path (a server on the same
machine with local storage); ``s3://bucket/key`` (and other object stores) by ``key``, from the bucket the
server itself is configured with, so staging must be in the server's own bucket.

Rows are never lost or duplicated. Every row is checked as a batched write checks it before any job
starts. A job imports its file completely or not at all; a collection is only imported into while it is
empty; a failed job in ``auto`` falls back to upserting every staged row (which replaces the rows of jobs
that did complete); and a later try first waits for import jobs an earlier try left running
(:func:`wait_for_running_imports`), then finds the collection not empty and upserts.
"""

from __future__ import annotations

import json
import re
import time
import uuid
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, get_args

import pyarrow as pa
import pyarrow.parquet as pq

from airflow_provider_gemini_milvus.exceptions import BulkImportFailed
from airflow_provider_gemini_milvus.milvus.layout import (
    FIELD_CONTENT_HASH,
    FIELD_ID,
    FIELD_METADATA,
    FIELD_MODEL,
    FIELD_TEXT,
    FIELD_VECTOR,
)
from airflow_provider_gemini_milvus.milvus.rows import ID_QUERY_BATCH, prepare_rows
from airflow_provider_gemini_milvus.staging.parts import ROW_COLUMNS, ROW_GROUP_ROWS, iter_part_ids
from airflow_provider_gemini_milvus.staging.storage import (
    as_path,
    atomic_local_file,
    filesystem,
    is_local,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from airflow_provider_gemini_milvus.hooks.milvus import MilvusHook
    from airflow_provider_gemini_milvus.staging import StagedManifest

__all__ = [
    "DEFAULT_BULK_IMPORT_MIN_ROWS",
    "DEFAULT_BULK_IMPORT_TIMEOUT",
    "IMPORT_FILE_ROWS",
    "IMPORT_FOLDER",
    "LOAD_METHODS",
    "LoadMethod",
    "BulkImportResult",
    "bulk_import_refusal",
    "import_schema",
    "part_row_error",
    "remove_import_files",
    "run_bulk_import",
    "server_path",
    "wait_for_running_imports",
    "write_import_files",
]

#: ``auto``: bulk import where it can be used and pays off, else batched writes; ``bulk_import``: wherever
#: it can be used, whatever the size; ``batches``: always batched writes (``mode`` upsert or insert).
#: How a staged manifest goes into a collection (see ``MilvusInsertOperator``).
LoadMethod = Literal["auto", "bulk_import", "batches"]
LOAD_METHODS: tuple[LoadMethod, ...] = get_args(LoadMethod)
#: ``auto`` imports from this many staged rows on (see ``benchmarks/bench_bulk_import.py``).
DEFAULT_BULK_IMPORT_MIN_ROWS = 150_000
#: Seconds to wait for the import jobs and for their rows to become visible.
DEFAULT_BULK_IMPORT_TIMEOUT = 3600.0
#: Rows per import file (one import job each), about 300 MB of 768-dim vectors.
IMPORT_FILE_ROWS = 100_000
#: The import files are written in this folder beside the staged parts, and removed after the import.
IMPORT_FOLDER = "bulk_import"
_POLL_SECONDS = 1.0
_ORM_IMPORT_CALLS = ("do_bulk_insert", "get_bulk_insert_state", "list_bulk_insert_tasks")
_DONE = "Completed"
_FAILED = ("Failed", "Failed and cleaned")


@dataclass(frozen=True)
class BulkImportResult:
    """What an import did: rows imported, jobs (one per part), seconds from the first job to visible rows."""

    rows: int
    jobs: int
    seconds: float


def part_row_error(part_index: int, uri: str, offset: int, err: ValueError) -> ValueError:
    """The row check's error with ``rows[i]`` shifted by ``offset`` to the row's place in its part."""
    message = re.sub(r"rows\[(\d+)\]", lambda match: f"rows[{offset + int(match.group(1))}]", str(err))
    return ValueError(f"staged parts[{part_index}] ({uri}): {message}")


def bulk_import_refusal(
    hook: MilvusHook,
    collection: str,
    manifest: StagedManifest,
    *,
    load_method: LoadMethod,
    min_rows: int,
    existed: bool,
) -> str | None:
    """
    Why these staged rows are not bulk imported, or None when they are.

    An import adds rows: it never replaces a stored row with the same id. So it is used only when none of
    the staged ids is stored yet: the collection is new or empty, or (shards loading one collection at
    once) holds only other ids. Import jobs an earlier try left running into an existing collection are
    waited for first, whatever the load method, so that their rows never land beside this try's writes.

    :param hook: the hook of the target (a server, or Milvus Lite which has no import).
    :param collection: the target collection (it exists by now).
    :param manifest: the staged rows.
    :param load_method: one of :data:`LOAD_METHODS`.
    :param min_rows: ``auto`` imports from this many rows on.
    :param existed: whether the collection existed before this task (a new one is empty).
    """
    if hook.is_lite:
        return "Milvus Lite has no bulk import"
    if not _has_grpc_import():
        return "this pymilvus has no gRPC import (pymilvus.utility.do_bulk_insert; removed in pymilvus 3.1)"
    if existed:
        # Whatever this try does, rows an earlier try's import job adds later would sit beside its writes.
        wait_for_running_imports(hook, collection)
    if load_method == "batches":
        return "load_method is 'batches'"
    if load_method == "auto" and manifest.rows < min_rows:
        return f"{manifest.rows} rows are below bulk_import_min_rows ({min_rows})"
    if existed and hook.count(collection):
        for part in manifest.parts:
            for ids in iter_part_ids(part.uri, batch_rows=ID_QUERY_BATCH):
                stored = hook.existing_ids(collection, ids)
                if stored:
                    return (
                        f"collection {collection!r} already holds {len(stored)}+ of the staged ids, e.g. "
                        f"{min(stored)!r} (an import would add a second row, an upsert replaces it)"
                    )
    return None


def server_path(uri: str) -> str:
    """
    The path a Milvus server is given for a staged file: the absolute path of a local file, or the key of
    an object (``s3://bucket/a/b.parquet`` -> ``a/b.parquet``), read from the server's own bucket.
    """
    path = as_path(uri)
    if is_local(filesystem(path)):
        return str(path.path)
    return str(path.path).partition("/")[2]


def import_schema() -> pa.Schema:
    """The import files' schema: the staged columns, with ``vector`` as ``list<float>``."""
    return pa.schema(
        [
            pa.field(FIELD_ID, pa.string(), nullable=False),
            pa.field(FIELD_VECTOR, pa.list_(pa.float32()), nullable=False),
            pa.field(FIELD_TEXT, pa.string(), nullable=False),
            pa.field(FIELD_CONTENT_HASH, pa.string(), nullable=False),
            pa.field(FIELD_MODEL, pa.string(), nullable=False),
            pa.field(FIELD_METADATA, pa.string(), nullable=False),
        ]
    )


def _import_file_uri(part_uri: str) -> str:
    folder, _, name = part_uri.rpartition("/")
    return f"{folder}/{IMPORT_FOLDER}/{name}"


def write_import_files(
    manifest: StagedManifest,
    *,
    id_max_length: int,
    text_max_length: int,
    rows_per_file: int = IMPORT_FILE_ROWS,
) -> list[tuple[str, int]]:
    """
    Check every staged row as a batched write would, and write the parts again as import files.

    Consecutive parts are joined into files of about ``rows_per_file`` rows (a part is never split): each
    file is one import job, and a server runs few jobs at once. A file goes into :data:`IMPORT_FOLDER`
    beside its first part, under that part's name (a retry rewrites the same file), atomically. Ids must
    be unique across all parts: an import stores a repeated id twice, where upserts keep the last row.

    :param manifest: the staged manifest (already verified).
    :param id_max_length: the collection's id ``max_length`` in bytes.
    :param text_max_length: the collection's text ``max_length`` in bytes.
    :param rows_per_file: rows per import file, at least one part's.
    :raises ValueError: naming the first bad row as ``staged parts[i] (uri): rows[j] (id '...')``; nothing
        has been imported then.
    :return: ``(uri, rows)`` of each import file, in the parts' order.
    """
    seen: dict[str, tuple[int, int]] = {}
    files: list[tuple[str, int]] = []
    numbered = list(enumerate(manifest.parts))
    while numbered:
        group = [numbered.pop(0)]
        rows = group[0][1].rows
        while numbered and rows + numbered[0][1].rows <= rows_per_file:
            rows += numbered[0][1].rows
            group.append(numbered.pop(0))
        target = as_path(_import_file_uri(group[0][1].uri))
        with atomic_local_file(target) as local_file, pq.ParquetWriter(local_file, import_schema()) as writer:
            for part_index, part in group:
                _write_part(
                    writer, part_index, part.uri, manifest.dim, (id_max_length, text_max_length), seen
                )
        files.append((str(target), rows))
    return files


def _write_part(
    writer: pq.ParquetWriter,
    part_index: int,
    uri: str,
    dim: int,
    limits: tuple[int, int],
    seen: dict[str, tuple[int, int]],
) -> None:
    """Check a part's rows (``seen`` holds every id so far, with its place) and append them to ``writer``."""
    offset = 0
    for batch in _part_batches(uri):
        try:
            rows, _ = prepare_rows(
                _rows_of(batch), dim=dim, id_max_length=limits[0], text_max_length=limits[1]
            )
        except ValueError as err:
            raise part_row_error(part_index, uri, offset, err) from None
        for position, row in enumerate(rows):
            earlier = seen.setdefault(row[FIELD_ID], (part_index, offset + position))
            if earlier != (part_index, offset + position):
                raise ValueError(
                    f"staged parts[{part_index}] ({uri}): rows[{offset + position}] (id {row[FIELD_ID]!r}) "
                    f"repeats staged parts[{earlier[0]}] rows[{earlier[1]}]"
                )
        writer.write_table(_import_table(batch, rows, writer.schema))
        offset += batch.num_rows


def _part_batches(uri: str) -> Iterator[pa.RecordBatch]:
    path = as_path(uri)
    fs = filesystem(path)
    if is_local(fs):
        with pq.ParquetFile(path.path) as parquet:
            yield from parquet.iter_batches(batch_size=ROW_GROUP_ROWS, columns=list(ROW_COLUMNS))
        return
    with fs.open(path.path, "rb") as source, pq.ParquetFile(source) as parquet:
        yield from parquet.iter_batches(batch_size=ROW_GROUP_ROWS, columns=list(ROW_COLUMNS))


def _rows_of(batch: pa.RecordBatch) -> list[dict[str, Any]]:
    """The batch as the dicts :func:`prepare_rows` checks (vectors as float32 numpy views)."""
    vectors = batch.column(FIELD_VECTOR)
    if vectors.null_count:
        raise ValueError(f"{vectors.null_count} row(s) have no vector")
    flat = vectors.flatten().to_numpy(zero_copy_only=False).reshape(batch.num_rows, -1)
    columns = {name: batch.column(name).to_pylist() for name in ROW_COLUMNS if name != FIELD_VECTOR}
    return [
        {
            FIELD_ID: columns[FIELD_ID][index],
            FIELD_VECTOR: flat[index],
            FIELD_TEXT: columns[FIELD_TEXT][index],
            FIELD_CONTENT_HASH: columns[FIELD_CONTENT_HASH][index],
            FIELD_MODEL: columns[FIELD_MODEL][index],
            FIELD_METADATA: json.loads(columns[FIELD_METADATA][index] or "{}"),
        }
        for index in range(batch.num_rows)
    ]


def _import_table(batch: pa.RecordBatch, rows: Sequence[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    """The batch in the import layout: vectors re-typed without copying, defaults filled as the check did."""
    vectors = batch.column(FIELD_VECTOR)
    dim = vectors.type.list_size
    offsets = pa.array(range(0, (batch.num_rows + 1) * dim, dim), pa.int32())
    return pa.Table.from_arrays(
        [
            batch.column(FIELD_ID),
            pa.ListArray.from_arrays(offsets, vectors.flatten()),
            batch.column(FIELD_TEXT),
            pa.array([row[FIELD_CONTENT_HASH] for row in rows], pa.string()),
            pa.array([row[FIELD_MODEL] for row in rows], pa.string()),
            batch.column(FIELD_METADATA).fill_null("{}"),
        ],
        schema=schema,
    )


def remove_import_files(files: Sequence[tuple[str, int]]) -> None:
    """Remove the import files (they repeat the staged parts); a file already gone is fine."""
    for uri, _ in files:
        path = as_path(uri)
        try:
            filesystem(path).rm_file(path.path)
        except FileNotFoundError:
            continue


def _has_grpc_import() -> bool:
    from pymilvus import utility

    return all(hasattr(utility, name) for name in _ORM_IMPORT_CALLS)


@contextmanager
def _orm_connection(hook: MilvusHook) -> Iterator[str]:
    """
    A pymilvus ORM connection alias to the hook's server, closed at the end: ``MilvusClient`` (pymilvus 3.0)
    has no import method, the ORM's ``utility`` has. pymilvus 3.0 warns that the ORM goes in 3.1; the
    warning is silenced here, and without the ORM :func:`bulk_import_refusal` chooses batched writes.
    """
    from pymilvus import connections

    alias = f"gemini-milvus-import-{uuid.uuid4().hex[:12]}"
    kwargs = {key: value for key, value in hook.client_kwargs.items() if key != "dedicated"}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*ORM-style PyMilvus API", category=FutureWarning)
        try:
            connections.connect(alias=alias, **kwargs)
        except Exception as err:
            raise BulkImportFailed(f"could not connect for bulk import: {hook.safe_message(err)}") from None
        try:
            yield alias
        finally:
            connections.disconnect(alias)


def wait_for_running_imports(
    hook: MilvusHook, collection: str, timeout: float = DEFAULT_BULK_IMPORT_TIMEOUT
) -> int:
    """
    Wait until no import job into ``collection`` is pending or running (an earlier try's may be), so its
    rows are counted before anything else is decided; return how many were waited for.

    :raises TimeoutError: when jobs still run after ``timeout`` seconds.
    """
    from pymilvus import utility

    with _orm_connection(hook) as alias:
        deadline = time.monotonic() + timeout
        waited: set[int] = set()
        while True:
            running = [
                task
                for task in utility.list_bulk_insert_tasks(collection_name=collection, using=alias)
                if task.state_name != _DONE and task.state_name not in _FAILED
            ]
            if not running:
                break
            waited.update(task.task_id for task in running)
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{len(running)} import job(s) into {collection!r} still run after {timeout:.0f} s"
                )
            time.sleep(_POLL_SECONDS)
    if waited:
        hook.log.info(
            "Waited for %s import job(s) an earlier try left running in %s", len(waited), collection
        )
    return len(waited)


def run_bulk_import(
    hook: MilvusHook,
    collection: str,
    files: Sequence[tuple[str, int]],
    *,
    partition_name: str | None = None,
    timeout: float = DEFAULT_BULK_IMPORT_TIMEOUT,
) -> BulkImportResult:
    """
    Import the files into the empty ``collection``, one job per file, and wait until every row is visible.

    :param hook: the hook of the server.
    :param collection: the collection, empty.
    :param files: ``(uri, rows)`` from :func:`write_import_files`.
    :param partition_name: the partition to import into; None means the default partition.
    :param timeout: seconds to wait for the jobs and the rows.
    :raises BulkImportFailed: when a job fails (with the server's reason); completed jobs' rows are kept.
    :raises TimeoutError: when the jobs or the rows are not done after ``timeout`` seconds; the jobs go on.
    """
    from pymilvus import utility

    started = time.monotonic()
    deadline = started + timeout
    expected = sum(rows for _, rows in files)
    before = hook.count(collection)
    with _orm_connection(hook) as alias:
        jobs: dict[int, str] = {}
        for uri, _ in files:
            try:
                job = utility.do_bulk_insert(
                    collection, files=[server_path(uri)], partition_name=partition_name, using=alias
                )
            except Exception as err:
                raise BulkImportFailed(
                    f"the server refused to import {uri}: {hook.safe_message(err)}"
                ) from None
            jobs[int(job)] = uri
        hook.log.info("Started %s import job(s) for %s rows into %s", len(jobs), expected, collection)
        pending = dict(jobs)
        imported = 0
        failures: list[str] = []
        while pending:
            for job, uri in list(pending.items()):
                state = utility.get_bulk_insert_state(job, using=alias)
                if state.state_name == _DONE:
                    imported += int(state.row_count)
                    del pending[job]
                elif state.state_name in _FAILED:
                    failures.append(f"{uri}: {state.failed_reason}")
                    del pending[job]
            if pending:
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"{len(pending)} of {len(jobs)} import job(s) into {collection!r} were not done "
                        f"after {timeout:.0f} s; a retry waits for them first"
                    )
                time.sleep(_POLL_SECONDS)
    if failures:
        raise BulkImportFailed(
            f"{len(failures)} of {len(jobs)} import job(s) into {collection!r} failed: " + "; ".join(failures)
        )
    if imported != expected:
        raise BulkImportFailed(f"the import jobs report {imported} rows, {expected} were staged")
    # Imported segments become queryable once their index is built and they are loaded; a refreshing load
    # waits for that instead of the query coordinator's next round. Shards loading the same collection at
    # once may add rows meanwhile: at least ``before + expected`` rows are waited for.
    try:
        hook.get_conn().refresh_load(collection, timeout=max(1.0, deadline - time.monotonic()))
    except Exception as err:  # an older server, or the timeout: the count below decides
        hook.log.info(
            "Refreshing the load of %s did not finish (%s); polling its row count",
            collection,
            hook.safe_message(err),
        )
    stored = hook.count(collection)
    while stored < before + expected and time.monotonic() < deadline:
        time.sleep(_POLL_SECONDS)
        stored = hook.count(collection)
    if stored < before + expected:
        raise BulkImportFailed(
            f"collection {collection!r} holds {stored} rows {timeout:.0f} s after {expected} were imported "
            f"into it holding {before}"
        )
    seconds = round(time.monotonic() - started, 3)
    hook.log.info("Imported %s rows into %s in %s job(s), %.1f s", expected, collection, len(jobs), seconds)
    return BulkImportResult(rows=expected, jobs=len(jobs), seconds=seconds)
