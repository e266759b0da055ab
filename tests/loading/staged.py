"""Staged manifests the loading tests load: parts written as the embedding operator writes them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_gemini_milvus.staging import PartWriter, StagedManifest, write_id_list

if TYPE_CHECKING:
    from pathlib import Path

DIM = 4


def stage(
    folder: Path, batches: list[list[dict[str, Any]]], deletes: list[str] | None = None
) -> StagedManifest:
    """One part per batch of rows under ``folder``, and a list of ids to delete if ``deletes`` is given."""
    writer = PartWriter(folder, DIM)
    parts = [writer.write(batch) for batch in batches]
    return StagedManifest(
        parts=parts,
        rows=sum(part.rows for part in parts),
        dim=DIM,
        model=f"m/{DIM}/RETRIEVAL_DOCUMENT",
        task_type="RETRIEVAL_DOCUMENT",
        delete_ids_uri=write_id_list(folder, deletes) if deletes else None,
        delete_count=len(deletes or []),
        folder=parts[0].uri.rpartition("/")[0] if parts else None,
    )
