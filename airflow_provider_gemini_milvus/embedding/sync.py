"""
Synchronous mode of ``GeminiEmbedOperator``: the plan's documents sent through the hook, rows handed on.

:func:`run_inline` embeds a small run in one hook call and returns its rows in XCom. :func:`run_staged`
reads the documents a chunk at a time, sends one hook call per chunk and writes the rows to Parquet parts as
the requests finish (memory stays flat whatever the corpus size); a retry of the task reuses the parts its
earlier tries wrote. Both hand on the metadata-only documents with their stored vectors, without a request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_gemini_milvus.embedding.changes import refresh_metadata
from airflow_provider_gemini_milvus.embedding.cost import check_budget, estimate_planned
from airflow_provider_gemini_milvus.embedding.inputs import documents_to_embed
from airflow_provider_gemini_milvus.embedding.outputs import (
    LISTED_REFUSALS,
    PartSink,
    dag_run_state,
    inline_result,
    inline_rows,
    staged_result,
    stats_dict,
    sum_stats,
)
from airflow_provider_gemini_milvus.embedding.plan import EMBED_CHUNK_DOCUMENTS, planned_chunks
from airflow_provider_gemini_milvus.gemini.requests import EmbeddingRunStats

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    import numpy as np

    from airflow_provider_gemini_milvus.embedding.inputs import Document, EmbedArguments
    from airflow_provider_gemini_milvus.embedding.outputs import InlineResult
    from airflow_provider_gemini_milvus.embedding.plan import EmbedPlan, EmbedTask
    from airflow_provider_gemini_milvus.staging.manifest import ManifestXCom

__all__ = ["run_inline", "run_staged"]


def run_inline(task: EmbedTask, args: EmbedArguments, plan: EmbedPlan) -> InlineResult:
    """Embed the plan's documents in one hook call and return their rows in XCom."""
    stats = EmbeddingRunStats(
        usd_per_million_tokens=args.model.usd_per_million_tokens,
        media_usd_per_million_tokens=args.model.media_usd_per_million_tokens,
    )
    rows: list[dict[str, Any]] = []
    refused: list[dict[str, Any]] = []
    wanted = {doc_id: key.index for doc_id, key in {**plan.to_embed, **plan.metadata_only}.items()}
    documents = [doc for chunk in documents_to_embed(plan.source, plan.reader, wanted) for doc in chunk]
    if args.max_cost_usd is not None:
        planned = [doc for doc in documents if doc.id in plan.to_embed]
        _check_budget(task, args, [planned])
    refreshed: list[dict[str, Any]] = []
    gone: list[str] = []
    if plan.metadata_only:
        # Stored float32 values go out exactly (not rounded), so the row keeps the very same vector.
        gone = _refresh_metadata(
            task,
            args,
            plan,
            [[doc for doc in documents if doc.id in plan.metadata_only]],
            lambda batch: refreshed.extend({**row, "vector": row["vector"].tolist()} for row in batch),
        )
    task.milvus_hook.close()  # nothing more to read: the Milvus Lite file is free while Gemini answers
    documents = [doc for doc in documents if doc.id in plan.to_embed or doc.id in gone]
    if documents:
        vectors, stats, refused = _embed(task, documents, args)
        refused_ids = {item["id"] for item in refused}
        kept = [index for index, doc in enumerate(documents) if doc.id not in refused_ids]
        rows = inline_rows([documents[i] for i in kept], vectors[kept], plan.fingerprint)
    return inline_result(
        rows + refreshed,
        args,
        plan.fingerprint,
        plan.delete_ids,
        refused,
        stats_dict(plan.counts, stats, len(refused)),
    )


