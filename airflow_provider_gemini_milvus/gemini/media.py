"""
Media documents for gemini-embedding-2: images, PDFs, audio and video, checked before anything is paid.

gemini-embedding-2 maps text, images, PDFs, audio and video into one space: one document (a media item,
optionally with text) is one vector. Everything Google limits is checked here, on the bytes, before the
first request: the type (from the bytes when not given, and the given type must agree with them), the size,
a PDF's pages, a recording's duration. Small media go inline in the request (base64); larger ones through
the Files API (:data:`INLINE_MAX_BYTES`).

Limits and prices checked on 2026-12-06 against Google's embeddings guide
(https://ai.google.dev/gemini-api/docs/embeddings, "Multimodal embeddings"), the Gemini Embedding 2 model
card (https://docs.cloud.google.com/gemini-enterprise-agent-platform/models/gemini/embedding-2), the
pricing page (https://ai.google.dev/gemini-api/docs/pricing) and the token guide
(https://ai.google.dev/gemini-api/docs/tokens). Pages and durations are read with pypdf and mutagen, the
``media`` extra (``pip install 'airflow-provider-gemini-milvus[media]'``); images need neither.
"""

from __future__ import annotations

import base64
import hashlib
import math
from dataclasses import dataclass, replace
from typing import IO, TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "FILES_API_MAX_BYTES",
    "INLINE_MAX_BYTES",
    "MAX_AUDIO_SECONDS",
    "MAX_PDF_PAGES",
    "MAX_VIDEO_SECONDS",
    "MEDIA_EXTRA_HINT",
    "MEDIA_TYPES",
    "MediaFacts",
    "MediaPart",
    "Modality",
    "inspect_media",
    "media_tokens",
    "sniff_mime_type",
]

#: What a media item is billed as. A PDF's pages are billed as images.
Modality = Literal["image", "audio", "video"]

#: The MIME types gemini-embedding-2 embeds, and what each is billed as.
MEDIA_TYPES: dict[str, Modality] = {
    "image/png": "image",
    "image/jpeg": "image",
    "application/pdf": "image",
    "audio/mpeg": "audio",
    "audio/wav": "audio",
    "video/mp4": "video",
    "video/quicktime": "video",
}
_ALIASES = {
    "image/jpg": "image/jpeg",
    "audio/mp3": "audio/mpeg",
    "audio/x-wav": "audio/wav",
    "audio/wave": "audio/wav",
    "audio/vnd.wave": "audio/wav",
}

#: Media up to this size go inline: base64 makes them a third larger, and a request is at most 20 MB.
INLINE_MAX_BYTES = 14 * 1024 * 1024
#: The Files API takes files up to 2 GB.
FILES_API_MAX_BYTES = 2 * 1024**3
#: A PDF of at most this many pages.
MAX_PDF_PAGES = 6
#: Audio of at most this many seconds.
MAX_AUDIO_SECONDS = 80.0
#: Video of at most this many seconds (the model card's 120 s without audio; the cookbook says 128 s).
MAX_VIDEO_SECONDS = 120.0

#: Tokens Gemini counts: 258 an image (and a PDF page), 32 a second of audio, 263 a second of video.
IMAGE_TOKENS = 258
AUDIO_TOKENS_PER_SECOND = 32
VIDEO_TOKENS_PER_SECOND = 263

MEDIA_EXTRA_HINT = "pip install 'airflow-provider-gemini-milvus[media]'"
_READ_BLOCK = 1024 * 1024
_SNIFF_BYTES = 64


