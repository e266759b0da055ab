"""Embed documents with Gemini into rows ready for :class:`MilvusInsertOperator`."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_gemini_milvus.document_sources import open_document_source
from airflow_provider_gemini_milvus.gemini_models import (
    DEFAULT_MODEL,
    MAX_TEXTS_PER_REQUEST,
    normalise_task_type,
    resolve_model,
)
from airflow_provider_gemini_milvus.hooks.gemini import GeminiHook
from airflow_provider_gemini_milvus.milvus_layout import (
    ID_MAX_LENGTH,
    TEXT_MAX_LENGTH,
    CollectionInfo,
    check_collection_matches,
)
from airflow_provider_gemini_milvus.operators import embed_batch, embed_sync
from airflow_provider_gemini_milvus.operators.arguments import to_bool, to_float, to_int, to_str, to_str_list
from airflow_provider_gemini_milvus.operators.embed_changes import (
    Changes,
    check_delete_fraction,
    classify_changes,
)
from airflow_provider_gemini_milvus.operators.embed_cost import dry_run_report, estimate_planned
from airflow_provider_gemini_milvus.operators.embed_inputs import (
    Document,
    DocumentKey,
    DocumentReader,
    EmbedArguments,
    check_corpus,
    model_fingerprint,
    text_id,
)
from airflow_provider_gemini_milvus.operators.embed_outputs import VECTOR_DECIMALS

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from airflow.sdk import Context, ObjectStoragePath, XComArg

    from airflow_provider_gemini_milvus.document_sources import DocumentSource
    from airflow_provider_gemini_milvus.hooks.milvus import MilvusHook

__all__ = [
    "DEFAULT_INLINE_MAX_ROWS",
    "DEFAULT_MAX_DELETE_FRACTION",
    "DEFAULT_PART_ROWS",
    "VECTOR_DECIMALS",
    "Document",
    "GeminiEmbedOperator",
    "model_fingerprint",
    "text_id",
]

#: Share of the stored rows ``delete_missing`` may delete in one run before it refuses (a source that
#: suddenly returns far fewer documents is more likely truncated than shrunk).
DEFAULT_MAX_DELETE_FRACTION = 0.5
#: Up to this many rows to embed travel inline in XCom (about 10 kB each at 768 dims); more are staged.
DEFAULT_INLINE_MAX_ROWS = 100
#: Rows per staged Parquet part: about 3 MB of float32 vectors at 768 dims.
DEFAULT_PART_ROWS = 1000
ON_DOCUMENT_ERROR = ("fail", "skip")


@dataclass(frozen=True)
class EmbedPlan:
    """What a run will do, decided before any request: the documents to embed and the ids to delete."""

    source: DocumentSource
    reader: DocumentReader
    to_embed: dict[str, DocumentKey]
    metadata_only: dict[str, DocumentKey]
    delete_ids: list[str]
    fingerprint: str
    counts: dict[str, int]


class GeminiEmbedOperator(BaseOperator):
    """
    Embed documents with Google Gemini and hand rows to ``MilvusInsertOperator``: inline, or staged.

    ``documents`` is a list of strings or of dicts (the text under ``text_field``, an optional id under
    ``id_field``, by default the SHA-256 of the text, an optional title under ``title_field``, and metadata:
    the keys in ``metadata_fields``, by default every other key), or the location of JSONL / Parquet files
    (an ``ObjectStoragePath`` or its URI: one file or a folder), read in chunks. Every document is checked
    before the first request; errors name ``documents[i]`` (and the file and line).

    **Incremental mode.** Give ``collection_name`` (and ``milvus_conn_id``) of the collection the rows
    will be loaded into, and only documents whose text or title is new or changed there are embedded: the
    stored ``content_hash`` and ``model`` of each incoming id are looked up first, and everything is
    re-embedded when the model, dimensionality or task type differs. A document whose metadata alone
    changed is handed on with its stored vector, without a Gemini request (``metadata_only`` in the stats).
    With ``delete_missing=True``, ids stored in the collection but absent from ``documents`` are handed on
    for deletion once the new rows are written.

    **Cost.** ``dry_run=True`` does the same diff and returns what a run would send and cost (sync and
    batch price) instead of rows, sending and writing nothing. ``max_cost_usd`` refuses a run whose
    estimate exceeds it, before the first request.

    **Staging.** Up to ``inline_max_rows`` rows travel in XCom as ``{"rows": [...], "delete_ids": [...],
    "dim", "model", "task_type", "stats"}``. More are written as Parquet parts (float32 vectors) under the
    staging location as their requests finish, and XCom carries only a manifest (part URIs and counts).
    An Airflow retry of the task reuses the parts its earlier tries wrote: texts already embedded are not
    sent again.

    .. seealso:: :class:`~airflow_provider_gemini_milvus.hooks.gemini.GeminiHook` for the connection.

    :param documents: the documents, or where to read them (templated; typically an upstream XCom).
    :param gemini_conn_id: the ``gemini`` connection holding the API key.
    :param model: the Gemini embedding model.
    :param task_type: one of the eight Gemini task types; ``RETRIEVAL_DOCUMENT`` for a search corpus.
    :param output_dimensionality: vector length (e.g. 768); ``None`` for the model's default.
    :param text_field: key of the text in dict documents.
    :param id_field: key of the id in dict documents.
    :param title_field: key of the title in dict documents (``RETRIEVAL_DOCUMENT`` only).
    :param metadata_fields: keys kept as metadata; ``None`` keeps every key but id, text and title.
    :param batch_size: texts per Gemini request, at most 100.
    :param max_concurrency: requests in flight at once; default from the connection.
    :param collection_name: target Milvus collection; setting it turns on incremental mode.
    :param milvus_conn_id: the ``milvus`` connection of that collection.
    :param delete_missing: in incremental mode, also hand on the ids that vanished from the source.
    :param max_delete_fraction: with ``delete_missing``, fail instead of deleting more than this share of
        the stored rows (default 0.5; 1.0 allows any deletion).
    :param staging_uri: where staged parts go; default the ``[gemini_milvus] staging_uri`` setting, else
        a folder under ``$AIRFLOW_HOME``. Use shared object storage (``s3://...``) with several workers.
    :param inline_max_rows: runs with at most this many rows to embed return them inline in XCom.
    :param part_rows: rows per staged Parquet part.
    :param on_document_error: ``fail`` (default) fails the task when Gemini refuses a document for good;
        ``skip`` leaves such documents out, lists them in the result with the API's reason, and counts
        them (they are not stored, so the next incremental run tries them again).
    :param deferrable: batch mode: one Gemini Batch API job at half the price, up to 24 hours of turnaround,
        awaited in the triggerer (Gemini API only; see :mod:`~.embed_batch`, also on retries).
    :param batch_poll_interval: batch mode: seconds before the first look at the job (then up to 600).
    :param batch_timeout: batch mode: seconds after which a job still running is cancelled and fails.
    :param dry_run: return what the run would send and cost (``{"dry_run": True, "new", "changed",
        "metadata_only", "unchanged", "to_delete", "requests", "estimated_tokens", "estimated_cost_usd",
        "estimated_sync_cost_usd", "estimated_batch_cost_usd", ...}``; ``estimated_cost_usd`` at the price
        of the run's mode, the batch price with ``deferrable``) and send and write nothing.
    :param max_cost_usd: fail, before the first request, a run whose estimated cost in US dollars exceeds
        this; ``None`` (default) for no budget.
    """

    template_fields: Sequence[str] = (
        "documents",
        "gemini_conn_id",
        "model",
        "gemini_task_type",
        "output_dimensionality",
        "text_field",
        "id_field",
        "title_field",
        "metadata_fields",
        "batch_size",
        "max_concurrency",
        "collection_name",
        "milvus_conn_id",
        "delete_missing",
        "max_delete_fraction",
        "staging_uri",
        "inline_max_rows",
        "part_rows",
        "on_document_error",
        "deferrable",
        "batch_poll_interval",
        "batch_timeout",
        "embed_dry_run",
        "max_cost_usd",
    )
    template_fields_renderers = {"documents": "py"}
    ui_color = "#e8f0fe"

    def __init__(
        self,
        *,
        documents: Sequence[str] | Sequence[Mapping[str, Any]] | XComArg | ObjectStoragePath | str,
        gemini_conn_id: str = GeminiHook.default_conn_name,
        model: str = DEFAULT_MODEL,
        task_type: str = "RETRIEVAL_DOCUMENT",
        output_dimensionality: int | str | None = None,
        text_field: str = "text",
        id_field: str = "id",
        title_field: str | None = None,
        metadata_fields: Sequence[str] | None = None,
        batch_size: int | str = MAX_TEXTS_PER_REQUEST,
        max_concurrency: int | str | None = None,
        collection_name: str | None = None,
        milvus_conn_id: str = "milvus_default",
        delete_missing: bool | str = False,
        max_delete_fraction: float | str = DEFAULT_MAX_DELETE_FRACTION,
        staging_uri: str | None = None,
        inline_max_rows: int | str = DEFAULT_INLINE_MAX_ROWS,
        part_rows: int | str = DEFAULT_PART_ROWS,
        on_document_error: str = "fail",
        deferrable: bool | str = False,
        batch_poll_interval: float | str = embed_batch.DEFAULT_BATCH_POLL_INTERVAL,
        batch_timeout: float | str | None = None,
        dry_run: bool | str = False,
        max_cost_usd: float | str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.documents = documents
        self.gemini_conn_id = gemini_conn_id
        self.model = model
        # ``task_type`` is a read-only property of BaseOperator (the class name).
        self.gemini_task_type = task_type
        self.output_dimensionality = output_dimensionality
        self.text_field = text_field
        self.id_field = id_field
        self.title_field = title_field
        self.metadata_fields = metadata_fields
        self.batch_size = batch_size
        self.max_concurrency = max_concurrency
        self.collection_name = collection_name
        self.milvus_conn_id = milvus_conn_id
        self.delete_missing = delete_missing
        self.max_delete_fraction = max_delete_fraction
        self.staging_uri = staging_uri
        self.inline_max_rows = inline_max_rows
        self.part_rows = part_rows
        self.on_document_error = on_document_error
        self.deferrable = deferrable
        self.batch_poll_interval = batch_poll_interval
        self.batch_timeout = batch_timeout
        self.batch_job_name: str | None = None  # the batch job waited for (``on_kill`` cancels it)
        # ``dry_run`` is a method of BaseOperator (it renders the templates).
        self.embed_dry_run = dry_run
        self.max_cost_usd = max_cost_usd

    @cached_property
    def hook(self) -> GeminiHook:
        return GeminiHook(gemini_conn_id=self.gemini_conn_id)

    @cached_property
    def milvus_hook(self) -> MilvusHook:
        from airflow_provider_gemini_milvus.hooks.milvus import MilvusHook

        return MilvusHook(milvus_conn_id=self.milvus_conn_id)

    def execute(self, context: Context) -> dict[str, Any]:
        args = self.converted_arguments()
        batch = embed_batch.batch_arguments(self)  # refuses a Vertex AI connection in batch mode
        source = open_document_source(self.documents)
        collection = self._target_collection(args)
        reader = DocumentReader(
            args,
            text_max_length=(collection.text_max_length if collection else None) or TEXT_MAX_LENGTH,
            id_max_length=(collection.id_max_length if collection else None) or ID_MAX_LENGTH,
        )
        keys, count = check_corpus(source, reader)
        if len(keys) < count:
            self.log.info("Dropped %d exact duplicate documents", count - len(keys))
        fingerprint = model_fingerprint(args.model.name, args.dim, args.task_type)

        changes = Changes(new=keys, changed={}, metadata_only={}, unchanged=0, other_model=0)
        delete_ids: list[str] = []
        if collection is not None:
            changes, delete_ids = self._changes_against_collection(keys, fingerprint, args)
        to_embed = changes.to_embed
        self.log.info(
            "%d documents from %s: %d new, %d changed, %d metadata-only, %d unchanged, %d to delete",
            len(keys),
            source.describe(),
            len(changes.new),
            len(changes.changed),
            len(changes.metadata_only),
            changes.unchanged,
            len(delete_ids),
        )
        counts = {
            "documents": len(keys),
            "embedded": len(to_embed),
            "metadata_only": len(changes.metadata_only),
            "unchanged": changes.unchanged,
            "to_delete": len(delete_ids),
        }
        plan = EmbedPlan(source, reader, to_embed, changes.metadata_only, delete_ids, fingerprint, counts)
        staged = len(to_embed) + len(changes.metadata_only) > args.inline_max_rows
        if args.dry_run:
            return self._dry_run(args, plan, changes, staged=staged, batch=batch is not None)
        if batch is not None and (result := embed_batch.start_batch(self, context, args, plan, batch)):
            return result
        if staged:
            return embed_sync.run_staged(self, context, args, plan)
        return embed_sync.run_inline(self, args, plan)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Batch mode: the job ended; return its rows as :meth:`execute` would."""
        return embed_batch.complete_batch(self, context, event)

    def on_kill(self) -> None:
        """Cancel the batch job this task waits for, so a killed or timed-out task stops paying."""
        embed_batch.cancel_submitted_batch(self)

    def converted_arguments(self) -> EmbedArguments:
        """
        Convert every rendered argument (a template renders ``False`` as ``"False"``) and check it.

        :raises ValueError: naming the first bad argument; nothing has been requested yet.
        """
        model_name = to_str(self.model, "model")
        task_type = normalise_task_type(str(to_str(self.gemini_task_type, "task_type")))
        model = resolve_model(str(model_name))
        output_dimensionality = to_int(self.output_dimensionality, "output_dimensionality", optional=True)
        title_field = to_str(self.title_field, "title_field", optional=True)
        if title_field is not None and task_type != "RETRIEVAL_DOCUMENT":
            raise ValueError(f"title_field is only used with task_type RETRIEVAL_DOCUMENT, not {task_type}")
        collection_name = to_str(self.collection_name, "collection_name", optional=True)
        delete_missing = to_bool(self.delete_missing, "delete_missing")
        if delete_missing and not collection_name:
            raise ValueError("delete_missing=True needs collection_name: the collection to compare against")
        max_cost_usd = to_float(self.max_cost_usd, "max_cost_usd", minimum=0, optional=True)
        if max_cost_usd is not None and model.usd_per_million_tokens is None:
            raise ValueError(
                f"max_cost_usd cannot be checked: model {model.name!r} has no known price; "
                "remove max_cost_usd or use a model with a published price"
            )
        return EmbedArguments(
            model=model,
            task_type=task_type,
            output_dimensionality=output_dimensionality,
            dim=model.dim(output_dimensionality),
            text_field=str(to_str(self.text_field, "text_field")),
            id_field=str(to_str(self.id_field, "id_field")),
            title_field=title_field,
            metadata_fields=to_str_list(self.metadata_fields, "metadata_fields", optional=True),
            batch_size=int(
                to_int(self.batch_size, "batch_size", minimum=1, maximum=MAX_TEXTS_PER_REQUEST) or 0
            ),
            max_concurrency=to_int(self.max_concurrency, "max_concurrency", minimum=1, optional=True),
            collection_name=collection_name,
            delete_missing=delete_missing,
            max_delete_fraction=float(
                to_float(self.max_delete_fraction, "max_delete_fraction", minimum=0, maximum=1) or 0.0
            ),
            staging_uri=to_str(self.staging_uri, "staging_uri", optional=True),
            inline_max_rows=int(to_int(self.inline_max_rows, "inline_max_rows", minimum=0) or 0),
            part_rows=int(to_int(self.part_rows, "part_rows", minimum=1) or 0),
            on_document_error=str(
                to_str(self.on_document_error, "on_document_error", choices=ON_DOCUMENT_ERROR)
            ),
            dry_run=to_bool(self.embed_dry_run, "dry_run"),
            max_cost_usd=max_cost_usd,
        )

    # -- incremental mode ------------------------------------------------------------------------------

    def _target_collection(self, args: EmbedArguments) -> CollectionInfo | None:
        """
        In incremental mode, the existing collection, checked against this run's dimension.

        :raises MilvusCollectionMismatchError: before any request, when the rows could never be loaded.
        """
        if args.collection_name is None:
            return None
        try:
            info = self.milvus_hook.describe(args.collection_name)
        finally:
            self.milvus_hook.close()
        if info is not None:
            check_collection_matches(info, dim=args.dim)
        return info

    def _changes_against_collection(
        self, keys: dict[str, DocumentKey], fingerprint: str, args: EmbedArguments
    ) -> tuple[Changes, list[str]]:
        """How the documents differ from their stored rows, and the ids gone from the source."""
        collection = str(args.collection_name)
        delete_ids: list[str] = []
        try:
            if args.delete_missing:
                # One scan of the collection gives both what is stored and what vanished.
                stored = dict(self.milvus_hook.iter_fingerprints(collection))
                delete_ids = sorted(set(stored) - set(keys))
                check_delete_fraction(len(delete_ids), len(stored), args.max_delete_fraction)
            else:
                stored = self.milvus_hook.fetch_fingerprints(collection, list(keys))
        finally:
            self.milvus_hook.close()
        changes = classify_changes(keys, stored, fingerprint)
        if changes.other_model:
            self.log.info(
                "%d stored rows were embedded with another model setting; re-embedding", changes.other_model
            )
        return changes, delete_ids

    # -- dry run ---------------------------------------------------------------------------------------

    def _dry_run(
        self, args: EmbedArguments, plan: EmbedPlan, changes: Changes, *, staged: bool, batch: bool
    ) -> dict[str, Any]:
        """
        What a run would send and cost, with nothing sent and nothing written; in batch mode
        (``batch``) ``estimated_cost_usd`` and the budget are at the batch price.
        """
        wanted = {doc_id: key.index for doc_id, key in plan.to_embed.items()}
        chunks = embed_sync.planned_chunks(self, plan, wanted, staged=staged)
        estimate = estimate_planned(chunks, args, self.hook.settings.tokens_per_minute, self.log, batch=batch)
        counts = {
            "documents": plan.counts["documents"],
            **changes.counts(),
            "to_delete": len(plan.delete_ids),
        }
        return dry_run_report(plan.fingerprint, counts, estimate, args.max_cost_usd, self.log)
