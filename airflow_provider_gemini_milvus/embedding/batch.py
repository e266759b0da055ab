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
cancelled, expired or is unknown to the service (404) is submitted anew: nothing is paid twice. After a
successful completion both records, and the request and result files in the Files API, are removed.

**Findable jobs.** Each job's display name is ``gm-<task instance>-<digest of its requests> <dag.task>``:
the task instance's marker and a digest of the model settings and the (id, content hash) of every request
in order. A job is used only when its display name and request count match the plan's (a plan pointing at
another job is not trusted). A create whose answer was lost, or a plan that cannot be read, is resolved by
listing the jobs with that display name before submitting; the task instance's other jobs still running are
cancelled, as nothing will use them.

**Unusable results.** A job that succeeded with results that cannot be used (a NaN, a short vector, a
missing line) keeps every usable result: only the texts with unusable results are submitted again, in a
new job, up to :data:`MAX_RESUBMISSIONS` times; after that they count as documents Gemini refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
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
    RESUBMIT_STATES,
    BatchJobStatus,
    cancel_batch_job,
    find_batch_jobs,
    get_batch_job,
    read_batch_results,
    submit_embedding_batch,
)
from airflow_provider_gemini_milvus.gemini.files_api import delete_file
from airflow_provider_gemini_milvus.gemini.models import cost_usd, estimate_tokens
from airflow_provider_gemini_milvus.gemini.requests import EmbeddingRunStats, RefusedText
from airflow_provider_gemini_milvus.staging.storage import mark_task_folder

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

    from airflow.sdk import ObjectStoragePath

    from airflow_provider_gemini_milvus.embedding.inputs import Document, EmbedArguments
    from airflow_provider_gemini_milvus.embedding.outputs import EmbedResult
    from airflow_provider_gemini_milvus.embedding.plan import EmbedPlan, EmbedTask

__all__ = [
    "BATCH_PLAN_FILE",
    "MAX_RESUBMISSIONS",
    "STATE_STORE_KEY",
    "BatchDecision",
    "complete_batch",
    "job_display_prefix",
    "start_batch",
]

#: The request plan and job names, in the task instance's staging folder.
BATCH_PLAN_FILE = "gemini_batch_job.json"
#: The key of the job name in Airflow's task state store.
STATE_STORE_KEY = "gemini_batch_job"
#: Times the texts whose results were unusable are submitted again before they count as refused.
MAX_RESUBMISSIONS = 2
#: Display names are cut to this length.
_MAX_DISPLAY_NAME = 128


@dataclass(frozen=True)
class BatchDecision:
    """
    What :func:`start_batch` or :func:`complete_batch` decided: wait for ``job_name`` in the triggerer (the
    task defers), or hand on ``result`` at once (the job an earlier try submitted has already succeeded).

    :param submitted_at: when the job waited for was submitted (epoch seconds): ``batch_timeout`` counts
        from it, whatever happens to the task or the triggerer meanwhile.
    """

    job_name: str
    result: EmbedResult | None = None
    submitted_at: float = field(default_factory=time.time)


@dataclass
class _StagedPlan:
    """
    What the staging folder keeps between submitting and completing (and across tries).

    ``jobs`` lists every job submitted for the plan, the one waited for last: ``{"name", "display_name",
    "positions", "request_file", "submitted_at"}``, where ``positions`` are the indexes in ``documents`` of
    the job's requests in order (``None``: all of them). Later jobs hold the texts whose results were
    unusable in earlier ones; ``gone`` are documents that changed or vanished before they could be
    submitted again (left out).
    """

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
    jobs: list[dict[str, Any]] = field(default_factory=list)
    rounds: int = 0
    gone: list[int] = field(default_factory=list)

    @property
    def job_name(self) -> str | None:
        return self.jobs[-1]["name"] if self.jobs else None

    def write(self, path: ObjectStoragePath) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self)))
        mark_task_folder(path.parent)  # the provider's folder: cleaning may remove it once it is old

    @classmethod
    def read(cls, path: ObjectStoragePath) -> _StagedPlan:
        """:raises ValueError: the file is not a plan this version wrote."""
        try:
            plan = cls(**json.loads(path.read_text()))
            for document in plan.documents:
                if not isinstance(document, list) or len(document) != 3:
                    raise TypeError("documents")
            for job in plan.jobs:
                if not {"name", "display_name", "positions"} <= set(job):
                    raise TypeError("jobs")
        except (ValueError, TypeError, RecursionError, AttributeError) as err:
            raise ValueError(f"{type(err).__name__}") from None
        return plan


