"""
Batch mode of ``GeminiEmbedOperator`` (``deferrable=True``): half the price, a turnaround of up to a day.

:func:`start_batch` takes the run's plan (the incremental diff is done as in synchronous mode), stages the
request plan (each request's document id, position and content hash) in the task instance's staging
folder, submits one Gemini embedding batch job with the documents to embed, records the job's name and
defers to :class:`~airflow_provider_gemini_milvus.triggers.gemini_batch.GeminiBatchJobTrigger`, which waits
in the triggerer without holding a worker slot. :func:`complete_batch` runs when the trigger fires: it reads
the results in document order and returns the same inline rows or staged manifest as synchronous mode, so
``MilvusInsertOperator`` takes either.

**Re-attaching.** The job's name is kept where a retry of the task instance finds it: Airflow's task state
store (``context["task_state_store"]``, AIP-103) when the running Airflow has one, and always next to the
request plan in the staging folder (the same folder for every try). A retry whose job is still pending or
running defers to it again, one whose job succeeded reads its results, and only a job that failed, was
cancelled or expired is submitted anew: nothing is paid twice. After a successful completion both records
are removed, so a later run submits afresh.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from airflow_provider_gemini_milvus.exceptions import GeminiAPIError
from airflow_provider_gemini_milvus.gemini_batches import (
    cancel_batch_job,
    check_batch_supported,
    get_batch_job,
    read_batch_results,
    submit_embedding_batch,
)
from airflow_provider_gemini_milvus.gemini_models import estimate_tokens
from airflow_provider_gemini_milvus.gemini_requests import EmbeddingRunStats
from airflow_provider_gemini_milvus.operators.arguments import to_bool, to_float
from airflow_provider_gemini_milvus.operators.embed_changes import refresh_metadata
from airflow_provider_gemini_milvus.operators.embed_cost import check_budget, estimate_planned
from airflow_provider_gemini_milvus.operators.embed_inputs import DocumentReader, documents_to_embed
from airflow_provider_gemini_milvus.operators.embed_outputs import (
    PartSink,
    inline_result,
    inline_rows,
    staged_result,
    stats_dict,
    task_staging_dir,
)
from airflow_provider_gemini_milvus.triggers.gemini_batch import (
    DEFAULT_MAX_POLL_INTERVAL,
    GeminiBatchJobTrigger,
)

if TYPE_CHECKING:
    from airflow.sdk import Context, ObjectStoragePath

    from airflow_provider_gemini_milvus.operators.embed_inputs import Document, EmbedArguments
    from airflow_provider_gemini_milvus.operators.gemini import EmbedPlan, GeminiEmbedOperator

__all__ = [
    "BATCH_PLAN_FILE",
    "DEFAULT_BATCH_POLL_INTERVAL",
    "STATE_STORE_KEY",
    "BatchArguments",
    "batch_arguments",
    "cancel_submitted_batch",
    "complete_batch",
    "start_batch",
]

#: The request plan and job name, in the task instance's staging folder.
BATCH_PLAN_FILE = "gemini_batch_job.json"
#: The key of the job name in Airflow's task state store.
STATE_STORE_KEY = "gemini_batch_job"
#: First wait between two looks at a job (seconds); the trigger backs off up to ten minutes.
DEFAULT_BATCH_POLL_INTERVAL = 60.0
#: Job states after which a retry submits a new job.
_RESUBMIT_STATES = frozenset({"FAILED", "CANCELLED", "EXPIRED"})


@dataclass(frozen=True)
class BatchArguments:
    """The operator's batch-mode arguments, converted."""

    poll_interval: float
    timeout: float | None


def batch_arguments(operator: GeminiEmbedOperator) -> BatchArguments | None:
    """
    Convert ``deferrable``, ``batch_poll_interval`` and ``batch_timeout`` (rendered ``"False"`` is false);
    ``None`` when batch mode is off.

    :raises ValueError: naming the bad argument, or a Vertex AI connection in batch mode.
    """
    if not to_bool(operator.deferrable, "deferrable"):
        return None
    check_batch_supported(operator.hook)
    poll_interval = float(to_float(operator.batch_poll_interval, "batch_poll_interval", minimum=0.001) or 0)
    timeout = to_float(operator.batch_timeout, "batch_timeout", minimum=0, optional=True)
    return BatchArguments(poll_interval=min(poll_interval, DEFAULT_MAX_POLL_INTERVAL), timeout=timeout)


