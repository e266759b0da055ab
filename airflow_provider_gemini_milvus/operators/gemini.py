"""Embed documents with Gemini into rows ready for :class:`MilvusInsertOperator`."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, NoReturn

from airflow.sdk import BaseOperator

from airflow_provider_gemini_milvus.embedding import batch as embed_batch
from airflow_provider_gemini_milvus.embedding import sync as embed_sync
from airflow_provider_gemini_milvus.embedding.chunked import SourceShard
from airflow_provider_gemini_milvus.embedding.cost import estimate_run_cost
from airflow_provider_gemini_milvus.embedding.inputs import EmbedArguments, text_id
from airflow_provider_gemini_milvus.embedding.outputs import VECTOR_DECIMALS, task_instance_folder

if TYPE_CHECKING:
    from airflow_provider_gemini_milvus.embedding.cost import DryRunReport
    from airflow_provider_gemini_milvus.embedding.outputs import EmbedResult
from airflow_provider_gemini_milvus.embedding.plan import EmbedTask, dry_run, plan_run
from airflow_provider_gemini_milvus.embedding.sources import open_document_source
from airflow_provider_gemini_milvus.files.chunking import ChunkingSpec
from airflow_provider_gemini_milvus.gemini.batch_api import cancel_batch_job, check_batch_supported
from airflow_provider_gemini_milvus.gemini.models import (
    DEFAULT_MODEL,
    MAX_TEXTS_PER_REQUEST,
    TASK_TYPES,
    normalise_task_type,
    resolve_model,
)
from airflow_provider_gemini_milvus.hooks.gemini import ON_DOCUMENT_ERROR_CHOICES, GeminiHook
from airflow_provider_gemini_milvus.milvus.rows import model_fingerprint
from airflow_provider_gemini_milvus.observability.metrics import embed_metrics, record_metrics
from airflow_provider_gemini_milvus.triggers.gemini_batch import (
    DEFAULT_MAX_POLL_INTERVAL,
    GeminiBatchJobTrigger,
)
from airflow_provider_gemini_milvus.utils.converters import (
    to_bool,
    to_choice,
    to_float,
    to_int,
    to_str,
    to_str_list,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    import jinja2
    from airflow.providers.openlineage.extractors import OperatorLineage
    from airflow.sdk import Context, ObjectStoragePath, XComArg

    from airflow_provider_gemini_milvus.hooks.milvus import MilvusHook

__all__ = [
    "DEFAULT_BATCH_POLL_INTERVAL",
    "DEFAULT_INLINE_MAX_ROWS",
    "DEFAULT_MAX_DELETE_FRACTION",
    "DEFAULT_PART_ROWS",
    "VECTOR_DECIMALS",
    "TASK_TYPES",
    "GeminiEmbedOperator",
    "estimate_run_cost",
    "model_fingerprint",
    "open_document_source",
    "text_id",
]

#: Share of the stored rows ``delete_missing`` may delete in one run before it refuses (a source that
#: suddenly returns far fewer documents is more likely truncated than shrunk).
DEFAULT_MAX_DELETE_FRACTION = 0.5
#: Up to this many rows to embed travel inline in XCom (about 10 kB each at 768 dims); more are staged.
DEFAULT_INLINE_MAX_ROWS = 100
#: Rows per staged Parquet part: about 3 MB of float32 vectors at 768 dims.
DEFAULT_PART_ROWS = 1000
#: Batch mode: first wait between two looks at a job (seconds); the trigger backs off up to ten minutes.
DEFAULT_BATCH_POLL_INTERVAL = 60.0
#: Batch mode: Airflow's own deferral timeout is ``batch_timeout`` plus this (seconds), so the trigger
#: normally fires first and cancels the job; Airflow's timeout only acts when no triggerer runs it.
_DEFER_TIMEOUT_GRACE = DEFAULT_MAX_POLL_INTERVAL + 60.0


@dataclass(frozen=True)
class BatchArguments:
    """The operator's batch-mode arguments, converted."""

    poll_interval: float
    timeout: float | None


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
    :param media_field: key of a document's image, PDF, recording or video (a URI, bytes, or a dict with
        ``uri`` or ``data`` and ``mime_type``), embedded with its text, if any, into one vector
        (gemini-embedding-2; see the docs' "Multimodal documents"). The row stores its URI, MIME type,
        SHA-256 and size in the metadata under this key, never the bytes. ``None`` (default): text only.
    :param batch_size: texts per Gemini request, at most 100.
    :param max_concurrency: requests in flight at once; default from the connection.
    :param collection_name: target Milvus collection; setting it turns on incremental mode.
    :param milvus_conn_id: the ``milvus`` connection of that collection.
    :param delete_missing: in incremental mode, also hand on ids to delete: ``True`` (or ``"corpus"``)
        every stored id absent from ``documents``, which must then be the whole corpus; ``"source"`` (with
        ``chunking``) only the stale chunks of the sources this run covers: chunks a source no longer
        produces, and every chunk of a file gone from the listed folder. Safe per shard and per mapped task.
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
        awaited in the triggerer (Gemini API only; see :mod:`~.embedding.batch`, also on retries).
    :param batch_poll_interval: batch mode: seconds before the first look at the job (then up to 600).
    :param batch_timeout: batch mode: seconds after which a job still running is cancelled and fails.
    :param dry_run: return what the run would send and cost (``{"dry_run": True, "new", "changed",
        "metadata_only", "unchanged", "to_delete", "requests", "estimated_tokens", "estimated_cost_usd",
        "estimated_sync_cost_usd", "estimated_batch_cost_usd", ...}``; ``estimated_cost_usd`` at the price
        of the run's mode, the batch price with ``deferrable``) and send and write nothing.
    :param max_cost_usd: fail, before the first request, a run whose estimated cost in US dollars exceeds
        this; ``None`` (default) for no budget.
    :param chunking: cut sources into chunks, each embedded as a document: a
        :class:`~airflow_provider_gemini_milvus.files.chunking.ChunkingSpec` or a dict of its fields
        (``{"max_tokens": 512, "overlap_tokens": 64}``), ``{}`` for the defaults. ``documents`` is then a
        folder or file (Markdown, HTML, text; PDF and Office with the ``files`` extra), or a list of
        source documents whose ``text_field`` is cut. Chunk ids come from the source and the chunk's own
        text, so an edit re-embeds only the chunks it touched; an unchanged source is not even parsed.
        ``None`` (default): each document is embedded whole. See the docs' "Files and chunking".
    :param source_shard: with ``chunking``, read only the sources of shard ``"i/n"`` (by a hash of their
        ``source_id``), for one mapped task per shard.
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
        "media_field",
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
        "chunking",
        "source_shard",
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
        media_field: str | None = None,
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
        batch_poll_interval: float | str = DEFAULT_BATCH_POLL_INTERVAL,
        batch_timeout: float | str | None = None,
        dry_run: bool | str = False,
        max_cost_usd: float | str | None = None,
        chunking: ChunkingSpec | Mapping[str, Any] | None = None,
        source_shard: str | Sequence[int] | None = None,
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
        self.media_field = media_field
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
        self.chunking = chunking
        self.source_shard = source_shard
        self.embed_result: EmbedResult | DryRunReport | None = None  # what the task returned, for the lineage

    @cached_property
    def hook(self) -> GeminiHook:
        return GeminiHook(gemini_conn_id=self.gemini_conn_id)

    @cached_property
    def milvus_hook(self) -> MilvusHook:
        from airflow_provider_gemini_milvus.hooks.milvus import MilvusHook

        return MilvusHook(milvus_conn_id=self.milvus_conn_id)

    def render_template_fields(self, context: Context, jinja_env: jinja2.Environment | None = None) -> None:
        """
        Render the templated arguments, but not the contents of a literal ``documents`` list: its texts and
        metadata are data, sent and stored as written (a text about Jinja keeps its ``{{ }}``), and
        compiling thousands of strings as templates would cost seconds. An XCom or a templated location is
        rendered as usual, and so is a list holding an XCom.
        """
        literal = self.documents
        if not isinstance(literal, (list, tuple)) or any(_resolvable(item) for item in literal):
            super().render_template_fields(context, jinja_env)
            return
        self.documents = []  # an empty field is left alone
        try:
            super().render_template_fields(context, jinja_env)
        finally:
            self.documents = literal

    def execute(self, context: Context) -> EmbedResult | DryRunReport:
        result = self._execute(context)
        self.embed_result = result
        return result

    def _execute(self, context: Context) -> EmbedResult | DryRunReport:
        args = self.converted_arguments()
        batch = self.batch_arguments()  # refuses a Vertex AI connection in batch mode
        task = self.embed_task(context, args)
        try:
            plan = plan_run(task, args)
            if args.dry_run:
                return dry_run(task, args, plan, batch=batch is not None)
            if batch is not None and (decision := embed_batch.start_batch(task, args, plan)) is not None:
                result = self._follow(decision, batch)
            elif plan.staged(args.inline_max_rows):
                result = embed_sync.run_staged(task, args, plan)
            else:
                result = embed_sync.run_inline(task, args, plan)
        finally:
            # The plan opens the collection once and the run closes it before Gemini is called; this
            # closes it on every other way out (a dry run, a refusal, a deferral).
            self.milvus_hook.close()
        self._record_metrics(args, result)
        return result

    def execute_complete(self, context: Context, event: dict[str, Any]) -> EmbedResult:
        """Batch mode: the job ended; return its rows as :meth:`execute` would."""
        result = self._complete(context, event)
        self.embed_result = result
        return result

    def _complete(self, context: Context, event: dict[str, Any]) -> EmbedResult:
        self.batch_job_name = str(event.get("job_name"))
        args = self.converted_arguments()
        outcome = embed_batch.complete_batch(self.embed_task(context, args), args, event)
        batch = self.batch_arguments()
        if isinstance(outcome, embed_batch.BatchDecision) and batch is not None:
            result = self._follow(outcome, batch)  # unusable results: a job for those texts only
        elif isinstance(outcome, embed_batch.BatchDecision):
            raise ValueError("deferrable was turned off while a batch job ran; set deferrable=True again")
        else:
            self.batch_job_name = None
            result = outcome
        self._record_metrics(args, result)
        return result

    def _record_metrics(self, args: EmbedArguments, result: EmbedResult) -> None:
        """Send what this run embedded and spent as Airflow metrics (never fails the task)."""
        tags = {"dag_id": self.dag_id, "task_id": self.task_id, "model": args.model.name}
        record_metrics(embed_metrics, result, {**tags, "collection": args.collection_name})

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage[Any, Any]:
        """
        OpenLineage: the documents' location (and, in incremental mode, the collection compared with) in,
        the staged folder of a staged run out, and the run's model, tokens, cost and batch job as the
        ``geminiEmbedding`` run facet.
        """
        from airflow_provider_gemini_milvus.observability.assets import hook_collection_address
        from airflow_provider_gemini_milvus.observability.lineage import embedding_lineage

        args = self.converted_arguments()
        collection = args.collection_name
        return embedding_lineage(
            documents=self.documents,
            model=args.model.name,
            dimension=args.dim,
            task_type=args.task_type,
            result=self.embed_result,
            collection=hook_collection_address(self.milvus_hook, collection) if collection else None,
        )

    def _follow(self, decision: embed_batch.BatchDecision, batch: BatchArguments) -> EmbedResult:
        """Hand on the decision's result, or wait for its job."""
        if decision.result is None:
            self.batch_job_name = decision.job_name
            self._defer_to_job(decision, batch)
        self.batch_job_name = None
        return decision.result

    def on_kill(self) -> None:
        """Cancel the batch job this task waits for, so a killed or timed-out task stops paying."""
        if self.batch_job_name:
            cancel_batch_job(self.hook, self.batch_job_name)

    def embed_task(self, context: Context, args: EmbedArguments) -> EmbedTask:
        """What the engine needs of this task instance: hooks, documents, staging folder, state store."""
        ti = context.get("ti") if isinstance(context, Mapping) else None
        return EmbedTask(
            gemini_hook=self.hook,
            milvus_hook=self.milvus_hook,
            documents=self.documents,
            staging_folder=task_instance_folder(
                context, dag_id=self.dag_id, task_id=self.task_id, staging_uri=args.staging_uri
            ),
            log=self.log,
            name=f"{ti.dag_id}.{ti.task_id}" if ti is not None else self.task_id,
            state_store=context.get("task_state_store") if isinstance(context, Mapping) else None,
        )

    def _defer_to_job(self, decision: embed_batch.BatchDecision, batch: BatchArguments) -> NoReturn:
        """
        Wait for the batch job in the triggerer, without holding a worker slot. ``batch_timeout`` counts from
        the job's submission: the deadline travels in the trigger's kwargs, and Airflow's own deferral
        timeout backs it up.
        """
        deadline = decision.submitted_at + batch.timeout if batch.timeout is not None else None
        self.defer(
            trigger=GeminiBatchJobTrigger(
                gemini_conn_id=self.gemini_conn_id,
                job_name=decision.job_name,
                poll_interval=batch.poll_interval,
                timeout=batch.timeout,
                deadline=deadline,
            ),
            method_name="execute_complete",
            timeout=(
                timedelta(seconds=max(0.0, deadline - time.time()) + _DEFER_TIMEOUT_GRACE)
                if deadline is not None
                else None
            ),
        )

    def batch_arguments(self) -> BatchArguments | None:
        """
        Convert ``deferrable``, ``batch_poll_interval`` and ``batch_timeout`` (rendered ``"False"`` is
        false); ``None`` when batch mode is off.

        :raises ValueError: naming the bad argument, or a Vertex AI connection in batch mode.
        """
        if not to_bool(self.deferrable, "deferrable"):
            return None
        check_batch_supported(self.hook)
        poll_interval = to_float(self.batch_poll_interval, "batch_poll_interval", minimum=0.001)
        timeout = to_float(self.batch_timeout, "batch_timeout", minimum=0, optional=True)
        return BatchArguments(poll_interval=min(poll_interval, DEFAULT_MAX_POLL_INTERVAL), timeout=timeout)

    def converted_arguments(self) -> EmbedArguments:
        """
        Convert every rendered argument (a template renders ``False`` as ``"False"``) and check it.

        :raises ValueError: naming the first bad argument; nothing has been requested yet.
        """
        model_name = to_str(self.model, "model")
        task_type = normalise_task_type(to_str(self.gemini_task_type, "task_type"))
        model = resolve_model(str(model_name))
        output_dimensionality = to_int(self.output_dimensionality, "output_dimensionality", optional=True)
        title_field = to_str(self.title_field, "title_field", optional=True)
        if title_field is not None and task_type != "RETRIEVAL_DOCUMENT":
            raise ValueError(f"title_field is only used with task_type RETRIEVAL_DOCUMENT, not {task_type}")
        batch_mode = to_bool(self.deferrable, "deferrable")
        media_field = to_str(self.media_field, "media_field", optional=True)
        if media_field is not None and not model.embeds_media:
            raise ValueError(
                f"media_field is set, but {model.name} embeds text only; use model='gemini-embedding-2' "
                "for images, PDFs, audio and video"
            )
        if media_field is not None and batch_mode:
            raise ValueError(
                "media_field cannot be used in batch mode (deferrable=True): batch jobs here embed text; "
                "embed media documents with deferrable=False"
            )
        collection_name = to_str(self.collection_name, "collection_name", optional=True)
        chunking = _chunking_spec(self.chunking)
        if chunking is not None and batch_mode:
            raise ValueError(
                "chunking cannot be used in batch mode (deferrable=True) yet; use deferrable=False"
            )
        if chunking is not None and media_field is not None:
            raise ValueError("chunking cuts text; media documents (media_field) are embedded whole")
        source_shard = SourceShard.parse(self.source_shard)
        if source_shard is not None and chunking is None:
            raise ValueError("source_shard needs chunking: it shards the sources that chunking reads")
        delete_missing, delete_per_source = _delete_mode(self.delete_missing)
        if (delete_missing or delete_per_source) and not collection_name:
            raise ValueError("delete_missing needs collection_name: the collection to compare against")
        if delete_per_source and chunking is None:
            raise ValueError(
                "delete_missing='source' needs chunking: chunks record the source they came from"
            )
        if delete_missing and source_shard is not None:
            raise ValueError(
                "delete_missing=True with source_shard would delete every other shard's rows; "
                "use delete_missing='source'"
            )
        if chunking is not None and title_field is None and task_type == "RETRIEVAL_DOCUMENT":
            title_field = "title"  # a chunk's title is its source's
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
            text_field=to_str(self.text_field, "text_field"),
            id_field=to_str(self.id_field, "id_field"),
            title_field=title_field,
            metadata_fields=to_str_list(self.metadata_fields, "metadata_fields", optional=True),
            media_field=media_field,
            batch_size=to_int(self.batch_size, "batch_size", minimum=1, maximum=MAX_TEXTS_PER_REQUEST),
            max_concurrency=to_int(self.max_concurrency, "max_concurrency", minimum=1, optional=True),
            collection_name=collection_name,
            delete_missing=delete_missing,
            max_delete_fraction=to_float(
                self.max_delete_fraction, "max_delete_fraction", minimum=0, maximum=1
            ),
            staging_uri=to_str(self.staging_uri, "staging_uri", optional=True),
            inline_max_rows=to_int(self.inline_max_rows, "inline_max_rows", minimum=0),
            part_rows=to_int(self.part_rows, "part_rows", minimum=1),
            on_document_error=to_choice(
                self.on_document_error, "on_document_error", ON_DOCUMENT_ERROR_CHOICES
            ),
            dry_run=to_bool(self.embed_dry_run, "dry_run"),
            max_cost_usd=max_cost_usd,
            chunking=chunking,
            delete_per_source=delete_per_source,
            source_shard=source_shard,
        )


def _resolvable(item: Any) -> bool:
    """True for what Airflow resolves when it renders (an XCom), as its templater tells it."""
    return not isinstance(item, os.PathLike) and callable(getattr(item, "resolve", None))


def _chunking_spec(value: Any) -> ChunkingSpec | None:
    """``chunking`` as a spec: a spec, a dict of its fields (rendered strings converted), or its JSON."""
    if value is None or isinstance(value, ChunkingSpec):
        return value
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else None
        except ValueError:
            raise ValueError(
                f"chunking must be a dict such as {{'max_tokens': 512}}, got {value[:80]!r}"
            ) from None
        if value is None:
            return None
    if isinstance(value, Mapping):
        converters = {"max_tokens": to_int, "overlap_tokens": to_int, "structure_aware": to_bool}
        value = {
            key: converters[key](item, f"chunking {key}") if key in converters else item  # type: ignore[operator]
            for key, item in value.items()
        }
    return ChunkingSpec.parse(value)


def _delete_mode(value: Any) -> tuple[bool, bool]:
    """``delete_missing`` as (corpus-wide, per source): a bool, ``"corpus"`` or ``"source"``, rendered."""
    if isinstance(value, str) and value.strip().lower() in ("source", "corpus"):
        return value.strip().lower() == "corpus", value.strip().lower() == "source"
    try:
        return to_bool(value, "delete_missing"), False
    except ValueError:
        raise ValueError(f"delete_missing must be true, false, 'corpus' or 'source', got {value!r}") from None
