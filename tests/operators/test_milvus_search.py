"""MilvusSearchOperator: its rendered arguments, and searches against the Gemini emulator and Milvus Lite."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_gemini_milvus.exceptions import MilvusCollectionMismatchError
from airflow_provider_gemini_milvus.hooks.milvus import MilvusHook
from airflow_provider_gemini_milvus.operators.gemini import GeminiEmbedOperator
from airflow_provider_gemini_milvus.operators.milvus import MilvusInsertOperator
from airflow_provider_gemini_milvus.operators.milvus_search import MilvusSearchOperator
from airflow_provider_gemini_milvus.retrieval.search import SearchArguments
from airflow_provider_gemini_milvus.testing.gemini_emulator import GeminiEmulator

COLLECTION = "search_docs"
CORPUS = [
    {"id": "milvus", "text": "Milvus stores vectors for similarity search."},
    {"id": "airflow", "text": "Airflow schedules data pipelines every day."},
    {"id": "gemini", "text": "Gemini turns text into embeddings."},
]


def operator(**kwargs: Any) -> MilvusSearchOperator:
    kwargs.setdefault("collection_name", COLLECTION)
    kwargs.setdefault("queries", ["Which database stores vectors?"])
    return MilvusSearchOperator(task_id="search", **kwargs)


def fill(collection: str = COLLECTION, *, full_text: bool = False) -> None:
    embedded = GeminiEmbedOperator(task_id="embed", documents=CORPUS, output_dimensionality=256).execute({})
    MilvusInsertOperator(
        task_id="load", collection_name=collection, data=embedded, full_text=full_text
    ).execute({})


# -- arguments -------------------------------------------------------------------------------------


def test_defaults_make_a_dense_search_with_the_collections_settings() -> None:
    assert operator().converted_arguments() == SearchArguments(
        collection_name=COLLECTION, queries=("Which database stores vectors?",)
    )


def test_rendered_arguments_are_converted() -> None:
    args = operator(
        queries="one question",
        mode="hybrid",
        limit="12",
        filter=' metadata["topic"] == "x" ',
        output_fields="['text']",
        fusion="weighted",
        rrf_k="30",
        weights="[0.7, 0.3]",
        model="gemini-embedding-2",
        output_dimensionality="256",
    ).converted_arguments()
    assert args == SearchArguments(
        collection_name=COLLECTION,
        queries=("one question",),
        mode="hybrid",
        limit=12,
        filter='metadata["topic"] == "x"',
        output_fields=("text",),
        fusion="weighted",
        rrf_k=30,
        weights=(0.7, 0.3),
        model="gemini-embedding-2",
        output_dimensionality=256,
    )


def test_unset_values_rendered_as_none_are_unset() -> None:
    args = operator(
        model="None", output_dimensionality="None", weights="None", filter=""
    ).converted_arguments()
    assert (args.model, args.output_dimensionality, args.weights, args.filter) == (None, None, None, "")
    assert operator(mode="hybrid", fusion="weighted", weights="1, 0").converted_arguments().weights == (
        1.0,
        0.0,
    )
    assert operator(output_fields="text, metadata").converted_arguments().output_fields == (
        "text",
        "metadata",
    )
    assert operator(output_fields=[]).converted_arguments().output_fields == ()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"queries": ["fine", ""]}, r"queries\[1\] must be a non-empty string, got ''"),
        ({"queries": ["fine", None]}, r"queries\[1\] must be a non-empty string, got None"),
        ({"queries": "['a', 'b']"}, "queries is the text of a list, not a list of queries"),
        ({"queries": {"q": 1}}, "queries must be a list of query texts or one query text, got dict"),
        ({"queries": 5}, "queries must be a list of query texts or one query text, got int"),
        ({"collection_name": ""}, "collection_name must be a non-empty string"),
        ({"mode": "semantic"}, "mode must be one of \\['dense', 'full_text', 'hybrid'\\], got 'semantic'"),
        ({"limit": "0"}, "limit must be an integer from 1 to 16384, got '0'"),
        ({"limit": "five"}, "limit must be an integer from 1 to 16384, got 'five'"),
        ({"fusion": "RRF"}, "fusion must be one of \\['rrf', 'weighted'\\], got 'RRF'"),
        ({"rrf_k": "0"}, "rrf_k must be an integer from 1 to 16383, got '0'"),
        ({"weights": "[0.7, 0.3]"}, "weights apply to mode='hybrid' with fusion='weighted' only"),
        (
            {"mode": "hybrid", "fusion": "weighted", "weights": "[2, 0]"},
            r"weights\[0\] must be a number from 0",
        ),
        ({"mode": "hybrid", "fusion": "weighted", "weights": [0.5]}, "weights must be two numbers"),
        (
            {"mode": "hybrid", "fusion": "weighted", "weights": "[0.5"},
            r"weights must be two numbers, \[dense, full_text\], got '\[0.5'",
        ),
        ({"output_fields": ["text", 3]}, r"output_fields\[1\] must be a non-empty string, got 3"),
        ({"filter": 3}, "filter must be a Milvus boolean expression \\(a string\\), got int"),
        ({"model": "no-such-model"}, "unknown embedding model 'no-such-model'"),
        ({"output_dimensionality": "big"}, "output_dimensionality must be an integer >= 1, got 'big'"),
    ],
)
def test_bad_arguments_are_refused_naming_the_argument(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        operator(**kwargs).converted_arguments()


# -- searches on Milvus Lite -----------------------------------------------------------------------

lite = pytest.mark.usefixtures("gemini_connection", "milvus_connection")


@lite
def test_a_bad_query_fails_before_gemini_is_called(gemini_emulator: GeminiEmulator) -> None:
    fill()
    gemini_emulator.reset_stats()
    with pytest.raises(ValueError, match=r"queries\[2\] must be a non-empty string"):
        operator(queries=["Which database stores vectors?", "Who schedules?", "  "]).execute({})
    assert gemini_emulator.stats.requests == 0


@lite
def test_the_operator_searches_through_an_alias_and_returns_json_safe_hits(
    gemini_emulator: GeminiEmulator,
) -> None:
    fill()
    with MilvusHook() as milvus:
        milvus.get_conn().create_alias(COLLECTION, "docs")
    gemini_emulator.reset_stats()

    answers = operator(
        collection_name="docs", queries="Which database stores vectors?", limit="2", output_fields=["text"]
    ).execute({})

    assert [answer["query"] for answer in answers] == ["Which database stores vectors?"]
    assert [hit["id"] for hit in answers[0]["hits"]][0] == "milvus"
    assert len(answers[0]["hits"]) == 2
    assert set(answers[0]["hits"][0]) == {"id", "score", "text"}
    assert gemini_emulator.stats.task_types == {"RETRIEVAL_QUERY": 1}


@lite
def test_a_model_other_than_the_collections_is_refused_naming_both(gemini_emulator: GeminiEmulator) -> None:
    fill()
    gemini_emulator.reset_stats()
    with pytest.raises(
        MilvusCollectionMismatchError,
        match="embedded with gemini-embedding-001 at 256 dimensions, but this search asks for "
        "gemini-embedding-2 at 256",
    ):
        operator(model="gemini-embedding-2").execute({})
    assert gemini_emulator.stats.requests == 0


@lite
def test_full_text_mode_needs_no_gemini_connection(gemini_emulator: GeminiEmulator) -> None:
    fill(full_text=True)
    gemini_emulator.reset_stats()

    answers = operator(
        queries=["pipelines", "vectors"], mode="full_text", limit="1", gemini_conn_id="no_such_connection"
    ).execute({})

    assert [answer["hits"][0]["id"] for answer in answers] == ["airflow", "milvus"]
    assert gemini_emulator.stats.requests == 0


@lite
def test_hybrid_mode_with_rendered_weights(gemini_emulator: GeminiEmulator) -> None:
    fill(full_text=True)
    gemini_emulator.reset_stats()

    answers = operator(
        queries=["Which database stores vectors?"], mode="hybrid", fusion="weighted", weights="[0.7, 0.3]"
    ).execute({})

    assert answers[0]["hits"][0]["id"] == "milvus"
    assert gemini_emulator.stats.task_types == {"RETRIEVAL_QUERY": 1}


# -- inside a DAG ----------------------------------------------------------------------------------


@pytest.mark.usefixtures("airflow_db", "gemini_connection", "milvus_connection")
def test_queries_from_an_upstream_task_are_searched_in_a_dag() -> None:
    from airflow.sdk import DagRunState

    from airflow_provider_gemini_milvus.testing.xcom import xcom_return_value
    from tests.dags.dag_milvus_search import QUESTIONS, milvus_search

    run = milvus_search().test()
    assert run.state == DagRunState.SUCCESS
    answers = xcom_return_value("milvus_search", "search", run.run_id)
    assert [answer["query"] for answer in answers] == QUESTIONS
    assert [answer["hits"][0]["id"] for answer in answers] == ["milvus", "airflow"]
    assert [len(answer["hits"]) for answer in answers] == [2, 2]  # limit rendered from "{{ params.limit }}"
    evaluation = xcom_return_value("milvus_search", "evaluate", run.run_id)
    assert (evaluation["k"], evaluation["queries"]) == (2, 2)
    assert sorted(evaluation["scores"]) == ["dense", "full_text", "hybrid"]  # the collection has full text
    assert evaluation["scores"]["hybrid"] == {"recall": 1.0, "mrr": 1.0, "ndcg": 1.0}
