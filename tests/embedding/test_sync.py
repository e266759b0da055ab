"""The staged path of synchronous mode: Parquet parts and a small manifest, resume, skipped documents."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_gemini_milvus.exceptions import GeminiAPIError
from airflow_provider_gemini_milvus.hooks.milvus import MilvusHook
from airflow_provider_gemini_milvus.milvus.lite import lite_file_locked
from airflow_provider_gemini_milvus.operators.gemini import GeminiEmbedOperator
from airflow_provider_gemini_milvus.operators.milvus import MilvusInsertOperator
from airflow_provider_gemini_milvus.testing.gemini_emulator import GeminiEmulator
from airflow_provider_gemini_milvus.testing.pytest_plugin import GeminiConnectionFactory

COLLECTION = "docs"


def corpus(count: int, *, poison: int | None = None) -> list[dict[str, Any]]:
    return [
        {
            "id": f"doc-{n:04d}",
            "text": f"document {n} about topic {n % 7}" + (" POISON" if n == poison else ""),
            "lang": "en",
        }
        for n in range(count)
    ]


def embed(documents: Any, staging: Path, **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("output_dimensionality", 128)
    kwargs.setdefault("inline_max_rows", 0)
    kwargs.setdefault("batch_size", 10)
    operator = GeminiEmbedOperator(
        task_id="embed", documents=documents, staging_uri=f"file://{staging}", **kwargs
    )
    return operator.execute(context={})  # type: ignore[arg-type]


def load(result: dict[str, Any]) -> dict[str, Any]:
    return MilvusInsertOperator(task_id="load", collection_name=COLLECTION, data=result).execute(context={})  # type: ignore[arg-type]


@pytest.mark.usefixtures("gemini_connection", "milvus_connection")
def test_a_staged_run_hands_on_a_small_manifest_that_loads_every_row(
    tmp_path: Path, gemini_emulator: GeminiEmulator
) -> None:
    manifest = embed(corpus(250), tmp_path, part_rows=100)

    assert manifest["format"] == "gemini-milvus-staged/1"
    assert [part["rows"] for part in manifest["parts"]] == [100, 100, 50]
    assert manifest["rows"] == 250
    assert len(json.dumps(manifest)) < 8 * 1024
    assert manifest["stats"]["embedded"] == 250
    assert gemini_emulator.stats.texts == 250
    assert load(manifest)["written"] == 250
    with MilvusHook() as milvus:
        assert milvus.count(COLLECTION) == 250


@pytest.mark.usefixtures("gemini_connection", "milvus_connection")
def test_the_default_threshold_keeps_small_runs_inline(tmp_path: Path) -> None:
    result = embed(corpus(5), tmp_path, inline_max_rows="100")
    assert len(result["rows"]) == 5
    assert "format" not in result


@pytest.mark.usefixtures("milvus_connection")
def test_a_retry_after_a_refused_request_sends_only_what_was_not_staged(
    tmp_path: Path, gemini_emulator: GeminiEmulator, gemini_connection_factory: GeminiConnectionFactory
) -> None:
    gemini_connection_factory(max_concurrency=1, max_retries=0)
    gemini_emulator.refuse_texts("POISON")
    documents = corpus(200, poison=85)
    with pytest.raises(GeminiAPIError):
        embed(documents, tmp_path, part_rows=50)
    first_try = gemini_emulator.stats.embedded_texts
    assert len(first_try) == 80, "eight requests of ten finished before the ninth was refused"

    gemini_emulator.clear_faults()
    gemini_emulator.reset_stats()
    manifest = embed(documents, tmp_path, part_rows=50)

    assert len(gemini_emulator.stats.embedded_texts) == 120, "the retry pays only for the other 120"
    assert not set(gemini_emulator.stats.embedded_texts) & set(first_try)
    assert manifest["rows"] == 200
    assert load(manifest)["written"] == 200


@pytest.mark.usefixtures("milvus_connection")
def test_a_retry_after_the_quota_ran_out_midway_sends_only_the_rest(
    tmp_path: Path, gemini_emulator: GeminiEmulator, gemini_connection_factory: GeminiConnectionFactory
) -> None:
    gemini_connection_factory(max_concurrency=1, max_retries=0)
    gemini_emulator.configure(requests_per_minute=4)
    with pytest.raises(GeminiAPIError):
        embed(corpus(100), tmp_path, part_rows=30)
    assert gemini_emulator.stats.texts == 40

    gemini_emulator.configure(requests_per_minute=None)
    gemini_emulator.reset_stats()
    manifest = embed(corpus(100), tmp_path, part_rows=30)
    assert gemini_emulator.stats.texts == 60
    assert manifest["rows"] == 100


@pytest.mark.usefixtures("milvus_connection")
def test_skipped_documents_are_listed_and_left_out(
    tmp_path: Path, gemini_emulator: GeminiEmulator, gemini_connection_factory: GeminiConnectionFactory
) -> None:
    gemini_connection_factory(max_retries=0)
    gemini_emulator.refuse_texts("POISON", message="Request contains an invalid argument.")

    manifest = embed(corpus(60, poison=33), tmp_path, on_document_error="skip")
    assert manifest["rows"] == 59
    assert manifest["skipped_count"] == 1
    assert manifest["skipped_documents"][0]["index"] == 33
    assert manifest["skipped_documents"][0]["id"] == "doc-0033"
    assert "invalid argument" in manifest["skipped_documents"][0]["reason"]
    assert manifest["stats"]["refused"] == 1

    inline = embed(corpus(20, poison=3), tmp_path / "inline", on_document_error="skip", inline_max_rows=100)
    assert [row["id"] for row in inline["rows"]] == [f"doc-{n:04d}" for n in range(20) if n != 3]
    assert inline["skipped_documents"][0]["id"] == "doc-0003"


@pytest.mark.usefixtures("gemini_connection", "milvus_connection")
def test_documents_from_a_jsonl_folder_are_named_by_file_and_line(
    tmp_path: Path, gemini_emulator: GeminiEmulator
) -> None:
    source = tmp_path / "source"
    source.mkdir()
    lines = [json.dumps(doc) for doc in corpus(30)]
    (source / "a.jsonl").write_text("\n".join(lines[:20]) + "\n", encoding="utf-8")
    (source / "b.jsonl").write_text("\n".join(lines[20:]) + "\n", encoding="utf-8")

    manifest = embed(f"file://{source}", tmp_path / "staging")
    assert manifest["rows"] == 30

    (source / "b.jsonl").write_text(
        lines[20] + "\n" + json.dumps({"id": "x", "text": " "}) + "\n", encoding="utf-8"
    )
    gemini_emulator.reset_stats()
    with pytest.raises(ValueError, match=r"documents\[21\] \(b.jsonl line 2\) text is empty"):
        embed(str(source), tmp_path / "staging")
    assert gemini_emulator.stats.requests == 0


@pytest.mark.usefixtures("milvus_connection")
def test_a_retry_with_other_settings_discards_what_the_earlier_try_staged(
    tmp_path: Path, gemini_emulator: GeminiEmulator, gemini_connection_factory: GeminiConnectionFactory
) -> None:
    gemini_connection_factory(max_concurrency=1, max_retries=0)
    gemini_emulator.refuse_texts("POISON")
    with pytest.raises(GeminiAPIError):
        embed(corpus(50, poison=25), tmp_path, part_rows=10)
    gemini_emulator.clear_faults()
    gemini_emulator.reset_stats()

    manifest = embed(corpus(50, poison=25), tmp_path, part_rows=10, output_dimensionality=256)

    assert gemini_emulator.stats.texts == 50
    assert (manifest["rows"], manifest["dim"]) == (50, 256)
    assert load(manifest)["written"] == 50


@pytest.mark.usefixtures("gemini_connection", "milvus_connection")
def test_documents_and_parts_in_s3_compatible_storage(
    s3_bucket: str, gemini_emulator: GeminiEmulator
) -> None:
    from airflow_provider_gemini_milvus.staging.storage import as_path, filesystem

    source = as_path(f"{s3_bucket}/corpus/docs.jsonl")
    filesystem(source)  # no Airflow provider registers s3:// here: fsspec's s3fs, as the operator uses
    with source.open("w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(doc) + "\n" for doc in corpus(150))

    operator = GeminiEmbedOperator(
        task_id="embed",
        documents=f"{s3_bucket}/corpus/",
        output_dimensionality=128,
        staging_uri=f"{s3_bucket}/staging",
        part_rows=64,
    )
    manifest = operator.execute(context={})  # type: ignore[arg-type]

    assert sum(part["rows"] for part in manifest["parts"]) == 150
    assert all(part["uri"].startswith(f"{s3_bucket}/staging/") for part in manifest["parts"])
    assert gemini_emulator.stats.texts == 150
    assert load(manifest)["written"] == 150


@pytest.mark.usefixtures("milvus_connection")
def test_a_retry_after_the_source_changed_hands_on_exactly_the_current_documents(
    tmp_path: Path, gemini_emulator: GeminiEmulator, gemini_connection_factory: GeminiConnectionFactory
) -> None:
    from airflow_provider_gemini_milvus.staging import iter_part_rows

    gemini_connection_factory(max_concurrency=1, max_retries=0)
    gemini_emulator.refuse_texts("POISON")
    documents = corpus(30, poison=15)
    with pytest.raises(GeminiAPIError):
        embed(documents, tmp_path, part_rows=5)
    assert gemini_emulator.stats.texts == 10, "try 1 staged doc-0000 to doc-0009, then failed"

    gemini_emulator.clear_faults()
    gemini_emulator.reset_stats()
    current = [dict(doc) for doc in documents[1:]]  # doc-0000 is gone
    current[0]["text"] = "document 1, edited after the first try"
    current[14]["text"] = "document 15, fixed"
    manifest = embed(current, tmp_path, part_rows=5)

    staged = [row for part in manifest["parts"] for rows in iter_part_rows(part["uri"]) for row in rows]
    assert sorted(row["id"] for row in staged) == sorted(doc["id"] for doc in current), "each once"
    assert {row["id"]: row["text"] for row in staged}["doc-0001"] == "document 1, edited after the first try"
    assert manifest["rows"] == 29
    assert gemini_emulator.stats.texts == 21, "doc-0002 to doc-0009 are not paid for again"
    assert load_insert(manifest)["written"] == 29
    with MilvusHook() as milvus:
        assert sorted(milvus.list_ids(COLLECTION)) == sorted(doc["id"] for doc in current)


def load_insert(result: dict[str, Any]) -> dict[str, Any]:
    operator = MilvusInsertOperator(task_id="load", collection_name=COLLECTION, data=result, mode="insert")
    return operator.execute(context={})  # type: ignore[arg-type]


@pytest.mark.parametrize("inline_max_rows", ["1000", "0"], ids=["inline", "staged"])
@pytest.mark.usefixtures("gemini_connection")
def test_an_incremental_run_opens_the_collection_once_and_frees_it(
    tmp_path: Path,
    milvus_connection: str,
    milvus_db_path: Path,
    caplog: pytest.LogCaptureFixture,
    inline_max_rows: str,
) -> None:
    documents = corpus(30)
    load(embed(documents, tmp_path / "first", collection_name=COLLECTION))
    documents[0]["text"] += " (edited)"
    documents[1]["lang"] = "fr"
    del documents[2]
    caplog.clear()

    with caplog.at_level(logging.INFO):
        result = embed(
            documents,
            tmp_path / "second",
            collection_name=COLLECTION,
            delete_missing="True",
            inline_max_rows=inline_max_rows,
        )

    assert {key: result["stats"][key] for key in ("embedded", "metadata_only", "to_delete")} == {
        "embedded": 1,
        "metadata_only": 1,
        "to_delete": 1,
    }
    opens = [
        record for record in caplog.records if record.getMessage().startswith("MilvusLite server started")
    ]
    assert len(opens) == 1, "the description, the scan and the stored vectors are read in one open"
    assert not lite_file_locked(str(milvus_db_path)), "the task leaves the Milvus Lite file free"
