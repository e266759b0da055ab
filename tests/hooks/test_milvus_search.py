"""MilvusHook's full-text and hybrid search against real Milvus Lite files (the rules: tests/milvus/)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_gemini_milvus.exceptions import MilvusCollectionMismatchError
from airflow_provider_gemini_milvus.hooks.milvus import MilvusHook
from airflow_provider_gemini_milvus.milvus.rows import prepare_rows, split_batches

# Dense vectors that point away from the one row holding the code: only its text can find it.
ROWS = [
    {"id": "pump", "vector": [1.0, 0.0, 0.0, 0.0], "text": "The pump stops when the pressure drops."},
    {"id": "valve", "vector": [0.9, 0.1, 0.0, 0.0], "text": "Valve maintenance for the pump line."},
    {"id": "code", "vector": [0.0, 0.0, 1.0, 0.0], "text": "Controller fault E-2207 resets the unit."},
    {"id": "manual", "vector": [0.8, 0.2, 0.1, 0.0], "text": "Read the manual before servicing."},
]
QUERY_VECTOR = [1.0, 0.05, 0.0, 0.0]


@pytest.fixture
def hook(milvus_connection: str) -> Iterator[MilvusHook]:
    milvus_hook = MilvusHook(milvus_conn_id=milvus_connection)
    yield milvus_hook
    milvus_hook.close()


def fill(hook: MilvusHook, name: str, rows: list[dict[str, Any]], *, full_text: bool = True) -> None:
    prepared, dim = prepare_rows(rows)
    assert dim is not None
    hook.ensure_collection(name, dim, full_text=full_text)
    hook.write_batches(name, split_batches(prepared), mode="upsert")


def ids(hits: list[list[dict[str, Any]]]) -> list[str]:
    return [hit["id"] for hit in hits[0]]


def test_a_full_text_collection_is_created_and_described(hook: MilvusHook) -> None:
    assert hook.ensure_collection("docs", 4, full_text=True) is True
    info = hook.describe("docs")
    assert info is not None
    assert info.full_text is True
    assert info.field_types["sparse"] == "SPARSE_FLOAT_VECTOR"
    assert info.to_dict()["full_text"] is True
    # Asking again for what it has is fine; a plain collection says it has none.
    assert hook.ensure_collection("docs", 4, full_text=True) is False
    hook.ensure_collection("plain", 4)
    plain = hook.describe("plain")
    assert plain is not None
    assert plain.full_text is False
    assert [hook.collection_has_full_text(name) for name in ("docs", "plain", "missing")] == [
        True,
        False,
        False,
    ]


def test_full_text_finds_the_exact_term_that_dense_misses(hook: MilvusHook) -> None:
    fill(hook, "docs", ROWS)
    dense = hook.search("docs", [QUERY_VECTOR], limit=3)
    assert "code" not in ids(dense)
    full_text = hook.search("docs", texts=["E-2207"], mode="full_text", limit=3)
    assert ids(full_text)[0] == "code"
    assert full_text[0][0]["distance"] > 0  # a BM25 score, positive on Lite as on a server
    hybrid = hook.search("docs", [QUERY_VECTOR], texts=["pump fault E-2207"], mode="hybrid", limit=3)
    assert "code" in ids(hybrid)
    assert json.loads(json.dumps(hybrid)) == hybrid
    assert sorted(hybrid[0][0]) == ["distance", "id", "metadata", "text"]


def test_weighted_fusion_follows_its_weights(hook: MilvusHook) -> None:
    fill(hook, "docs", ROWS)
    texts = ["E-2207"]
    toward_text = hook.search(
        "docs", [QUERY_VECTOR], texts=texts, mode="hybrid", fusion="weighted", weights=(0.1, 0.9), limit=2
    )
    toward_dense = hook.search(
        "docs", [QUERY_VECTOR], texts=texts, mode="hybrid", fusion="weighted", weights=(1.0, 0.0), limit=2
    )
    assert ids(toward_text)[0] == "code"
    assert ids(toward_dense)[0] == "pump"


def test_filters_apply_to_both_sides_of_a_hybrid_search(hook: MilvusHook) -> None:
    rows = [{**row, "metadata": {"lang": "de" if row["id"] == "code" else "en"}} for row in ROWS]
    fill(hook, "docs", rows)
    hits = hook.search(
        "docs", [QUERY_VECTOR], texts=["E-2207"], mode="hybrid", filter='metadata["lang"] == "en"', limit=4
    )
    assert "code" not in ids(hits)
    assert ids(
        hook.search("docs", texts=["E-2207"], mode="full_text", filter='metadata["lang"] == "de"')
    ) == ["code"]


def test_rewritten_and_deleted_rows_leave_the_full_text_index(hook: MilvusHook) -> None:
    fill(hook, "docs", ROWS)
    fill(hook, "docs", [{**ROWS[2], "text": "Controller fault resets the unit."}])
    hook.delete_ids("docs", ["pump"])
    assert ids(hook.search("docs", texts=["E-2207"], mode="full_text")) == []
    assert "pump" not in ids(hook.search("docs", texts=["pressure drops"], mode="full_text"))
    assert hook.count("docs") == 3


def test_incremental_reads_work_on_a_full_text_collection(hook: MilvusHook) -> None:
    fill(hook, "docs", ROWS)
    assert sorted(hook.list_ids("docs")) == sorted(row["id"] for row in ROWS)
    assert set(hook.fetch_fingerprints("docs", ["pump", "code"])) == {"pump", "code"}
    assert hook.fetch_vectors("docs", ["code"])["code"].tolist() == [0.0, 0.0, 1.0, 0.0]


def test_hybrid_search_reads_through_an_alias(hook: MilvusHook) -> None:
    fill(hook, "docs_v1", ROWS)
    hook.get_conn().create_alias("docs_v1", "docs")
    assert "code" in ids(hook.search("docs", [QUERY_VECTOR], texts=["E-2207"], mode="hybrid", limit=3))


def test_full_text_modes_on_a_plain_collection_name_it(hook: MilvusHook) -> None:
    fill(hook, "plain", ROWS, full_text=False)
    for mode in ("full_text", "hybrid"):
        with pytest.raises(
            MilvusCollectionMismatchError, match=r"collection 'plain' has no full-text search"
        ):
            hook.search("plain", [QUERY_VECTOR], texts=["E-2207"], mode=mode)
    with pytest.raises(MilvusCollectionMismatchError, match="'missing' has no full-text"):
        hook.search("missing", texts=["E-2207"], mode="full_text")


def test_an_existing_plain_collection_is_refused_for_full_text(hook: MilvusHook) -> None:
    hook.ensure_collection("plain", 4)
    with pytest.raises(
        MilvusCollectionMismatchError, match=r"'plain' has no full-text search.*full_text=True"
    ):
        hook.ensure_collection("plain", 4, full_text=True)


def test_a_bad_analyzer_is_named(hook: MilvusHook) -> None:
    with pytest.raises(MilvusCollectionMismatchError, match=r"full_text_analyzer \{'type': 'klingon'\}"):
        hook.ensure_collection("docs", 4, full_text=True, analyzer={"type": "klingon"})
    assert not hook.has_collection("docs")


def test_no_queries_means_no_search(hook: MilvusHook) -> None:
    assert hook.search("missing", [], mode="dense") == []
    assert hook.search("missing", texts=[], mode="full_text") == []


def test_lite_reports_a_version_with_full_text(hook: MilvusHook) -> None:
    assert hook.server_version().startswith("milvus_lite-")
    hook.check_full_text_support()
