"""
Rows that belong to a source: the chunks of one file (or of one source document), found by the
``source_id`` in their metadata, so a run can clean up per source and skip a source that did not change.

Each chunk row's metadata holds ``source_id`` (the file's URI or the source document's id),
``source_hash`` (what the source's content and the chunking hashed to when the row was written) and
``chunk_count`` (how many chunks the source had then).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from airflow_provider_gemini_milvus.milvus.layout import FIELD_ID, FIELD_METADATA, FIELD_MODEL
from airflow_provider_gemini_milvus.milvus.rows import milvus_string_literal

__all__ = [
    "CHUNK_COUNT_KEY",
    "SOURCE_HASH_KEY",
    "SOURCE_ID_KEY",
    "SourceRow",
    "source_filter",
    "source_row",
]

SOURCE_ID_KEY = "source_id"
SOURCE_HASH_KEY = "source_hash"
CHUNK_COUNT_KEY = "chunk_count"
_WILDCARDS = ("%", "_")


@dataclass(frozen=True)
class SourceRow:
    """
    One stored chunk of a source.

    :param id: the row's id.
    :param source_id: its source.
    :param source_hash: its source's hash when it was written (None on rows written without one).
    :param chunk_count: how many chunks its source had then (None likewise).
    :param model: the row's ``model`` fingerprint.
    """

    id: str
    source_id: str
    source_hash: str | None
    chunk_count: int | None
    model: str


def source_filter(prefix: str | None) -> str:
    """
    The Milvus filter of rows that carry a ``source_id``, starting with ``prefix`` when one is given.

    ``like`` treats ``%`` and ``_`` as wildcards, so the pattern stops at the first of them: it may match
    more sources than ``prefix`` does, which the caller filters out again, never fewer.
    """
    path = f'{FIELD_METADATA}["{SOURCE_ID_KEY}"]'
    if prefix is None:
        return f"exists {path}"
    cut = min([prefix.index(char) for char in _WILDCARDS if char in prefix], default=len(prefix))
    return f"{path} like {milvus_string_literal(prefix[:cut] + '%')}"


def source_row(row: dict[str, Any]) -> SourceRow | None:
    """A queried row (id, model, metadata) as a :class:`SourceRow`; None when it has no ``source_id``."""
    metadata = row.get(FIELD_METADATA) or {}
    source_id = metadata.get(SOURCE_ID_KEY) if isinstance(metadata, dict) else None
    if not isinstance(source_id, str):
        return None
    source_hash = metadata.get(SOURCE_HASH_KEY)
    chunk_count = metadata.get(CHUNK_COUNT_KEY)
    if isinstance(chunk_count, bool) or not isinstance(chunk_count, int):
        chunk_count = None
    return SourceRow(
        id=str(row[FIELD_ID]),
        source_id=source_id,
        source_hash=source_hash if isinstance(source_hash, str) else None,
        chunk_count=chunk_count
        if isinstance(chunk_count, int) and not isinstance(chunk_count, bool)
        else None,
        model=str(row.get(FIELD_MODEL) or ""),
    )
