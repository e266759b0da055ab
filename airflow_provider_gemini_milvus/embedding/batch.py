"""
Batch mode of ``GeminiEmbedOperator`` (``deferrable=True``): half the price, a turnaround of up to a day.

:func:`start_batch` takes the run's plan (the incremental diff is done as in synchronous mode), stages the
request plan (each request's document id, position and content hash) in the task instance's staging
folder, submits one Gemini embedding batch job with the documents to embed, records the job's name and
defers to :class:`~airflow_provider_gemini_milvus.triggers.gemini_batch.GeminiBatchJobTrigger`, which waits
in the triggerer without holding a worker slot. :func:`complete_batch` runs when the trigger fires: it keeps
the job's vectors by position (in memory for a small run, else in a local temporary file), reads the
documents again a chunk at a time, and returns the same inline rows or staged manifest as synchronous mode,
parts written as the chunks go, so ``MilvusInsertOperator`` takes either and memory stays flat.

**Re-attaching.** The job's name is kept where a retry of the task instance finds it: Airflow's task state
store (``context["task_state_store"]``, AIP-103) when the running Airflow has one, and always next to the
request plan in the staging folder (the same folder for every try). A retry whose job is still pending or
running defers to it again, one whose job succeeded reads its results, and only a job that failed, was
cancelled or expired is submitted anew: nothing is paid twice. After a successful completion both records
are removed, so a later run submits afresh.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from airflow_provider_gemini_milvus.embedding.changes import refresh_metadata
from airflow_provider_gemini_milvus.embedding.cost import check_budget, estimate_planned
from airflow_provider_gemini_milvus.embedding.inputs import DocumentReader, documents_to_embed
from airflow_provider_gemini_milvus.embedding.outputs import (
    PartSink,
    inline_result,
    inline_rows,
    row_of,
    staged_result,
    stats_dict,
)
from airflow_provider_gemini_milvus.exceptions import GeminiAPIError
from airflow_provider_gemini_milvus.gemini.batch_api import (
    cancel_batch_job,
    get_batch_job,
    read_batch_results,
    submit_embedding_batch,
)
from airflow_provider_gemini_milvus.gemini.models import cost_usd, estimate_tokens
from airflow_provider_gemini_milvus.gemini.requests import EmbeddingRunStats

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

    from airflow.sdk import ObjectStoragePath

    from airflow_provider_gemini_milvus.embedding.inputs import Document, EmbedArguments
    from airflow_provider_gemini_milvus.embedding.outputs import EmbedResult
    from airflow_provider_gemini_milvus.embedding.plan import EmbedPlan, EmbedTask
    from airflow_provider_gemini_milvus.gemini.requests import RefusedText

__all__ = [
    "BATCH_PLAN_FILE",
    "STATE_STORE_KEY",
    "BatchDecision",
    "complete_batch",
    "start_batch",
]

#: The request plan and job name, in the task instance's staging folder.
BATCH_PLAN_FILE = "gemini_batch_job.json"
#: The key of the job name in Airflow's task state store.
STATE_STORE_KEY = "gemini_batch_job"
#: Job states after which a retry submits a new job.
_RESUBMIT_STATES = frozenset({"FAILED", "CANCELLED", "EXPIRED"})


@dataclass(frozen=True)
class BatchDecision:
    """
    What :func:`start_batch` decided: wait for ``job_name`` in the triggerer (the task defers), or hand
    on ``result`` at once (the job an earlier try submitted has already succeeded).
    """

    job_name: str
    result: EmbedResult | None = None


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


def start_batch(task: EmbedTask, args: EmbedArguments, plan: EmbedPlan) -> BatchDecision | None:
    """
    Submit the plan's documents as one batch job, or re-attach to the job an earlier try submitted.

    :return: the job to wait for; or its result at once when the earlier job already succeeded; or ``None``
        when there is nothing to embed (the synchronous path then hands on the deletions without a request).
    """
    if not plan.to_embed:
        return None
    path = task.staging_folder / BATCH_PLAN_FILE
    store = task.state_store
    earlier = _StagedPlan.read(path)
    job_name = (store.get(STATE_STORE_KEY) if store is not None else None) or (earlier and earlier.job_name)
    if earlier is not None and job_name and earlier.job_name == job_name:
        status = get_batch_job(task.gemini_hook, job_name)
        if earlier.fingerprint != plan.fingerprint:
            task.log.info("Batch job %s was submitted with other model settings; not reusing it", job_name)
            if not status.done:
                cancel_batch_job(task.gemini_hook, job_name)
        elif status.state not in _RESUBMIT_STATES:
            task.log.info(
                "Re-attaching to Gemini batch job %s (%s) an earlier try submitted; nothing is sent again",
                job_name,
                status.state,
            )
            if status.succeeded:
                result = complete_batch(task, args, {"status": "success", "job_name": job_name})
                return BatchDecision(job_name, result)
            return BatchDecision(job_name)
        else:
            task.log.info(
                "Batch job %s of an earlier try ended %s; submitting a new one", job_name, status.state
            )
    wanted = {doc_id: key.index for doc_id, key in plan.to_embed.items()}
    documents = [doc for chunk in documents_to_embed(plan.source, plan.reader, wanted) for doc in chunk]
    if args.max_cost_usd is not None:
        tokens_per_minute = task.gemini_hook.settings.tokens_per_minute
        estimate = estimate_planned([documents], args, tokens_per_minute, task.log, batch=True)
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
        tokens=sum(
            estimate_tokens(args.model.sent_text(args.task_type, doc.text, doc.title)) for doc in documents
        ),
        submitted_at=time.time(),
    )
    staged.write(path)  # before paying: a staging location that cannot be written fails here
    job_name = submit_embedding_batch(
        task.gemini_hook,
        [doc.text for doc in documents],
        model=args.model.name,
        task_type=args.task_type,
        output_dimensionality=args.output_dimensionality,
        titles=[doc.title for doc in documents] if args.title_field is not None else None,
        display_name=task.name,
    )
    staged.job_name = job_name
    staged.write(path)
    if store is not None:
        store.set(STATE_STORE_KEY, job_name)
    _log_cost(task, args, f"Submitted batch job {job_name} of {len(documents)} texts", staged.tokens)
    return BatchDecision(job_name)


def complete_batch(task: EmbedTask, args: EmbedArguments, event: Mapping[str, Any]) -> EmbedResult:
    """
    Turn the trigger's event into the task's result: the rows of the documents in the job, inline or staged
    as in synchronous mode, with stats at the batch price.

    :raises GeminiAPIError: the job failed, was cancelled or expired (with the job's own error), timed out
        (it is cancelled), or, with ``on_document_error="fail"``, could not embed some documents (named).
    """
    job_name = str(event.get("job_name"))
    status = event.get("status")
    if status == "timeout":
        cancel_batch_job(task.gemini_hook, job_name)
        raise GeminiAPIError(
            f"Gemini batch job {job_name} did not end within batch_timeout; it was cancelled"
        )
    if status != "success":
        raise GeminiAPIError(str(event.get("message") or f"Gemini batch job {job_name} failed"))
    path = task.staging_folder / BATCH_PLAN_FILE
    staged = _StagedPlan.read(path)
    if staged is None or staged.job_name != job_name:
        raise GeminiAPIError(f"the request plan of batch job {job_name} is missing from {path}")
    inline = len(staged.documents) + len(staged.metadata_only) <= args.inline_max_rows
    with tempfile.TemporaryDirectory(prefix="gemini-batch-") as folder:
        vectors = _vector_store(folder, len(staged.documents), args.dim, in_memory=inline)

        def keep(positions: Sequence[int], rows: np.ndarray) -> None:
            vectors[list(positions)] = rows

        results = read_batch_results(
            task.gemini_hook, job_name, len(staged.documents), dim=args.dim, on_result=keep
        )
        refused = _refused(args, job_name, staged, results.refused)
        output = _ResultRows(task, args, staged.fingerprint, inline=inline)
        embedded, changed = _hand_on_embedded(task, args, staged, vectors, results.refused, output)
    metadata_only = _hand_on_metadata_only(task, args, staged, output)
    stats = EmbeddingRunStats(
        model=args.model.name,
        texts=len(staged.documents),
        tokens=staged.tokens,
        requests=1,
        refused=len(refused),
        seconds=time.time() - staged.submitted_at,
        usd_per_million_tokens=args.model.batch_usd_per_million_tokens,
    )
    _log_cost(task, args, f"Batch job {job_name} embedded {embedded} texts", staged.tokens)
    counts = {
        **staged.counts,
        "embedded": staged.counts["embedded"] - changed,
        "metadata_only": metadata_only,
    }
    stats_of_run = {
        **stats_dict(counts, stats, len(refused)),
        "changed_during_batch": changed,
        "mode": "batch",
        "batch_job": job_name,
    }
    result = output.result(staged.delete_ids, refused, stats_of_run)
    path.unlink()
    if task.state_store is not None:
        task.state_store.delete(STATE_STORE_KEY)
    return result


def _refused(
    args: EmbedArguments, job_name: str, staged: _StagedPlan, items: Sequence[RefusedText]
) -> list[dict[str, Any]]:
    """
    The documents the job could not embed, named as the result lists them.

    :raises GeminiAPIError: naming them, with ``on_document_error="fail"``.
    """
    refused = [
        {
            "index": staged.documents[item.position][1],
            "id": staged.documents[item.position][0],
            "reason": item.reason,
        }
        for item in items
    ]
    if refused and args.on_document_error == "fail":
        named = ", ".join(f"documents[{item['index']}] (id {item['id']!r})" for item in refused[:10])
        raise GeminiAPIError(
            f"Gemini batch job {job_name} could not embed {len(refused)} documents: {named}"
            f"{' and more' if len(refused) > 10 else ''}; first reason: {refused[0]['reason']} "
            '(on_document_error="skip" leaves them out)'
        )
    return refused


# -- helpers ----------------------------------------------------------------------------------------------


def _vector_store(folder: str, count: int, dim: int, *, in_memory: bool) -> np.ndarray:
    """
    Room for the job's vectors by position: in memory for a small run, else a float32 file in ``folder``
    (results may come in any order; the file keeps memory flat however many there are).
    """
    if in_memory:
        return np.full((count, dim), np.nan, dtype=np.float32)
    return np.lib.format.open_memmap(
        os.path.join(folder, "vectors.npy"), mode="w+", dtype=np.float32, shape=(count, dim)
    )


def _hand_on_embedded(
    task: EmbedTask,
    args: EmbedArguments,
    staged: _StagedPlan,
    vectors: np.ndarray,
    refused: Sequence[RefusedText],
    output: _ResultRows,
) -> tuple[int, int]:
    """
    Read the job's documents again, a chunk at a time, and hand on each unchanged one with its vector.

    :return: how many were handed on, and how many changed or vanished while the job ran (left out).
    """
    submitted = {doc_id: (position, digest) for position, (doc_id, _, digest) in enumerate(staged.documents)}
    refused_positions = {item.position for item in refused}
    wanted = {doc_id: index for doc_id, index, _ in staged.documents}
    unchanged = embedded = 0
    for chunk in documents_to_embed(task.chunked_source(), _reader(args, staged), wanted):
        kept = [doc for doc in chunk if doc.content_hash == submitted[doc.id][1]]
        unchanged += len(kept)
        kept = [doc for doc in kept if submitted[doc.id][0] not in refused_positions]
        output.add_embedded(kept, [submitted[doc.id][0] for doc in kept], vectors)
        embedded += len(kept)
    changed = len(staged.documents) - unchanged
    if changed:
        task.log.warning(
            "%d documents changed or vanished while the batch job ran; left out (the next run embeds them)",
            changed,
        )
    return embedded, changed


def _hand_on_metadata_only(
    task: EmbedTask, args: EmbedArguments, staged: _StagedPlan, output: _ResultRows
) -> int:
    """
    Hand on the metadata-only documents that did not change meanwhile, with their stored vectors (read back
    from Milvus); return how many.
    """
    if not staged.metadata_only:
        return 0
    submitted = {doc_id: digest for doc_id, _, digest in staged.metadata_only}
    wanted = {doc_id: index for doc_id, index, _ in staged.metadata_only}
    unchanged = 0

    def unchanged_chunks() -> Iterator[list[Document]]:
        nonlocal unchanged
        for chunk in documents_to_embed(task.chunked_source(), _reader(args, staged), wanted):
            kept = [doc for doc in chunk if doc.content_hash == submitted[doc.id]]
            unchanged += len(kept)
            yield kept

    gone = refresh_metadata(
        task.milvus_hook,
        str(staged.collection_name),
        unchanged_chunks(),
        staged.fingerprint,
        output.add_refreshed,
    )
    if len(staged.metadata_only) > unchanged:
        task.log.warning(
            "%d documents changed or vanished while the batch job ran; left out (the next run embeds them)",
            len(staged.metadata_only) - unchanged,
        )
    if gone:
        task.log.warning(
            "%d stored rows vanished while the batch job ran; left out (the next run embeds them)", len(gone)
        )
    return unchanged - len(gone)


def _reader(args: EmbedArguments, staged: _StagedPlan) -> DocumentReader:
    """Documents checked with the limits of the submitting try (the collection may have changed since)."""
    return DocumentReader(args, text_max_length=staged.text_max_length, id_max_length=staged.id_max_length)


class _ResultRows:
    """
    Where completion's rows go, in the order they are handed on: a list for XCom (a small run) or Parquet
    parts in the task's staging folder (any size), decided as synchronous mode decides.
    """

    def __init__(
        self,
        task: EmbedTask,
        args: EmbedArguments,
        fingerprint: str,
        *,
        inline: bool,
    ) -> None:
        self.task = task
        self.args = args
        self.fingerprint = fingerprint
        self.directory = task.staging_folder
        self.rows: list[dict[str, Any]] = []
        self.sink: PartSink | None = None
        if not inline:
            from airflow_provider_gemini_milvus import staging
            from airflow_provider_gemini_milvus.staging.storage import as_path

            # A completion that failed midway may have staged parts: the job's results are rewritten whole.
            for part in staging.staged_parts(self.directory, with_rows=False):
                as_path(part.uri).unlink()
            self.sink = PartSink(staging.PartWriter(self.directory, args.dim), fingerprint, args.part_rows)

    def add_embedded(self, documents: Sequence[Document], positions: list[int], vectors: np.ndarray) -> None:
        """Hand on ``documents`` with the vectors at ``positions``, ``part_rows`` rows at a time."""
        step = self.args.part_rows  # the sink writes a part once it holds part_rows rows
        for start in range(0, len(documents), step):
            chosen, chosen_vectors = documents[start : start + step], vectors[positions[start : start + step]]
            if self.sink is None:
                self.rows.extend(inline_rows(chosen, chosen_vectors, self.fingerprint))
            else:
                pairs = zip(chosen, chosen_vectors, strict=True)
                self.sink.add_rows([row_of(doc, vector, self.fingerprint) for doc, vector in pairs])

    def add_refreshed(self, rows: list[dict[str, Any]]) -> None:
        if self.sink is not None:
            self.sink.add_rows(rows)
        else:  # stored float32 values go out exactly (not rounded): the row keeps the very same vector
            self.rows.extend({**row, "vector": row["vector"].tolist()} for row in rows)

    def result(
        self, delete_ids: list[str], refused: list[dict[str, Any]], stats: dict[str, Any]
    ) -> EmbedResult:
        """The task's result: the rows inline, or the manifest of the parts (the last one written now)."""
        args, fingerprint = self.args, self.fingerprint
        if self.sink is None:
            return inline_result(self.rows, args, fingerprint, delete_ids, refused, stats)
        self.sink.flush()
        result = staged_result(self.directory, self.sink.parts, args, fingerprint, delete_ids, refused, stats)
        self.task.log.info(
            "Staged %d rows in %d parts under %s", result["rows"], len(self.sink.parts), self.directory
        )
        return result


def _log_cost(task: EmbedTask, args: EmbedArguments, what: str, tokens: int) -> None:
    usd = cost_usd(tokens, args.model.batch_usd_per_million_tokens)
    cost = f", estimated cost ${usd:.6f} at the batch price" if usd is not None else ""
    task.log.info("%s: about %d tokens%s", what, tokens, cost)
