"""Media documents through GeminiEmbedOperator: the emulator serves gemini-embedding-2, Milvus Lite stores."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_gemini_milvus.hooks.gemini import GeminiHook
from airflow_provider_gemini_milvus.hooks.milvus import MilvusHook
from airflow_provider_gemini_milvus.operators.gemini import GeminiEmbedOperator
from airflow_provider_gemini_milvus.operators.milvus import MilvusInsertOperator
from airflow_provider_gemini_milvus.testing.gemini_emulator import GeminiEmulator
from airflow_provider_gemini_milvus.testing.sample_media import pdf_bytes, png_bytes, wav_bytes

COLLECTION = "media"
MODEL = "gemini-embedding-2"


def embed(documents: Any, **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("output_dimensionality", 768)
    kwargs.setdefault("model", MODEL)
    kwargs.setdefault("media_field", "media")
    operator = GeminiEmbedOperator(task_id="embed", documents=documents, **kwargs)
    return operator.execute(context={})  # type: ignore[arg-type]


def load(result: dict[str, Any]) -> dict[str, Any]:
    return MilvusInsertOperator(task_id="load", collection_name=COLLECTION, data=result).execute(context={})  # type: ignore[arg-type]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "jacket.png").write_bytes(png_bytes(4, 4, (200, 20, 20), description="a red rain jacket"))
    (tmp_path / "tent.png").write_bytes(png_bytes(4, 4, (20, 160, 20), description="a green tent"))
    (tmp_path / "care.pdf").write_bytes(pdf_bytes(["Wash the tent by hand", "Dry it in the shade"]))
    (tmp_path / "note.wav").write_bytes(wav_bytes(1.5, title="a voice note about boots"))
    return tmp_path


def documents(folder: Path) -> list[dict[str, Any]]:
    return [
        {"id": "jacket", "media": str(folder / "jacket.png"), "text": "Waterproof jacket"},
        {"id": "tent", "media": (folder / "tent.png").as_uri()},
        {"id": "care", "media": {"uri": str(folder / "care.pdf"), "mime_type": "application/pdf"}},
        {"id": "note", "media": {"data": (folder / "note.wav").read_bytes()}},
        {"id": "socks", "text": "Merino wool socks"},
    ]


@pytest.mark.usefixtures("gemini_connection", "milvus_connection")
def test_media_documents_are_embedded_stored_by_reference_and_found_by_a_text_question(
    folder: Path, gemini_emulator: GeminiEmulator
) -> None:
    result = embed(documents(folder), collection_name=COLLECTION)
    load(result)

    stats = gemini_emulator.stats
    assert dict(stats.media_parts) == {"image/png": 2, "application/pdf": 1, "audio/wav": 1}
    assert result["stats"]["estimated_media_tokens"] == {"image": 258 * 4, "audio": 48}
    rows = {row["id"]: row for row in result["rows"]}
    jacket = rows["jacket"]["metadata"]["media"]
    assert jacket == {
        "uri": (folder / "jacket.png").as_uri(),
        "mime_type": "image/png",
        "sha256": hashlib.sha256((folder / "jacket.png").read_bytes()).hexdigest(),
        "size_bytes": (folder / "jacket.png").stat().st_size,
    }
    assert rows["note"]["metadata"]["media"]["uri"] is None  # bytes given inline: nothing to point at
    assert (rows["tent"]["text"], rows["socks"]["metadata"]) == ("", {})
    query = GeminiHook().encode_queries(["a rain jacket"], model=MODEL, output_dimensionality=768)
    with MilvusHook() as milvus:
        hits = milvus.search(COLLECTION, query.tolist(), limit=1)[0]
    assert hits[0]["id"] == "jacket"
    assert hits[0]["metadata"]["media"]["mime_type"] == "image/png"


@pytest.mark.usefixtures("gemini_connection", "milvus_connection")
def test_unchanged_bytes_are_never_embedded_twice_and_a_move_only_updates_metadata(
    folder: Path, gemini_emulator: GeminiEmulator
) -> None:
    load(embed(documents(folder), collection_name=COLLECTION))
    gemini_emulator.reset_stats()

    again = embed(documents(folder), collection_name=COLLECTION)
    assert (gemini_emulator.stats.requests, again["stats"]["unchanged"]) == (0, 5)

    (folder / "moved.png").write_bytes((folder / "jacket.png").read_bytes())
    (folder / "tent.png").write_bytes(png_bytes(4, 4, (20, 20, 160), description="a blue tent"))
    edited = documents(folder)
    edited[0]["media"] = str(folder / "moved.png")
    result = embed(edited, collection_name=COLLECTION)

    assert (result["stats"]["embedded"], result["stats"]["metadata_only"]) == (1, 1)
    assert dict(gemini_emulator.stats.media_parts) == {"image/png": 1}  # the new tent only
    moved = next(row for row in result["rows"] if row["id"] == "jacket")
    assert moved["metadata"]["media"]["uri"] == (folder / "moved.png").as_uri()


@pytest.mark.usefixtures("gemini_connection")
def test_bad_media_fail_the_run_by_name_before_any_request(
    folder: Path, gemini_emulator: GeminiEmulator
) -> None:
    (folder / "long.pdf").write_bytes(pdf_bytes(["page"] * 7))
    cases = [
        (
            [{"id": "x", "media": str(folder / "long.pdf")}],
            r"documents\[0\] field 'media' \(file://.*long.pdf\) is a PDF of 7",
        ),
        (
            [{"id": "x", "media": str(folder / "gone.png")}],
            r"documents\[0\] field 'media' \(file://.*gone.png\) does not exist",
        ),
        ([{"id": "x", "media": "photos/a.png"}], r"documents\[0\] field 'media' must be a URI"),
        ([{"id": "x", "media": {"uri": "/a.png", "data": b"x"}}], "exactly one of uri and data"),
        ([{"id": "x", "media": {"data": b"GIF89a"}}], "could not be told from its bytes"),
    ]
    for docs, message in cases:
        with pytest.raises(ValueError, match=message):
            embed(docs)
    with pytest.raises(ValueError, match="media_field is set, but gemini-embedding-001 embeds text only"):
        embed(documents(folder), model="gemini-embedding-001")
    with pytest.raises(ValueError, match="media_field cannot be used in batch mode"):
        embed(documents(folder), deferrable="True")
    assert gemini_emulator.stats.requests == 0


@pytest.mark.usefixtures("gemini_connection")
def test_a_dry_run_prices_each_modality(folder: Path, gemini_emulator: GeminiEmulator) -> None:
    report = embed(documents(folder), dry_run="True")

    assert report["estimated_media_tokens"] == {"image": 258 * 4, "audio": 48}
    text_tokens = report["estimated_tokens"] - 258 * 4 - 48
    expected = text_tokens * 0.20 / 1e6 + 258 * 4 * 0.45 / 1e6 + 48 * 6.50 / 1e6
    assert report["estimated_cost_usd"] == pytest.approx(expected)
    assert report["estimated_batch_cost_usd"] == pytest.approx(expected / 2)
    assert gemini_emulator.stats.requests == 0
    with pytest.raises(ValueError, match="more than max_cost_usd"):
        embed(documents(folder), max_cost_usd="0.0001")


@pytest.mark.usefixtures("gemini_connection")
def test_media_larger_than_a_request_go_through_the_files_api_and_are_deleted(
    tmp_path: Path, gemini_emulator: GeminiEmulator
) -> None:
    big = png_bytes(2048, 2048, (1, 2, 3), description="a big poster")
    noise = hashlib.sha256(b"seed").digest() * (15 * 1024 * 1024 // 32)  # keep it over 14 MB uncompressed
    big = big[:-12] + _png_chunk(b"zNoi", noise) + big[-12:]
    (tmp_path / "poster.png").write_bytes(big)
    gemini_emulator.files_processing_polls = 1

    result = embed([{"id": "poster", "media": str(tmp_path / "poster.png")}])

    assert result["stats"]["embedded"] == 1
    assert dict(gemini_emulator.stats.media_parts) == {"image/png": 1}
    assert gemini_emulator.batches.files.names() == []  # uploaded, used, deleted


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    import struct
    import zlib

    return (
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


@pytest.mark.usefixtures("gemini_connection")
def test_media_are_read_from_s3_and_from_a_parquet_binary_column(
    s3_bucket: str, tmp_path: Path, gemini_emulator: GeminiEmulator
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq
    import s3fs

    photo = png_bytes(4, 4, (9, 9, 9), description="a grey backpack")
    s3fs.S3FileSystem(skip_instance_cache=True).pipe(f"{s3_bucket}/photos/backpack.png", photo)
    guide = pdf_bytes(["Pack the heaviest items close to your back"])
    table = pa.table(
        {
            "id": ["guide"],
            "media": [{"data": guide, "mime_type": "application/pdf"}],
            "text": [None],
        }
    )
    pq.write_table(table, tmp_path / "docs.parquet")

    from_s3 = embed([{"id": "backpack", "media": f"{s3_bucket}/photos/backpack.png"}])
    from_parquet = embed(str(tmp_path / "docs.parquet"))

    assert from_s3["rows"][0]["metadata"]["media"]["uri"] == f"{s3_bucket}/photos/backpack.png"
    assert from_s3["rows"][0]["metadata"]["media"]["sha256"] == hashlib.sha256(photo).hexdigest()
    assert from_parquet["rows"][0]["metadata"]["media"] == {
        "uri": None,
        "mime_type": "application/pdf",
        "sha256": hashlib.sha256(guide).hexdigest(),
        "size_bytes": len(guide),
    }
    assert dict(gemini_emulator.stats.media_parts) == {"image/png": 1, "application/pdf": 1}
