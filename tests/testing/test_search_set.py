"""
The shipped search set does what it promises: with the emulator's vectors (through the real GeminiHook),
dense search misses the exact-term documents that Milvus Lite's BM25 ranks first, reciprocal rank fusion
keeps them in its top 3, and hybrid search scores the best nDCG@10.

Ranked here without the provider's search modes: dense with numpy cosine, full text with raw pymilvus on a
Lite file, hybrid as reciprocal rank fusion of the two (k=60, 10 hits each), as Milvus' RRFRanker does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from airflow_provider_gemini_milvus.hooks.gemini import GeminiHook
from airflow_provider_gemini_milvus.retrieval.labelled import labelled_queries
from airflow_provider_gemini_milvus.retrieval.metrics import score_rankings
from airflow_provider_gemini_milvus.testing.gemini_emulator import GeminiEmulator
from airflow_provider_gemini_milvus.testing.pytest_plugin import TEST_CONNECTION_EXTRAS
from airflow_provider_gemini_milvus.testing.search_set import (
    EXACT_TERM_QUERIES,
    SEARCH_DOCUMENTS,
    SEARCH_QUERIES,
)

MODEL = "gemini-embedding-001"
DIMENSIONS = 768
LIMIT = 10
RRF_K = 60
#: The plain-language questions and their one relevant id (the exact-term queries start with a capital).
PLAIN_QUERIES = [
    (query["query"], query["relevant"][0]) for query in SEARCH_QUERIES if query["query"][0].islower()
]


@dataclass(frozen=True)
class Rankings:
    """The ranked ids (best first, 10 each) of every query of SEARCH_QUERIES, per mode."""

    dense: list[list[str]]
    full_text: list[list[str]]
    hybrid: list[list[str]]

    def of(self, mode: str, query: str) -> list[str]:
        position = [item["query"] for item in SEARCH_QUERIES].index(query)
        ranked: list[str] = getattr(self, mode)[position]
        return ranked


def rank_of(ranked: list[str], identifier: str) -> int | None:
    return ranked.index(identifier) + 1 if identifier in ranked else None


def dense_rankings() -> list[list[str]]:
    """Embed through the real GeminiHook (the emulator answers) and rank by cosine."""
    hook = GeminiHook()
    documents = hook.embed(
        [document["text"] for document in SEARCH_DOCUMENTS],
        model=MODEL,
        task_type="RETRIEVAL_DOCUMENT",
        output_dimensionality=DIMENSIONS,
    )
    queries = hook.embed(
        [query["query"] for query in SEARCH_QUERIES],
        model=MODEL,
        task_type="RETRIEVAL_QUERY",
        output_dimensionality=DIMENSIONS,
    )
    similarities = queries @ documents.T  # rows are L2-normalised: cosine
    ids = [document["id"] for document in SEARCH_DOCUMENTS]
    return [[ids[column] for column in np.argsort(-row, kind="stable")[:LIMIT]] for row in similarities]


def bm25_rankings(path: Path) -> list[list[str]]:
    """Milvus Lite's BM25 over a text field with the standard analyzer."""
    from milvus_lite.server_manager import server_manager_instance
    from pymilvus import DataType, Function, FunctionType, MilvusClient

    client = MilvusClient(str(path))
    try:
        schema = MilvusClient.create_schema(auto_id=False)
        schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=512)
        schema.add_field(
            "text",
            DataType.VARCHAR,
            max_length=65535,
            enable_analyzer=True,
            analyzer_params={"type": "standard"},
        )
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_function(
            Function(
                name="text_bm25",
                function_type=FunctionType.BM25,
                input_field_names=["text"],
                output_field_names=["sparse"],
            )
        )
        index_params = MilvusClient.prepare_index_params()
        index_params.add_index(field_name="sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        client.create_collection("search_set", schema=schema, index_params=index_params)
        client.insert("search_set", [{"id": doc["id"], "text": doc["text"]} for doc in SEARCH_DOCUMENTS])
        hits = client.search(
            "search_set",
            data=[query["query"] for query in SEARCH_QUERIES],
            anns_field="sparse",
            limit=LIMIT,
            output_fields=["id"],
        )
        return [[hit["id"] for hit in row] for row in hits]  # best first
    finally:
        client.close()
        server_manager_instance.release_server(str(path))


def fuse(*rankings: list[str]) -> list[str]:
    """Reciprocal rank fusion: each list adds 1 / (60 + rank) to an id's score."""
    scores: dict[str, float] = {}
    for ranked in rankings:
        for rank, identifier in enumerate(ranked, start=1):
            scores[identifier] = scores.get(identifier, 0.0) + 1.0 / (RRF_K + rank)
    return sorted(scores, key=lambda identifier: -scores[identifier])[:LIMIT]


@pytest.fixture(scope="module")
def rankings(tmp_path_factory: pytest.TempPathFactory) -> Rankings:
    """Ranked once for the module: the emulator and a Lite file of its own."""
    emulator = GeminiEmulator().start()
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("AIRFLOW_CONN_GEMINI_DEFAULT", emulator.connection_json(**TEST_CONNECTION_EXTRAS))
            dense = dense_rankings()
    finally:
        emulator.stop()
    full_text = bm25_rankings(tmp_path_factory.mktemp("search_set") / "bm25.db")
    hybrid = [fuse(one, other) for one, other in zip(dense, full_text, strict=True)]
    return Rankings(dense=dense, full_text=full_text, hybrid=hybrid)


# -- the set itself ---------------------------------------------------------------------------------


def test_the_set_is_well_formed() -> None:
    ids = [document["id"] for document in SEARCH_DOCUMENTS]
    assert len(set(ids)) == len(ids)
    assert 30 <= len(ids) <= 40
    assert all(set(document) == {"id", "text", "metadata"} for document in SEARCH_DOCUMENTS)
    labelled = labelled_queries(SEARCH_QUERIES)
    assert len(labelled) == 12
    assert all(set(query.relevant) <= set(ids) for query in labelled)
    assert len(PLAIN_QUERIES) == 6
    for query, identifier in EXACT_TERM_QUERIES.items():
        assert identifier in next(item["relevant"] for item in SEARCH_QUERIES if item["query"] == query)
    assert len(EXACT_TERM_QUERIES) >= 3


# -- what the modes do on it ------------------------------------------------------------------------


@pytest.mark.parametrize(("query", "identifier"), sorted(EXACT_TERM_QUERIES.items()))
def test_dense_ranks_the_exact_term_document_low_and_full_text_first(
    rankings: Rankings, query: str, identifier: str
) -> None:
    dense_rank = rank_of(rankings.of("dense", query), identifier)
    assert dense_rank is None or dense_rank > 3, f"dense ranks {identifier} at {dense_rank}"
    assert rankings.of("full_text", query)[0] == identifier


@pytest.mark.parametrize(("query", "identifier"), sorted(EXACT_TERM_QUERIES.items()))
def test_hybrid_puts_the_exact_term_document_in_its_top_3(
    rankings: Rankings, query: str, identifier: str
) -> None:
    assert identifier in rankings.of("hybrid", query)[:3]


@pytest.mark.parametrize(("query", "identifier"), PLAIN_QUERIES)
def test_dense_ranks_the_answer_to_a_plain_question_in_its_top_3(
    rankings: Rankings, query: str, identifier: str
) -> None:
    assert identifier in rankings.of("dense", query)[:3]


def test_hybrid_scores_the_best_ndcg(rankings: Rankings, capsys: pytest.CaptureFixture[str]) -> None:
    labelled = labelled_queries(SEARCH_QUERIES)
    scores = {
        mode: score_rankings(mode, labelled, getattr(rankings, mode), k=10).ndcg
        for mode in ("dense", "full_text", "hybrid")
    }
    with capsys.disabled():
        print("\nsearch set nDCG@10: " + ", ".join(f"{mode} {score:.4f}" for mode, score in scores.items()))
    assert scores["hybrid"] > scores["full_text"] > scores["dense"]
    assert scores["hybrid"] - scores["dense"] > 0.1