def _read_plan(task: EmbedTask, path: ObjectStoragePath) -> tuple[_StagedPlan | None, bool]:
    """The staged plan, or ``None`` (logged) when there is none or it is unreadable; and whether a file is."""
    if not path.exists():
        return None, False
    try:
        return _StagedPlan.read(path), True
    except (ValueError, UnicodeDecodeError) as err:
        task.log.warning(
            "The batch request plan %s cannot be read (%s); it is discarded, and the job it named is looked "
            "up by its display name before anything is submitted",
            path,
            err,
        )
        return None, True


def job_display_prefix(task: EmbedTask) -> str:
    """The start of the display name of every batch job this task instance submits (every try of it)."""
    marker = hashlib.sha256(str(task.staging_folder).encode()).hexdigest()[:12]
    return f"gm-{marker}-"


def _display_name(task: EmbedTask, fingerprint: str, round_: int, keys: list[list[Any]]) -> str:
    """A job's display name: the task instance, and a digest of its model settings and requests."""
    digest = hashlib.sha256(json.dumps([fingerprint, round_, keys]).encode()).hexdigest()[:20]
    return f"{job_display_prefix(task)}{digest} {task.name}"[:_MAX_DISPLAY_NAME]


def _record_positions(staged: _StagedPlan, record: Mapping[str, Any]) -> list[int]:
    positions = record["positions"]
    return list(range(len(staged.documents))) if positions is None else list(positions)


def _belongs(status: BatchJobStatus, record: Mapping[str, Any], count: int) -> bool:
    """Whether the job is the one ``record`` submitted: its display name and request count."""
    return status.display_name == record["display_name"] and status.request_count in (None, count)


def start_batch(task: EmbedTask, args: EmbedArguments, plan: EmbedPlan) -> BatchDecision | None:
    """
    Submit the plan's documents as one batch job, or re-attach to the job an earlier try submitted.

    :return: the job to wait for; or its result at once when the earlier job already succeeded; or ``None``
        when there is nothing to embed (the synchronous path then hands on the deletions without a request).
    """
    if not plan.to_embed:
        return None
    task.milvus_hook.close()  # the metadata-only rows are read when the job is done
    path = task.staging_folder / BATCH_PLAN_FILE
    store = task.state_store
    stored = store.get(STATE_STORE_KEY) if store is not None else None
    earlier, existed = _read_plan(task, path)
    if earlier is not None and earlier.fingerprint != plan.fingerprint:
        task.log.info(
            "The batch jobs of an earlier try were submitted with other model settings; not reusing them"
        )
        for record in earlier.jobs:
            if record["name"]:
                _cancel_if_abandoned(task, record["name"])
            _delete_files(task, [record.get("request_file")])
        earlier = None
    if earlier is not None:
        decision = _resume(task, args, earlier, stored)
        if decision is not None:
            return decision
    return _submit_fresh(task, args, plan, look_up=existed or bool(stored), stored=stored)


def _resume(
    task: EmbedTask, args: EmbedArguments, staged: _StagedPlan, stored: str | None
) -> BatchDecision | None:
    """Re-attach to the plan's job; ``None`` when the plan has to start afresh."""
    if stored and stored not in {record["name"] for record in staged.jobs}:
        task.log.warning(
            "The task state store names batch job %s, the request plan %s; following the plan",
            stored,
            staged.job_name,
        )
        _cancel_if_abandoned(task, stored)
    if not staged.jobs:
        return None
    record = staged.jobs[-1]
    count = len(_record_positions(staged, record))
    if record["name"] is None:  # the try died while submitting: the job may exist all the same
        found = _look_up(task, record["display_name"], None)
        if found is None:
            return _redo(task, args, staged)
        record["name"] = found.name
        _record_job(task, staged, found.name)
    name = str(record["name"])
    try:
        status = get_batch_job(task.gemini_hook, name)
    except GeminiAPIError as err:
        if err.http_status != 404:
            raise
        task.log.warning(
            "Gemini does not know batch job %s (purged, or submitted with another key); its texts are "
            "submitted again",
            name,
        )
        return _redo(task, args, staged)
    if not _belongs(status, record, count):
        task.log.warning(
            "Batch job %s is not the one this plan submitted (display name %r, %s requests; expected %r and "
            "%d); not using it",
            name,
            status.display_name,
            status.request_count,
            record["display_name"],
            count,
        )
        _cancel_if_abandoned(task, name)
        return _redo(task, args, staged)
    if status.state in RESUBMIT_STATES:
        task.log.info("Batch job %s of an earlier try ended %s; submitting a new one", name, status.state)
        return _redo(task, args, staged)
    task.log.info(
        "Re-attaching to Gemini batch job %s (%s) an earlier try submitted; nothing is sent again",
        name,
        status.state,
    )
    if status.succeeded:
        return _complete_now(task, args, name)
    if task.state_store is not None and stored != name:
        task.state_store.set(STATE_STORE_KEY, name)
    return BatchDecision(name, submitted_at=float(record.get("submitted_at") or staged.submitted_at))


