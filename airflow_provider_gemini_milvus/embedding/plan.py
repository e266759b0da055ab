"""
What an embedding run will do, decided before any request: the documents to embed, those handed on with
their stored vector, and the ids to delete.

:func:`plan_run` checks every document (naming ``documents[i]``), diffs them against the target collection
in incremental mode and returns an :class:`EmbedPlan`. :class:`EmbedTask` is what the engine needs of the
running task (its hooks, the documents argument, its staging folder): the operator builds it, the engine
never sees the operator.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from airflow_provider_gemini_milvus.embedding.changes import Changes, check_delete_fraction, classify_changes
from airflow_provider_gemini_milvus.embedding.chunked import ChunkedSource, StoredSources, source_deletions
from airflow_provider_gemini_milvus.embedding.cost import DryRunReport, dry_run_report, estimate_planned
from airflow_provider_gemini_milvus.embedding.inputs import DocumentReader, check_corpus, documents_to_embed
from airflow_provider_gemini_milvus.embedding.sources import open_document_source
from airflow_provider_gemini_milvus.files.chunking import ChunkingSpec
from airflow_provider_gemini_milvus.gemini.models import resolve_model
from airflow_provider_gemini_milvus.milvus.layout import (
    ID_MAX_LENGTH,
    TEXT_MAX_LENGTH,
    CollectionInfo,
    check_collection_matches,
)
from airflow_provider_gemini_milvus.milvus.rows import model_fingerprint

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from airflow.sdk import ObjectStoragePath

    from airflow_provider_gemini_milvus.embedding.inputs import Document, DocumentKey, EmbedArguments
    from airflow_provider_gemini_milvus.embedding.sources import DocumentSource
    from airflow_provider_gemini_milvus.hooks.gemini import GeminiHook
    from airflow_provider_gemini_milvus.hooks.milvus import MilvusHook
    from airflow_provider_gemini_milvus.utils.logs import TaskLogger

__all__ = ["EMBED_CHUNK_DOCUMENTS", "EmbedPlan", "EmbedTask", "dry_run", "plan_run", "planned_chunks"]

#: Documents sent to the hook per call while staging: enough requests to keep the concurrency busy.
EMBED_CHUNK_DOCUMENTS = 5000


@dataclass(frozen=True)
class EmbedTask:
    """
    What the engine needs of the running task.

    :param gemini_hook: the hook of the ``gemini`` connection.
    :param milvus_hook: the hook of the target collection's connection (used in incremental mode only).
    :param documents: the ``documents`` argument as rendered: reopened a chunk at a time when staging.
    :param staging_folder: this task instance's staging folder, the same for every try.
    :param log: the task's logger.
    :param name: ``dag_id.task_id``: names the batch job.
    :param state_store: Airflow's task state store (AIP-103) where the running Airflow has one.
    """

    gemini_hook: GeminiHook
    milvus_hook: MilvusHook
    documents: Any
    staging_folder: ObjectStoragePath
    log: TaskLogger
    name: str
    state_store: Any = None

    def chunked_source(self) -> DocumentSource:
        """The documents again, read :data:`EMBED_CHUNK_DOCUMENTS` at a time."""
        return open_document_source(self.documents, chunk_documents=EMBED_CHUNK_DOCUMENTS)


@dataclass(frozen=True)
class EmbedPlan:
    """
    What a run will do, decided before any request.

    :param source: the documents, as first opened.
    :param reader: reads and checks each document, with the target collection's limits.
    :param to_embed: the new and changed documents, by id.
    :param metadata_only: the documents handed on with their stored vector, by id.
    :param delete_ids: stored ids gone from the source (with ``delete_missing``).
    :param fingerprint: the rows' ``model`` value.
    :param counts: ``documents``, ``embedded``, ``metadata_only``, ``unchanged``, ``to_delete``.
    :param changes: the diff the plan came from.
    """

    source: DocumentSource
    reader: DocumentReader
    to_embed: dict[str, DocumentKey]
    metadata_only: dict[str, DocumentKey]
    delete_ids: list[str]
    fingerprint: str
    counts: dict[str, int]
    changes: Changes

    def staged(self, inline_max_rows: int) -> bool:
        """Whether the run's rows go to staged parts rather than XCom."""
        return len(self.to_embed) + len(self.metadata_only) > inline_max_rows