@dataclass
class _StagedPlan:
    """What the staging folder keeps between submitting and completing (and across tries)."""

    job_name: str | None
    fingerprint: str
    documents: list[list[Any]]  # [id, index in ``documents``, content_hash], in request order
    metadata_only: list[list[Any]]  # the same, of documents handed on with their stored vector
    collection_name: str | None
    delete_ids: list[str]
    counts: dict[str, int]
    text_max_length: int
    id_max_length: int
    tokens: int
    submitted_at: float

    def write(self, path: ObjectStoragePath) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self)))

    @classmethod
    def read(cls, path: ObjectStoragePath) -> _StagedPlan | None:
        if not path.exists():
            return None
        return cls(**json.loads(path.read_text()))


def start_batch(
    operator: GeminiEmbedOperator,
    context: Context,
    args: EmbedArguments,
    plan: EmbedPlan,
    batch: BatchArguments,
) -> dict[str, Any] | None:
    """
    Submit the plan's documents as one batch job (or re-attach to the job an earlier try submitted) and
    defer; return the result at once when the earlier job already succeeded, or ``None`` when there is
    nothing to embed (the synchronous path then hands on the deletions without a request).

    :raises TaskDeferred: to wait for the job in the triggerer.
    """
    check_batch_supported(operator.hook)
    if not plan.to_embed:
        return None
    path = _plan_path(operator, context, args)
    store = _state_store(context)
    earlier = _StagedPlan.read(path)
    job_name = (store.get(STATE_STORE_KEY) if store is not None else None) or (earlier and earlier.job_name)
    if earlier is not None and job_name and earlier.job_name == job_name:
        status = get_batch_job(operator.hook, job_name)
        if earlier.fingerprint != plan.fingerprint:
            operator.log.info(
                "Batch job %s was submitted with other model settings; not reusing it", job_name
            )
            if not status.done:
                cancel_batch_job(operator.hook, job_name)
        elif status.state not in _RESUBMIT_STATES:
            operator.log.info(
                "Re-attaching to Gemini batch job %s (%s) an earlier try submitted; nothing is sent again",
                job_name,
                status.state,
            )
            operator.batch_job_name = job_name
            if status.succeeded:
                return complete_batch(operator, context, {"status": "success", "job_name": job_name})
            _defer(operator, job_name, batch)
        else:
            operator.log.info(
                "Batch job %s of an earlier try ended %s; submitting a new one", job_name, status.state
            )
    wanted = {doc_id: key.index for doc_id, key in plan.to_embed.items()}
    documents = [doc for chunk in documents_to_embed(plan.source, plan.reader, wanted) for doc in chunk]
    if args.max_cost_usd is not None:
        tokens_per_minute = operator.hook.settings.tokens_per_minute
        estimate = estimate_planned([documents], args, tokens_per_minute, operator.log, batch=True)
        check_budget(estimate, args.max_cost_usd)
    staged = _StagedPlan(
        job_name=None,
        fingerprint=plan.fingerprint,
        documents=[[doc.id, doc.index, doc.content_hash] for doc in documents],
        metadata_only=[[doc_id, key.index, key.content_hash] for doc_id, key in plan.metadata_only.items()],
        collection_name=args.collection_name,
        delete_ids=plan.delete_ids,
        counts=plan.counts,
        text_max_length=plan.reader.text_max_length,
        id_max_length=plan.reader.id_max_length,
        tokens=sum(estimate_tokens(doc.text) for doc in documents),
        submitted_at=time.time(),
    )
    staged.write(path)  # before paying: a staging location that cannot be written fails here
    ti = context.get("ti") if isinstance(context, Mapping) else None
    job_name = submit_embedding_batch(
        operator.hook,
        [doc.text for doc in documents],
        model=args.model.name,
        task_type=args.task_type,
        output_dimensionality=args.output_dimensionality,
        titles=[doc.title for doc in documents] if args.title_field is not None else None,
        display_name=f"{ti.dag_id}.{ti.task_id}" if ti is not None else operator.task_id,
    )
    staged.job_name = job_name
    staged.write(path)
    if store is not None:
        store.set(STATE_STORE_KEY, job_name)
    operator.batch_job_name = job_name
    _log_cost(operator, args, f"Submitted batch job {job_name} of {len(documents)} texts", staged.tokens)
    _defer(operator, job_name, batch)
    return None  # not reached: defer raises


