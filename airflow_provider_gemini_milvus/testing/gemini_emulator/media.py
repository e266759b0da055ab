"""
What the emulator reads from the bytes of a media part (an image, a PDF, audio or video), with the standard
library only: the MIME types gemini-embedding-2 takes, the page count of a PDF, the duration of audio and
video, the tokens the service counts, and any description the file carries.

The description is what lets an offline test or demo find an image with a text question: the emulator's
vector of a media part holds the text features of the description found in its bytes, besides one feature
unique to the bytes. It is read from

* PNG: ``tEXt``, ``zTXt`` and ``iTXt`` chunks whose keyword is one of :data:`DESCRIPTIVE_KEYWORDS`;
* JPEG: ``COM`` (comment) segments;
* PDF: the strings of ``Tj`` and ``TJ`` operators in uncompressed content streams;
* WAV: the ``INAM`` (title) and ``ICMT`` (comment) entries of a RIFF ``LIST``/``INFO`` chunk.

Bytes that do not parse as their MIME type are accepted all the same (no description, one page, a duration
estimated from the size): the emulator checks the limits the service states, not the file formats.

Tokens (Google's per-modality rates): an image 258, a PDF 258 a page, audio 32 a second, video 263 a
second, durations rounded up to whole seconds. WAV durations come from the header (``wave``), MP3 from the
first frame's bit rate, MP4/MOV from the ``mvhd`` box; when those cannot be read, audio counts one second
per 16,000 bytes (128 kbit/s) and video one second per 262,144 bytes (about 2 Mbit/s).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import math
import re
import struct
import wave
import zlib
from dataclasses import dataclass

__all__ = [
    "AUDIO_TOKENS_PER_SECOND",
    "DESCRIPTIVE_KEYWORDS",
    "IMAGE_TOKENS",
    "MAX_DESCRIPTION_CHARS",
    "MAX_IMAGES_PER_CONTENT",
    "MAX_PDF_PAGES",
    "MAX_REQUEST_BYTES",
    "PDF_TOKENS_PER_PAGE",
    "SUPPORTED_MEDIA_TYPES",
    "VIDEO_TOKENS_PER_SECOND",
    "MediaFacts",
    "describe_media",
    "inspect_media",
    "media_kind",
    "media_seconds",
    "pdf_page_count",
]

_IMAGE_TYPES = ("image/png", "image/jpeg")
_DOCUMENT_TYPES = ("application/pdf",)
_AUDIO_TYPES = ("audio/mpeg", "audio/mp3", "audio/wav", "audio/x-wav")
_VIDEO_TYPES = ("video/mp4", "video/quicktime")
#: The MIME types gemini-embedding-2 embeds (images, PDFs, audio, video).
SUPPORTED_MEDIA_TYPES = frozenset((*_IMAGE_TYPES, *_DOCUMENT_TYPES, *_AUDIO_TYPES, *_VIDEO_TYPES))
#: Images one ``Content`` may hold.
MAX_IMAGES_PER_CONTENT = 6
#: Pages a PDF may have.
MAX_PDF_PAGES = 6
#: The largest HTTP request body the service takes (20 MiB); larger media go through the Files API.
MAX_REQUEST_BYTES = 20 * 1024 * 1024
IMAGE_TOKENS = 258
PDF_TOKENS_PER_PAGE = 258
AUDIO_TOKENS_PER_SECOND = 32
VIDEO_TOKENS_PER_SECOND = 263
#: PNG text chunk keywords read as a description (compared case-insensitively).
DESCRIPTIVE_KEYWORDS = frozenset({"title", "description", "comment", "subject", "caption", "keywords"})
#: A description is cut to this many characters.
MAX_DESCRIPTION_CHARS = 4000

_AUDIO_BYTES_PER_SECOND = 16_000
_VIDEO_BYTES_PER_SECOND = 262_144
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PAGE_RE = re.compile(rb"/Type\s*/Page(?![A-Za-z0-9])")
_OBJECT_RE = re.compile(rb"\d+\s+\d+\s+obj\b(?P<object>.*?)\bendobj", re.DOTALL)
_STREAM_RE = re.compile(rb"(?P<dict>.*?)\bstream\r?\n(?P<body>.*?)\bendstream", re.DOTALL)
_PDF_TEXT_RE = re.compile(rb"\((?P<one>(?:\\.|[^\\()])*)\)\s*Tj|\[(?P<many>[^\]]*)\]\s*TJ", re.DOTALL)
_PDF_STRING_RE = re.compile(rb"\((?P<text>(?:\\.|[^\\()])*)\)", re.DOTALL)
_PDF_ESCAPES = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"f": b"\f"}
_PDF_ESCAPE_RE = re.compile(rb"\\([0-7]{1,3}|.)", re.DOTALL)
# MPEG audio bit rates (kbit/s) by index: MPEG-1 layer III, and MPEG-2/2.5 layer III.
_MP3_BITRATES = {
    3: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 0),
    2: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160, 0),
}


def media_kind(mime_type: str) -> str:
    """``image``, ``document``, ``audio`` or ``video`` for a supported MIME type."""
    if mime_type in _IMAGE_TYPES:
        return "image"
    if mime_type in _DOCUMENT_TYPES:
        return "document"
    if mime_type in _AUDIO_TYPES:
        return "audio"
    if mime_type in _VIDEO_TYPES:
        return "video"
    raise ValueError(f"Unsupported MIME type: {mime_type}")


@dataclass(frozen=True)
class MediaFacts:
    """
    What the emulator knows of one media part.

    :param mime_type: its MIME type (one of :data:`SUPPORTED_MEDIA_TYPES`).
    :param sha256: the hex SHA-256 of its bytes.
    :param size: its length in bytes.
    :param description: the description found in its bytes (``""`` when none).
    :param pages: pages of a PDF (``None`` for other kinds).
    :param seconds: whole seconds of audio or video (``None`` for other kinds).
    :param tokens: what the service counts for it.
    """

    mime_type: str
    sha256: str
    size: int
    description: str
    pages: int | None
    seconds: int | None
    tokens: int

    @property
    def kind(self) -> str:
        return media_kind(self.mime_type)


def inspect_media(mime_type: str, data: bytes) -> MediaFacts:
    """
    Read the facts of ``data`` as ``mime_type``.

    :param mime_type: one of :data:`SUPPORTED_MEDIA_TYPES` (else :class:`ValueError`).
    :param data: the bytes.
    """
    kind = media_kind(mime_type)
    pages = seconds = None
    if kind == "image":
        tokens = IMAGE_TOKENS
    elif kind == "document":
        pages = pdf_page_count(data)
        tokens = PDF_TOKENS_PER_PAGE * max(1, pages)
    else:
        seconds = media_seconds(mime_type, data)
        tokens = (AUDIO_TOKENS_PER_SECOND if kind == "audio" else VIDEO_TOKENS_PER_SECOND) * seconds
    return MediaFacts(
        mime_type=mime_type,
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        description=describe_media(mime_type, data),
        pages=pages,
        seconds=seconds,
        tokens=tokens,
    )


def pdf_page_count(data: bytes) -> int:
    """The ``/Type /Page`` objects of a PDF (not ``/Pages``, the page tree nodes)."""
    return len(_PAGE_RE.findall(data))


def media_seconds(mime_type: str, data: bytes) -> int:
    """Whole seconds (rounded up, at least 1) of audio or video ``data``."""
    seconds: float | None = None
    if mime_type in ("audio/wav", "audio/x-wav"):
        seconds = _wav_seconds(data)
    elif mime_type in ("audio/mpeg", "audio/mp3"):
        seconds = _mp3_seconds(data)
    elif mime_type in _VIDEO_TYPES:
        seconds = _mp4_seconds(data)
    if seconds is None:
        rate = _VIDEO_BYTES_PER_SECOND if mime_type in _VIDEO_TYPES else _AUDIO_BYTES_PER_SECOND
        seconds = len(data) / rate
    return max(1, math.ceil(seconds - 1e-9))


def describe_media(mime_type: str, data: bytes) -> str:
    """The description found in ``data`` (see the module docstring), or ``""``."""
    texts: list[str] = []
    with contextlib.suppress(ValueError, IndexError, struct.error, zlib.error):
        if mime_type == "image/png":
            texts = _png_texts(data)
        elif mime_type == "image/jpeg":
            texts = _jpeg_comments(data)
        elif mime_type == "application/pdf":
            texts = _pdf_texts(data)
        elif mime_type in ("audio/wav", "audio/x-wav"):
            texts = _wav_info(data)
    return " ".join(text.strip() for text in texts if text.strip())[:MAX_DESCRIPTION_CHARS]


def _png_texts(data: bytes) -> list[str]:
    if not data.startswith(_PNG_SIGNATURE):
        return []
    texts: list[str] = []
    offset = len(_PNG_SIGNATURE)
    while offset + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[offset : offset + 8])
        chunk = data[offset + 8 : offset + 8 + length]
        offset += 12 + length
        if kind == b"IEND":
            break
        if kind not in (b"tEXt", b"zTXt", b"iTXt"):
            continue
        keyword, _, rest = chunk.partition(b"\x00")
        if keyword.decode("latin-1").strip().lower() not in DESCRIPTIVE_KEYWORDS:
            continue
        if kind == b"tEXt":
            texts.append(rest.decode("latin-1"))
        elif kind == b"zTXt":
            texts.append(zlib.decompress(rest[1:]).decode("latin-1"))
        else:
            compressed, text = rest[0], rest[2:]
            # Skip the language tag and the translated keyword.
            text = text.split(b"\x00", 2)[-1]
            texts.append((zlib.decompress(text) if compressed else text).decode("utf-8", "replace"))
    return texts


def _jpeg_comments(data: bytes) -> list[str]:
    if not data.startswith(b"\xff\xd8"):
        return []
    texts: list[str] = []
    offset = 2
    while offset + 4 <= len(data) and data[offset] == 0xFF:
        marker = data[offset + 1]
        if marker == 0xFF:  # fill byte
            offset += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # no length
            offset += 2
            continue
        if marker in (0xDA, 0xD9):  # start of scan, end of image
            break
        (length,) = struct.unpack(">H", data[offset + 2 : offset + 4])
        if marker == 0xFE:
            texts.append(data[offset + 4 : offset + 2 + length].decode("utf-8", "replace"))
        offset += 2 + length
    return texts


def _pdf_unescape(raw: bytes) -> str:
    def replace(match: re.Match[bytes]) -> bytes:
        escaped = match[1]
        if escaped[:1].isdigit() and all(48 <= byte <= 55 for byte in escaped):
            return bytes([int(escaped, 8) & 0xFF])
        if escaped in (b"\r", b"\n"):  # a line continuation
            return b""
        return _PDF_ESCAPES.get(escaped, escaped)

    return _PDF_ESCAPE_RE.sub(replace, raw).decode("latin-1")


def _pdf_texts(data: bytes) -> list[str]:
    texts: list[str] = []
    for pdf_object in _OBJECT_RE.finditer(data):
        stream = _STREAM_RE.match(pdf_object["object"])
        if stream is None or b"/Filter" in stream["dict"]:
            continue  # compressed: not read
        for shown in _PDF_TEXT_RE.finditer(stream["body"]):
            if shown["one"] is not None:
                texts.append(_pdf_unescape(shown["one"]))
            else:
                texts.append(
                    "".join(_pdf_unescape(item["text"]) for item in _PDF_STRING_RE.finditer(shown["many"]))
                )
    return texts


def _riff_chunks(data: bytes, start: int, end: int) -> list[tuple[bytes, bytes]]:
    chunks = []
    offset = start
    while offset + 8 <= end:
        kind, length = struct.unpack("<4sI", data[offset : offset + 8])
        chunks.append((kind, data[offset + 8 : min(end, offset + 8 + length)]))
        offset += 8 + length + (length & 1)
    return chunks


def _wav_info(data: bytes) -> list[str]:
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return []
    texts = []
    for kind, body in _riff_chunks(data, 12, len(data)):
        if kind != b"LIST" or body[:4] != b"INFO":
            continue
        for entry, value in _riff_chunks(body, 4, len(body)):
            if entry in (b"INAM", b"ICMT"):
                texts.append(value.split(b"\x00", 1)[0].decode("utf-8", "replace"))
    return texts


def _wav_seconds(data: bytes) -> float | None:
    try:
        with wave.open(io.BytesIO(data), "rb") as reader:
            rate = reader.getframerate()
            return reader.getnframes() / rate if rate else None
    except (wave.Error, EOFError, struct.error):
        return None


def _mp3_seconds(data: bytes) -> float | None:
    offset = 0
    if data[:3] == b"ID3" and len(data) >= 10:
        size = data[6:10]
        offset = 10 + ((size[0] << 21) | (size[1] << 14) | (size[2] << 7) | size[3])
    while offset + 4 <= len(data):
        if data[offset] == 0xFF and data[offset + 1] & 0xE0 == 0xE0:
            version_bits = (data[offset + 1] >> 3) & 0x3
            layer_bits = (data[offset + 1] >> 1) & 0x3
            bitrate_index = data[offset + 2] >> 4
            if layer_bits == 1 and version_bits != 1:  # layer III
                kbps = _MP3_BITRATES[3 if version_bits == 3 else 2][bitrate_index]
                if kbps:
                    return (len(data) - offset) * 8 / (kbps * 1000)
            return None
        offset += 1
    return None


def _mp4_seconds(data: bytes) -> float | None:
    def boxes(start: int, end: int) -> list[tuple[bytes, int, int]]:
        found = []
        offset = start
        while offset + 8 <= end:
            size, kind = struct.unpack(">I4s", data[offset : offset + 8])
            header = 8
            if size == 1 and offset + 16 <= end:
                (size,) = struct.unpack(">Q", data[offset + 8 : offset + 16])
                header = 16
            elif size == 0:
                size = end - offset
            if size < header:
                break
            found.append((kind, offset + header, min(end, offset + size)))
            offset += size
        return found

    try:
        for kind, start, end in boxes(0, len(data)):
            if kind != b"moov":
                continue
            for child, body, _ in boxes(start, end):
                if child != b"mvhd":
                    continue
                if data[body] == 1:
                    timescale, duration = struct.unpack(">IQ", data[body + 20 : body + 32])
                else:
                    timescale, duration = struct.unpack(">II", data[body + 12 : body + 20])
                return duration / timescale if timescale else None
    except (struct.error, IndexError):
        return None
    return None