def _redo(task: EmbedTask, args: EmbedArguments, staged: _StagedPlan) -> BatchDecision | None:
    """
    Drop the plan's last job (failed, unknown or not the plan's): ``None`` when it was the only one (the
    plan starts afresh), else its texts are submitted again, the earlier jobs' results kept.
    """
    record = staged.jobs.pop()
    _delete_files(task, [record.get("request_file")])
    if not staged.jobs:
        return None
    decision = _resubmit(task, args, staged, _record_positions(staged, record))
    if decision is None:  # every one of its documents changed meanwhile: complete with what is there
        return _complete_now(task, args, str(staged.job_name))
    return decision


def _submit_fresh(
    task: EmbedTask, args: EmbedArguments, plan: EmbedPlan, *, look_up: bool, stored: str | None
) -> BatchDecision:
    """Stage a new plan of the run's documents and submit it (or adopt its job, found by display name)."""
    wanted = {doc_id: key.index for doc_id, key in plan.to_embed.items()}
    documents = [doc for chunk in documents_to_embed(plan.source, plan.reader, wanted) for doc in chunk]
    if args.max_cost_usd is not None:
        tokens_per_minute = task.gemini_hook.settings.tokens_per_minute
        estimate = estimate_planned([documents], args, tokens_per_minute, task.log, batch=True)
        check_budget(estimate, args.max_cost_usd)
    keys = [[doc.id, doc.content_hash] for doc in documents]
    now = time.time()
    record = _job_record(_display_name(task, plan.fingerprint, 0, keys), None, now)
    staged = _StagedPlan(
        fingerprint=plan.fingerprint,
        documents=[[doc.id, doc.index, doc.content_hash] for doc in documents],
        metadata_only=[[doc_id, key.index, key.content_hash] for doc_id, key in plan.metadata_only.items()],
        collection_name=args.collection_name,
        delete_ids=plan.delete_ids,
        counts=plan.counts,
        text_max_length=plan.reader.text_max_length,
        id_max_length=plan.reader.id_max_length,
        tokens=_tokens(args, documents),
        submitted_at=now,
        jobs=[record],
        rounds=1,
    )
    path = task.staging_folder / BATCH_PLAN_FILE
    staged.write(path)  # before paying: a staging location that cannot be written fails here
    found = _look_up(task, record["display_name"], stored) if look_up else None
    if found is not None and found.request_count in (None, len(documents)):
        task.log.info(
            "Found batch job %s an earlier try submitted for these documents; nothing is sent again",
            found.name,
        )
        record["name"] = found.name
        _record_job(task, staged, found.name)
        if found.succeeded:
            return _complete_now(task, args, found.name)
        return BatchDecision(found.name, submitted_at=now)
    return _submit(task, args, staged, record, documents)


def _submit(
    task: EmbedTask,
    args: EmbedArguments,
    staged: _StagedPlan,
    record: dict[str, Any],
    documents: list[Document],
) -> BatchDecision:
    """Submit ``documents`` as the job of ``record`` (the plan's last), recording its name and files."""
    path = task.staging_folder / BATCH_PLAN_FILE

    def uploaded(file_name: str) -> None:
        record["request_file"] = file_name
        staged.write(path)

    job_name = submit_embedding_batch(
        task.gemini_hook,
        [doc.text for doc in documents],
        model=args.model.name,
        task_type=args.task_type,
        output_dimensionality=args.output_dimensionality,
        titles=[doc.title for doc in documents] if args.title_field is not None else None,
        display_name=record["display_name"],
        on_upload=uploaded,
    )
    record["name"] = job_name
    _record_job(task, staged, job_name)
    tokens = _tokens(args, documents)
    _log_cost(task, args, f"Submitted batch job {job_name} of {len(documents)} texts", tokens)
    return BatchDecision(job_name, submitted_at=float(record["submitted_at"]))


