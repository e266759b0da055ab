"""What the emulator reads from media bytes: descriptions, PDF pages, durations and tokens."""

from __future__ import annotations

import struct
import zlib

import pytest

from airflow_provider_gemini_milvus.testing.gemini_emulator.media import (
    describe_media,
    inspect_media,
    media_seconds,
    pdf_page_count,
)
from airflow_provider_gemini_milvus.testing.sample_media import pdf_bytes, png_bytes, wav_bytes


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def test_png_descriptions_come_from_descriptive_text_chunks_only() -> None:
    plain = png_bytes(2, 2, (1, 2, 3), description="a red jacket", title="Jacket")
    itxt = _png_chunk(b"iTXt", b"Comment\x00\x00\x00en\x00\x00rain proof")
    ztxt = _png_chunk(b"zTXt", b"Subject\x00\x00" + zlib.compress(b"for hiking"))
    software = _png_chunk(b"tEXt", b"Software\x00paint program")
    iend = plain.index(b"IEND") - 4
    extended = plain[:iend] + itxt + ztxt + software + plain[iend:]

    assert describe_media("image/png", plain) == "Jacket a red jacket"
    assert describe_media("image/png", extended) == "Jacket a red jacket rain proof for hiking"


def test_a_jpeg_comment_segment_is_its_description() -> None:
    comment = b"blue running shoes"
    jpeg = (
        b"\xff\xd8"
        b"\xff\xe0"
        + struct.pack(">H", 16)
        + b"JFIF\x00"
        + b"\x00" * 9
        + b"\xff\xfe"
        + struct.pack(">H", len(comment) + 2)
        + comment
        + b"\xff\xda"
        + struct.pack(">H", 2)
        + b"\x12\x34\xff\xd9"
    )

    assert describe_media("image/jpeg", jpeg) == "blue running shoes"


def test_pdf_text_comes_from_uncompressed_streams_and_pages_are_page_objects() -> None:
    guide = pdf_bytes(["Care guide (jacket)", r"Dry it flat \ never tumble"])
    compressed_body = zlib.compress(b"BT (hidden) Tj ET")
    compressed = (
        b"%PDF-1.4\n1 0 obj\n<< /Type /Pages /Kids [2 0 R] /Count 1 >>\nendobj\n"
        b"2 0 obj\n<< /Type /Page /Parent 1 0 R >>\nendobj\n"
        + b"3 0 obj\n<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(compressed_body)
        + compressed_body
        + b"\nendstream\nendobj\n"
        + b"4 0 obj\n<< /Length 30 >>\nstream\nBT [(Tent) -250 (s for two)] TJ ET\nendstream\nendobj\n"
        + b"5 0 obj\n<< /Length 20 >>\nstream\nBT (\\101\\102\\(C\\)) Tj ET\nendstream\nendobj\n"
    )

    assert pdf_page_count(guide) == 2
    assert describe_media("application/pdf", guide) == r"Care guide (jacket) Dry it flat \ never tumble"
    assert pdf_page_count(compressed) == 1
    assert describe_media("application/pdf", compressed) == "Tents for two AB(C)"


def test_wav_duration_from_the_header_and_title_from_riff_info() -> None:
    tone = wav_bytes(2.25, title="birdsong", comment="at dawn", sample_rate=4000)

    facts = inspect_media("audio/x-wav", tone)

    assert (facts.seconds, facts.tokens, facts.description) == (3, 3 * 32, "birdsong at dawn")


def test_mp3_duration_from_the_first_frame_bit_rate() -> None:
    id3 = b"ID3\x03\x00\x00\x00\x00\x00\x0a" + b"\x00" * 10
    frame_header = b"\xff\xfb\x90\x00"  # MPEG-1 layer III, 128 kbit/s
    mp3 = id3 + frame_header + b"\x00" * (16_000 * 5 - 4)

    assert media_seconds("audio/mpeg", mp3) == 5
    assert inspect_media("audio/mp3", mp3).tokens == 5 * 32


def test_mp4_duration_from_the_movie_header() -> None:
    mvhd_body = b"\x00" + b"\x00" * 3 + b"\x00" * 8 + struct.pack(">II", 1000, 12_400) + b"\x00" * 80
    mvhd = struct.pack(">I", 8 + len(mvhd_body)) + b"mvhd" + mvhd_body
    moov = struct.pack(">I", 8 + len(mvhd)) + b"moov" + mvhd
    ftyp = struct.pack(">I", 16) + b"ftypisom" + b"\x00\x00\x02\x00"
    mp4 = ftyp + moov + struct.pack(">I", 16) + b"mdat" + b"\x00" * 8

    facts = inspect_media("video/mp4", mp4)

    assert (facts.seconds, facts.tokens) == (13, 13 * 263)


@pytest.mark.parametrize(
    ("mime_type", "size", "seconds"),
    [("audio/mpeg", 16_000 * 3, 3), ("video/quicktime", 262_144 * 2 + 1, 3), ("audio/wav", 10, 1)],
)
def test_unreadable_audio_and_video_count_by_size(mime_type: str, size: int, seconds: int) -> None:
    assert media_seconds(mime_type, b"\x00" * size) == seconds


def test_images_and_pdfs_count_258_tokens_each_and_a_page() -> None:
    assert inspect_media("image/jpeg", b"not really a jpeg").tokens == 258
    assert inspect_media("application/pdf", pdf_bytes(["a", "b", "c"])).tokens == 3 * 258


def test_an_unsupported_mime_type_is_refused() -> None:
    with pytest.raises(ValueError, match="Unsupported MIME type: image/gif"):
        inspect_media("image/gif", b"GIF89a")
