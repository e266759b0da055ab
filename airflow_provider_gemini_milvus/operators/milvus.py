"""Operator that writes embedding rows into a Milvus collection, idempotently by default."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset, BaseOperator

from airflow_provider_gemini_milvus.hooks.milvus import MilvusHook
from airflow_provider_gemini_milvus.milvus_bulk_import import (
    DEFAULT_BULK_IMPORT_MIN_ROWS,
    DEFAULT_BULK_IMPORT_TIMEOUT,
    LOAD_METHODS,
    BulkImportFailed,
    BulkImportResult,
    bulk_import_refusal,
    part_row_error,
    remove_import_files,
    run_bulk_import,
    write_import_files,
)
from airflow_provider_gemini_milvus.milvus_layout import (
    FIELD_ID,
    ID_MAX_LENGTH,
    TEXT_MAX_LENGTH,
    CollectionInfo,
    check_collection_matches,
)
from airflow_provider_gemini_milvus.milvus_rows import (
    DEFAULT_MAX_BATCH_BYTES,
    WRITE_MODES,
    prepare_rows,
    split_batches,
)
from airflow_provider_gemini_milvus.operators.arguments import to_bool, to_float, to_int, to_str
from airflow_provider_gemini_milvus.staging import (
    StagedManifest,
    iter_id_list,
    iter_part_rows,
    verify_manifest,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_gemini_milvus.staging import StagedPart

ASSET_SCHEME = "milvus"
#: Rows read from a staged part at a time, validated and split into requests: this bounds the memory.
STAGED_READ_ROWS = 2048
#: Ids to delete passed to the hook at a time when they come from a staged list.
STAGED_DELETE_CHUNK = 10_000
#: Rows written between flushes when a manifest goes into Milvus Lite (see ``_load_staged``).
LITE_ROWS_PER_FLUSH = 50_000


def milvus_asset_uri(milvus_conn_id: str, collection_name: str) -> str:
    """
    Return the Asset URI of a collection: ``milvus://{milvus_conn_id}/{collection_name}``.

    :param milvus_conn_id: the Airflow connection id of the Milvus instance.
    :param collection_name: the collection name.
    """
    return f"{ASSET_SCHEME}://{milvus_conn_id}/{collection_name}"


def milvus_asset(milvus_conn_id: str, collection_name: str) -> Asset:
    """
    Return the Airflow Asset of a collection, e.g. for ``schedule=[milvus_asset(...)]`` downstream.

    :param milvus_conn_id: the Airflow connection id of the Milvus instance.
    :param collection_name: the collection name.
    """
    return Asset(uri=milvus_asset_uri(milvus_conn_id, collection_name))


def _is_template(value: Any) -> bool:
    """True when the value is not known at parse time: a Jinja string or an XComArg."""
    if not isinstance(value, str):
        return True
    return "{{" in value or "{%" in value


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


@dataclass(frozen=True)
class InsertArguments:
    """The operator's arguments after rendering, converted and checked once."""

    collection_name: str
    mode: str
    create_collection: bool
    metric_type: str
    index_type: str
    batch_size: int | None
    partition_name: str | None
    max_batch_bytes: int
    load_method: str
    bulk_import_min_rows: int
    bulk_import_timeout: float


