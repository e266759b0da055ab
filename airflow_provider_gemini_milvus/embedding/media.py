"""
A document's media: an image, PDF, recording or video a document carries, from a URI or as bytes.

A document names its media in its ``media_field`` (see ``GeminiEmbedOperator``): the URI of a file
(``s3://bucket/photos/a.png``, ``file:///data/a.pdf``, an absolute path or an ``ObjectStoragePath``), its
bytes (a Parquet binary column), or a dict ``{"uri": ..., "mime_type": ...}`` / ``{"data": ...,
"mime_type": ...}`` when the type should be given rather than detected. Reading checks it
(:func:`~airflow_provider_gemini_milvus.gemini.media.inspect_media`); the row stores what was read, never the
bytes: ``{"uri", "mime_type", "sha256", "size_bytes"}`` in the metadata under the media field's name.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from airflow_provider_gemini_milvus.gemini.media import MediaPart, inspect_media

if TYPE_CHECKING:
    from airflow_provider_gemini_milvus.gemini.media import MediaFacts

__all__ = ["DocumentMedia", "read_media"]

_MEDIA_KEYS = frozenset({"uri", "data", "mime_type"})


@dataclass(frozen=True, eq=False)
class DocumentMedia:
    """
    One document's media, checked.

    :param facts: its type, size, hash, pages or duration.
    :param uri: where it is read from; None for bytes given in the document.
    :param data: the bytes given in the document; None for a URI (read again when sent).
    :param where: how messages name it, e.g. ``documents[3] media (s3://bucket/a.png)``.
    """

    facts: MediaFacts
    uri: str | None
    data: bytes | None
    where: str

    def read(self) -> bytes:
        """Its bytes: as given, or read from its URI."""
        if self.data is not None:
            return self.data
        with _opened(str(self.uri), self.where) as handle:
            return bytes(handle.read())

    def part(self) -> MediaPart:
        """What the hook sends: read when its request is built."""
        return MediaPart(self.facts, self.read, where=self.where)

    def descriptor(self) -> dict[str, Any]:
        """What the row stores of it (JSON-safe): its URI, MIME type, SHA-256 and size; never the bytes."""
        return {
            "uri": self.uri,
            "mime_type": self.facts.mime_type,
            "sha256": self.facts.sha256,
            "size_bytes": self.facts.size_bytes,
        }


def read_media(value: Any, where: str) -> DocumentMedia:
    """
    Read and check the media a document names.

    :param value: a URI or absolute path, an ``ObjectStoragePath``, bytes, or a dict with ``uri`` or
        ``data`` and an optional ``mime_type``.
    :param where: how messages name the document's media field, e.g. ``documents[3] field 'media'``.
    :raises ValueError: naming ``where`` (and the URI): not found, unreadable, of a type or size
        gemini-embedding-2 does not take, too many pages or too long.
    """
    mime_type: Any = None
    if isinstance(value, Mapping):
        value = {key: item for key, item in value.items() if item is not None}  # a Parquet struct's nulls
        unknown = sorted(set(map(str, value)) - _MEDIA_KEYS)
        if unknown:
            raise ValueError(
                f"{where} has unknown keys {unknown}; a media dict takes uri or data, and mime_type"
            )
        if ("uri" in value) == ("data" in value):
            raise ValueError(f"{where} must have exactly one of uri and data")
        mime_type = value.get("mime_type")
        if mime_type is not None and not isinstance(mime_type, str):
            raise ValueError(f"{where} mime_type must be a string, got {type(mime_type).__name__}")
        value = value["uri"] if "uri" in value else value["data"]
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        facts = inspect_media(io.BytesIO(data), mime_type=mime_type, where=f"{where} (bytes)")
        return DocumentMedia(facts, None, data, f"{where} (bytes)")
    uri = _uri(value, where)
    described = f"{where} ({uri})"
    with _opened(uri, described) as handle:
        facts = inspect_media(handle, mime_type=mime_type, where=described)
    return DocumentMedia(facts, uri, None, described)


def _uri(value: Any, where: str) -> str:
    from airflow.sdk import ObjectStoragePath

    from airflow_provider_gemini_milvus.staging.storage import as_path, is_location

    if isinstance(value, ObjectStoragePath):
        return str(value)
    if not isinstance(value, str):
        raise ValueError(
            f"{where} must be a URI, an absolute path, bytes or a dict with uri or data, got "
            f"{type(value).__name__}"
        )
    text = value.strip()
    if not is_location(text):
        raise ValueError(
            f"{where} must be a URI (s3://..., file:///...) or an absolute path, got {text[:80]!r}"
        )
    return str(as_path(text))


@contextmanager
def _opened(uri: str, where: str) -> Iterator[IO[bytes]]:
    """The file at ``uri`` opened for reading; a missing or unreadable one raises ``ValueError``."""
    from airflow_provider_gemini_milvus.staging.storage import as_path, filesystem

    try:
        path = as_path(uri)
        filesystem(path)  # resolves s3:// and the like as staging does, or says what is missing
    except ValueError as err:
        raise ValueError(f"{where} cannot be opened: {err}") from None
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise ValueError(f"{where} does not exist") from None
    except (OSError, ValueError) as err:
        raise ValueError(f"{where} cannot be read ({type(err).__name__})") from None
    with handle:
        yield handle
