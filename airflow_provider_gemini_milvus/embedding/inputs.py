"""
What ``GeminiEmbedOperator`` reads: its converted arguments, and the documents, checked one by one.

Documents are read twice from their :class:`~airflow_provider_gemini_milvus.embedding.sources.DocumentSource`:
:func:`check_corpus` checks every document before anything is paid for and keeps only a small key per id;
:func:`documents_to_embed` reads them again, a chunk at a time, for the ones that must be embedded. A corpus
of any size is never held in memory at once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_provider_gemini_milvus.embedding.media import read_media
from airflow_provider_gemini_milvus.gemini.requests import check_sendable
from airflow_provider_gemini_milvus.milvus.rows import check_id, check_text, content_hash
from airflow_provider_gemini_milvus.utils.unicode import check_utf8_encodable

if TYPE_CHECKING:
    from airflow_provider_gemini_milvus.embedding.chunked import SourceShard
    from airflow_provider_gemini_milvus.embedding.media import DocumentMedia
    from airflow_provider_gemini_milvus.embedding.sources import DocumentSource, SourcedDocument
    from airflow_provider_gemini_milvus.files.chunking import ChunkingSpec
    from airflow_provider_gemini_milvus.gemini.models import EmbeddingModel, TaskType
    from airflow_provider_gemini_milvus.gemini.requests import OnDocumentError

__all__ = [
    "Document",
    "DocumentKey",
    "DocumentReader",
    "EmbedArguments",
    "check_corpus",
    "documents_to_embed",
    "text_id",
]


@dataclass(frozen=True)
class EmbedArguments:
    """The operator's arguments after rendering, converted and checked once."""

    model: EmbeddingModel
    task_type: TaskType
    output_dimensionality: int | None
    dim: int
    text_field: str
    id_field: str
    title_field: str | None
    metadata_fields: list[str] | None
    media_field: str | None
    batch_size: int
    max_concurrency: int | None
    collection_name: str | None
    delete_missing: bool
    max_delete_fraction: float
    staging_uri: str | None
    inline_max_rows: int
    part_rows: int
    on_document_error: OnDocumentError
    dry_run: bool = False
    max_cost_usd: float | None = None
    chunking: ChunkingSpec | None = None
    delete_per_source: bool = False
    source_shard: SourceShard | None = None


@dataclass(frozen=True)
class Document:
    """One checked input document."""

    id: str
    text: str
    title: str | None
    metadata: dict[str, Any]
    index: int = field(compare=False)
    """Position in the user's ``documents``."""
    where: str = field(compare=False, default="")
    """How messages name it: ``documents[7]`` or ``documents[7] (a.jsonl line 8)``."""
    media: DocumentMedia | None = field(compare=False, default=None)
    """Its image, PDF, recording or video, if it has one (its text may then be empty)."""

    @cached_property
    def content_hash(self) -> str:
        """What the row stores as ``content_hash`` (embedding input and metadata, hashed apart)."""
        media = f"{self.media.facts.mime_type}:{self.media.facts.sha256}" if self.media else None
        return content_hash(self.text, title=self.title, metadata=self.metadata, media=media)


@dataclass(frozen=True)
class DocumentKey:
    """What pass 1 keeps of a document: enough to decide whether to embed it, not its text."""

    index: int
    content_hash: str
    where: str