@dataclass(frozen=True)
class MediaFacts:
    """
    What was learnt of one media item by reading it.

    :param mime_type: its MIME type (canonical: ``audio/mpeg``, not ``audio/mp3``).
    :param size_bytes: its size.
    :param sha256: SHA-256 hex digest of its bytes: the content hash covers it, so unchanged media are never
        embedded twice.
    :param pages: a PDF's pages.
    :param seconds: a recording's duration.
    """

    mime_type: str
    size_bytes: int
    sha256: str
    pages: int | None = None
    seconds: float | None = None

    @property
    def modality(self) -> Modality:
        """What it is billed as."""
        return MEDIA_TYPES[self.mime_type]

    @property
    def tokens(self) -> int:
        """The tokens Gemini counts for it (see :func:`media_tokens`)."""
        return media_tokens(self.mime_type, pages=self.pages, seconds=self.seconds)

    @property
    def inline(self) -> bool:
        """Whether it goes inline in the request (else through the Files API)."""
        return self.size_bytes <= INLINE_MAX_BYTES


@dataclass(frozen=True, eq=False)
class MediaPart:
    """
    One media item as a request sends it: inline from ``read()``, or by the ``file_uri`` of its upload.

    :param facts: what checking it found.
    :param read: returns its bytes (read when the request is built, so memory holds the requests in
        flight, not the corpus).
    :param where: how messages name it, e.g. ``documents[3] media``.
    :param file_uri: the Files API URI it was uploaded to, once it was.
    """

    facts: MediaFacts
    read: Callable[[], bytes]
    where: str = "media"
    file_uri: str | None = None

    def uploaded(self, file_uri: str) -> MediaPart:
        """This part, sent by reference to its upload."""
        return replace(self, file_uri=file_uri)

    def data(self) -> bytes:
        """
        Its bytes, checked against the hash taken when it was inspected.

        :raises ValueError: the item changed since (the stored hash would not describe what was embedded).
        """
        data = self.read()
        if hashlib.sha256(data).hexdigest() != self.facts.sha256:
            raise ValueError(f"{self.where} changed while the run was reading it; run the task again")
        return data

    def wire(self) -> dict[str, Any]:
        """The request part: ``inlineData`` (base64) or ``fileData``, as the SDK writes them."""
        if self.file_uri is not None:
            return {"fileData": {"mimeType": self.facts.mime_type, "fileUri": self.file_uri}}
        encoded = base64.b64encode(self.data()).decode("ascii")
        return {"inlineData": {"mimeType": self.facts.mime_type, "data": encoded}}


def media_tokens(mime_type: str, *, pages: int | None = None, seconds: float | None = None) -> int:
    """
    The tokens Gemini counts for a media item: 258 an image, 258 a PDF page, 32 a second of audio and 263 a
    second of video (Google's token guide).
    """
    if mime_type == "application/pdf":
        return IMAGE_TOKENS * (pages or 1)
    modality = MEDIA_TYPES[mime_type]
    if modality == "image":
        return IMAGE_TOKENS
    rate = AUDIO_TOKENS_PER_SECOND if modality == "audio" else VIDEO_TOKENS_PER_SECOND
    return max(1, math.ceil((seconds or 0.0) * rate))


