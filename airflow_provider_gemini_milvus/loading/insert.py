"""
The engine of ``MilvusInsertOperator``: rows given inline or a staged manifest, checked and written into a
collection, then the vanished ids deleted.

Every row is checked before anything is written, the way a Milvus server checks it. A staged manifest is
loaded a part at a time (or bulk imported, see :mod:`~airflow_provider_gemini_milvus.loading.bulk_import`),
so memory does not grow with the corpus.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict

from airflow_provider_gemini_milvus.exceptions import BulkImportFailed
from airflow_provider_gemini_milvus.loading.bulk_import import (
    BulkImportResult,
    bulk_import_refusal,
    part_row_error,
    remove_import_files,
    run_bulk_import,
    write_import_files,
)
from airflow_provider_gemini_milvus.milvus.full_text import require_full_text
from airflow_provider_gemini_milvus.milvus.layout import (
    FIELD_ID,
    ID_MAX_LENGTH,
    TEXT_MAX_LENGTH,
    CollectionInfo,
    check_collection_matches,
)
from airflow_provider_gemini_milvus.milvus.rows import (
    prepare_columns,
    prepare_rows,
    row_sizes,
    sized_batches,
    split_batches,
)
from airflow_provider_gemini_milvus.staging import (
    StagedManifest,
    iter_id_list,
    iter_part_columns,
    verify_manifest,
)

if TYPE_CHECKING:
    from airflow_provider_gemini_milvus.hooks.milvus import MilvusHook
    from airflow_provider_gemini_milvus.loading.bulk_import import LoadMethod
    from airflow_provider_gemini_milvus.milvus.rows import WriteMode
    from airflow_provider_gemini_milvus.staging import StagedPart
    from airflow_provider_gemini_milvus.utils.logs import TaskLogger

__all__ = [
    "LITE_ROWS_PER_FLUSH",
    "STAGED_DELETE_CHUNK",
    "STAGED_READ_ROWS",
    "InsertArguments",
    "LoadResult",
    "is_staged",
    "load_manifest",
    "load_rows",
    "split_data",
]

#: Rows read from a staged part at a time, validated and split into requests: this bounds the memory.
STAGED_READ_ROWS = 2048
#: Ids to delete passed to the hook at a time when they come from a staged list.
STAGED_DELETE_CHUNK = 10_000
#: Rows written between flushes when a manifest goes into Milvus Lite (see ``_write_staged``).
LITE_ROWS_PER_FLUSH = 50_000


class LoadResult(TypedDict):
    """What a load returns (``MilvusInsertOperator``'s XCom)."""

    collection: str
    written: int
    skipped: int
    deleted: int
    dim: int | None
    mode: str
    batches: int
    created: bool
    parts: int
    load_method: str


@dataclass(frozen=True)
class InsertArguments:
    """The operator's arguments after rendering, converted and checked once."""

    collection_name: str
    mode: WriteMode
    create_collection: bool
    metric_type: str
    index_type: str
    batch_size: int | None
    partition_name: str | None
    max_batch_bytes: int
    load_method: LoadMethod
    bulk_import_min_rows: int
    bulk_import_timeout: float
    full_text: bool = False
    full_text_analyzer: dict[str, Any] | None = None


def is_staged(data: Any) -> bool:
    """True when ``data`` claims to be a staged manifest (a dict with ``format``); it is checked on load."""
    return isinstance(data, Mapping) and "format" in data


def split_data(data: Any) -> tuple[Sequence[Any], list[str]]:
    """
    Split ``data`` into rows to write and ids to delete.

    :param data: a list of row dicts, or a dict ``{"rows": [...], "delete_ids": [...]}`` (other keys ignored).
    :raises ValueError: for any other shape.
    """
    if isinstance(data, str):
        raise ValueError(
            "data is a string: pass the upstream task's output (an XComArg) instead of a Jinja "
            "xcom_pull, or set render_template_as_native_obj=True on the DAG"
        )
    if isinstance(data, Mapping):
        if "rows" not in data and "delete_ids" not in data:
            raise ValueError(
                f"a data dict needs 'rows' and/or 'delete_ids', got keys {sorted(map(str, data))}"
            )
        rows = data.get("rows") or []
        delete_ids = data.get("delete_ids") or []
    elif isinstance(data, Sequence) and not isinstance(data, bytes):
        rows, delete_ids = data, []
    else:
        raise ValueError(
            "data must be a list of row dicts or a dict with 'rows' and 'delete_ids', "
            f"got {type(data).__name__}"
        )
    if isinstance(rows, (str, bytes, Mapping)) or not isinstance(rows, Sequence):
        raise ValueError(f"data['rows'] must be a list of row dicts, got {type(rows).__name__}")
    if isinstance(delete_ids, (str, bytes, Mapping)) or not isinstance(delete_ids, Sequence):
        raise ValueError(f"data['delete_ids'] must be a list of ids, got {type(delete_ids).__name__}")
    for index, row_id in enumerate(delete_ids):
        if not isinstance(row_id, str) or not row_id.strip():
            raise ValueError(f"delete_ids[{index}] must be a non-empty string, got {row_id!r}")
    return rows, list(dict.fromkeys(delete_ids))


def load_rows(
    hook: MilvusHook, raw_rows: Sequence[Any], delete_ids: list[str], args: InsertArguments, log: TaskLogger
) -> LoadResult:
    """
    Check every row, then write them in batches and delete ``delete_ids`` (after the rows are written).

    :raises ValueError: naming ``rows[i]`` and its id, before anything is written.
    :raises MilvusCollectionMismatchError: when the rows do not fit the existing collection.
    """
    if not raw_rows and not delete_ids:
        log.info("No rows to write and no ids to delete for collection %s", args.collection_name)
        return _summary(args, written=0, deleted=0, dim=None, batches=0, created=False)
    name = args.collection_name
    info = hook.describe(name)
    rows, dim = prepare_rows(
        raw_rows,
        id_max_length=(info.id_max_length if info else None) or ID_MAX_LENGTH,
        text_max_length=(info.text_max_length if info else None) or TEXT_MAX_LENGTH,
    )
    _check_deletes_do_not_overlap(rows, delete_ids)
    log.info("Validated %s rows (dim %s) and %s ids to delete for %s", len(rows), dim, len(delete_ids), name)
    written = batch_count = skipped = 0
    created = False
    if rows and dim is not None:
        if args.load_method == "bulk_import":
            log.info("Rows given inline are written in batches: bulk import reads staged parts")
        metric, index = hook.check_index_choice(args.metric_type, args.index_type)
        _check_target(hook, info, dim, metric, args)
        # Split before the collection is created, so a row too large for one request is refused first.
        batches = split_batches(rows, max_batch_bytes=args.max_batch_bytes, max_batch_rows=args.batch_size)
        created = _create_target(hook, dim, metric, index, args)
        result = hook.write_batches(
            name,
            batches,
            mode=args.mode,
            partition_name=args.partition_name,
            total_rows=len(rows),
            flush=not hook.is_lite,
        )
        written, batch_count, skipped = result.written, result.batches, result.skipped
    deleted = hook.delete_ids(name, delete_ids) if delete_ids and (info or created) else 0
    if batch_count and hook.is_lite:
        hook.flush(name)  # after the deletes, which read the collection: see _write_staged
    log.info(
        "Collection %s: wrote %s rows in %s batch(es), skipped %s already inserted, deleted %s",
        name,
        written,
        batch_count,
        skipped,
        deleted,
    )
    return _summary(
        args,
        written=written,
        deleted=deleted,
        dim=dim if dim is not None else (info.dim if info else None),
        batches=batch_count,
        created=created,
        skipped=skipped,
    )


def load_manifest(
    hook: MilvusHook, manifest: StagedManifest, args: InsertArguments, log: TaskLogger
) -> LoadResult:
    """
    Check the manifest and its parts, then load them a part at a time (or bulk import them) and delete the
    staged ids after every part is written. The caller closes ``hook``.

    :raises ValueError: naming the part, row and id, before anything is written where it can be.
    """
    verify_manifest(manifest)
    log.info(
        "Staged manifest: %s rows in %s part(s), dim %s, %s ids to delete",
        manifest.rows,
        len(manifest.parts),
        manifest.dim,
        manifest.delete_count,
    )
    if not manifest.rows and not manifest.delete_count:
        log.info("No rows to write and no ids to delete for collection %s", args.collection_name)
        return _summary(
            args, written=0, deleted=0, dim=manifest.dim, batches=0, created=False, parts=len(manifest.parts)
        )
    return _load_staged(hook, manifest, args, log)


def _load_staged(
    hook: MilvusHook, manifest: StagedManifest, args: InsertArguments, log: TaskLogger
) -> LoadResult:
    name = args.collection_name
    info = hook.describe(name)
    written = batch_count = skipped = 0
    created = False
    load_method: LoadMethod = "batches"
    if manifest.rows:
        metric, index = hook.check_index_choice(args.metric_type, args.index_type)
        _check_target(hook, info, manifest.dim, metric, args)
        created = _create_target(hook, manifest.dim, metric, index, args)
        limits = (
            (info.id_max_length if info else None) or ID_MAX_LENGTH,
            (info.text_max_length if info else None) or TEXT_MAX_LENGTH,
        )
        imported = _bulk_import(hook, manifest, limits, args, log, existed=not created)
        if imported is not None:
            written, load_method = imported.rows, "bulk_import"
        else:
            written, batch_count, skipped = _write_staged(hook, manifest, limits, args)
    deleted = 0
    if manifest.delete_ids_uri is not None and manifest.delete_count and (info or created):
        for chunk in iter_id_list(manifest.delete_ids_uri, batch_rows=STAGED_DELETE_CHUNK):
            deleted += hook.delete_ids(name, chunk)
    if batch_count and hook.is_lite:
        hook.flush(name)  # the last flush, after the deletes: see _write_staged
    log.info(
        "Collection %s: wrote %s rows from %s part(s) by %s (%s batch(es)), skipped %s already "
        "inserted, deleted %s",
        name,
        written,
        len(manifest.parts),
        load_method,
        batch_count,
        skipped,
        deleted,
    )
    return _summary(
        args,
        written=written,
        deleted=deleted,
        dim=manifest.dim,
        batches=batch_count,
        created=created,
        skipped=skipped,
        parts=len(manifest.parts),
        load_method=load_method,
    )


def _bulk_import(
    hook: MilvusHook,
    manifest: StagedManifest,
    limits: tuple[int, int],
    args: InsertArguments,
    log: TaskLogger,
    *,
    existed: bool,
) -> BulkImportResult | None:
    """Bulk import the parts where that route is used (see ``load_method``); None means write batches."""
    name = args.collection_name
    refusal = bulk_import_refusal(
        hook,
        name,
        manifest,
        load_method=args.load_method,
        min_rows=args.bulk_import_min_rows,
        existed=existed,
    )
    if refusal is not None:
        if args.load_method != "batches":
            log.info("Not bulk importing into %s: %s; writing batches instead", name, refusal)
        return None
    files = write_import_files(manifest, id_max_length=limits[0], text_max_length=limits[1])
    try:
        result = run_bulk_import(
            hook, name, files, partition_name=args.partition_name, timeout=args.bulk_import_timeout
        )
    except BulkImportFailed as failure:
        if args.load_method == "bulk_import":
            raise
        # A failed job stored nothing; the rows of completed jobs are replaced by the upserts.
        log.warning("Bulk import into %s failed (%s); upserting every staged row instead", name, failure)
        return None
    remove_import_files(files)
    return result


def _write_staged(
    hook: MilvusHook, manifest: StagedManifest, limits: tuple[int, int], args: InsertArguments
) -> tuple[int, int, int]:
    """
    Write the parts in batched requests; return rows written, batches and rows skipped.

    On a server, upserts stream in one write and one flush (a server rate-limits flushes per collection);
    insert writes (and flushes) a part at a time, because the hook holds an insert's rows at once to skip
    those an earlier try stored. On Milvus Lite, whose growing segment holds everything written since the
    last flush in this process's memory, a flush every ``LITE_ROWS_PER_FLUSH`` rows (insert still writes a
    part at a time); the last flush is left to the caller, after the deletes: a Lite flush releases the
    collection (see ``MilvusHook.flush``), and the deletes read it, which would load it and build its index.
    """
    numbered = list(enumerate(manifest.parts))
    if hook.is_lite:
        groups = _groups_of_rows(numbered, LITE_ROWS_PER_FLUSH)
        flushed = [group[-1][0] for group in groups[:-1]]
    else:
        groups = [numbered]
        flushed = [index for index, _ in numbered] if args.mode == "insert" else [numbered[-1][0]]
    writes = [[item] for item in numbered] if args.mode == "insert" else groups
    written = batch_count = skipped = 0
    for group in writes:
        result = hook.write_batches(
            args.collection_name,
            _staged_batches(group, manifest.dim, limits, args),
            mode=args.mode,
            partition_name=args.partition_name,
            total_rows=sum(part.rows for _, part in group),
            flush=group[-1][0] in flushed,
        )
        written += result.written
        batch_count += result.batches
        skipped += result.skipped
    return written, batch_count, skipped


def _staged_batches(
    parts: Sequence[tuple[int, StagedPart]], dim: int, limits: tuple[int, int], args: InsertArguments
) -> Iterator[list[Mapping[str, Any]]]:
    """Read parts in chunks, check each chunk as inline rows are checked, yield request batches of them."""
    return sized_batches(
        _checked_chunks(parts, dim, limits, args),
        max_batch_bytes=args.max_batch_bytes,
        max_batch_rows=args.batch_size,
    )


def _checked_chunks(
    parts: Sequence[tuple[int, StagedPart]], dim: int, limits: tuple[int, int], args: InsertArguments
) -> Iterator[tuple[Sequence[Mapping[str, Any]], list[int]]]:
    """
    Each chunk of the parts' rows, checked, with the rows' sizes.

    A chunk is checked column by column (``prepare_columns``); a chunk that needs it (a bad row, a row
    without ``content_hash``) is checked again row by row, which names the bad row by part, row and id.
    """
    id_max_length, text_max_length = limits
    for part_index, part in parts:
        for columns in iter_part_columns(part.uri, batch_rows=STAGED_READ_ROWS):
            checked = prepare_columns(
                columns.ids,
                columns.vectors,
                columns.texts,
                columns.hashes,
                columns.models,
                columns.metadata,
                dim=dim,
                id_max_length=id_max_length,
                text_max_length=text_max_length,
                max_batch_bytes=args.max_batch_bytes,
            )
            if checked is not None:
                yield checked
                continue
            raw_rows = columns.rows()  # metadata that is not a JSON object is named by file, row and id
            try:
                rows, _ = prepare_rows(
                    raw_rows, dim=dim, id_max_length=id_max_length, text_max_length=text_max_length
                )
                sizes = row_sizes(rows, max_batch_bytes=args.max_batch_bytes, max_batch_rows=args.batch_size)
            except ValueError as err:
                raise part_row_error(part_index, part.uri, columns.offset, err) from None
            yield rows, sizes


def _check_target(
    hook: MilvusHook, info: CollectionInfo | None, dim: int, metric: str, args: InsertArguments
) -> None:
    """Fail before writing if the collection is missing (and may not be created) or does not fit."""
    name = args.collection_name
    if info is None:
        if not args.create_collection:
            raise ValueError(f"collection {name!r} does not exist and create_collection is False")
        if args.full_text:
            hook.check_full_text_support()
        return
    check_collection_matches(info, dim=dim, metric_type=metric)
    if args.full_text:
        require_full_text(info.full_text, name, "full_text=True")
    if (
        args.partition_name
        and not args.create_collection
        and not hook.has_partition(name, args.partition_name)
    ):
        raise ValueError(
            f"partition {args.partition_name!r} does not exist in collection {name!r} "
            "and create_collection is False"
        )
    if not args.create_collection:
        hook.ensure_loaded(name)


def _create_target(hook: MilvusHook, dim: int, metric: str, index: str, args: InsertArguments) -> bool:
    """With ``create_collection``, create the collection (and partition) if missing; True if created."""
    if not args.create_collection:
        return False
    created = hook.ensure_collection(
        args.collection_name,
        dim,
        metric_type=metric,
        index_type=index,
        full_text=args.full_text,
        analyzer=args.full_text_analyzer,
    )
    if args.partition_name:
        hook.ensure_partition(args.collection_name, args.partition_name)
    return created


def _check_deletes_do_not_overlap(rows: Sequence[Mapping[str, Any]], delete_ids: list[str]) -> None:
    if not delete_ids or not rows:
        return
    to_delete = set(delete_ids)
    for index, row in enumerate(rows):
        if row[FIELD_ID] in to_delete:
            raise ValueError(
                f"rows[{index}] (id {row[FIELD_ID]!r}) is also in delete_ids: it would be written and "
                "then deleted"
            )


def _summary(
    args: InsertArguments,
    *,
    written: int,
    deleted: int,
    dim: int | None,
    batches: int,
    created: bool,
    skipped: int = 0,
    parts: int = 0,
    load_method: LoadMethod = "batches",
) -> LoadResult:
    return {
        "load_method": load_method,
        "parts": parts,
        "skipped": skipped,
        "collection": args.collection_name,
        "written": written,
        "deleted": deleted,
        "dim": dim,
        "mode": args.mode,
        "batches": batches,
        "created": created,
    }


def _groups_of_rows(
    numbered: list[tuple[int, StagedPart]], rows_per_group: int
) -> list[list[tuple[int, StagedPart]]]:
    """Consecutive parts in groups of about ``rows_per_group`` rows (a part is never split)."""
    groups: list[list[tuple[int, StagedPart]]] = [[]]
    rows = 0
    for item in numbered:
        if groups[-1] and rows + item[1].rows > rows_per_group:
            groups.append([])
            rows = 0
        groups[-1].append(item)
        rows += item[1].rows
    return groups