def complete_batch(
    operator: GeminiEmbedOperator, context: Context, event: Mapping[str, Any]
) -> dict[str, Any]:
    """
    Turn the trigger's event into the task's result: the rows of the documents in the job, inline or staged
    as in synchronous mode, with stats at the batch price.

    :raises GeminiAPIError: the job failed, was cancelled or expired (with the job's own error), timed out
        (it is cancelled), or, with ``on_document_error="fail"``, could not embed some documents (named).
    """
    job_name = str(event.get("job_name"))
    operator.batch_job_name = job_name
    status = event.get("status")
    if status == "timeout":
        cancel_batch_job(operator.hook, job_name)
        raise GeminiAPIError(
            f"Gemini batch job {job_name} did not end within batch_timeout; it was cancelled"
        )
    if status != "success":
        raise GeminiAPIError(str(event.get("message") or f"Gemini batch job {job_name} failed"))
    args = operator.converted_arguments()
    path = _plan_path(operator, context, args)
    staged = _StagedPlan.read(path)
    if staged is None or staged.job_name != job_name:
        raise GeminiAPIError(f"the request plan of batch job {job_name} is missing from {path}")
    documents, metadata_only = _documents_again(operator, args, staged)
    output = _Output(operator, context, args, staged, documents)
    results = read_batch_results(
        operator.hook, job_name, len(staged.documents), dim=args.dim, on_result=output.add
    )
    refused = [
        {
            "index": staged.documents[item.position][1],
            "id": staged.documents[item.position][0],
            "reason": item.reason,
        }
        for item in results.refused
    ]
    if refused and args.on_document_error == "fail":
        named = ", ".join(f"documents[{item['index']}] (id {item['id']!r})" for item in refused[:10])
        raise GeminiAPIError(
            f"Gemini batch job {job_name} could not embed {len(refused)} documents: {named}"
            f"{' and more' if len(refused) > 10 else ''}; first reason: {refused[0]['reason']} "
            '(on_document_error="skip" leaves them out)'
        )
    stats = EmbeddingRunStats(
        model=args.model.name,
        texts=len(documents),
        tokens=staged.tokens,
        requests=1,
        refused=len(refused),
        seconds=time.time() - staged.submitted_at,
        usd_per_million_tokens=args.model.batch_usd_per_million_tokens,
    )
    output.refresh(metadata_only)
    embedded = len(documents) - documents.count(None) - len(refused)
    _log_cost(operator, args, f"Batch job {job_name} embedded {embedded} texts", staged.tokens)
    result = output.finish(stats, refused)
    path.unlink()
    store = _state_store(context)
    if store is not None:
        store.delete(STATE_STORE_KEY)
    operator.batch_job_name = None
    return result


def cancel_submitted_batch(operator: GeminiEmbedOperator) -> None:
    """``on_kill``: cancel the job this task submitted or re-attached to, if it is still running."""
    job_name = operator.batch_job_name
    if job_name:
        cancel_batch_job(operator.hook, job_name)


# -- helpers ----------------------------------------------------------------------------------------------


def _defer(operator: GeminiEmbedOperator, job_name: str, batch: BatchArguments) -> None:
    operator.defer(
        trigger=GeminiBatchJobTrigger(
            gemini_conn_id=operator.gemini_conn_id,
            job_name=job_name,
            poll_interval=batch.poll_interval,
            timeout=batch.timeout,
        ),
        method_name="execute_complete",
    )


def _plan_path(operator: GeminiEmbedOperator, context: Context, args: EmbedArguments) -> ObjectStoragePath:
    return task_staging_dir(operator, context, args.staging_uri) / BATCH_PLAN_FILE


def _state_store(context: Context) -> Any:
    """Airflow's task state store (AIP-103), where the running Airflow has one."""
    return context.get("task_state_store") if isinstance(context, Mapping) else None


def _documents_again(
    operator: GeminiEmbedOperator, args: EmbedArguments, staged: _StagedPlan
) -> tuple[list[Document | None], list[Document]]:
    """
    The job's documents read again from the source, in request order (``None`` for one whose content
    changed meanwhile), and the metadata-only documents that did not change.
    """
    from airflow_provider_gemini_milvus.document_sources import open_document_source

    reader = DocumentReader(args, text_max_length=staged.text_max_length, id_max_length=staged.id_max_length)
    wanted = {doc_id: index for doc_id, index, _ in [*staged.documents, *staged.metadata_only]}
    found = {
        doc.id: doc
        for chunk in documents_to_embed(open_document_source(operator.documents), reader, wanted)
        for doc in chunk
    }

    def unchanged(doc_id: str, content_hash: str) -> Document | None:
        doc = found.get(doc_id)
        return doc if doc is not None and doc.content_hash == content_hash else None

    documents = [unchanged(doc_id, content_hash) for doc_id, _, content_hash in staged.documents]
    metadata_only = [unchanged(doc_id, content_hash) for doc_id, _, content_hash in staged.metadata_only]
    kept = [doc for doc in metadata_only if doc is not None]
    changed = documents.count(None) + len(metadata_only) - len(kept)
    if changed:
        operator.log.warning(
            "%d documents changed or vanished while the batch job ran; left out (the next run embeds them)",
            changed,
        )
    return documents, kept