def sniff_mime_type(head: bytes) -> str | None:
    """The MIME type the first bytes of a file show, among :data:`MEDIA_TYPES`; None when none matches."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "audio/mpeg"
    if head[4:8] == b"ftyp":
        return "video/quicktime" if head[8:12] == b"qt  " else "video/mp4"
    if head[4:8] in (b"moov", b"mdat", b"wide", b"free"):
        return "video/quicktime"
    return None


def inspect_media(stream: IO[bytes], *, mime_type: str | None, where: str) -> MediaFacts:
    """
    Read a media item once and check everything gemini-embedding-2 limits, before anything is paid.

    :param stream: its bytes, seekable, at the start.
    :param mime_type: its MIME type as the user gave it, or None to detect it from the bytes.
    :param where: how messages name it, e.g. ``documents[3] media (s3://bucket/a.pdf)``.
    :raises ValueError: naming ``where``: an unsupported or mismatched type, too large, too many pages, too
        long, unreadable, or the ``media`` extra missing for a PDF or a recording.
    """
    head = stream.read(_SNIFF_BYTES)
    digest = hashlib.sha256(head)
    size = len(head)
    while block := stream.read(_READ_BLOCK):
        digest.update(block)
        size += len(block)
        if size > FILES_API_MAX_BYTES:
            raise ValueError(
                f"{where} is larger than {FILES_API_MAX_BYTES // 1024**3} GB, the most the Files API takes"
            )
    if not size:
        raise ValueError(f"{where} is empty")
    detected = sniff_mime_type(head)
    resolved = _resolved_mime_type(mime_type, detected, where)
    pages: int | None = None
    seconds: float | None = None
    stream.seek(0)
    if resolved == "application/pdf":
        pages = _pdf_pages(stream, where)
        if pages > MAX_PDF_PAGES:
            raise ValueError(
                f"{where} is a PDF of {pages} pages; gemini-embedding-2 embeds at most {MAX_PDF_PAGES} "
                "pages per document (split it into documents of fewer pages)"
            )
    elif MEDIA_TYPES[resolved] != "image":
        seconds = _duration_seconds(stream, resolved, where)
        limit = MAX_AUDIO_SECONDS if MEDIA_TYPES[resolved] == "audio" else MAX_VIDEO_SECONDS
        if seconds > limit:
            raise ValueError(
                f"{where} is {seconds:.1f} s of {MEDIA_TYPES[resolved]}; gemini-embedding-2 embeds at most "
                f"{limit:g} s per document (cut it into shorter clips)"
            )
    return MediaFacts(resolved, size, digest.hexdigest(), pages=pages, seconds=seconds)


def _resolved_mime_type(given: str | None, detected: str | None, where: str) -> str:
    supported = ", ".join(MEDIA_TYPES)
    if given is None:
        if detected is None:
            raise ValueError(
                f"{where}: its type could not be told from its bytes; gemini-embedding-2 embeds {supported} "
                "(give mime_type if it is one of them)"
            )
        return detected
    if not isinstance(given, str):
        raise ValueError(f"{where}: mime_type must be a string, got {type(given).__name__}")
    canonical = _ALIASES.get(given.strip().lower(), given.strip().lower())
    if canonical not in MEDIA_TYPES:
        raise ValueError(f"{where}: mime_type {given!r} is not one gemini-embedding-2 embeds ({supported})")
    if detected is not None and detected != canonical:
        raise ValueError(f"{where}: mime_type is {given!r} but its bytes are {detected}")
    return canonical


def _pdf_pages(stream: IO[bytes], where: str) -> int:
    try:
        from pypdf import PdfReader
        from pypdf.errors import PyPdfError
    except ImportError:
        raise ValueError(
            f"{where} is a PDF: counting its pages (at most {MAX_PDF_PAGES}) needs pypdf; {MEDIA_EXTRA_HINT}"
        ) from None
    try:
        return len(PdfReader(stream).pages)
    except (PyPdfError, ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{where} is not a readable PDF ({type(err).__name__}: {err})") from None


def _duration_seconds(stream: IO[bytes], mime_type: str, where: str) -> float:
    kind = MEDIA_TYPES[mime_type]
    try:
        from mutagen import MutagenError
        from mutagen.mp3 import MP3
        from mutagen.mp4 import MP4
        from mutagen.wave import WAVE
    except ImportError:
        raise ValueError(
            f"{where} is {kind}: reading its duration (at most {MAX_AUDIO_SECONDS:g} s of audio, "
            f"{MAX_VIDEO_SECONDS:g} s of video) needs mutagen; {MEDIA_EXTRA_HINT}"
        ) from None
    reader: Any = {"audio/mpeg": MP3, "audio/wav": WAVE}.get(mime_type, MP4)
    try:
        length = reader(stream).info.length
    except (MutagenError, ValueError, EOFError) as err:
        raise ValueError(f"{where} is not readable {mime_type} ({type(err).__name__}: {err})") from None
    if not isinstance(length, (int, float)) or not math.isfinite(length) or length <= 0:
        raise ValueError(f"{where}: the duration of this {mime_type} could not be read")
    return float(length)
