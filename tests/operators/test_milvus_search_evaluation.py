"""MilvusSearchEvaluationOperator against the Gemini emulator and real Milvus Lite, on the shipped set."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_gemini_milvus.exceptions import MilvusCollectionMismatchError
from airflow_provider_gemini_milvus.operators.gemini import GeminiEmbedOperator
from airflow_provider_gemini_milvus.operators.milvus import MilvusInsertOperator
from airflow_provider_gemini_milvus.operators.milvus_search_evaluation import MilvusSearchEvaluationOperator
from airflow_provider_gemini_milvus.retrieval.labelled import dump_labelled_queries, labelled_queries
from airflow_provider_gemini_milvus.testing.gemini_emulator import GeminiEmulator
from airflow_provider_gemini_milvus.testing.search_set import SEARCH_DOCUMENTS, SEARCH_QUERIES

lite = pytest.mark.usefixtures("gemini_connection", "milvus_connection")


def operator(**kwargs: Any) -> MilvusSearchEvaluationOperator:
    kwargs.setdefault("collection_name", "kb")
    kwargs.setdefault("labelled_queries", SEARCH_QUERIES)
    return MilvusSearchEvaluationOperator(task_id="evaluate", **kwargs)


def fill(*, full_text: bool) -> None:
    embedded = GeminiEmbedOperator(task_id="embed", documents=SEARCH_DOCUMENTS, output_dimensionality=768)
    load = MilvusInsertOperator(
        task_id="load", collection_name="kb", data=embedded.execute({}), full_text=full_text
    )
    load.execute({})


def test_rendered_arguments_are_converted(tmp_path: Path) -> None:
    path = dump_labelled_queries(labelled_queries(SEARCH_QUERIES), tmp_path / "eval.jsonl")
    for queries in (str(path), json.dumps(SEARCH_QUERIES), SEARCH_QUERIES):
        args = operator(
            labelled_queries=queries, modes="dense, hybrid", k="5", model="None"
        ).converted_arguments()
        assert (len(args.queries), args.modes, args.k, args.model) == (12, ("dense", "hybrid"), 5, None)
    assert operator(modes="['full_text']").converted_arguments().modes == ("full_text",)
    assert operator(modes="None").converted_arguments().modes == ()
    assert operator(output_dimensionality="768").converted_arguments().output_dimensionality == 768


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"modes": "sparse"}, "modes names the unknown search mode 'sparse'"),
        ({"k": "0"}, "k must be an integer from 1 to 16384"),
        (
            {"labelled_queries": [{"query": "pumps", "relevant": []}]},
            r'labelled_queries\[0\]\["relevant"\] is empty',
        ),
        ({"labelled_queries": "missing.jsonl"}, "missing.jsonl"),
        ({"collection_name": ""}, "collection_name must be a non-empty string"),
    ],
)
def test_bad_arguments_are_refused_naming_them(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        operator(**kwargs).converted_arguments()


@lite
def test_every_mode_of_a_full_text_collection_is_scored_and_hybrid_wins(
    gemini_emulator: GeminiEmulator,
) -> None:
    fill(full_text=True)
    gemini_emulator.reset_stats()
    result = operator().execute({})
    assert json.loads(json.dumps(result)) == result
    assert (result["collection"], result["k"], result["queries"]) == ("kb", 10, 12)
    scores = result["scores"]
    assert list(scores) == ["dense", "full_text", "hybrid"]
    assert scores["hybrid"]["ndcg"] > scores["full_text"]["ndcg"] > scores["dense"]["ndcg"]
    assert gemini_emulator.stats.texts == 12  # embedded once for dense and hybrid


@lite
def test_a_plain_collection_is_scored_dense_and_refuses_the_full_text_modes_before_gemini(
    gemini_emulator: GeminiEmulator,
) -> None:
    fill(full_text=False)
    assert list(operator().execute({})["scores"]) == ["dense"]
    gemini_emulator.reset_stats()
    with pytest.raises(MilvusCollectionMismatchError, match="collection 'kb' has no full-text search"):
        operator(modes=["dense", "hybrid"]).execute({})
    assert gemini_emulator.stats.requests == 0


@lite
def test_full_text_alone_needs_no_gemini_connection() -> None:
    fill(full_text=True)
    result = operator(modes="full_text", gemini_conn_id="no_such_connection").execute({})
    assert list(result["scores"]) == ["full_text"]


@lite
def test_query_settings_that_disagree_with_the_rows_are_refused_before_gemini(
    gemini_emulator: GeminiEmulator,
) -> None:
    fill(full_text=False)
    gemini_emulator.reset_stats()
    with pytest.raises(MilvusCollectionMismatchError, match="gemini-embedding-001 at 768"):
        operator(output_dimensionality=256).execute({})
    assert gemini_emulator.stats.requests == 0


@lite
def test_a_missing_collection_is_named() -> None:
    with pytest.raises(ValueError, match="collection 'kb' does not exist"):
        operator().execute({})