def plan_run(task: EmbedTask, args: EmbedArguments) -> EmbedPlan:
    """
    Check every document and decide what the run sends: in incremental mode only what is new or changed in
    the target collection, and the ids gone from the source with ``delete_missing``.

    The collection is opened once, for its description and the one pass over its rows, and left open for the
    metadata-only refresh that follows: the run closes ``task.milvus_hook`` before it waits on Gemini (a
    Milvus Lite file is then free for other tasks), and the operator closes it whatever happens.

    :raises ValueError: naming ``documents[i]``, before any request.
    :raises MilvusCollectionMismatchError: when the rows could never be loaded into the collection.
    """
    # The connection's API decides which models it serves (Vertex AI only ones are refused on the Gemini API).
    resolve_model(args.model.name, vertexai=task.gemini_hook.settings.vertexai)
    fingerprint = model_fingerprint(args.model.name, args.dim, args.task_type, args.model.request_format)
    collection = _target_collection(task, args)
    source: DocumentSource
    stored = StoredSources()
    if args.chunking is not None:
        source = _chunked_source(task, args)
        if collection is not None:
            stored = _stored_sources(task, args, source, fingerprint)
            source.skip_hashes = stored.current_hashes
    else:
        source = open_document_source(task.documents)
    reader = DocumentReader(
        args,
        text_max_length=(collection.text_max_length if collection else None) or TEXT_MAX_LENGTH,
        id_max_length=(collection.id_max_length if collection else None) or ID_MAX_LENGTH,
    )
    keys, count = check_corpus(source, reader, allow_empty=isinstance(source, ChunkedSource))
    if len(keys) < count:
        task.log.info("Dropped %d exact duplicate documents", count - len(keys))
    changes = Changes(new=keys, changed={}, metadata_only={}, unchanged=0, other_model=0)
    delete_ids: list[str] = []
    if collection is not None:
        changes, delete_ids = _changes_against_collection(task, keys, fingerprint, args)
    skipped_chunks = 0  # chunks of unchanged sources, not read again
    if isinstance(source, ChunkedSource):
        changes, delete_ids, skipped_chunks = _per_source(
            task, args, source, stored, changes, delete_ids, keys
        )
    to_embed = changes.to_embed
    task.log.info(
        "%d documents from %s: %d new, %d changed, %d metadata-only, %d unchanged, %d to delete",
        len(keys) + skipped_chunks,
        source.describe(),
        len(changes.new),
        len(changes.changed),
        len(changes.metadata_only),
        changes.unchanged,
        len(delete_ids),
    )
    counts = {
        "documents": len(keys) + skipped_chunks,
        "embedded": len(to_embed),
        "metadata_only": len(changes.metadata_only),
        "unchanged": changes.unchanged,
        "to_delete": len(delete_ids),
    }
    return EmbedPlan(
        source, reader, to_embed, changes.metadata_only, delete_ids, fingerprint, counts, changes
    )


def planned_chunks(
    task: EmbedTask, plan: EmbedPlan, wanted: Mapping[str, int], *, staged: bool
) -> Iterable[Sequence[Document]]:
    """The documents to send, grouped as the run's hook calls: one inline, one per chunk staged."""
    if staged:
        return documents_to_embed(plan.source.reopened(EMBED_CHUNK_DOCUMENTS), plan.reader, wanted)
    return [[doc for chunk in documents_to_embed(plan.source, plan.reader, wanted) for doc in chunk]]