def _job_record(display_name: str, positions: list[int] | None, submitted_at: float) -> dict[str, Any]:
    """
    A job of the plan before it is submitted: its display name, the positions of its documents in the plan
    (``None``: all of them), and where its name and request file will be recorded.
    """
    return {
        "name": None,
        "display_name": display_name,
        "positions": positions,
        "request_file": None,
        "submitted_at": submitted_at,
    }


def _complete_now(task: EmbedTask, args: EmbedArguments, job_name: str) -> BatchDecision:
    """Complete the run with the job ``job_name`` that has already succeeded, as a decision."""
    outcome = complete_batch(task, args, {"status": "success", "job_name": job_name})
    return outcome if isinstance(outcome, BatchDecision) else BatchDecision(job_name, outcome)


def _record_job(task: EmbedTask, staged: _StagedPlan, job_name: str) -> None:
    staged.write(task.staging_folder / BATCH_PLAN_FILE)
    if task.state_store is not None:
        task.state_store.set(STATE_STORE_KEY, job_name)


def _resubmit(
    task: EmbedTask, args: EmbedArguments, staged: _StagedPlan, positions: Sequence[int]
) -> BatchDecision | None:
    """
    Submit the documents at ``positions`` again, in a new job added to the plan (those that changed or
    vanished meanwhile are left out); ``None`` when none is left to submit.
    """
    by_id = {staged.documents[position][0]: position for position in positions}
    wanted = {doc_id: staged.documents[position][1] for doc_id, position in by_id.items()}
    documents = [
        doc
        for chunk in documents_to_embed(task.chunked_source(), _reader(args, staged), wanted)
        for doc in chunk
        if doc.content_hash == staged.documents[by_id[doc.id]][2]
    ]
    again = [by_id[doc.id] for doc in documents]
    staged.gone = sorted(set(staged.gone) | (set(positions) - set(again)))
    if not documents:
        staged.write(task.staging_folder / BATCH_PLAN_FILE)
        return None
    keys = [[staged.documents[position][0], staged.documents[position][2]] for position in again]
    record = _job_record(_display_name(task, staged.fingerprint, staged.rounds, keys), again, time.time())
    staged.rounds += 1
    staged.jobs.append(record)
    staged.tokens += _tokens(args, documents)
    staged.write(task.staging_folder / BATCH_PLAN_FILE)
    return _submit(task, args, staged, record, documents)


def _look_up(task: EmbedTask, display_name: str, stored: str | None) -> BatchJobStatus | None:
    """
    The job named ``display_name`` that has not failed, if the service has one; every other job of this
    task instance still running (and the state store's job) is cancelled: nothing will use it.
    """
    hook = task.gemini_hook
    jobs = find_batch_jobs(hook, job_display_prefix(task))
    chosen = next(
        (job for job in jobs if job.display_name == display_name and job.state not in RESUBMIT_STATES), None
    )
    for job in jobs:
        if job is not chosen and not job.done:
            task.log.warning("Cancelling batch job %s of an earlier try: nothing uses it any more", job.name)
            cancel_batch_job(hook, job.name)
    if stored and stored not in {job.name for job in jobs}:
        _cancel_if_abandoned(task, stored)
    return get_batch_job(hook, chosen.name) if chosen is not None else None


def _cancel_if_abandoned(task: EmbedTask, name: str) -> None:
    """Cancel the job ``name`` when this task instance submitted it and it still runs; else leave it be."""
    try:
        status = get_batch_job(task.gemini_hook, name)
    except GeminiAPIError as err:
        if err.http_status != 404:
            raise
        return
    if status.done:
        return
    if not (status.display_name or "").startswith(job_display_prefix(task)):
        task.log.warning(
            "Batch job %s was not submitted by this task instance (display name %r); left as it is",
            name,
            status.display_name,
        )
        return
    task.log.warning("Cancelling batch job %s of an earlier try: nothing uses it any more", name)
    cancel_batch_job(task.gemini_hook, name)


def _delete_files(task: EmbedTask, names: Sequence[str | None]) -> None:
    for name in names:
        if name:
            delete_file(task.gemini_hook, name)