def text_id(text: str) -> str:
    """The stable id of a document given without one: SHA-256 of its UTF-8 text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def check_corpus(
    source: DocumentSource, reader: DocumentReader, *, allow_empty: bool = False
) -> tuple[dict[str, DocumentKey], int]:
    """
    Check every document; return ``{id: DocumentKey}`` in source order (exact repeats once) and the count.

    :param allow_empty: a source that yields nothing is fine (chunked sources that did not change).
    :raises ValueError: naming the first bad document, or an id used twice with different content.
    """
    keys: dict[str, DocumentKey] = {}
    count = 0
    for chunk in source.chunks():
        for sourced in chunk:
            count += 1
            document = reader.read(sourced)
            seen = keys.get(document.id)
            if seen is None:
                keys[document.id] = DocumentKey(document.index, document.content_hash, document.where)
            elif seen.content_hash != document.content_hash:
                raise ValueError(
                    f"{document.where} has id {document.id!r}, already used by {seen.where} "
                    "with different content"
                )
    if not count and not allow_empty:
        raise ValueError(f"documents is empty: nothing to embed (read {source.describe()})")
    return keys, count


def documents_to_embed(
    source: DocumentSource, reader: DocumentReader, wanted: Mapping[str, int]
) -> Iterator[list[Document]]:
    """
    Read the source again and yield, a chunk at a time, the documents whose ``wanted[id]`` is their index.

    Only the wanted positions are read and checked again (the plan checked every document): an incremental
    run with little to do passes over the rest without building them.

    :param wanted: id to the index of the one occurrence to embed.
    """
    positions = set(wanted.values())
    for chunk in source.chunks():
        documents = []
        for sourced in chunk:
            if sourced.index not in positions:
                continue
            document = reader.read(sourced)
            if wanted.get(document.id) == document.index:
                documents.append(document)
        if documents:
            yield documents


class DocumentReader:
    """Turns one raw document into a :class:`Document`, naming it in every error."""

    def __init__(self, args: EmbedArguments, *, text_max_length: int, id_max_length: int) -> None:
        self.args = args
        self.text_max_length = text_max_length
        self.id_max_length = id_max_length

    def read(self, sourced: SourcedDocument) -> Document:
        where, item = sourced.where, sourced.item
        if isinstance(item, str):
            text = self._text(where, item)
            self._check_prompted(where, text, None)
            return Document(text_id(text), text, None, {}, sourced.index, where)
        if not isinstance(item, Mapping):
            raise ValueError(f"{where} must be a string or a dict, got {type(item).__name__}")
        fields = self.args
        media = self._media(where, item)
        if media is not None and item.get(fields.text_field) is None:
            text = ""
        elif fields.text_field not in item:
            raise ValueError(f"{where} has no {fields.text_field!r} field (text_field)")
        else:
            text = self._text(where, item[fields.text_field])
        title = self._title(where, item)
        self._check_prompted(where, text, title)
        metadata = self._metadata(where, item)
        if media is not None:
            metadata[str(fields.media_field)] = media.descriptor()
        return Document(
            self._id(where, item.get(fields.id_field), media.facts.sha256 if media and not text else text),
            text,
            title,
            metadata,
            sourced.index,
            where,
            media,
        )

    def _media(self, where: str, item: Mapping[str, Any]) -> DocumentMedia | None:
        """The document's media (``media_field``), read and checked; None when it has none."""
        media_field = self.args.media_field
        if media_field is None or item.get(media_field) is None:
            return None
        if not self.args.model.embeds_media:
            raise ValueError(
                f"{where} has media in field {media_field!r}, but {self.args.model.name} embeds text only; "
                "use model='gemini-embedding-2' for images, PDFs, audio and video"
            )
        return read_media(item[media_field], f"{where} field {media_field!r}")

    def _check_prompted(self, where: str, text: str, title: str | None) -> None:
        """For a model that takes the task in the text, the text as sent (prefix, title) must fit too."""
        model = self.args.model
        if model.task_format == "prompt" and (text or title):
            sent = model.sent_text(self.args.task_type, text, title)
            check_sendable(f"{where} text with its task prefix", sent, model)

    def _text(self, where: str, text: Any) -> str:
        if not isinstance(text, str):
            raise ValueError(f"{where} text must be a string, got {type(text).__name__}")
        if not text.strip():
            raise ValueError(f"{where} text is empty or only whitespace")
        check_sendable(f"{where} text", text, self.args.model)
        return check_text(text, where, self.text_max_length)

    def _id(self, where: str, value: Any, text: str) -> str:
        if value is None:
            return text_id(text)
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise ValueError(
                f"{where} field {self.args.id_field!r} must be a string or an integer, "
                f"got {type(value).__name__}"
            )
        check_utf8_encodable(value, f"{where} id")
        return check_id(str(value), where, self.id_max_length)

    def _title(self, where: str, item: Mapping[str, Any]) -> str | None:
        title_field = self.args.title_field
        if title_field is None:
            return None
        title = item.get(title_field)
        if title is None:
            return None
        if not isinstance(title, str):
            raise ValueError(
                f"{where} field {title_field!r} (title_field) must be a string, got {type(title).__name__}"
            )
        check_sendable(f"{where} title", title, self.args.model)
        return title

    def _metadata(self, where: str, item: Mapping[str, Any]) -> dict[str, Any]:
        fields = self.args
        reserved = {fields.id_field, fields.text_field, fields.title_field, fields.media_field}
        if fields.metadata_fields is None:
            metadata = {key: value for key, value in item.items() if key not in reserved}
        else:
            metadata = {key: item[key] for key in fields.metadata_fields if key in item}
        check_utf8_encodable(metadata, f"{where} metadata")
        try:
            json.dumps(metadata, allow_nan=False)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{where} metadata is not JSON-serialisable: {err}") from None
        return metadata