def dry_run(task: EmbedTask, args: EmbedArguments, plan: EmbedPlan, *, batch: bool) -> DryRunReport:
    """
    What the run would send and cost, with nothing sent and nothing written; in batch mode (``batch``)
    ``estimated_cost_usd`` and the budget are at the batch price.
    """
    wanted = {doc_id: key.index for doc_id, key in plan.to_embed.items()}
    chunks = planned_chunks(task, plan, wanted, staged=plan.staged(args.inline_max_rows))
    tokens_per_minute = task.gemini_hook.settings.tokens_per_minute
    estimate = estimate_planned(chunks, args, tokens_per_minute, task.log, batch=batch)
    counts = {
        "documents": plan.counts["documents"],
        **plan.changes.counts(),
        "to_delete": len(plan.delete_ids),
    }
    return dry_run_report(plan.fingerprint, counts, estimate, args.max_cost_usd, task.log)


def _target_collection(task: EmbedTask, args: EmbedArguments) -> CollectionInfo | None:
    """
    In incremental mode, the existing collection, checked against this run's dimension.

    :raises MilvusCollectionMismatchError: before any request, when the rows could never be loaded.
    """
    if args.collection_name is None:
        return None
    info = task.milvus_hook.describe(args.collection_name)
    if info is not None:
        check_collection_matches(info, dim=args.dim)
    return info


def _changes_against_collection(
    task: EmbedTask, keys: dict[str, DocumentKey], fingerprint: str, args: EmbedArguments
) -> tuple[Changes, list[str]]:
    """How the documents differ from their stored rows, and the ids gone from the source."""
    collection = str(args.collection_name)
    delete_ids: list[str] = []
    if args.delete_missing:
        # One scan of the collection gives both what is stored and what vanished.
        stored = dict(task.milvus_hook.iter_fingerprints(collection))
        delete_ids = sorted(set(stored) - set(keys))
        check_delete_fraction(len(delete_ids), len(stored), args.max_delete_fraction)
    else:
        stored = task.milvus_hook.fetch_fingerprints(collection, list(keys))
    changes = classify_changes(keys, stored, fingerprint)
    if changes.other_model:
        task.log.info(
            "%d stored rows were embedded with another model setting; re-embedding", changes.other_model
        )
    return changes, delete_ids


def _chunked_source(task: EmbedTask, args: EmbedArguments) -> ChunkedSource:
    """The sources of a ``chunking`` run, with the model's limit checked against the chunk size."""
    spec = args.chunking or ChunkingSpec()
    spec.check_model(args.model)
    return ChunkedSource(
        task.documents,
        spec=spec,
        id_field=args.id_field,
        text_field=args.text_field,
        title_field=args.title_field,
        shard=args.source_shard,
    )


def _stored_sources(
    task: EmbedTask, args: EmbedArguments, source: ChunkedSource, fingerprint: str
) -> StoredSources:
    """One scan of the chunks the target collection holds of the sources in scope."""
    rows = task.milvus_hook.iter_source_rows(str(args.collection_name), prefix=source.folder_prefix)
    return StoredSources.from_rows(rows, fingerprint)


def _per_source(
    task: EmbedTask,
    args: EmbedArguments,
    source: ChunkedSource,
    stored: StoredSources,
    changes: Changes,
    delete_ids: list[str],
    keys: dict[str, DocumentKey],
) -> tuple[Changes, list[str], int]:
    """
    Count the chunks of unchanged sources as unchanged; with ``delete_missing="source"``, the deletions.
    Also return how many chunks the unchanged sources have.
    """
    skipped = sum(len(stored.ids_by_source[source_id]) for source_id in source.unchanged)
    if source.unchanged:
        task.log.info(
            "%d sources unchanged since their chunks were stored (%d chunks): not read again",
            len(source.unchanged),
            skipped,
        )
    changes = replace(changes, unchanged=changes.unchanged + skipped)
    if args.delete_per_source:
        delete_ids, in_scope = source_deletions(source, stored, keys)
        check_delete_fraction(len(delete_ids), in_scope, args.max_delete_fraction)
    return changes, delete_ids, skipped