class _Output:
    """
    The rows of the job's documents as their vectors arrive, and of the metadata-only documents with their
    stored vectors: inline for a small run, staged parts else (decided as synchronous mode decides).
    """

    def __init__(
        self,
        operator: GeminiEmbedOperator,
        context: Context,
        args: EmbedArguments,
        staged: _StagedPlan,
        documents: list[Document | None],
    ) -> None:
        self.operator = operator
        self.args = args
        self.staged = staged
        self.documents = documents
        self.refreshed: list[dict[str, Any]] = []
        self.metadata_only = 0
        self.inline = len(staged.documents) + len(staged.metadata_only) <= args.inline_max_rows
        self.vectors = np.full((len(documents) if self.inline else 0, args.dim), np.nan, dtype=np.float32)
        self.sink: PartSink | None = None
        self.directory = _plan_path(operator, context, args).parent
        if not self.inline:
            from airflow_provider_gemini_milvus import staging
            from airflow_provider_gemini_milvus.staging.storage import as_path

            # A completion that failed midway may have staged parts: the job's results are rewritten whole.
            for part in staging.staged_parts(self.directory, with_rows=False):
                as_path(part.uri).unlink()
            self.sink = PartSink(
                staging.PartWriter(self.directory, args.dim), staged.fingerprint, args.part_rows
            )
            self.sink.start([doc for doc in documents if doc is not None])
            self._sink_position = {
                position: kept
                for kept, position in enumerate(i for i, doc in enumerate(documents) if doc is not None)
            }

    def add(self, positions: Any, vectors: np.ndarray) -> None:
        kept = [i for i, position in enumerate(positions) if self.documents[position] is not None]
        if self.sink is None:
            self.vectors[[positions[i] for i in kept]] = vectors[kept]
        else:
            step = self.args.part_rows  # the sink writes a part once it holds part_rows rows
            for start in range(0, len(kept), step):
                chosen = kept[start : start + step]
                self.sink.add([self._sink_position[positions[i]] for i in chosen], vectors[chosen])

    def refresh(self, documents: list[Document]) -> None:
        """Hand on the metadata-only documents with their stored vectors (read back from Milvus)."""
        if not documents:
            return

        def emit(rows: list[dict[str, Any]]) -> None:
            if self.sink is not None:
                self.sink.add_rows(rows)
            else:  # stored float32 values go out exactly (not rounded): the row keeps the very same vector
                self.refreshed.extend({**row, "vector": row["vector"].tolist()} for row in rows)

        hook = self.operator.milvus_hook
        gone = refresh_metadata(
            hook, str(self.staged.collection_name), [documents], self.staged.fingerprint, emit
        )
        if gone:
            self.operator.log.warning(
                "%d stored rows vanished while the batch job ran; left out (the next run embeds them)",
                len(gone),
            )
        self.metadata_only = len(documents) - len(gone)

    def finish(self, stats: EmbeddingRunStats, refused: list[dict[str, Any]]) -> dict[str, Any]:
        refused_ids = {item["id"] for item in refused}
        changed = self.documents.count(None)
        counts = {
            **self.staged.counts,
            "embedded": self.staged.counts["embedded"] - changed,
            "metadata_only": self.metadata_only,
        }
        stats_of_run = {
            **stats_dict(counts, stats, len(refused)),
            "changed_during_batch": changed,
            "mode": "batch",
            "batch_job": self.staged.job_name,
        }
        fingerprint, delete_ids = self.staged.fingerprint, self.staged.delete_ids
        if self.sink is None:
            kept = [
                i for i, doc in enumerate(self.documents) if doc is not None and doc.id not in refused_ids
            ]
            kept_documents = [doc for doc in (self.documents[i] for i in kept) if doc is not None]
            rows = inline_rows(kept_documents, self.vectors[kept], fingerprint) + self.refreshed
            return inline_result(rows, self.args, fingerprint, delete_ids, refused, stats_of_run)
        self.sink.flush()
        result = staged_result(
            self.directory, self.sink.parts, self.args, fingerprint, delete_ids, refused, stats_of_run
        )
        self.operator.log.info(
            "Staged %d rows in %d parts under %s", result["rows"], len(self.sink.parts), self.directory
        )
        return result


def _log_cost(operator: GeminiEmbedOperator, args: EmbedArguments, what: str, tokens: int) -> None:
    price = args.model.batch_usd_per_million_tokens
    cost = (
        f", estimated cost ${tokens * price / 1_000_000:.6f} at the batch price" if price is not None else ""
    )
    operator.log.info("%s: about %d tokens%s", what, tokens, cost)
