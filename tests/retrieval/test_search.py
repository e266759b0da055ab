"""The search engine against the Gemini emulator and real Milvus Lite: settings, checks, what is sent."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from airflow_provider_gemini_milvus.exceptions import MilvusCollectionMismatchError
from airflow_provider_gemini_milvus.hooks.gemini import GeminiHook
from airflow_provider_gemini_milvus.hooks.milvus import MilvusHook
from airflow_provider_gemini_milvus.milvus import full_text as full_text_rules
from airflow_provider_gemini_milvus.operators.gemini import GeminiEmbedOperator
from airflow_provider_gemini_milvus.operators.milvus import MilvusInsertOperator
from airflow_provider_gemini_milvus.retrieval.search import (
    FUSIONS,
    SEARCH_MODES,
    QueryHits,
    QuerySettings,
    SearchArguments,
    search_collection,
    stored_query_settings,
)
from airflow_provider_gemini_milvus.testing.gemini_emulator import GeminiEmulator

log = logging.getLogger(__name__)

COLLECTION = "search_docs"
CORPUS = [
    {"id": "milvus", "text": "Milvus stores vectors for similarity search.", "topic": "software"},
    {"id": "airflow", "text": "Airflow schedules data pipelines every day.", "topic": "software"},
    {"id": "gemini", "text": "Gemini turns text into embeddings.", "topic": "models"},
    {"id": "everest", "text": "Mount Everest is the highest mountain on Earth.", "topic": "places"},
]
OLD: dict[str, Any] = {"model": "gemini-embedding-001", "output_dimensionality": 768}

lite = pytest.mark.usefixtures("gemini_connection", "milvus_connection")


def fill(
    collection: str = COLLECTION,
    documents: list[dict[str, Any]] = CORPUS,
    *,
    full_text: bool = False,
    **settings: Any,
) -> dict[str, Any]:
    """Embed the documents with the real embed operator (on the emulator) and load them into Milvus Lite."""
    settings = {**OLD, **settings}
    embedded = GeminiEmbedOperator(
        task_id="embed", documents=documents, metadata_fields=["topic"], **settings
    ).execute({})
    MilvusInsertOperator(
        task_id="load", collection_name=collection, data=embedded, full_text=full_text
    ).execute({})
    return embedded


def search(queries: list[str], **kwargs: Any) -> list[QueryHits]:
    kwargs.setdefault("collection_name", COLLECTION)
    args = SearchArguments(queries=tuple(queries), **kwargs)
    with MilvusHook() as milvus:
        return search_collection(milvus, GeminiHook(), args, log)


def top_ids(answers: list[QueryHits]) -> list[str]:
    return [answer["hits"][0]["id"] for answer in answers]


# -- arguments -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"queries": ("fine", " ")}, r"queries\[1\] must be a non-empty string, got ' '"),
        ({"queries": ("fine", 3)}, r"queries\[1\] must be a non-empty string, got 3"),
        ({"mode": "sparse"}, "mode must be one of \\['dense', 'full_text', 'hybrid'\\], got 'sparse'"),
        ({"fusion": "max"}, "fusion must be one of \\['rrf', 'weighted'\\]"),
        ({"limit": 0}, "limit must be an integer from 1 to 16384, got 0"),
        ({"rrf_k": 16384}, "rrf_k must be an integer from 1 to 16383"),
        ({"output_fields": ("text", "")}, r"output_fields\[1\] must be a field name"),
        ({"weights": (0.7, 0.3)}, "weights apply to mode='hybrid' with fusion='weighted' only"),
        ({"mode": "hybrid", "fusion": "weighted", "weights": (1.5, 0)}, "weights must be two numbers from 0"),
        ({"mode": "hybrid", "fusion": "weighted", "weights": (0, 0)}, "not both 0"),
        ({"mode": "hybrid", "fusion": "weighted", "weights": (1.0,)}, "weights must be two numbers"),
        ({"model": "text-embedding-004"}, "was retired by Google"),
        ({"output_dimensionality": 0}, "output_dimensionality must be a positive integer"),
    ],
)
def test_bad_arguments_are_refused_naming_the_argument(kwargs: dict[str, Any], message: str) -> None:
    kwargs.setdefault("queries", ("a question",))
    with pytest.raises(ValueError, match=message):
        SearchArguments(collection_name=COLLECTION, **kwargs)


def test_the_modes_and_fusions_are_the_hooks() -> None:
    assert (SEARCH_MODES, FUSIONS) == (full_text_rules.SEARCH_MODES, full_text_rules.FUSIONS)


def test_weights_are_kept_as_floats_and_output_fields_once() -> None:
    args = SearchArguments(
        collection_name=COLLECTION,
        queries=("q",),
        mode="hybrid",
        fusion="weighted",
        weights=(1, 0),
        output_fields=("text", "text", "metadata"),
    )
    assert args.weights == (1.0, 0.0)
    assert args.output_fields == ("text", "metadata")


# -- the stored settings ---------------------------------------------------------------------------


@lite
@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        (OLD, QuerySettings("gemini-embedding-001", 768, "RETRIEVAL_QUERY")),
        (
            {"model": "models/gemini-embedding-2", "output_dimensionality": 256},
            QuerySettings("gemini-embedding-2", 256, "RETRIEVAL_QUERY"),
        ),
        (
            {**OLD, "task_type": "SEMANTIC_SIMILARITY"},
            QuerySettings("gemini-embedding-001", 768, "SEMANTIC_SIMILARITY"),
        ),
    ],
)
def test_the_query_settings_come_from_the_rows_fingerprint(
    settings: dict[str, Any], expected: QuerySettings
) -> None:
    fill(**settings)
    with MilvusHook() as milvus:
        assert stored_query_settings(milvus, COLLECTION) == expected


@lite
@pytest.mark.parametrize("model_field", ["", "test-model"])
def test_rows_without_a_usable_fingerprint_give_no_settings(model_field: str) -> None:
    rows = [{"id": "a", "vector": [1.0, 0.0, 0.0, 0.0], "text": "a", "model": model_field}]
    MilvusInsertOperator(task_id="load", collection_name=COLLECTION, data=rows).execute({})
    with MilvusHook() as milvus:
        assert stored_query_settings(milvus, COLLECTION) is None


# -- searches --------------------------------------------------------------------------------------


@lite
def test_queries_are_embedded_once_as_queries_with_the_collections_settings(
    gemini_emulator: GeminiEmulator,
) -> None:
    fill()
    gemini_emulator.reset_stats()

    questions = ["Which database stores vectors?", "Who schedules data pipelines?"]
    answers = search([*questions, questions[0]], limit=2)

    assert [answer["query"] for answer in answers] == [*questions, questions[0]]
    assert top_ids(answers) == ["milvus", "airflow", "milvus"]
    stats = gemini_emulator.stats
    assert stats.requests == 1
    assert stats.embedded_texts == questions  # the repeated query is embedded once
    assert stats.task_types == {"RETRIEVAL_QUERY": 2}
    hit = answers[0]["hits"][0]
    assert set(hit) == {"id", "score", "text", "metadata"}
    assert hit["text"] == CORPUS[0]["text"]
    assert hit["metadata"] == {"topic": "software"}
    assert answers[0]["hits"][0]["score"] >= answers[0]["hits"][1]["score"]
    assert json.loads(json.dumps(answers)) == answers


@lite
def test_gemini_embedding_2_queries_carry_the_query_prompt(gemini_emulator: GeminiEmulator) -> None:
    fill(model="gemini-embedding-2", output_dimensionality=256)
    gemini_emulator.reset_stats()

    answers = search(["Which database stores vectors?"])

    assert top_ids(answers) == ["milvus"]
    assert gemini_emulator.stats.embedded_texts == [
        "task: search result | query: Which database stores vectors?"
    ]


@lite
@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"model": "gemini-embedding-2"},
            (
                "collection 'search_docs' was embedded with gemini-embedding-001 at 768 dimensions, but "
                "this search asks for gemini-embedding-2 at 768"
            ),
        ),
        (
            {"model": "gemini-embedding-001", "output_dimensionality": 256},
            (
                "was embedded with gemini-embedding-001 at 768 dimensions, but this search asks for "
                "gemini-embedding-001 at 256"
            ),
        ),
        ({"output_dimensionality": 3072}, "but this search asks for gemini-embedding-001 at 3072"),
    ],
)
def test_settings_that_disagree_with_the_fingerprint_are_refused_before_gemini(
    gemini_emulator: GeminiEmulator, settings: dict[str, Any], message: str
) -> None:
    fill()
    gemini_emulator.reset_stats()

    with pytest.raises(MilvusCollectionMismatchError, match=message):
        search(["Which database stores vectors?"], **settings)
    assert gemini_emulator.stats.requests == 0


@lite
def test_the_same_settings_spelled_out_are_accepted() -> None:
    fill()
    answers = search(
        ["Which database stores vectors?"], model="models/gemini-embedding-001", output_dimensionality=768
    )
    assert top_ids(answers) == ["milvus"]


@lite
def test_rows_without_a_fingerprint_need_a_model_of_the_collections_dimension(
    gemini_emulator: GeminiEmulator,
) -> None:
    vectors = GeminiHook().embed([doc["text"] for doc in CORPUS], output_dimensionality=128)
    rows = [
        {"id": doc["id"], "vector": vector, "text": doc["text"]}
        for doc, vector in zip(CORPUS, vectors.tolist(), strict=True)
    ]
    MilvusInsertOperator(task_id="load", collection_name=COLLECTION, data=rows).execute({})
    gemini_emulator.reset_stats()

    with pytest.raises(ValueError, match="records no embedding model in its rows' model field.*give model"):
        search(["Which database stores vectors?"])
    with pytest.raises(
        MilvusCollectionMismatchError,
        match="holds 128-dimension vectors, but this search would embed .* at 256",
    ):
        search(["Which database stores vectors?"], model="gemini-embedding-001", output_dimensionality=256)
    assert gemini_emulator.stats.requests == 0

    answers = search(["Which database stores vectors?"], model="gemini-embedding-001")  # the collection's dim
    assert top_ids(answers) == ["milvus"]
    assert gemini_emulator.stats.task_types == {"RETRIEVAL_QUERY": 1}


@lite
def test_search_reads_through_an_alias() -> None:
    fill()
    with MilvusHook() as milvus:
        milvus.get_conn().create_alias(COLLECTION, "docs")
    answers = search(["Who schedules data pipelines?"], collection_name="docs", limit=1)
    assert top_ids(answers) == ["airflow"]
    assert len(answers[0]["hits"]) == 1


@lite
def test_a_filter_and_output_fields_shape_the_hits() -> None:
    fill()
    answers = search(
        ["Which database stores vectors?"], filter='metadata["topic"] == "places"', output_fields=("model",)
    )
    assert answers[0]["hits"] == [
        {
            "id": "everest",
            "score": answers[0]["hits"][0]["score"],
            "model": "gemini-embedding-001/768/RETRIEVAL_DOCUMENT",
        }
    ]


@lite
@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"collection_name": "nowhere"}, ValueError, "collection 'nowhere' does not exist"),
        ({"output_fields": ("text", "title")}, ValueError, r"output_fields\[1\] 'title' is not a field"),
        ({"output_fields": ("vector",)}, ValueError, r"output_fields\[0\] 'vector' is not a field hits can"),
        ({"filter": "topic = 'x'"}, ValueError, "filter \"topic = 'x'\" is not an expression collection"),
    ],
)
def test_bad_searches_fail_before_gemini(
    gemini_emulator: GeminiEmulator, kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    fill()
    gemini_emulator.reset_stats()
    with pytest.raises(error, match=message):
        search(["Which database stores vectors?"], **kwargs)
    assert gemini_emulator.stats.requests == 0


@lite
def test_no_queries_and_an_empty_collection_send_nothing(gemini_emulator: GeminiEmulator) -> None:
    assert search([], collection_name="nowhere") == []
    with MilvusHook() as milvus:
        milvus.ensure_collection(COLLECTION, 768)
    assert search(["anything?", "else?"]) == [
        {"query": "anything?", "hits": []},
        {"query": "else?", "hits": []},
    ]
    assert gemini_emulator.stats.requests == 0


# -- full-text and hybrid --------------------------------------------------------------------------

# Two rows share the words of the question; only one holds the product code, which the question names.
CODES = [
    {"id": "code", "text": "Error E-2207 means the pump controller lost power.", "topic": "faults"},
    {"id": "pump", "text": "The pump controller restarts the pump when power returns.", "topic": "pumps"},
    {"id": "fan", "text": "The fan controller slows the fan at night.", "topic": "fans"},
]


@lite
def test_full_text_search_sends_nothing_to_gemini(gemini_emulator: GeminiEmulator) -> None:
    fill(documents=CODES, full_text=True)
    gemini_emulator.reset_stats()

    answers = search(["E-2207"], mode="full_text", limit=3)

    assert gemini_emulator.stats.requests == 0
    assert [hit["id"] for hit in answers[0]["hits"]] == ["code"]  # BM25 scores only rows with the term
    assert answers[0]["hits"][0]["score"] > 0
    assert answers[0]["hits"][0]["metadata"] == {"topic": "faults"}


@lite
def test_hybrid_search_embeds_the_queries_once_and_fuses_both_sides(gemini_emulator: GeminiEmulator) -> None:
    fill(documents=CODES, full_text=True)
    gemini_emulator.reset_stats()
    question = "what does error E-2207 of the pump controller mean"

    answers = search([question], mode="hybrid", limit=3)

    assert gemini_emulator.stats.task_types == {"RETRIEVAL_QUERY": 1}
    assert answers[0]["hits"][0]["id"] == "code"
    assert len(answers[0]["hits"]) == 3
    dense = search([question], limit=3)[0]["hits"]
    bm25 = search([question], mode="full_text", limit=3)[0]["hits"]
    only_dense = search([question], mode="hybrid", fusion="weighted", weights=(1, 0), limit=3)[0]["hits"]
    only_text = search([question], mode="hybrid", fusion="weighted", weights=(0, 1), limit=3)[0]["hits"]
    assert only_dense[0]["id"] == dense[0]["id"]
    assert only_text[0]["id"] == bm25[0]["id"]


@lite
@pytest.mark.parametrize("mode", ["full_text", "hybrid"])
def test_full_text_modes_on_a_plain_collection_are_refused_before_gemini(
    gemini_emulator: GeminiEmulator, mode: str
) -> None:
    fill()
    gemini_emulator.reset_stats()
    with pytest.raises(
        MilvusCollectionMismatchError,
        match=f"collection 'search_docs' has no full-text search.*{mode} search",
    ):
        search(["Which database stores vectors?"], mode=mode)
    assert gemini_emulator.stats.requests == 0
