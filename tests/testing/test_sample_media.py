"""The sample media files are valid: they parse with the standard library (and pypdf when installed)."""

from __future__ import annotations

import importlib.util
import io
import re
import struct
import wave
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

from airflow_provider_gemini_milvus.testing.sample_media import pdf_bytes, png_bytes, wav_bytes


def test_png_bytes_is_a_valid_png_of_one_colour_with_its_description() -> None:
    data = png_bytes(3, 2, (10, 20, 30), description="a red jacket")

    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    offset, chunks = 8, {}
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind, body = data[offset + 4 : offset + 8], data[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])
        assert crc == zlib.crc32(kind + body)
        chunks[kind] = body
        offset += 12 + length
    assert list(chunks)[0] == b"IHDR"
    assert list(chunks)[-1] == b"IEND"
    assert struct.unpack(">IIBBBBB", chunks[b"IHDR"]) == (3, 2, 8, 2, 0, 0, 0)
    assert zlib.decompress(chunks[b"IDAT"]) == (b"\x00" + bytes((10, 20, 30)) * 3) * 2
    assert chunks[b"tEXt"] == b"Description\x00a red jacket"


def test_pdf_bytes_has_a_correct_cross_reference_table() -> None:
    data = pdf_bytes(["first (page)", "second page"], title="Care guide")

    startxref = int(re.search(rb"startxref\n(\d+)\n%%EOF\n$", data)[1])  # type: ignore[index]
    assert data[startxref:].startswith(b"xref\n0 9\n")
    entries = re.findall(rb"(\d{10}) 00000 n \n", data[startxref:])
    for number, offset in enumerate(entries, start=1):
        assert data[int(offset) :].startswith(b"%d 0 obj\n" % number)
    for length, stream in re.findall(rb"/Length (\d+) >>\nstream\n(.*?)endstream", data, re.DOTALL):
        assert int(length) == len(stream)
    assert b"/Count 2" in data
    assert b"(first \\(page\\)) Tj" in data


def test_pdf_bytes_reads_back_with_pypdf_when_installed() -> None:
    pypdf = pytest.importorskip("pypdf")

    reader = pypdf.PdfReader(io.BytesIO(pdf_bytes(["hello jacket", "goodbye tent"])))

    assert [page.extract_text().strip() for page in reader.pages] == ["hello jacket", "goodbye tent"]


def test_wav_bytes_reads_back_with_wave_and_carries_its_info_chunk() -> None:
    data = wav_bytes(1.5, sample_rate=8000, title="birdsong", comment="dawn")

    with wave.open(io.BytesIO(data)) as reader:
        assert (reader.getnchannels(), reader.getsampwidth(), reader.getframerate()) == (1, 2, 8000)
        assert reader.getnframes() == 12000
    assert struct.unpack("<I", data[4:8])[0] == len(data) - 8
    assert b"LIST" in data
    assert b"INAMbirdsong" not in data
    assert b"INAM\x09\x00\x00\x00birdsong\x00" in data


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: png_bytes(0, 1, (0, 0, 0)), "width and height"),
        (lambda: png_bytes(1, 1, (0, 0, 256)), "rgb must be"),
        (lambda: pdf_bytes([]), "at least one page"),
        (lambda: wav_bytes(-1), "must not be negative"),
    ],
)
def test_impossible_samples_are_refused(build: Callable[[], bytes], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()


def test_the_committed_multimodal_samples_are_what_make_samples_writes(tmp_path: Path) -> None:
    folder = Path(__file__).resolve().parents[2] / "example_dags" / "data" / "multimodal"
    spec = importlib.util.spec_from_file_location("make_samples", folder / "make_samples.py")
    assert spec is not None
    assert spec.loader is not None
    make_samples = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_samples)

    written = make_samples.write_samples(tmp_path)

    assert {path.name for path in written} <= {path.name for path in folder.iterdir()}
    for path in written:
        assert path.read_bytes() == (folder / path.name).read_bytes(), f"{path.name}: run make_samples.py"
    assert sum(path.stat().st_size for path in folder.iterdir()) < 50_000
