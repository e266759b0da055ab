"""Reading stored vectors back by id, on real Milvus Lite."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from airflow_provider_gemini_milvus.hooks.milvus import MilvusHook
from airflow_provider_gemini_milvus.milvus.rows import VECTOR_QUERY_BATCH, prepare_rows

TRICKY_IDS = ["it's", 'say "hi"', "back\\slash", "both'\"\\", "café ☕", "line\nbreak"]


@pytest.fixture
def hook(milvus_connection: str) -> Iterator[MilvusHook]:
    with MilvusHook(milvus_conn_id=milvus_connection) as milvus:
        yield milvus


def test_vectors_come_back_as_stored_in_several_queries(hook: MilvusHook) -> None:
    ids = [f"doc-{n}" for n in range(VECTOR_QUERY_BATCH + 10)] + TRICKY_IDS
    vectors = np.random.default_rng(3).normal(size=(len(ids), 8)).astype(np.float32)
    rows, _ = prepare_rows(
        [{"id": i, "vector": v.tolist(), "text": "t"} for i, v in zip(ids, vectors, strict=True)]
    )
    hook.ensure_collection("docs", 8)
    hook.write_batches("docs", [rows])

    found = hook.fetch_vectors("docs", [*ids, "missing", 'missing"too'])

    assert sorted(found) == sorted(ids)
    for row_id, vector in zip(ids, vectors, strict=True):
        assert found[row_id].dtype == np.float32
        np.testing.assert_array_equal(found[row_id], vector)


def test_a_missing_collection_or_no_ids_read_nothing(hook: MilvusHook) -> None:
    assert hook.fetch_vectors("nowhere", ["a"]) == {}
    assert hook.fetch_vectors("nowhere", []) == {}
