"""
Sources cut into chunks: files in a folder or bucket (Markdown, HTML, text; PDF and Office with the
``files`` extra), or source documents given as dicts, each split into chunks that are embedded as
documents of their own.

A source is one file (its ``source_id`` is its URI) or one source document (its id). Each chunk's row
stores, in its metadata, the source's ``source_id``, its ``position`` and ``heading_path``, the
``source_hash`` (the source's bytes and the chunking settings, hashed) and the source's ``chunk_count``.
On the next run a source whose stored chunks are all there, with the same ``source_hash`` and model, is
not even parsed: its chunks count as unchanged. Chunk ids come from the source and the chunk's own text
(:mod:`~airflow_provider_gemini_milvus.files.chunking`), so an edit re-embeds the chunks it touched, not the
rest of the file.

With ``delete_missing="source"`` a run deletes, for every source it read, the stored chunks that source no
longer produces, and for a listed folder, every chunk of a file gone from it; sources it did not cover
(another shard's, another folder's) are never touched (:func:`source_deletions`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_gemini_milvus.embedding.sources import DocumentSource, SourcedDocument
from airflow_provider_gemini_milvus.files.chunking import ChunkingSpec, chunk_text
from airflow_provider_gemini_milvus.files.listing import iter_files, open_location, source_id_of
from airflow_provider_gemini_milvus.files.loaders import LoadedText, load_file
from airflow_provider_gemini_milvus.milvus.source_rows import CHUNK_COUNT_KEY, SOURCE_HASH_KEY, SOURCE_ID_KEY

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from airflow_provider_gemini_milvus.milvus.source_rows import SourceRow

__all__ = [
    "CHUNK_METADATA_KEYS",
    "ChunkedSource",
    "SourceShard",
    "StoredSources",
    "source_deletions",
]

#: The metadata keys every chunk row carries.
CHUNK_METADATA_KEYS = (SOURCE_ID_KEY, "position", "heading_path", SOURCE_HASH_KEY, CHUNK_COUNT_KEY)
log = logging.getLogger(__name__)

#: Files whose skip reason is logged one by one; the rest are counted.
_LOGGED_SKIPS = 10


@dataclass(frozen=True)
class SourceShard:
    """
    The share of the sources one task covers: those whose ``source_id`` hashes to ``index`` modulo
    ``count``. Every shard lists the same folder; a source lands in the same shard on every run.
    """

    index: int
    count: int

    @classmethod
    def parse(cls, value: Any) -> SourceShard | None:
        """``"2/8"``, ``[2, 8]`` or ``(2, 8)`` (as a template renders it), or None for all sources."""
        if value is None or value == "":
            return None
        parts: Any = value.split("/") if isinstance(value, str) else value
        try:
            index, count = (int(str(part).strip()) for part in parts)
        except (TypeError, ValueError):
            raise ValueError(f"source_shard must look like '2/8' (shard 2 of 8), got {value!r}") from None
        if not 0 <= index < count:
            raise ValueError(f"source_shard {value!r}: the index must be at least 0 and below the count")
        return cls(index, count)

    def holds(self, source_id: str) -> bool:
        """Whether ``source_id`` belongs to this shard."""
        digest = hashlib.sha256(source_id.encode("utf-8", "surrogatepass")).digest()
        return int.from_bytes(digest[:8], "big") % self.count == self.index


@dataclass
class StoredSources:
    """
    What the target collection holds of the sources in scope, from one scan.

    :param ids_by_source: every stored chunk id, by source.
    :param current_hashes: the ``source_hash`` of each source whose stored chunks are complete (as many as
        its ``chunk_count``) and embedded with this run's model setting: such a source, unchanged, is
        skipped without being parsed.
    """

    ids_by_source: dict[str, list[str]] = field(default_factory=dict)
    current_hashes: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_rows(cls, rows: Iterable[SourceRow], fingerprint: str) -> StoredSources:
        """Group scanned rows by source and find the sources that are stored whole and current."""
        stored = cls()
        hashes: dict[str, set[str | None]] = {}
        counts: dict[str, set[int | None]] = {}
        current: dict[str, bool] = {}
        for row in rows:
            stored.ids_by_source.setdefault(row.source_id, []).append(row.id)
            hashes.setdefault(row.source_id, set()).add(row.source_hash)
            counts.setdefault(row.source_id, set()).add(row.chunk_count)
            current[row.source_id] = current.get(row.source_id, True) and row.model == fingerprint
        for source_id, ids in stored.ids_by_source.items():
            source_hash = next(iter(hashes[source_id])) if len(hashes[source_id]) == 1 else None
            count = next(iter(counts[source_id])) if len(counts[source_id]) == 1 else None
            if source_hash is not None and count == len(ids) and current[source_id]:
                stored.current_hashes[source_id] = source_hash
        return stored


class ChunkedSource(DocumentSource):
    """
    Sources read and cut into chunks, each chunk one document (a dict with the operator's ``id_field``,
    ``text_field`` and ``title_field``, and the chunk metadata of :data:`CHUNK_METADATA_KEYS`).

    :param documents: a folder, file or bucket (URI or ``ObjectStoragePath``), or a list of source
        documents (strings, or dicts with the text under ``text_field``).
    :param spec: how to cut.
    :param id_field: the key of a chunk's (and a source document's) id.
    :param text_field: the key of its text.
    :param title_field: the key of its title (the source's title), or None to send none.
    :param shard: the share of the sources to read, or None for all.
    :param skip_hashes: ``source_id`` to the ``source_hash`` its stored chunks have: a source still
        hashing to it is not parsed, and counted in :attr:`unchanged`.
    :param chunk_documents: chunks per chunk of the stream.
    """

    def __init__(
        self,
        documents: Any,
        *,
        spec: ChunkingSpec,
        id_field: str,
        text_field: str,
        title_field: str | None,
        shard: SourceShard | None = None,
        skip_hashes: Mapping[str, str] | None = None,
        chunk_documents: int = 2048,
    ) -> None:
        self.spec = spec
        self.id_field = id_field
        self.text_field = text_field
        self.title_field = title_field
        self.shard = shard
        self.skip_hashes = dict(skip_hashes or {})
        #: Sources of this shard read (or skipped as unchanged) in the last pass.
        self.listed: set[str] = set()
        #: Unchanged sources of this shard, skipped without parsing, in the last pass.
        self.unchanged: set[str] = set()
        self._records: Sequence[Any] | None = None
        self._root: Any = None
        if isinstance(documents, (list, tuple)):
            super().__init__(documents, chunk_documents=chunk_documents)
            self._records = documents
        else:
            # A folder of files to load, not of JSONL / Parquet records: the base class's reading is not used.
            super().__init__([], chunk_documents=chunk_documents)
            self._root = open_location(documents)

    @property
    def folder_prefix(self) -> str | None:
        """The URI every listed file starts with (a folder's, with a ``/``); None for source documents."""
        if self._root is None:
            return None
        uri = source_id_of(self._root)
        return uri if uri.endswith("/") or not self._root.is_dir() else uri + "/"

    @property
    def is_inline(self) -> bool:
        """True for source documents given as a list, False for files."""
        return self._records is not None

    def reopened(self, chunk_documents: int) -> ChunkedSource:
        """The same sources, read again with other chunk sizes and the same skips."""
        return ChunkedSource(
            self._records if self._records is not None else self._root,
            spec=self.spec,
            id_field=self.id_field,
            text_field=self.text_field,
            title_field=self.title_field,
            shard=self.shard,
            skip_hashes=self.skip_hashes,
            chunk_documents=chunk_documents,
        )

    def describe(self) -> str:
        shard = f", shard {self.shard.index}/{self.shard.count}" if self.shard else ""
        what = f"a list of {len(self._records)} sources" if self._records is not None else str(self._root)
        return f"{what} in chunks{shard}"

    def _documents(self) -> Iterator[SourcedDocument]:
        self.listed = set()
        self.unchanged = set()
        index = 0
        for loaded, extra, name in self._loaded_sources():
            chunks = chunk_text(loaded, self.spec)
            source_hash = self._source_hash(loaded.content_hash)
            for chunk in chunks:
                item = {
                    **extra,
                    self.id_field: chunk.id,
                    self.text_field: chunk.text,
                    SOURCE_ID_KEY: chunk.source_id,
                    "position": chunk.position,
                    "heading_path": list(chunk.heading_path),
                    SOURCE_HASH_KEY: source_hash,
                    CHUNK_COUNT_KEY: len(chunks),
                }
                if self.title_field is not None:
                    item[self.title_field] = chunk.title
                yield SourcedDocument(index, item, f"documents[{index}] ({name} chunk {chunk.position})")
                index += 1

    def _source_hash(self, content_hash: str) -> str:
        settings = f"{self.spec.max_tokens}/{self.spec.overlap_tokens}/{int(self.spec.structure_aware)}"
        return hashlib.sha256(f"{content_hash}|{settings}".encode()).hexdigest()[:32]

    def _skip(self, source_id: str, content_hash: str) -> bool:
        """Record ``source_id`` as read; True when its stored chunks are current (it is then not parsed)."""
        self.listed.add(source_id)
        if self.skip_hashes.get(source_id) == self._source_hash(content_hash):
            self.unchanged.add(source_id)
            return True
        return False

    def _loaded_sources(self) -> Iterator[tuple[LoadedText, dict[str, Any], str]]:
        if self._records is not None:
            yield from self._loaded_records(self._records)
            return
        skipped = 0
        prefix = self.folder_prefix or ""
        for file in iter_files(self._root):
            if self.shard is not None and not self.shard.holds(file.source_id):
                continue
            if file.skipped:
                skipped += 1
                if skipped <= _LOGGED_SKIPS:
                    log.info("Skipped %s: %s", file.source_id, file.skip_reason)
                continue
            if self._skip(file.source_id, file.content_hash()):
                continue
            name = file.source_id.removeprefix(prefix) or file.source_id
            yield load_file(file), {}, name
        if skipped:
            log.info("Skipped %d files of types no loader reads", skipped)

    def _loaded_records(self, records: Sequence[Any]) -> Iterator[tuple[LoadedText, dict[str, Any], str]]:
        reserved = {self.id_field, self.text_field, self.title_field, *CHUNK_METADATA_KEYS}
        for position, given in enumerate(records):
            where = f"documents[{position}]"
            record = {self.text_field: given} if isinstance(given, str) else given
            if not isinstance(record, Mapping):
                raise ValueError(f"{where} must be a string or a dict, got {type(record).__name__}")
            text = record.get(self.text_field)
            if not isinstance(text, str):
                raise ValueError(f"{where} has no text under {self.text_field!r} (text_field)")
            source_id = record.get(self.id_field)
            if source_id is None:
                source_id = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
            if isinstance(source_id, bool) or not isinstance(source_id, (str, int)):
                raise ValueError(f"{where} id must be a string or an integer, got {type(source_id).__name__}")
            source_id = str(source_id)
            if self.shard is not None and not self.shard.holds(source_id):
                continue
            title = record.get(self.title_field) if self.title_field else None
            extra = {key: value for key, value in record.items() if key not in reserved}
            hashed = json.dumps(
                {"text": text, "title": title, "metadata": extra}, sort_keys=True, default=str
            )
            content_hash = hashlib.sha256(hashed.encode("utf-8", "surrogatepass")).hexdigest()
            if self._skip(source_id, content_hash):
                continue
            loaded = LoadedText(
                source_id=source_id,
                text=text,
                title=title if isinstance(title, str) and title else source_id,
                format="markdown",
                content_hash=content_hash,
            )
            yield loaded, extra, where


def source_deletions(
    source: ChunkedSource, stored: StoredSources, kept_ids: Iterable[str]
) -> tuple[list[str], int]:
    """
    The stored chunk ids a ``delete_missing="source"`` run deletes, and how many stored chunks were in its
    scope (for the mass-delete guard).

    In scope are the stored chunks of the sources this run covers: those of its shard among the sources it
    read, and for a folder, every source under the folder (a file gone from it). Out of scope, never
    touched: another shard's sources, another folder's, a source document this run was not given.
    Deleted are the chunks in scope that the run did not produce, except those of unchanged sources that
    were skipped unparsed.

    :param source: the chunked source after the run's first pass.
    :param stored: the scan of the target collection.
    :param kept_ids: the chunk ids this run produced.
    """
    kept = set(kept_ids)
    folder = source.folder_prefix is not None
    in_scope = 0
    deletions: list[str] = []
    for source_id, ids in stored.ids_by_source.items():
        if source.shard is not None and not source.shard.holds(source_id):
            continue
        if not (source_id in source.listed or folder):
            continue
        in_scope += len(ids)
        if source_id in source.unchanged:
            continue
        deletions.extend(chunk_id for chunk_id in ids if chunk_id not in kept)
    return sorted(deletions), in_scope
