"""
Small, valid media files built with the standard library only, for tests and the multimodal demo: a PNG
of one colour with a ``tEXt`` description, a PDF with one line of text a page, a WAV of a tone with a RIFF
``INFO`` title. The Gemini emulator reads those descriptions, so a text question finds the file offline.
"""

from __future__ import annotations

import io
import math
import struct
import wave
import zlib

__all__ = ["pdf_bytes", "png_bytes", "wav_bytes"]

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def png_bytes(
    width: int,
    height: int,
    rgb: tuple[int, int, int],
    *,
    description: str | None = None,
    title: str | None = None,
) -> bytes:
    """
    A ``width`` x ``height`` PNG (8-bit RGB) filled with ``rgb``.

    :param width: pixels across (at least 1).
    :param height: pixels down (at least 1).
    :param rgb: the colour, three values in ``0..255``.
    :param description: written in a ``tEXt`` chunk with keyword ``Description`` (Latin-1).
    :param title: written in a ``tEXt`` chunk with keyword ``Title`` (Latin-1).
    """
    if width < 1 or height < 1:
        raise ValueError(f"width and height must be at least 1, got {width}x{height}")
    if len(rgb) != 3 or not all(0 <= value <= 255 for value in rgb):
        raise ValueError(f"rgb must be three values in 0..255, got {rgb!r}")
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    row = b"\x00" + bytes(rgb) * width  # filter type 0 (None) then the pixels
    chunks = [_png_chunk(b"IHDR", header)]
    for keyword, text in (("Title", title), ("Description", description)):
        if text:
            chunks.append(_png_chunk(b"tEXt", keyword.encode("latin-1") + b"\x00" + text.encode("latin-1")))
    chunks.append(_png_chunk(b"IDAT", zlib.compress(row * height, 9)))
    chunks.append(_png_chunk(b"IEND", b""))
    return _PNG_SIGNATURE + b"".join(chunks)


def _pdf_string(text: str) -> bytes:
    escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    return b"(" + escaped.encode("latin-1") + b")"


def pdf_bytes(pages: list[str], *, title: str | None = None) -> bytes:
    """
    A minimal valid PDF 1.4: one Letter page per item of ``pages``, each showing its line of text in
    Helvetica 12 pt, in an uncompressed content stream, with a correct cross-reference table.

    :param pages: the text of each page (Latin-1; at least one page).
    :param title: the document's ``/Title`` in its information dictionary.
    """
    if not pages:
        raise ValueError("a PDF needs at least one page")
    count = len(pages)
    # Objects: 1 catalog, 2 page tree, 3 font, then a page and its content stream per page, then the info.
    page_ids = [4 + 2 * index for index in range(count)]
    info_id = 4 + 2 * count
    objects: dict[int, bytes] = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: b"<< /Type /Pages /Kids ["
        + b" ".join(b"%d 0 R" % page_id for page_id in page_ids)
        + b"] /Count %d >>" % count,
        3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    }
    for page_id, text in zip(page_ids, pages, strict=True):
        content = b"BT /F1 12 Tf 72 720 Td " + _pdf_string(text) + b" Tj ET\n"
        objects[page_id] = (
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % (page_id + 1)
        )
        objects[page_id + 1] = b"<< /Length %d >>\nstream\n" % len(content) + content + b"endstream"
    objects[info_id] = (
        b"<< /Producer (airflow-provider-gemini-milvus sample_media)"
        + (b" /Title " + _pdf_string(title) if title else b"")
        + b" >>"
    )
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = {}
    for object_id in sorted(objects):
        offsets[object_id] = out.tell()
        out.write(b"%d 0 obj\n" % object_id + objects[object_id] + b"\nendobj\n")
    xref = out.tell()
    size = max(objects) + 1
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % size)
    for object_id in range(1, size):
        out.write(b"%010d 00000 n \n" % offsets[object_id])
    out.write(
        b"trailer\n<< /Size %d /Root 1 0 R /Info %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (size, info_id, xref)
    )
    return out.getvalue()


def wav_bytes(
    seconds: float,
    *,
    frequency: float = 440.0,
    sample_rate: int = 8000,
    title: str | None = None,
    comment: str | None = None,
) -> bytes:
    """
    A mono 16-bit PCM WAV of a sine tone, with a RIFF ``LIST``/``INFO`` chunk naming it.

    :param seconds: its duration (rounded to whole samples).
    :param frequency: the tone, in Hz.
    :param sample_rate: samples a second.
    :param title: written as ``INAM``.
    :param comment: written as ``ICMT``.
    """
    if seconds < 0 or sample_rate < 1:
        raise ValueError(
            f"seconds must not be negative and sample_rate positive, got {seconds}, {sample_rate}"
        )
    frames = round(seconds * sample_rate)
    samples = b"".join(
        struct.pack("<h", round(12000 * math.sin(2 * math.pi * frequency * index / sample_rate)))
        for index in range(frames)
    )
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(sample_rate)
        writer.writeframes(samples)
    data = buffer.getvalue()
    entries = b""
    for tag, text in ((b"INAM", title), (b"ICMT", comment)):
        if text:
            value = text.encode("utf-8") + b"\x00"
            entries += tag + struct.pack("<I", len(value)) + value + (b"\x00" if len(value) % 2 else b"")
    if not entries:
        return data
    info = b"LIST" + struct.pack("<I", 4 + len(entries)) + b"INFO" + entries
    body = data[8:] + info
    return b"RIFF" + struct.pack("<I", len(body)) + body