def run_staged(task: EmbedTask, args: EmbedArguments, plan: EmbedPlan) -> ManifestXCom:
    """
    Embed the plan's documents a chunk at a time into Parquet parts and return the manifest.

    Parts an earlier try of the task instance staged with the same settings are kept, and their documents
    are not sent again.
    """
    from airflow_provider_gemini_milvus import staging

    directory = task.staging_folder
    keep_days = staging.configured_keep_days()
    if keep_days is not None:
        root = staging.staging_root(args.staging_uri)
        removed = staging.clean_staging(
            root, keep_days=keep_days, exclude=[directory], run_state=dag_run_state
        )
        if removed:
            task.log.info("Removed %d staged run folders older than %g days", removed, keep_days)
    # Rows an earlier try staged are reused only where their document is still in the source with the
    # same content and settings, each once: the rest are dropped from their parts (the documents may have
    # changed between the tries), so the manifest holds exactly the current source, paid for once.
    current = {doc_id: key.content_hash for doc_id, key in {**plan.metadata_only, **plan.to_embed}.items()}
    reused = staging.reuse_staged_parts(directory, current, plan.fingerprint, args.dim)
    earlier_parts, already = reused.parts, reused.hashes
    if reused.dropped:
        task.log.info(
            "Dropped %d rows an earlier try staged: their documents are gone, changed or repeated, or were "
            "embedded with other settings",
            reused.dropped,
        )
    wanted, refresh = (
        {doc_id: key.index for doc_id, key in keys.items() if already.get(doc_id) != key.content_hash}
        for keys in (plan.to_embed, plan.metadata_only)
    )
    if earlier_parts:
        task.log.info(
            "Reusing %d parts (%d rows) an earlier try staged in %s; %d documents left to embed",
            len(earlier_parts),
            sum(part.rows for part in earlier_parts),
            directory,
            len(wanted),
        )
    if args.max_cost_usd is not None:
        _check_budget(task, args, planned_chunks(task, plan, wanted, staged=True))
    sink = PartSink(staging.PartWriter(directory, args.dim), plan.fingerprint, args.part_rows)
    stats = EmbeddingRunStats(
        usd_per_million_tokens=args.model.usd_per_million_tokens,
        media_usd_per_million_tokens=args.model.media_usd_per_million_tokens,
    )
    refused: list[dict[str, Any]] = []
    chunked_source = plan.source.reopened(EMBED_CHUNK_DOCUMENTS)
    try:
        if refresh:
            gone = _refresh_metadata(
                task, args, plan, documents_to_embed(chunked_source, plan.reader, refresh), sink.add_rows
            )
            wanted.update({doc_id: plan.metadata_only[doc_id].index for doc_id in gone})
        task.milvus_hook.close()  # nothing more to read: the Milvus Lite file is free while Gemini answers
        for documents in documents_to_embed(chunked_source, plan.reader, wanted):
            sink.start(documents)
            _, call_stats, call_refused = _embed(task, documents, args, on_result=sink.add)
            stats = sum_stats(stats, call_stats)
            refused.extend(call_refused)
    finally:
        # Also on failure: whatever was paid for is staged, and the retry will not pay for it again.
        sink.flush()
    parts = [*earlier_parts, *sink.parts]
    result = staged_result(
        directory,
        parts,
        args,
        plan.fingerprint,
        plan.delete_ids,
        refused,
        stats_dict(plan.counts, stats, len(refused)),
    )
    task.log.info("Staged %d rows in %d parts under %s", result["rows"], len(parts), directory)
    return result


def _check_budget(task: EmbedTask, args: EmbedArguments, chunks: Iterable[Sequence[Document]]) -> None:
    tokens_per_minute = task.gemini_hook.settings.tokens_per_minute
    check_budget(estimate_planned(chunks, args, tokens_per_minute, task.log, batch=False), args.max_cost_usd)


def _embed(
    task: EmbedTask,
    documents: Sequence[Document],
    args: EmbedArguments,
    on_result: Callable[[Sequence[int], np.ndarray], None] | None = None,
) -> tuple[Any, EmbeddingRunStats, list[dict[str, Any]]]:
    """One hook call: the vectors (None when streamed), its stats and the documents Gemini refused."""
    result = task.gemini_hook.embed_with_stats(
        [doc.text for doc in documents],
        model=args.model.name,
        task_type=args.task_type,
        output_dimensionality=args.output_dimensionality,
        titles=[doc.title for doc in documents] if args.title_field is not None else None,
        batch_size=args.batch_size,
        max_concurrency=args.max_concurrency,
        on_result=on_result,
        on_document_error=args.on_document_error,
        media=[doc.media.part() if doc.media else None for doc in documents] if args.media_field else None,
    )
    refused = [
        {
            "index": documents[item.position].index,
            "id": documents[item.position].id,
            "reason": item.reason,
        }
        for item in result.refused
    ]
    for item in refused[:LISTED_REFUSALS]:
        task.log.warning(
            "Gemini refused documents[%d] (id %r): %s", item["index"], item["id"], item["reason"]
        )
    return (None if on_result is not None else result.vectors), result.stats, refused


def _refresh_metadata(
    task: EmbedTask,
    args: EmbedArguments,
    plan: EmbedPlan,
    chunks: Iterable[Sequence[Document]],
    emit: Callable[[list[dict[str, Any]]], None],
) -> list[str]:
    """Emit metadata-only rows with their stored vectors; return the ids whose row vanished meanwhile."""
    gone = refresh_metadata(task.milvus_hook, str(args.collection_name), chunks, plan.fingerprint, emit)
    if gone:
        task.log.info("%d stored rows vanished since the diff; embedding them instead", len(gone))
        plan.counts["metadata_only"] -= len(gone)
        plan.counts["embedded"] += len(gone)
    return gone
