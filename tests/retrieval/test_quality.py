"""Search quality through Milvus Lite on the shipped labelled set, the queries embedded by the emulator."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from airflow_provider_gemini_milvus.hooks.gemini import GeminiHook
from airflow_provider_gemini_milvus.hooks.milvus import MilvusHook
from airflow_provider_gemini_milvus.operators.gemini import GeminiEmbedOperator
from airflow_provider_gemini_milvus.operators.milvus import MilvusInsertOperator
from airflow_provider_gemini_milvus.retrieval.labelled import labelled_queries
from airflow_provider_gemini_milvus.retrieval.quality import collection_ranker, evaluate_collection
from airflow_provider_gemini_milvus.retrieval.search import stored_query_settings
from airflow_provider_gemini_milvus.testing.gemini_emulator import GeminiEmulator
from airflow_provider_gemini_milvus.testing.search_set import (
    EXACT_TERM_QUERIES,
    SEARCH_DOCUMENTS,
    SEARCH_QUERIES,
)

COLLECTION = "kb"
SETTINGS = {"model": "gemini-embedding-001", "output_dimensionality": 768}


@pytest.fixture
def hooks(gemini_connection: str, milvus_connection: str) -> Iterator[tuple[MilvusHook, GeminiHook]]:
    embedded = GeminiEmbedOperator(task_id="embed", documents=SEARCH_DOCUMENTS, **SETTINGS).execute({})
    MilvusInsertOperator(task_id="load", collection_name=COLLECTION, data=embedded, full_text=True).execute(
        {}
    )
    milvus = MilvusHook(milvus_conn_id=milvus_connection)
    yield milvus, GeminiHook(gemini_conn_id=gemini_connection)
    milvus.close()


def test_hybrid_search_finds_the_exact_term_row_dense_search_ranks_low(
    hooks: tuple[MilvusHook, GeminiHook],
) -> None:
    milvus, gemini = hooks
    settings = stored_query_settings(milvus, COLLECTION)
    rank = collection_ranker(milvus, gemini, COLLECTION, settings, k=10)
    queries = list(EXACT_TERM_QUERIES)
    dense, full_text, hybrid = (rank(mode, queries) for mode in ("dense", "full_text", "hybrid"))
    for index, (query, wanted) in enumerate(EXACT_TERM_QUERIES.items()):
        assert wanted not in dense[index][:3], query
        assert full_text[index][0] == wanted, query
        assert wanted in hybrid[index][:3], query


def test_the_evaluation_scores_each_mode_and_hybrid_wins(
    hooks: tuple[MilvusHook, GeminiHook], gemini_emulator: GeminiEmulator
) -> None:
    milvus, gemini = hooks
    labelled = labelled_queries(SEARCH_QUERIES)
    gemini_emulator.reset_stats()
    scores = evaluate_collection(
        milvus,
        gemini,
        COLLECTION,
        labelled,
        modes=["dense", "full_text", "hybrid"],
        k=10,
        settings=stored_query_settings(milvus, COLLECTION),
    )
    by_mode = {score.mode: score for score in scores}
    assert list(by_mode) == ["dense", "full_text", "hybrid"]
    assert all(score.queries == len(SEARCH_QUERIES) and score.k == 10 for score in scores)
    assert by_mode["hybrid"].ndcg > by_mode["full_text"].ndcg > by_mode["dense"].ndcg
    assert by_mode["hybrid"].recall >= by_mode["dense"].recall
    # The queries were embedded once for the two modes that need vectors, and full text needed none.
    assert gemini_emulator.stats.texts == len(SEARCH_QUERIES)


def test_full_text_alone_sends_nothing_to_gemini(
    hooks: tuple[MilvusHook, GeminiHook], gemini_emulator: GeminiEmulator
) -> None:
    milvus, _ = hooks
    gemini_emulator.reset_stats()
    (score,) = evaluate_collection(
        milvus, None, COLLECTION, labelled_queries(SEARCH_QUERIES), modes=["full_text"], k=5, settings=None
    )
    assert score.mode == "full_text"
    assert gemini_emulator.stats.requests == 0