class MilvusInsertOperator(BaseOperator):
    """
    Write embedding rows into a Milvus collection, creating it if needed, then delete vanished ids.

    Every row is checked before anything is written, the way a Milvus server checks it (Milvus Lite is
    more lenient): ``id`` a non-empty string of at most 512 UTF-8 bytes, unique in the input; ``vector`` a
    list of finite numbers, all of the same dimension (the collection's, or the first row's for a new
    collection); ``text`` a string within the text field's ``max_length`` in UTF-8 bytes; optional
    ``metadata`` a JSON-serialisable dict, ``content_hash`` (default: the row's
    :func:`~airflow_provider_gemini_milvus.milvus_rows.content_hash`, ``<embedding-input hash>:<metadata
    hash>`` of its text, title and metadata, 64 characters) and ``model`` (default ``""``).
    A bad row raises ``ValueError`` naming its index and id; a collection with another
    dimension, metric or fields raises ``MilvusCollectionMismatchError``.

    Rows are written in batches capped by payload size (16 MiB by default) and ``batch_size``, then the
    collection is flushed once. ``delete_ids`` are deleted after the rows are written, so a failure midway
    loses nothing; a re-run repeats the same work.

    The collection is declared as the outlet Asset ``milvus://{milvus_conn_id}/{collection_name}``. When
    ``collection_name`` or ``milvus_conn_id`` is a Jinja template, the name is not known when the DAG is
    parsed and no outlet is added: pass ``outlets=[...]`` yourself. Passing ``outlets`` (even ``[]``)
    always replaces the default one.

    ``data`` is a templated field: strings inside a literal ``data`` list are rendered by Jinja. Pass rows
    through XCom (the output of an upstream task) to load texts containing ``{{`` verbatim.

    A staged manifest (what the Gemini embedding operator returns for large runs, see
    :mod:`airflow_provider_gemini_milvus.staging`) is loaded a part at a time, so memory does not grow with
    the corpus: the manifest is checked first (every part present, of the manifest's dimension and row
    count, no id both written and deleted) and against the collection, before anything is written; then
    each part is read in chunks of 2,048 rows, checked as above and written. With ``upsert`` on a Milvus
    server all parts go in one write and one flush; with ``insert`` (whose rows the hook holds at once to
    skip those an earlier try stored), and on Milvus Lite (which holds unflushed rows in memory), each part
    is its own write and flush. A bad row in a later part fails after the earlier parts were written; a
    re-run repeats the same work. The ids to delete are read from the staged list and deleted
    10,000 at a time after all parts are written.

    On a Milvus server, staged parts can instead be bulk imported (``load_method``): the server builds
    segments from Parquet files itself; on the Milvus 2.3.5 server measured it is slower below about 50,000
    rows and even to faster from 100,000 (see :mod:`~airflow_provider_gemini_milvus.milvus_bulk_import`
    and the README). Only where no staged id is stored yet (a new or empty collection, or shards of one
    collection); every row is checked first as above; the server must reach the staging storage (a local
    folder on its machine, or its own bucket). Milvus Lite has no bulk import: there, and for rows given
    inline, the load uses batched writes and logs why.

    Returns (XCom) ``{"collection", "written", "skipped", "deleted", "dim", "mode", "batches",
    "created", "parts", "load_method"}``; ``skipped`` counts rows an earlier try of ``mode="insert"``
    already stored, ``parts`` the staged parts loaded (0 for rows given inline), ``load_method`` how the
    rows went in: ``"bulk_import"`` or ``"batches"``.

    :param collection_name: the collection to write to.
    :param data: a list of row dicts, ``{"rows": [...], "delete_ids": [...]}`` (what the Gemini embedding
        operator returns for small runs; other keys are ignored), or a staged manifest (a dict with
        ``"format": "gemini-milvus-staged/1"``). No rows is a normal no-op that still applies the deletes
        and does not need the collection to exist.
    :param milvus_conn_id: the Milvus connection (see :class:`MilvusHook`).
    :param mode: ``upsert`` (default) replaces rows with the same id, so re-runs leave the same rows.
        ``insert`` never replaces a row: it refuses ids already stored with other content, and skips ids
        stored with the same content (so an Airflow retry after a failure midway completes the load).
    :param create_collection: create the collection if it is missing; if False a missing collection is an
        error.
    :param metric_type: COSINE, L2 or IP; an existing collection must use the same.
    :param index_type: vector index for a new collection; on Milvus Lite one of HNSW, HNSW_SQ, IVF_FLAT,
        IVF_SQ8, FLAT, BRUTE_FORCE, AUTOINDEX.
    :param batch_size: most rows per request; None means only the payload size caps batches.
    :param partition_name: partition to write to (created with the collection when
        ``create_collection``); None means the default partition.
    :param max_batch_bytes: payload cap per request in bytes (a Milvus server accepts at most 64 MiB).
    :param load_method: ``auto`` (default): a staged manifest of at least ``bulk_import_min_rows`` rows
        into a Milvus server is bulk imported when none of its ids is stored yet, anything else goes in
        batched writes, and an import job that fails falls back to batched upserts of every staged row.
        ``bulk_import``: import whenever it can be used, whatever the size, and fail if a job fails.
        ``batches``: always batched writes.
    :param bulk_import_min_rows: the smallest staged load ``auto`` imports.
    :param bulk_import_timeout: seconds to wait for the import jobs and their rows; on timeout the task
        fails, and its retry waits for the jobs before it loads anything.
    """

    template_fields: Sequence[str] = (
        "collection_name",
        "data",
        "partition_name",
        "milvus_conn_id",
        "mode",
        "metric_type",
        "index_type",
        "batch_size",
        "load_method",
        "bulk_import_min_rows",
    )

    def __init__(
        self,
        *,
        collection_name: str,
        data: Any,
        milvus_conn_id: str = MilvusHook.default_conn_name,
        mode: str = "upsert",
        create_collection: bool | str = True,
        metric_type: str = "COSINE",
        index_type: str = "AUTOINDEX",
        batch_size: int | str | None = None,
        partition_name: str | None = None,
        max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES,
        load_method: str = "auto",
        bulk_import_min_rows: int | str = DEFAULT_BULK_IMPORT_MIN_ROWS,
        bulk_import_timeout: float | str = DEFAULT_BULK_IMPORT_TIMEOUT,
        **kwargs: Any,
    ) -> None:
        if "outlets" not in kwargs and not _is_template(collection_name) and not _is_template(milvus_conn_id):
            kwargs["outlets"] = [milvus_asset(milvus_conn_id, collection_name)]
        super().__init__(**kwargs)
        self.collection_name = collection_name
        self.data = data
        self.milvus_conn_id = milvus_conn_id
        self.mode = mode
        self.create_collection = create_collection
        self.metric_type = metric_type
        self.index_type = index_type
        self.batch_size = batch_size
        self.partition_name = partition_name
        self.max_batch_bytes = max_batch_bytes
        self.load_method = load_method
        self.bulk_import_min_rows = bulk_import_min_rows
        self.bulk_import_timeout = bulk_import_timeout

    @cached_property
    def hook(self) -> MilvusHook:
        """The Milvus hook, created on first use (after templates are rendered)."""
        return MilvusHook(milvus_conn_id=self.milvus_conn_id)

    def execute(self, context: Context) -> dict[str, Any]:
        args = self.converted_arguments()
        if is_staged(self.data):
            return self._execute_staged(StagedManifest.from_xcom(self.data), args)
        rows, delete_ids = split_data(self.data)
        if not rows and not delete_ids:
            self.log.info("No rows to write and no ids to delete for collection %s", self.collection_name)
            return self._summary(written=0, deleted=0, dim=None, batches=0, created=False)
        hook = self.hook
        try:
            return self._load(hook, rows, delete_ids, args)
        finally:
            hook.close()

    def converted_arguments(self) -> InsertArguments:
        """
        Convert every rendered argument (a template renders ``False`` as ``"False"``) and check it.

        :raises ValueError: naming the first bad argument; nothing has been written yet.
        """
        return InsertArguments(
            collection_name=str(to_str(self.collection_name, "collection_name")),
            mode=str(to_str(self.mode, "mode", choices=WRITE_MODES)),
            create_collection=to_bool(self.create_collection, "create_collection"),
            metric_type=str(to_str(self.metric_type, "metric_type")),
            index_type=str(to_str(self.index_type, "index_type")),
            batch_size=to_int(self.batch_size, "batch_size", minimum=1, optional=True),
            partition_name=to_str(self.partition_name, "partition_name", optional=True),
            max_batch_bytes=int(to_int(self.max_batch_bytes, "max_batch_bytes", minimum=1) or 0),
            load_method=str(to_str(self.load_method, "load_method", choices=LOAD_METHODS)),
            bulk_import_min_rows=int(
                to_int(self.bulk_import_min_rows, "bulk_import_min_rows", minimum=0) or 0
            ),
            bulk_import_timeout=float(
                to_float(self.bulk_import_timeout, "bulk_import_timeout", minimum=1) or 0
            ),
        )

    def _load(
        self, hook: MilvusHook, raw_rows: Sequence[Any], delete_ids: list[str], args: InsertArguments
    ) -> dict[str, Any]:
        name = args.collection_name
        info = hook.describe(name)
        rows, dim = prepare_rows(
            raw_rows,
            id_max_length=(info.id_max_length if info else None) or ID_MAX_LENGTH,
            text_max_length=(info.text_max_length if info else None) or TEXT_MAX_LENGTH,
        )
        self._check_deletes_do_not_overlap(rows, delete_ids)
        self.log.info(
            "Validated %s rows (dim %s) and %s ids to delete for %s", len(rows), dim, len(delete_ids), name
        )
        written = batch_count = skipped = 0
        created = False
        if rows and dim is not None:
            if args.load_method == "bulk_import":
                self.log.info("Rows given inline are written in batches: bulk import reads staged parts")
            metric, index = hook.check_index_choice(args.metric_type, args.index_type)
            self._check_target(hook, info, dim, metric, args)
            # Split before the collection is created, so a row too large for one request is refused first.
            batches = split_batches(
                rows, max_batch_bytes=args.max_batch_bytes, max_batch_rows=args.batch_size
            )
            created = self._create_target(hook, dim, metric, index, args)
            result = hook.write_batches(
                name, batches, mode=args.mode, partition_name=args.partition_name, total_rows=len(rows)
            )
            written, batch_count, skipped = result.written, result.batches, result.skipped
        deleted = hook.delete_ids(name, delete_ids) if delete_ids and (info or created) else 0
        self.log.info(
            "Collection %s: wrote %s rows in %s batch(es), skipped %s already inserted, deleted %s",
            name,
            written,
            batch_count,
            skipped,
            deleted,
        )
        return self._summary(
            written=written,
            deleted=deleted,
            dim=dim if dim is not None else (info.dim if info else None),
            batches=batch_count,
            created=created,
            skipped=skipped,
        )

    def _execute_staged(self, manifest: StagedManifest, args: InsertArguments) -> dict[str, Any]:
        verify_manifest(manifest)
        self.log.info(
            "Staged manifest: %s rows in %s part(s), dim %s, %s ids to delete",
            manifest.rows,
            len(manifest.parts),
            manifest.dim,
            manifest.delete_count,
        )
        if not manifest.rows and not manifest.delete_count:
            self.log.info("No rows to write and no ids to delete for collection %s", self.collection_name)
            return self._summary(
                written=0, deleted=0, dim=manifest.dim, batches=0, created=False, parts=len(manifest.parts)
            )
        hook = self.hook
        try:
            return self._load_staged(hook, manifest, args)
        finally:
            hook.close()

    def _load_staged(
        self, hook: MilvusHook, manifest: StagedManifest, args: InsertArguments
    ) -> dict[str, Any]:
        name = args.collection_name
        info = hook.describe(name)
        written = batch_count = skipped = 0
        created = False
        load_method = "batches"
        if manifest.rows:
            metric, index = hook.check_index_choice(args.metric_type, args.index_type)
            self._check_target(hook, info, manifest.dim, metric, args)
            created = self._create_target(hook, manifest.dim, metric, index, args)
            limits = (
                (info.id_max_length if info else None) or ID_MAX_LENGTH,
                (info.text_max_length if info else None) or TEXT_MAX_LENGTH,
            )
            imported = self._bulk_import(hook, manifest, limits, args, existed=not created)
            if imported is not None:
                written, load_method = imported.rows, "bulk_import"
            else:
                written, batch_count, skipped = self._write_staged(hook, manifest, limits, args)
        deleted = 0
        if manifest.delete_ids_uri is not None and manifest.delete_count and (info or created):
            for chunk in iter_id_list(manifest.delete_ids_uri, batch_rows=STAGED_DELETE_CHUNK):
                deleted += hook.delete_ids(name, chunk)
        self.log.info(
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
        return self._summary(
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
        self,
        hook: MilvusHook,
        manifest: StagedManifest,
        limits: tuple[int, int],
        args: InsertArguments,
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
                self.log.info("Not bulk importing into %s: %s; writing batches instead", name, refusal)
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
            self.log.warning(
                "Bulk import into %s failed (%s); upserting every staged row instead", name, failure
            )
            return None
        remove_import_files(files)
        return result

    def _write_staged(
        self, hook: MilvusHook, manifest: StagedManifest, limits: tuple[int, int], args: InsertArguments
    ) -> tuple[int, int, int]:
        """Write the parts in batched requests; return rows written, batches and rows skipped."""
        numbered = list(enumerate(manifest.parts))
        # One write (and its flush) per part for insert: the hook holds an insert's rows at once to skip
        # those an earlier try stored. On Milvus Lite, a flush every LITE_ROWS_PER_FLUSH rows: its growing
        # segment holds everything written since the last flush in this process's memory, and a flush
        # costs seconds. A server rate-limits flushes per collection: upserts stream in one write there.
        if args.mode == "insert":
            groups = [[item] for item in numbered]
        elif hook.is_lite:
            groups = _groups_of_rows(numbered, LITE_ROWS_PER_FLUSH)
        else:
            groups = [numbered]
        written = batch_count = skipped = 0
        for group in groups:
            result = hook.write_batches(
                args.collection_name,
                self._staged_batches(group, manifest.dim, limits, args),
                mode=args.mode,
                partition_name=args.partition_name,
                total_rows=sum(part.rows for _, part in group),
            )
            written += result.written
            batch_count += result.batches
            skipped += result.skipped
        return written, batch_count, skipped

    @staticmethod
    def _staged_batches(
        parts: Sequence[tuple[int, StagedPart]], dim: int, limits: tuple[int, int], args: InsertArguments
    ) -> Iterator[list[Mapping[str, Any]]]:
        """Read parts in chunks, check each chunk as inline rows are checked, yield its request batches."""
        id_max_length, text_max_length = limits
        for part_index, part in parts:
            offset = 0
            for raw_rows in iter_part_rows(part.uri, batch_rows=STAGED_READ_ROWS):
                try:
                    rows, _ = prepare_rows(
                        raw_rows, dim=dim, id_max_length=id_max_length, text_max_length=text_max_length
                    )
                    batches = split_batches(
                        rows, max_batch_bytes=args.max_batch_bytes, max_batch_rows=args.batch_size
                    )
                except ValueError as err:
                    raise part_row_error(part_index, part.uri, offset, err) from None
                yield from batches
                offset += len(raw_rows)

    def _check_target(
        self, hook: MilvusHook, info: CollectionInfo | None, dim: int, metric: str, args: InsertArguments
    ) -> None:
        """Fail before writing if the collection is missing (and may not be created) or does not fit."""
        name = args.collection_name
        if info is None:
            if not args.create_collection:
                raise ValueError(f"collection {name!r} does not exist and create_collection is False")
            return
        check_collection_matches(info, dim=dim, metric_type=metric)
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

    @staticmethod
    def _create_target(hook: MilvusHook, dim: int, metric: str, index: str, args: InsertArguments) -> bool:
        """With ``create_collection``, create the collection (and partition) if missing; True if created."""
        if not args.create_collection:
            return False
        created = hook.ensure_collection(args.collection_name, dim, metric_type=metric, index_type=index)
        if args.partition_name:
            hook.ensure_partition(args.collection_name, args.partition_name)
        return created

    @staticmethod
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
        self,
        *,
        written: int,
        deleted: int,
        dim: int | None,
        batches: int,
        created: bool,
        skipped: int = 0,
        parts: int = 0,
        load_method: str = "batches",
    ) -> dict[str, Any]:
        return {
            "load_method": load_method,
            "parts": parts,
            "skipped": skipped,
            "collection": self.collection_name,
            "written": written,
            "deleted": deleted,
            "dim": dim,
            "mode": self.mode,
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
