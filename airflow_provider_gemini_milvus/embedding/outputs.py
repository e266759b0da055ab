"""
What ``GeminiEmbedOperator`` hands on: rows inline in XCom for a small run, or Parquet parts in the staging
location and a small manifest for any size, written as the Gemini requests finish.

Synchronous and batch mode build their results here, so ``MilvusInsertOperator`` takes either.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import fields, replace
from typing import TYPE_CHECKING, Any, TypedDict

import numpy as np

from airflow_provider_gemini_milvus.gemini.requests import EmbeddingRunStats
from airflow_provider_gemini_milvus.staging.manifest import ManifestXCom

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context, ObjectStoragePath

    from airflow_provider_gemini_milvus.embedding.inputs import Document, EmbedArguments
    from airflow_provider_gemini_milvus.staging import PartWriter, StagedPart

__all__ = [
    "EmbedResult",
    "InlineResult",
    "LISTED_REFUSALS",
    "VECTOR_DECIMALS",
    "PartSink",
    "inline_result",
    "inline_rows",
    "row_of",
    "staged_result",
    "stats_dict",
    "dag_run_state",
    "sum_stats",
    "task_instance_folder",
]

log = logging.getLogger(__name__)

#: Decimal places kept of each vector value in XCom: far below float32 noise for cosine search,
#: and half the JSON size of full float repr.
VECTOR_DECIMALS = 8
#: How many refused documents a result lists by name (all are counted).
LISTED_REFUSALS = 100


class InlineResult(TypedDict):
    """What a small run returns through XCom: its rows, the ids to delete and the stats."""

    rows: list[dict[str, Any]]
    delete_ids: list[str]
    dim: int
    model: str
    task_type: str
    skipped_documents: list[dict[str, Any]]
    stats: dict[str, Any]


#: What an embedding run returns through XCom: rows inline, or the manifest of staged parts.
EmbedResult = InlineResult | ManifestXCom


def row_of(document: Document, vector: Any, fingerprint: str) -> dict[str, Any]:
    """The row Milvus stores for ``document``."""
    return {
        "id": document.id,
        "vector": vector,
        "text": document.text,
        "content_hash": document.content_hash,
        "model": fingerprint,
        "metadata": document.metadata,
    }


def inline_rows(documents: Sequence[Document], vectors: np.ndarray, fingerprint: str) -> list[dict[str, Any]]:
    """JSON-safe rows for XCom, vectors rounded to :data:`VECTOR_DECIMALS`."""
    rounded = np.round(vectors.astype(np.float64), VECTOR_DECIMALS).tolist()
    return [row_of(doc, vector, fingerprint) for doc, vector in zip(documents, rounded, strict=True)]


def sum_stats(total: EmbeddingRunStats, more: EmbeddingRunStats) -> EmbeddingRunStats:
    """Counts of two embedding calls added up (the model and its price are the first's)."""
    added = {
        item.name: getattr(total, item.name) + getattr(more, item.name)
        for item in fields(EmbeddingRunStats)
        if item.name not in ("model", "usd_per_million_tokens", "media_usd_per_million_tokens")
    }
    return replace(total, **added)


def stats_dict(counts: dict[str, int], stats: EmbeddingRunStats, refused: int) -> dict[str, Any]:
    """A result's ``stats``: the run's document counts, less the ``refused`` ones, and the calls' figures."""
    run = {key: value for key, value in stats.as_dict().items() if key not in ("model", "texts")}
    return {**counts, "embedded": counts["embedded"] - refused, "refused": refused, **run}


def inline_result(
    rows: list[dict[str, Any]],
    args: EmbedArguments,
    fingerprint: str,
    delete_ids: list[str],
    refused: list[dict[str, Any]],
    stats: dict[str, Any],
) -> InlineResult:
    """The XCom result of a small run: its rows, the ids to delete and the stats."""
    return {
        "rows": rows,
        "delete_ids": delete_ids,
        "dim": args.dim,
        "model": fingerprint,
        "task_type": args.task_type,
        "skipped_documents": refused[:LISTED_REFUSALS],
        "stats": stats,
    }


def staged_result(
    directory: ObjectStoragePath,
    parts: list[StagedPart],
    args: EmbedArguments,
    fingerprint: str,
    delete_ids: list[str],
    refused: list[dict[str, Any]],
    stats: dict[str, Any],
) -> ManifestXCom:
    """The XCom manifest of a staged run; the ids to delete are written next to its parts."""
    from airflow_provider_gemini_milvus import staging

    manifest = staging.StagedManifest(
        parts=parts,
        rows=sum(part.rows for part in parts),
        dim=args.dim,
        model=fingerprint,
        task_type=args.task_type,
        delete_ids_uri=staging.write_id_list(directory, delete_ids) if delete_ids else None,
        delete_count=len(delete_ids),
        stats=stats,
        skipped_documents=refused[:LISTED_REFUSALS],
        skipped_count=len(refused),
        folder=str(directory),
    )
    return manifest.to_xcom()


def task_instance_folder(
    context: Context, *, dag_id: str | None, task_id: str, staging_uri: str | None
) -> ObjectStoragePath:
    """
    This task instance's staging folder: the same for every try of it.

    :param context: the task's context (its ``ti`` names the task instance).
    :param dag_id: the operator's DAG id, for a run outside a task instance (``operator.execute({})``).
    :param task_id: the operator's task id, likewise.
    :param staging_uri: the operator's ``staging_uri`` (default: the configured staging root).
    """
    from airflow_provider_gemini_milvus import staging

    ti = context.get("ti") if isinstance(context, Mapping) else None
    if ti is None:  # called outside a task run, e.g. ``operator.execute({})`` in a script
        keys = {"dag_id": dag_id or "no_dag", "run_id": "manual", "task_id": task_id}
        map_index = -1
    else:
        keys = {"dag_id": ti.dag_id, "run_id": ti.run_id, "task_id": ti.task_id}
        map_index = getattr(ti, "map_index", -1)
    return staging.task_staging_dir(staging.staging_root(staging_uri), **keys, map_index=map_index)


def dag_run_state(dag_id: str, run_id: str) -> str | None:
    """
    The state of a DAG run (``"running"``, ``"success"``, ...) asked of the Airflow API server through the
    running task's supervisor, or None where that cannot be asked (outside a task run) or fails.

    Cleaning calls it only for runs whose staged files are already old, so it costs one small request per
    such run.
    """
    try:
        from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

        return str(RuntimeTaskInstance.get_dagrun_state(dag_id=dag_id, run_id=run_id))
    except Exception:  # no supervisor (a plain execute()), an unknown run, an older API: the age decides
        log.debug("The state of DAG run %s of %s is unknown here", run_id, dag_id, exc_info=True)
        return None


class PartSink:
    """
    Collects embedded rows as the requests finish and writes a Parquet part every ``part_rows`` rows.

    :meth:`flush` writes what is left; the operator calls it also when a call fails, so the rows already
    paid for are staged and a retry of the task does not send them again.

    :param writer: the staging part writer of this task instance.
    :param fingerprint: the ``model`` value of the rows.
    :param part_rows: rows per part.
    """

    def __init__(self, writer: PartWriter, fingerprint: str, part_rows: int) -> None:
        self.writer = writer
        self.fingerprint = fingerprint
        self.part_rows = part_rows
        self.parts: list[StagedPart] = []
        self.rows = 0
        self._buffer: list[dict[str, Any]] = []
        self._documents: Sequence[Document] = ()

    def start(self, documents: Sequence[Document]) -> None:
        """Set the documents the next embedding call's positions refer to."""
        self._documents = documents

    def add(self, positions: Sequence[int], vectors: np.ndarray) -> None:
        """Take the vectors of one finished request (``positions`` index the current documents)."""
        self.add_rows(
            [
                row_of(self._documents[position], vector, self.fingerprint)
                for position, vector in zip(positions, vectors, strict=True)
            ]
        )

    def add_rows(self, rows: Sequence[dict[str, Any]]) -> None:
        """Take finished rows (e.g. stored vectors with new metadata)."""
        self._buffer.extend(rows)
        if len(self._buffer) >= self.part_rows:
            self.flush()

    def flush(self) -> None:
        """Write the buffered rows as one part, if there are any."""
        if not self._buffer:
            return
        part = self.writer.write(self._buffer)
        self.parts.append(part)
        self.rows += part.rows
        self._buffer = []
