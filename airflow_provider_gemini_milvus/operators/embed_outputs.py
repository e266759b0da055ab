"""
What ``GeminiEmbedOperator`` hands on: rows inline in XCom for a small run, or Parquet parts in the staging
location and a small manifest for any size, written as the Gemini requests finish.
"""

from __future__ import annotations

from dataclasses import fields, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from airflow_provider_gemini_milvus.gemini_requests import EmbeddingRunStats

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow_provider_gemini_milvus.operators.embed_inputs import Document
    from airflow_provider_gemini_milvus.staging import PartWriter, StagedPart

__all__ = ["VECTOR_DECIMALS", "PartSink", "inline_rows", "row_of", "sum_stats"]

#: Decimal places kept of each vector value in XCom: far below float32 noise for cosine search,
#: and half the JSON size of full float repr.
VECTOR_DECIMALS = 8


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
        if item.name not in ("model", "usd_per_million_tokens")
    }
    return replace(total, **added)


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
