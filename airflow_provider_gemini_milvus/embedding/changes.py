"""
Pay only for what changes the vector: an incremental run's diff against the collection, and the rows of
documents whose metadata alone changed, rebuilt from their stored vectors without a Gemini request.

A stored ``content_hash`` is ``<embedding-input hash>:<metadata hash>``
(:func:`~airflow_provider_gemini_milvus.milvus.rows.content_hash`) and the ``model`` field records model,
dimensionality and task type, so each incoming document is new, changed (text, title or model setting:
re-embedded), metadata-only (the stored vector is kept) or unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_gemini_milvus.embedding.outputs import row_of
from airflow_provider_gemini_milvus.milvus.rows import VECTOR_QUERY_BATCH, chunked, embedding_part

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

    from airflow_provider_gemini_milvus.embedding.inputs import Document, DocumentKey
    from airflow_provider_gemini_milvus.hooks.milvus import MilvusHook

__all__ = ["Changes", "check_delete_fraction", "classify_changes", "refresh_metadata"]


@dataclass(frozen=True)
class Changes:
    """
    How this run's documents differ from the stored rows.

    :param new: documents not stored yet.
    :param changed: documents stored with another text, title or model setting (or a hash without an
        embedding-input half, written before it had one); both ``new`` and ``changed`` are embedded.
    :param metadata_only: documents stored with the same text, title and model setting but other metadata.
    :param unchanged: how many documents are stored exactly as they are.
    :param other_model: how many of ``changed`` were stored with another model, dimension or task type.
    """

    new: dict[str, DocumentKey]
    changed: dict[str, DocumentKey]
    metadata_only: dict[str, DocumentKey]
    unchanged: int
    other_model: int

    @property
    def to_embed(self) -> dict[str, DocumentKey]:
        """The documents a run sends to Gemini: new and changed, in source order."""
        return {**self.new, **self.changed}

    def counts(self) -> dict[str, int]:
        """JSON-safe counts: ``new``, ``changed``, ``metadata_only``, ``unchanged``."""
        return {
            "new": len(self.new),
            "changed": len(self.changed),
            "metadata_only": len(self.metadata_only),
            "unchanged": self.unchanged,
        }


def classify_changes(
    keys: Mapping[str, DocumentKey], stored: Mapping[str, tuple[str, str]], fingerprint: str
) -> Changes:
    """
    Sort every document by what the stored row of its id needs.

    :param keys: this run's documents, ``{id: DocumentKey}``.
    :param stored: ``{id: (content_hash, model)}`` of the stored rows (any subset of the ids).
    :param fingerprint: this run's ``model`` value (model, dimensionality, task type).
    """
    new: dict[str, DocumentKey] = {}
    changed: dict[str, DocumentKey] = {}
    metadata_only: dict[str, DocumentKey] = {}
    unchanged = other_model = 0
    for doc_id, key in keys.items():
        row = stored.get(doc_id)
        if row is None:
            new[doc_id] = key
            continue
        stored_hash, stored_model = row
        if stored_model != fingerprint:
            other_model += 1
            changed[doc_id] = key
        elif stored_hash == key.content_hash:
            unchanged += 1
        elif embedding_part(stored_hash) == embedding_part(key.content_hash):
            metadata_only[doc_id] = key
        else:
            changed[doc_id] = key
    return Changes(new, changed, metadata_only, unchanged, other_model)


def refresh_metadata(
    hook: MilvusHook,
    collection: str,
    chunks: Iterable[Sequence[Document]],
    fingerprint: str,
    emit: Callable[[list[dict[str, Any]]], None],
) -> list[str]:
    """
    Hand on rows with the stored vector and this run's metadata and hash, for metadata-only documents.

    Vectors are read by id, :data:`~airflow_provider_gemini_milvus.milvus.rows.VECTOR_QUERY_BATCH` at a
    time, and the rows emitted a batch at a time, so a large metadata edit is never held in memory at once.
    The hook is closed at the end (a Milvus Lite file is then free for other tasks).

    :param hook: the collection's hook.
    :param collection: the collection name.
    :param chunks: the metadata-only documents, read again from the source a chunk at a time.
    :param fingerprint: the ``model`` value of the rows.
    :param emit: takes each list of rows (vectors are float32 arrays).
    :return: the ids whose row vanished since the diff (deleted meanwhile): they must be embedded.
    """
    gone: list[str] = []
    try:
        for chunk in chunks:
            for batch in chunked(chunk, VECTOR_QUERY_BATCH):
                vectors = hook.fetch_vectors(collection, [document.id for document in batch])
                rows = [row_of(doc, vectors[doc.id], fingerprint) for doc in batch if doc.id in vectors]
                gone.extend(doc.id for doc in batch if doc.id not in vectors)
                if rows:
                    emit(rows)
    finally:
        hook.close()
    return gone


def check_delete_fraction(to_delete: int, stored: int, max_delete_fraction: float) -> None:
    """Refuse to delete more than ``max_delete_fraction`` of the stored rows: a truncated source."""
    if stored and to_delete > max_delete_fraction * stored:
        raise ValueError(
            f"delete_missing would delete {to_delete} of the {stored} stored rows "
            f"({to_delete / stored:.0%}), more than max_delete_fraction={max_delete_fraction:g} allows; "
            "if the source really shrank, raise max_delete_fraction (1.0 allows any deletion)"
        )
