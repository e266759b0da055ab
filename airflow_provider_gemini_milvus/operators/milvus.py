"""Operator that writes embedding rows into a Milvus collection, idempotently by default."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset, AssetAlias, BaseOperator

from airflow_provider_gemini_milvus.hooks.milvus import MilvusHook
from airflow_provider_gemini_milvus.loading.bulk_import import (
    DEFAULT_BULK_IMPORT_MIN_ROWS,
    DEFAULT_BULK_IMPORT_TIMEOUT,
    LOAD_METHODS,
)
from airflow_provider_gemini_milvus.loading.insert import (
    InsertArguments,
    LoadResult,
    is_staged,
    load_manifest,
    load_rows,
    split_data,
)
from airflow_provider_gemini_milvus.milvus.full_text import check_analyzer
from airflow_provider_gemini_milvus.milvus.rows import DEFAULT_MAX_BATCH_BYTES, WRITE_MODES
from airflow_provider_gemini_milvus.observability.assets import (
    COLLECTIONS_ALIAS,
    asset_event_extra,
    hook_collection_address,
    record_collection_events,
)
from airflow_provider_gemini_milvus.observability.metrics import insert_metrics, model_name, record_metrics
from airflow_provider_gemini_milvus.staging import StagedManifest
from airflow_provider_gemini_milvus.utils.converters import to_bool, to_choice, to_float, to_int, to_str

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.providers.openlineage.extractors import OperatorLineage
    from airflow.sdk import Context

__all__ = ["ASSET_SCHEME", "MilvusInsertOperator", "milvus_asset", "milvus_asset_uri"]

ASSET_SCHEME = "milvus"


def milvus_asset_uri(milvus_conn_id: str, collection_name: str) -> str:
    """
    Return the connection-id Asset URI of a collection: ``milvus://{milvus_conn_id}/{collection_name}``.

    It names the connection, not the server: prefer
    :func:`~airflow_provider_gemini_milvus.observability.assets.milvus_collection_uri`
    (``milvus://host:port/database/collection``), whose events the operator adds at run time.

    :param milvus_conn_id: the Airflow connection id of the Milvus instance.
    :param collection_name: the collection name.
    """
    return f"{ASSET_SCHEME}://{milvus_conn_id}/{collection_name}"


def milvus_asset(milvus_conn_id: str, collection_name: str) -> Asset:
    """
    Return the connection-id Airflow Asset of a collection, e.g. for ``schedule=[milvus_asset(...)]``
    downstream. ``MilvusInsertOperator`` still declares it (when its names are not templates) and its events
    carry the write's stats;
    :func:`~airflow_provider_gemini_milvus.observability.assets.milvus_collection_asset` names the
    collection whatever the connection, and works with templated names too.

    :param milvus_conn_id: the Airflow connection id of the Milvus instance.
    :param collection_name: the collection name.
    """
    return Asset(uri=milvus_asset_uri(milvus_conn_id, collection_name))


def _is_template(value: Any) -> bool:
    """True when the value is not known at parse time: a Jinja string or an XComArg."""
    if not isinstance(value, str):
        return True
    return "{{" in value or "{%" in value


class MilvusInsertOperator(BaseOperator):
    """
    Write embedding rows into a Milvus collection, creating it if needed, then delete vanished ids.

    Every row is checked before anything is written, the way a Milvus server checks it (Milvus Lite is
    more lenient): ``id`` a non-empty string of at most 512 UTF-8 bytes, unique in the input; ``vector`` a
    list of finite numbers, all of the same dimension (the collection's, or the first row's for a new
    collection); ``text`` a string within the text field's ``max_length`` in UTF-8 bytes; optional
    ``metadata`` a JSON-serialisable dict, ``content_hash`` (default: the row's
    :func:`~airflow_provider_gemini_milvus.milvus.rows.content_hash`, ``<embedding-input hash>:<metadata
    hash>`` of its text, title and metadata, 64 characters) and ``model`` (default ``""``).
    A bad row raises ``ValueError`` naming its index and id; a collection with another
    dimension, metric or fields raises ``MilvusCollectionMismatchError``.

    Rows are written in batches capped by payload size (4 MiB by default) and ``batch_size``, then the
    collection is flushed once. ``delete_ids`` are deleted after the rows are written, so a failure midway
    loses nothing; a re-run repeats the same work.

    Each write is an asset event of the collection's Asset ``milvus://host:port/database/collection``
    (:func:`~airflow_provider_gemini_milvus.observability.assets.milvus_collection_asset`; the host is read
    from the connection when the task runs, so the event is added through the outlet
    ``AssetAlias("gemini_milvus_collections")``), whose ``extra`` says what changed: written, skipped,
    deleted, created and the embedding's figures. The
    connection-id Asset ``milvus://{milvus_conn_id}/{collection_name}`` (:func:`milvus_asset`) is declared
    too when neither name is a Jinja template. Passing ``outlets`` (even ``[]``) replaces both; an
    ``AssetAlias`` among them still receives the collection's event.

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
    segments from Parquet files itself. It pays off only for large loads (``auto`` imports from
    ``bulk_import_min_rows`` rows; the measured crossover is in ``benchmarks/RESULTS.md``, the route in
    the docs' "Bulk import" page). Only where no staged id is stored yet (a new or empty collection, or
    shards of one collection); every row is checked first as above; the server must reach the staging
    storage (a local folder on its machine, or its own bucket). Milvus Lite has no bulk import: there, and
    for rows given inline, the load uses batched writes and logs why.

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
    :param full_text: create a new collection with full-text search (an analyzer on ``text``, a sparse
        field and a BM25 function: Milvus computes the sparse side, nothing more is sent to Gemini), so
        ``MilvusSearchOperator`` can search it in the ``full_text`` and ``hybrid`` modes; an existing
        collection must have it. Needs Milvus 2.5 or later (or Milvus Lite 3); an older server is refused
        before anything is written.
    :param full_text_analyzer: the Milvus analyzer of a new full-text collection's ``text``, e.g.
        ``{"tokenizer": "jieba"}``; None is Milvus' ``standard`` analyzer.
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
        "full_text",
        "full_text_analyzer",
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
        full_text: bool | str = False,
        full_text_analyzer: dict[str, Any] | str | None = None,
        **kwargs: Any,
    ) -> None:
        if "outlets" not in kwargs:
            kwargs["outlets"] = [AssetAlias(COLLECTIONS_ALIAS)]
            if not _is_template(collection_name) and not _is_template(milvus_conn_id):
                kwargs["outlets"].append(milvus_asset(milvus_conn_id, collection_name))
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
        self.full_text = full_text
        self.full_text_analyzer = full_text_analyzer
        self.load_result: LoadResult | None = None  # what execute returned, for the lineage

    @cached_property
    def hook(self) -> MilvusHook:
        """The Milvus hook, created on first use (after templates are rendered)."""
        return MilvusHook(milvus_conn_id=self.milvus_conn_id)

    def execute(self, context: Context) -> LoadResult:
        args = self.converted_arguments()
        hook = self.hook
        try:
            if is_staged(self.data):
                result = load_manifest(hook, StagedManifest.from_xcom(self.data), args, self.log)
            else:
                rows, delete_ids = split_data(self.data)
                result = load_rows(hook, rows, delete_ids, args, self.log)
        finally:
            hook.close()
        self.load_result = result
        tags = {"dag_id": self.dag_id, "task_id": self.task_id, "model": model_name(self.data)}
        record_metrics(insert_metrics, result, tags)
        outlet_events = context.get("outlet_events") if isinstance(context, Mapping) else None
        if outlet_events is not None:  # None outside a task run (``operator.execute({})``)
            address = hook_collection_address(hook, args.collection_name)
            extra = asset_event_extra(address, result, self.data)
            record_collection_events(self.outlets, outlet_events, address, extra)
        return result

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage[Any, Any]:
        """OpenLineage: the staged folder read (if any), the collection written, the write's figures."""
        from airflow_provider_gemini_milvus.observability.lineage import insert_lineage

        address = hook_collection_address(self.hook, to_str(self.collection_name, "collection_name"))
        return insert_lineage(collection=address, data=self.data, result=self.load_result)

    def converted_arguments(self) -> InsertArguments:
        """
        Convert every rendered argument (a template renders ``False`` as ``"False"``) and check it.

        :raises ValueError: naming the first bad argument; nothing has been written yet.
        """
        return InsertArguments(
            collection_name=to_str(self.collection_name, "collection_name"),
            mode=to_choice(self.mode, "mode", WRITE_MODES),
            create_collection=to_bool(self.create_collection, "create_collection"),
            metric_type=to_str(self.metric_type, "metric_type"),
            index_type=to_str(self.index_type, "index_type"),
            batch_size=to_int(self.batch_size, "batch_size", minimum=1, optional=True),
            partition_name=to_str(self.partition_name, "partition_name", optional=True),
            max_batch_bytes=to_int(self.max_batch_bytes, "max_batch_bytes", minimum=1),
            load_method=to_choice(self.load_method, "load_method", LOAD_METHODS),
            bulk_import_min_rows=to_int(self.bulk_import_min_rows, "bulk_import_min_rows", minimum=0),
            bulk_import_timeout=to_float(self.bulk_import_timeout, "bulk_import_timeout", minimum=1),
            full_text=to_bool(self.full_text, "full_text"),
            full_text_analyzer=check_analyzer(self.full_text_analyzer),
        )