def complete_batch(
    task: EmbedTask, args: EmbedArguments, event: Mapping[str, Any]
) -> EmbedResult | BatchDecision:
    """
    Turn the trigger's event into the task's result: the rows of the documents in the job, inline or staged
    as in synchronous mode, with stats at the batch price; or, when some results were unusable, the new job
    that embeds only those texts again (a :class:`BatchDecision` to wait for).

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
        message = str(event.get("message") or f"Gemini batch job {job_name} failed")
        raise GeminiAPIError(f"{message} (a retry of the task submits its texts again)")
    path = task.staging_folder / BATCH_PLAN_FILE
    staged, _ = _read_plan(task, path)
    if staged is None or staged.job_name != job_name:
        raise GeminiAPIError(
            f"the request plan of batch job {job_name} is missing or unreadable at {path}; a retry of the "
            "task finds the job again by its display name, without paying twice"
        )
    inline = len(staged.documents) + len(staged.metadata_only) <= args.inline_max_rows
    with tempfile.TemporaryDirectory(prefix="gemini-batch-") as folder:
        vectors = _vector_store(folder, len(staged.documents), args.dim, in_memory=inline)
        problems, files = _read_results(task, args, staged, vectors)
        gone = set(staged.gone)
        unusable = sorted(position for position, (bad, _) in problems.items() if bad and position not in gone)
        if unusable and staged.rounds <= MAX_RESUBMISSIONS:
            task.log.warning(
                "%d texts got unusable results (documents[%d]: %s); submitting only those again, keeping the "
                "%d usable results",
                len(unusable),
                staged.documents[unusable[0]][1],
                problems[unusable[0]][1],
                len(staged.documents) - len(problems) - len(gone),
            )
            decision = _resubmit(task, args, staged, unusable)
            if decision is not None:
                return decision
            gone = set(staged.gone)
        items = [
            RefusedText(position, f"unusable result: {reason}" if bad else reason)
            for position, (bad, reason) in sorted(problems.items())
            if position not in gone
        ]
        refused = _refused(args, job_name, staged, items)
        output = _ResultRows(task, args, staged.fingerprint, inline=inline)
        embedded, changed = _hand_on_embedded(task, args, staged, vectors, set(problems) | gone, output)
    metadata_only = _hand_on_metadata_only(task, args, staged, output)
    stats = EmbeddingRunStats(
        model=args.model.name,
        texts=len(staged.documents),
        tokens=staged.tokens,
        requests=len(staged.jobs),
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
    _delete_files(task, files)  # the results are handed on: the Files API copies are no longer needed
    path.unlink()
    if task.state_store is not None:
        task.state_store.delete(STATE_STORE_KEY)
    return result


def _read_results(
    task: EmbedTask, args: EmbedArguments, staged: _StagedPlan, vectors: np.ndarray
) -> tuple[dict[int, tuple[bool, str]], list[str | None]]:
    """
    Read the results of every job of the plan into ``vectors`` (by position in ``documents``), later jobs
    over earlier ones.

    :return: the positions without a vector: ``(unusable, reason)``, ``unusable`` false for a refusal; and
        the Files API files of the plan (requests and results).
    """
    problems: dict[int, tuple[bool, str]] = {}
    files: list[str | None] = []
    for record in staged.jobs:
        positions = _record_positions(staged, record)
        files.append(record.get("request_file"))
        for position in positions:
            problems.pop(position, None)

        def keep(chosen: Sequence[int], rows: np.ndarray, positions: list[int] = positions) -> None:
            vectors[[positions[index] for index in chosen]] = rows

        name = str(record["name"])
        try:
            results = read_batch_results(task.gemini_hook, name, len(positions), dim=args.dim, on_result=keep)
        except GeminiAPIError as err:
            if err.http_status != 404:
                raise
            for position in positions:
                problems[position] = (True, f"the results of batch job {name} are gone")
            continue
        files.append(results.result_file)
        problems.update({positions[item.position]: (False, item.reason) for item in results.refused})
        problems.update({positions[item.position]: (True, item.reason) for item in results.unusable})
    return problems, files


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
    excluded: set[int],
    output: _ResultRows,
) -> tuple[int, int]:
    """
    Read the job's documents again, a chunk at a time, and hand on each unchanged one with its vector.

    :return: how many were handed on, and how many changed or vanished while the job ran (left out).
    """
    submitted = {doc_id: (position, digest) for position, (doc_id, _, digest) in enumerate(staged.documents)}
    wanted = {doc_id: index for doc_id, index, _ in staged.documents}
    unchanged = embedded = 0
    for chunk in documents_to_embed(task.chunked_source(), _reader(args, staged), wanted):
        kept = [doc for doc in chunk if doc.content_hash == submitted[doc.id][1]]
        unchanged += len(kept)
        kept = [doc for doc in kept if submitted[doc.id][0] not in excluded]
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


def _tokens(args: EmbedArguments, documents: Sequence[Document]) -> int:
    """The estimated tokens of ``documents`` as they are sent (with a task prefix, for a prompt model)."""
    return sum(
        estimate_tokens(args.model.sent_text(args.task_type, doc.text, doc.title)) for doc in documents
    )
