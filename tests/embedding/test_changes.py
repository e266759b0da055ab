"""Pay only for what changes the vector: the incremental diff, and metadata-only edits without a request."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from airflow_provider_gemini_milvus.embedding.changes import classify_changes, refresh_metadata
from airflow_provider_gemini_milvus.embedding.inputs import Document, DocumentKey
from airflow_provider_gemini_milvus.exceptions import GeminiAPIError
from airflow_provider_gemini_milvus.hooks.milvus import MilvusHook
from airflow_provider_gemini_milvus.milvus.rows import content_hash, prepare_rows
from airflow_provider_gemini_milvus.operators.gemini import GeminiEmbedOperator
from airflow_provider_gemini_milvus.operators.milvus import MilvusInsertOperator
from airflow_provider_gemini_milvus.testing.gemini_emulator import GeminiEmulator
from airflow_provider_gemini_milvus.testing.pytest_plugin import GeminiConnectionFactory

COLLECTION = "docs"
FINGERPRINT = "gemini-embedding-001/768/RETRIEVAL_DOCUMENT"


def corpus(count: int = 6) -> list[dict[str, Any]]:
    return [
        {"id": f"doc-{n}", "text": f"document {n} about topic {n % 3}", "heading": f"H{n}", "lang": "en"}
        for n in range(count)
    ]


def embed(documents: Any, **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("output_dimensionality", 768)
    kwargs.setdefault("collection_name", COLLECTION)
    operator = GeminiEmbedOperator(task_id="embed", documents=documents, **kwargs)
    return operator.execute(context={})  # type: ignore[arg-type]


def load(data: Any, **kwargs: Any) -> dict[str, Any]:
    operator = MilvusInsertOperator(task_id="load", collection_name=COLLECTION, data=data, **kwargs)
    return operator.execute(context={})  # type: ignore[arg-type]


def stored_rows() -> dict[str, dict[str, Any]]:
    with MilvusHook() as milvus:
        ids = milvus.list_ids(COLLECTION)
        vectors = milvus.fetch_vectors(COLLECTION, ids)
        rows = milvus.get_conn().query(
            COLLECTION, filter='id != ""', output_fields=["id", "metadata", "content_hash", "model"]
        )
    return {row["id"]: {**row, "vector": vectors[row["id"]]} for row in rows}


# -- the diff, pure --------------------------------------------------------------------------------------


def key(text: str, metadata: dict[str, Any], title: str | None = None) -> DocumentKey:
    return DocumentKey(0, content_hash(text, title=title, metadata=metadata), "documents[0]")


def test_each_document_is_new_changed_metadata_only_or_unchanged() -> None:
    keys = {
        "new": key("n", {}),
        "same": key("s", {"a": 1}),
        "meta": key("m", {"a": 2}),
        "text": key("t2", {}),
        "title": key("t", {}, title="T2"),
        "model": key("x", {}),
        "old-format": key("o", {}),
    }
    stored = {
        "same": (content_hash("s", metadata={"a": 1}), FINGERPRINT),
        "meta": (content_hash("m", metadata={"a": 1}), FINGERPRINT),
        "text": (content_hash("t1"), FINGERPRINT),
        "title": (content_hash("t", title="T1"), FINGERPRINT),
        "model": (content_hash("x"), "gemini-embedding-001/3072/RETRIEVAL_DOCUMENT"),
        "old-format": ("0333014eb5224df05f85a38f99437adc6606c316a5682c5e50ad4fcd4f96b6f1", FINGERPRINT),
        "gone-from-source": (content_hash("g"), FINGERPRINT),
    }

    changes = classify_changes(keys, stored, FINGERPRINT)

    assert list(changes.new) == ["new"]
    assert list(changes.changed) == ["text", "title", "model", "old-format"]
    assert list(changes.metadata_only) == ["meta"]
    assert changes.unchanged == 1
    assert changes.other_model == 1
    assert list(changes.to_embed) == ["new", "text", "title", "model", "old-format"]
    assert changes.counts() == {"new": 1, "changed": 4, "metadata_only": 1, "unchanged": 1}


# -- metadata-only edits against the emulator and real Milvus Lite ------------------------------------------


@pytest.mark.usefixtures("gemini_connection", "milvus_connection")
def test_a_metadata_only_edit_makes_no_request_and_keeps_the_stored_vector(
    gemini_emulator: GeminiEmulator,
) -> None:
    load(embed(corpus(), title_field="heading"))
    before = stored_rows()
    gemini_emulator.reset_stats()
    edited = corpus()
    for document in edited[:4]:
        document["lang"] = "fr"

    result = embed(edited, title_field="heading")

    assert gemini_emulator.stats.requests == 0
    assert sorted(row["id"] for row in result["rows"]) == ["doc-0", "doc-1", "doc-2", "doc-3"]
    stats = result["stats"]
    assert (stats["embedded"], stats["metadata_only"], stats["unchanged"]) == (0, 4, 2)
    assert stats["requests"] == 0
    assert stats["estimated_cost_usd"] == 0.0
    assert load(result)["written"] == 4
    after = stored_rows()
    for doc_id in before:
        # The very same float32 values: the vector was read back and written as it was.
        np.testing.assert_array_equal(after[doc_id]["vector"], before[doc_id]["vector"])
    assert {doc_id: row["metadata"]["lang"] for doc_id, row in after.items()} == {
        f"doc-{n}": "fr" if n < 4 else "en" for n in range(6)
    }
    assert after["doc-0"]["content_hash"] == content_hash(
        "document 0 about topic 0", title="H0", metadata={"lang": "fr"}
    )
    gemini_emulator.reset_stats()
    assert embed(edited, title_field="heading")["rows"] == []
    assert gemini_emulator.stats.requests == 0


@pytest.mark.usefixtures("gemini_connection", "milvus_connection")
def test_text_and_title_edits_still_re_embed(gemini_emulator: GeminiEmulator) -> None:
    load(embed(corpus(), title_field="heading"))
    gemini_emulator.reset_stats()
    edited = corpus()
    edited[0]["text"] = "a new text"
    edited[1]["heading"] = "a new title"
    edited[2]["lang"] = "de"

    result = embed(edited, title_field="heading")

    assert sorted(gemini_emulator.stats.embedded_texts) == sorted(["a new text", edited[1]["text"]])
    stats = result["stats"]
    assert (stats["embedded"], stats["metadata_only"], stats["unchanged"]) == (2, 1, 3)
    load(result)
    gemini_emulator.reset_stats()
    assert embed(edited, title_field="heading")["rows"] == []
    assert gemini_emulator.stats.requests == 0


@pytest.mark.usefixtures("gemini_connection", "milvus_connection")
def test_rows_loaded_by_the_insert_operator_hash_like_the_embed_operator(
    gemini_emulator: GeminiEmulator,
) -> None:
    rng = np.random.default_rng(7)
    rows = [
        {
            "id": document["id"],
            "vector": rng.normal(size=768).tolist(),
            "text": document["text"],
            "title": document["heading"],
            "metadata": {"lang": document["lang"]},
            "model": FINGERPRINT,
        }
        for document in corpus()
    ]
    load(rows)  # no content_hash given: the insert operator computes it

    assert embed(corpus(), title_field="heading")["stats"]["unchanged"] == 6
    edited = corpus()
    edited[5]["lang"] = "it"
    result = embed(edited, title_field="heading")

    assert result["stats"]["metadata_only"] == 1
    assert gemini_emulator.stats.requests == 0


@pytest.mark.usefixtures("gemini_connection", "milvus_connection")
def test_rows_in_the_one_part_hash_format_are_re_embedded_once(gemini_emulator: GeminiEmulator) -> None:
    result = embed(corpus(3))
    for row in result["rows"]:
        row["content_hash"] = "0" * 64  # what a collection written before 0.x holds
    load(result)
    gemini_emulator.reset_stats()

    again = embed(corpus(3))
    assert again["stats"]["embedded"] == 3
    load(again)
    gemini_emulator.reset_stats()
    assert embed(corpus(3))["rows"] == []
    assert gemini_emulator.stats.requests == 0


@pytest.mark.usefixtures("gemini_connection", "milvus_connection")
def test_a_staged_metadata_only_edit_writes_parts_with_the_stored_vectors(
    tmp_path: Path, gemini_emulator: GeminiEmulator
) -> None:
    staging: dict[str, Any] = {"inline_max_rows": 0, "part_rows": 4}
    load(embed(corpus(10), staging_uri=f"file://{tmp_path}/first", **staging))
    before = stored_rows()
    gemini_emulator.reset_stats()
    edited = corpus(10)
    for document in edited[3:]:
        document["lang"] = "fr"
    edited[0]["text"] = "an edited text"

    manifest = embed(edited, staging_uri=f"file://{tmp_path}/second", **staging)

    assert gemini_emulator.stats.embedded_texts == ["an edited text"]
    assert manifest["rows"] == 8
    assert (manifest["stats"]["embedded"], manifest["stats"]["metadata_only"]) == (1, 7)
    assert load(manifest)["written"] == 8
    after = stored_rows()
    for doc_id in [f"doc-{n}" for n in range(1, 10)]:
        np.testing.assert_array_equal(after[doc_id]["vector"], before[doc_id]["vector"])
    assert not np.array_equal(after["doc-0"]["vector"], before["doc-0"]["vector"])
    assert sum(row["metadata"]["lang"] == "fr" for row in after.values()) == 7


@pytest.mark.usefixtures("gemini_connection", "milvus_connection")
def test_insert_mode_retry_skips_metadata_only_rows_already_written(gemini_emulator: GeminiEmulator) -> None:
    load(embed(corpus()))
    edited = corpus()
    edited[0]["lang"] = "fr"
    result = embed(edited)
    load(result, mode="upsert")

    again = load(result, mode="insert")  # a retry of a load that had already written the row

    assert (again["written"], again["skipped"]) == (0, 1)


@pytest.mark.usefixtures("milvus_connection")
def test_refresh_reports_documents_whose_row_vanished() -> None:
    with MilvusHook() as milvus:
        milvus.ensure_collection(COLLECTION, 4)
        rows, _ = prepare_rows([{"id": "kept", "vector": [0.5, 0.5, 0.5, 0.5], "text": "t"}])
        milvus.write_batches(COLLECTION, [rows])
    documents = [
        Document(doc_id, "t", None, {"lang": "fr"}, index) for index, doc_id in enumerate(["kept", "gone"])
    ]
    emitted: list[dict[str, Any]] = []

    gone = refresh_metadata(MilvusHook(), COLLECTION, [documents], "m/4/RD", emitted.extend)

    assert gone == ["gone"]
    assert [(row["id"], row["metadata"], row["model"]) for row in emitted] == [
        ("kept", {"lang": "fr"}, "m/4/RD")
    ]
    np.testing.assert_array_equal(emitted[0]["vector"], np.full(4, 0.5, dtype=np.float32))


@pytest.mark.usefixtures("milvus_connection")
def test_a_retry_keeps_the_metadata_only_rows_its_first_try_staged(
    tmp_path: Path, gemini_emulator: GeminiEmulator, gemini_connection_factory: GeminiConnectionFactory
) -> None:
    gemini_connection_factory(max_retries=0)
    load(embed(corpus(), staging_uri=f"file://{tmp_path}/first", inline_max_rows=0))
    edited = corpus()
    for document in edited[:5]:
        document["lang"] = "fr"
    edited[5]["text"] = "an edit Gemini refuses: POISON"
    gemini_emulator.refuse_texts("POISON")
    retried = {"staging_uri": f"file://{tmp_path}/second", "inline_max_rows": 0}
    with pytest.raises(GeminiAPIError):
        embed(edited, **retried)

    gemini_emulator.clear_faults()
    manifest = embed(edited, **retried)

    assert manifest["rows"] == 6, "the five refreshed rows staged by the first try, and the one edit"
    assert load(manifest)["written"] == 6
    assert {row["metadata"]["lang"] for row in stored_rows().values()} == {"fr", "en"}
