"""
Where ``GeminiEmbedOperator`` reads its documents from: a list in XCom, or JSONL / Parquet files in object
storage, read in chunks so that a corpus of any size never sits in memory at once.

A file source is an :class:`~airflow.sdk.ObjectStoragePath` or its URI (``file:///data/docs.jsonl``,
``s3://bucket/corpus/``, or an absolute local path): one ``.jsonl`` / ``.ndjson`` / ``.parquet`` file, or a
folder of them, read recursively in path order. A JSONL line holds one document (a JSON string or object);
a Parquet row holds one document (its columns are the dict's keys).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

__all__ = [
    "DOCUMENT_FILE_SUFFIXES",
    "MAX_NESTING",
    "DocumentSource",
    "SourcedDocument",
    "open_document_source",
]

JSONL_SUFFIXES = (".jsonl", ".ndjson")
PARQUET_SUFFIXES = (".parquet",)
DOCUMENT_FILE_SUFFIXES = JSONL_SUFFIXES + PARQUET_SUFFIXES
DEFAULT_CHUNK_DOCUMENTS = 2048
#: Deepest nesting of arrays and objects a document from a file may have: deeper ones are refused by name
#: (every later step that walks a document, its checks and JSON encoding, recurses).
MAX_NESTING = 100


@dataclass(frozen=True)
class SourcedDocument:
    """One raw document and how messages name it."""

    index: int
    """Position in the whole source, counted from 0 (``documents[index]``)."""
    item: Any
    where: str
    """``documents[7]``, or ``documents[7] (docs/a.jsonl line 3)`` for a file source."""


class DocumentSource:
    """
    Documents read in chunks, as many times as the caller needs (the operator reads twice: once to check
    everything before spending, once to embed).

    :param documents: a list (or tuple) of documents, or the location of JSONL / Parquet files.
    :param chunk_documents: documents per chunk.
    """

    def __init__(self, documents: Any, *, chunk_documents: int = DEFAULT_CHUNK_DOCUMENTS) -> None:
        self.chunk_documents = chunk_documents
        self._inline: Sequence[Any] | None = None
        self._location: Any = None
        if isinstance(documents, (list, tuple)):
            self._inline = documents
        else:
            self._location = _location(documents)

    @property
    def is_inline(self) -> bool:
        """True for a list given in XCom or DAG code, False for files."""
        return self._inline is not None

    def reopened(self, chunk_documents: int) -> DocumentSource:
        """The same documents, to read again ``chunk_documents`` at a time."""
        return DocumentSource(
            self._inline if self._inline is not None else self._location, chunk_documents=chunk_documents
        )

    def describe(self) -> str:
        """A short name of the source for logs: ``"a list of 3"`` or the location."""
        return f"a list of {len(self._inline)}" if self._inline is not None else str(self._location)

    def chunks(self) -> Iterator[list[SourcedDocument]]:
        """Yield the documents in order, ``chunk_documents`` at a time."""
        chunk: list[SourcedDocument] = []
        for document in self._documents():
            chunk.append(document)
            if len(chunk) >= self.chunk_documents:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    def _documents(self) -> Iterator[SourcedDocument]:
        if self._inline is not None:
            for index, item in enumerate(self._inline):
                yield SourcedDocument(index, item, f"documents[{index}]")
            return
        index = 0
        for path in self._files():
            name = _relative_name(self._location, path)
            reader = _jsonl_items if path.name.lower().endswith(JSONL_SUFFIXES) else _parquet_items
            for item, position in reader(path, name, self.chunk_documents):
                yield SourcedDocument(index, item, f"documents[{index}] ({name} {position})")
                index += 1

    def _files(self) -> list[Any]:
        location = self._location
        if location.is_dir():
            files = sorted(
                (path for path in location.rglob("*") if path.name.lower().endswith(DOCUMENT_FILE_SUFFIXES)),
                key=str,
            )
            if not files:
                raise ValueError(
                    f"documents folder {location} holds no {', '.join(DOCUMENT_FILE_SUFFIXES)} files"
                )
            return [path for path in files if path.is_file()]
        if not location.exists():
            raise ValueError(f"documents location {location} does not exist")
        if not location.name.lower().endswith(DOCUMENT_FILE_SUFFIXES):
            raise ValueError(
                f"documents file {location} is not one of {', '.join(DOCUMENT_FILE_SUFFIXES)} (by its name)"
            )
        return [location]


def open_document_source(documents: Any, *, chunk_documents: int = DEFAULT_CHUNK_DOCUMENTS) -> DocumentSource:
    """
    Return the :class:`DocumentSource` for ``documents`` (a list, a path or an ObjectStoragePath).

    :raises ValueError: for anything else, with a hint when it looks like an unrendered template.
    """
    return DocumentSource(documents, chunk_documents=chunk_documents)


def _location(documents: Any) -> Any:
    from airflow.sdk import ObjectStoragePath

    from airflow_provider_gemini_milvus.staging.storage import as_path, filesystem, is_location

    if isinstance(documents, str):
        text = documents.strip()
        if not is_location(text):
            raise ValueError(
                "documents must be a list of strings or of dicts, or the URI of JSONL / Parquet files, "
                f"got the string {text[:80]!r} (a template that did not render to a list?)"
            )
        documents = as_path(text)
    if not isinstance(documents, ObjectStoragePath):
        raise ValueError(
            "documents must be a list of strings or of dicts, or the URI of JSONL / Parquet files, "
            f"got {type(documents).__name__}"
        )
    filesystem(documents)  # resolves s3:// and the like the way staging does, or says what is missing
    return documents


def _relative_name(root: Any, path: Any) -> str:
    root_text, path_text = str(root).rstrip("/"), str(path)
    return path_text[len(root_text) + 1 :] if path_text.startswith(root_text + "/") else path.name


def _jsonl_items(path: Any, name: str, chunk_documents: int) -> Iterator[tuple[Any, str]]:
    # Lines are read as bytes and decoded one by one, so bad UTF-8 is named by its line.
    with path.open("rb") as handle:
        for line_number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise ValueError(
                    f"{name} line {line_number} is not valid UTF-8 (byte {err.start + 1} of the line: "
                    f"{err.reason}); save the file as UTF-8"
                ) from None
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{name} line {line_number} is not JSON: {err.msg}") from None
            except RecursionError:
                raise ValueError(
                    f"{name} line {line_number} nests JSON arrays or objects too deeply to be read "
                    f"(at most {MAX_NESTING} levels)"
                ) from None
            _check_nesting(item, f"{name} line {line_number}")
            yield item, f"line {line_number}"


def _parquet_items(path: Any, name: str, chunk_documents: int) -> Iterator[tuple[Any, str]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    with path.open("rb") as handle:
        try:
            parquet = pq.ParquetFile(handle)
        except pa.ArrowInvalid as err:
            raise ValueError(f"{name} is not a Parquet file ({err})") from None
        row = 0
        batches = parquet.iter_batches(batch_size=chunk_documents)
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                return
            except pa.ArrowException as err:
                raise ValueError(f"{name} cannot be read from row {row} on ({err})") from None
            for item in _batch_items(batch, name, row):
                _check_nesting(item, f"{name} row {row}")
                yield item, f"row {row}"
                row += 1


def _batch_items(batch: Any, name: str, first_row: int) -> list[Any]:
    """A record batch as dicts; a string that is not valid UTF-8 is named by file, row and column."""
    try:
        return list(batch.to_pylist())
    except UnicodeDecodeError:
        pass
    for column_name, column in zip(batch.schema.names, batch.columns, strict=True):
        for position in range(batch.num_rows):
            try:
                column[position].as_py()
            except UnicodeDecodeError as err:
                raise ValueError(
                    f"{name} row {first_row + position} column {column_name!r} is not valid UTF-8 "
                    f"({err.reason} at byte {err.start + 1})"
                ) from None
    raise ValueError(f"{name} rows {first_row}-{first_row + batch.num_rows - 1} hold text that is not UTF-8")


def _check_nesting(item: Any, where: str) -> None:
    """Refuse an item nested deeper than :data:`MAX_NESTING` (walked without recursion)."""
    pending: list[tuple[Any, int]] = [(item, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > MAX_NESTING:
            raise ValueError(f"{where} nests arrays or objects more than {MAX_NESTING} levels deep")
        pending.extend((child, depth + 1) for child in children)
