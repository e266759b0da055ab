"""Files to chunks through GeminiEmbedOperator: per-source sync on the emulator and Milvus Lite."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from airflow_provider_gemini_milvus.embedding.chunked import ChunkedSource, SourceShard
from airflow_provider_gemini_milvus.files.chunking import ChunkingSpec, chunk_text
from airflow_provider_gemini_milvus.files.listing import iter_files
from airflow_provider_gemini_milvus.files.loaders import load_file
from airflow_provider_gemini_milvus.hooks.milvus import MilvusHook
from airflow_provider_gemini_milvus.operators.gemini import GeminiEmbedOperator
from airflow_provider_gemini_milvus.operators.milvus import MilvusInsertOperator
from airflow_provider_gemini_milvus.testing.gemini_emulator import GeminiEmulator
from airflow_provider_gemini_milvus.testing.sample_media import pdf_bytes, png_bytes

COLLECTION = "handbook"
SPEC = {"max_tokens": 96}

pytestmark = pytest.mark.usefixtures("gemini_connection", "milvus_connection")


def embed(documents: Any, **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("output_dimensionality", 768)
    kwargs.setdefault("chunking", SPEC)
    kwargs.setdefault("collection_name", COLLECTION)
    kwargs.setdefault("delete_missing", "source")
    operator = GeminiEmbedOperator(task_id="embed", documents=documents, **kwargs)
    return operator.execute(context={})  # type: ignore[arg-type]


def load(result: dict[str, Any]) -> None:
    MilvusInsertOperator(task_id="load", collection_name=COLLECTION, data=result).execute(context={})  # type: ignore[arg-type]


def stored_ids() -> set[str]:
    with MilvusHook() as milvus:
        return {row_id for row_id, _ in milvus.iter_fingerprints(COLLECTION)}


def paragraph(topic: str, number: int) -> str:
    words = " ".join(f"{topic}{number}w{word}" for word in range(45))
    return f"The {topic} rule number {number} says {words}."


def guide(edited: int | None = None) -> str:
    sections = []
    for number in range(40):
        text = paragraph("guide", number)
        if number == edited:
            text = text.replace("says", "clearly says")
        sections.append(f"## Section {number}\n\n{text}\n")
    return "# Handbook\n\n" + "\n".join(sections)


def page(sections: int) -> str:
    body = "".join(f"<h2>Part {n}</h2><p>{paragraph('page', n)}</p>" for n in range(sections))
    return f"<html><head><title>Policies</title></head><body><h1>Policies</h1>{body}</body></html>"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "handbook"
    root.mkdir()
    (root / "guide.md").write_text(guide(), encoding="utf-8")
    (root / "policies.html").write_text(page(10), encoding="utf-8")
    (root / "notes.txt").write_text("\n\n".join(paragraph("note", n) for n in range(6)), encoding="utf-8")
    (root / "manual.pdf").write_bytes(pdf_bytes([paragraph("manual", n) for n in range(3)], title="Manual"))
    (root / "logo.png").write_bytes(png_bytes(2, 2, (0, 0, 0)))
    return root


def expected_ids(folder: Path, spec: dict[str, Any] = SPEC) -> set[str]:
    """The chunk ids of every file of the folder, cut by the library directly."""
    chunking = ChunkingSpec(**spec)
    return {
        chunk.id
        for file in iter_files(str(folder))
        if not file.skipped
        for chunk in chunk_text(load_file(file), chunking)
    }


def test_a_second_run_embeds_only_changed_chunks_and_removes_exactly_the_stale_ones(
    folder: Path, gemini_emulator: GeminiEmulator
) -> None:
    first = embed(str(folder))
    load(first)
    before = stored_ids()
    assert before == expected_ids(folder)
    assert len([row_id for row_id in before if "guide.md" in row_id]) >= 30  # a long file

    (folder / "guide.md").write_text(guide(edited=20), encoding="utf-8")  # one paragraph edited
    (folder / "policies.html").write_text(page(6), encoding="utf-8")  # shrunk
    (folder / "notes.txt").unlink()  # deleted
    (folder / "faq.md").write_text("# FAQ\n\n" + paragraph("faq", 1), encoding="utf-8")  # added
    gemini_emulator.reset_stats()
    second = embed(str(folder))
    after = expected_ids(folder)

    new_ids = after - before
    assert gemini_emulator.stats.texts == len(new_ids)  # only new chunk texts are sent
    guide_sent = [row_id for row_id in new_ids if "guide.md" in row_id]
    assert 1 <= len(guide_sent) <= 2
    assert set(second["delete_ids"]) == before - after
    assert any("notes.txt" in row_id for row_id in second["delete_ids"])
    assert second["stats"]["unchanged"] + second["stats"]["metadata_only"] == len(before & after)
    load(second)
    assert stored_ids() == after


def test_rows_carry_their_source_position_and_title(folder: Path) -> None:
    result = embed(str(folder), delete_missing=False, inline_max_rows=1000)

    guide_rows = [row for row in result["rows"] if row["metadata"]["source_id"].endswith("/guide.md")]
    first = min(guide_rows, key=lambda row: row["metadata"]["position"])
    assert first["metadata"]["source_id"] == (folder / "guide.md").as_uri()
    assert first["metadata"]["chunk_count"] == len(guide_rows)
    later = [row for row in guide_rows if row["metadata"]["heading_path"][-1:] == ["Section 5"]]
    assert later
    assert later[0]["metadata"]["heading_path"] == ["Handbook", "Section 5"]
    assert result["stats"]["documents"] == len(expected_ids(folder))


def test_shards_share_the_folder_and_never_delete_each_others_rows(
    folder: Path, gemini_emulator: GeminiEmulator
) -> None:
    shards = ["0/2", "1/2"]
    for shard in shards:
        load(embed(str(folder), source_shard=shard))
    assert stored_ids() == expected_ids(folder)
    gone = min(
        (path for path in folder.iterdir() if path.suffix != ".png"), key=lambda path: path.stat().st_size
    )
    own_shard = next(index for index in range(2) if SourceShard(index, 2).holds(gone.as_uri()))
    gone_ids = {row_id for row_id in stored_ids() if row_id.startswith(gone.as_uri())}
    gone.unlink()
    gemini_emulator.reset_stats()

    other = embed(str(folder), source_shard=f"{1 - own_shard}/2")
    own = embed(str(folder), source_shard=f"{own_shard}/2", max_delete_fraction=1.0)

    assert other["delete_ids"] == []
    assert set(own["delete_ids"]) == gone_ids
    assert gemini_emulator.stats.texts == 0  # nothing changed in the files that remain


def test_source_documents_are_chunked_with_their_metadata(gemini_emulator: GeminiEmulator) -> None:
    documents = [
        {"id": "policy", "text": guide(), "team": "hr"},
        {"id": "faq", "text": "# FAQ\n\n" + paragraph("faq", 1), "team": "it"},
    ]
    load(embed(documents))
    documents[0]["text"] = guide(edited=7)
    gemini_emulator.reset_stats()

    result = embed(documents)

    assert 1 <= gemini_emulator.stats.texts <= 2
    assert {row["metadata"]["team"] for row in result["rows"]} <= {"hr"}
    assert all(row_id.startswith("policy#") for row_id in result["delete_ids"])


def test_the_mass_delete_guard_counts_the_sources_in_scope(folder: Path) -> None:
    load(embed(str(folder)))
    for name in ("guide.md", "policies.html", "notes.txt"):
        (folder / name).unlink()

    with pytest.raises(ValueError, match="delete_missing would delete"):
        embed(str(folder))
    assert embed(str(folder), max_delete_fraction=1.0)["delete_ids"]


def test_bad_arguments_are_refused_before_anything_is_read(gemini_emulator: GeminiEmulator) -> None:
    cases = {
        "delete_missing='source' needs chunking": {"chunking": None},
        "chunking max_tokens must be at least": {"chunking": {"max_tokens": "8"}},
        "chunking has unknown keys": {"chunking": {"size": 5}},
        "source_shard must look like '2/8'": {"source_shard": "half"},
        "delete_missing=True with source_shard": {"source_shard": "0/2", "delete_missing": "True"},
        "chunking cannot be used in batch mode": {"deferrable": "True"},
        "exceeds what gemini-embedding-001 embeds": {"chunking": {"max_tokens": "4000"}},
        "delete_missing must be true, false, 'corpus' or 'source'": {"delete_missing": "files"},
    }
    for message, arguments in cases.items():
        with pytest.raises(ValueError, match=message):
            embed("/nonexistent/folder", **arguments)
    assert gemini_emulator.stats.requests == 0


def test_an_unchanged_source_is_skipped_without_being_parsed(folder: Path) -> None:
    source = ChunkedSource(
        str(folder), spec=ChunkingSpec(**SPEC), id_field="id", text_field="text", title_field="title"
    )
    first = [sourced.item for chunk in source.chunks() for sourced in chunk]
    assert not source.is_inline  # a folder of files, not a list
    manual = next(item for item in first if item["source_id"].endswith("/manual.pdf"))
    skipping = ChunkedSource(
        str(folder),
        spec=ChunkingSpec(**SPEC),
        id_field="id",
        text_field="text",
        title_field="title",
        skip_hashes={manual["source_id"]: manual["source_hash"]},
    )

    second = [sourced.item for chunk in skipping.chunks() for sourced in chunk]

    assert skipping.unchanged == {manual["source_id"]}
    assert manual["source_id"] in skipping.listed
    assert not any(item["source_id"] == manual["source_id"] for item in second)
    assert len(second) == len(first) - manual["chunk_count"]


def test_a_dry_run_and_the_budget_count_chunks_before_anything_is_paid(
    folder: Path, gemini_emulator: GeminiEmulator
) -> None:
    report = embed(str(folder), dry_run="True")

    assert report["documents"] == report["new"] == len(expected_ids(folder))
    assert report["estimated_tokens"] > 0
    with pytest.raises(ValueError, match=r"the run would embed \d+ documents"):
        embed(str(folder), max_cost_usd="0.0000001")
    assert gemini_emulator.stats.requests == 0
