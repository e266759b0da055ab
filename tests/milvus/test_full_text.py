"""The full-text layout and the search request rules, without Milvus."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_gemini_milvus.exceptions import MilvusCollectionMismatchError
from airflow_provider_gemini_milvus.milvus.full_text import (
    DEFAULT_ANALYZER,
    HYBRID_CANDIDATES,
    bm25_score,
    check_analyzer,
    check_search,
    has_full_text,
    parse_server_version,
    require_full_text,
    server_supports_full_text,
    text_field_options,
)

VECTORS = [[1.0, 0.0]]


def description(**changes: Any) -> dict[str, Any]:
    """A describe_collection answer of a full-text collection, as Milvus Lite gives it."""
    fields = {
        "text": {"name": "text", "type": "VARCHAR", "params": {"enable_analyzer": "true"}},
        "sparse": {"name": "sparse", "type": "SPARSE_FLOAT_VECTOR", "params": {}},
    }
    functions = [
        {"name": "text_bm25", "type": "BM25", "input_field_names": ["text"], "output_field_names": ["sparse"]}
    ]
    fields.update(changes.pop("fields", {}))
    return {"fields": [field for field in fields.values() if field], "functions": functions, **changes}


def test_has_full_text_needs_the_analyzer_the_field_and_the_function() -> None:
    assert has_full_text(description())
    assert not has_full_text(description(fields={"sparse": None}))
    assert not has_full_text(description(fields={"text": {"name": "text", "type": "VARCHAR", "params": {}}}))
    assert not has_full_text(description(functions=[]))
    assert not has_full_text(
        description(
            functions=[{"type": "BM25", "input_field_names": ["title"], "output_field_names": ["sparse"]}]
        )
    )
    assert not has_full_text({"fields": []})


def test_require_full_text_names_the_collection_and_the_way_out() -> None:
    require_full_text(True, "docs", "hybrid search")
    with pytest.raises(MilvusCollectionMismatchError, match=r"'docs' has no full-text.*hybrid search needs"):
        require_full_text(False, "docs", "hybrid search")


def test_text_field_options() -> None:
    assert text_field_options(False) == {}
    assert text_field_options(True) == {"enable_analyzer": True, "analyzer_params": dict(DEFAULT_ANALYZER)}
    assert text_field_options(True, {"tokenizer": "jieba"})["analyzer_params"] == {"tokenizer": "jieba"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ({"type": "standard"}, {"type": "standard"}),
        ('{"tokenizer": "jieba"}', {"tokenizer": "jieba"}),  # a rendered template
    ],
)
def test_check_analyzer_accepts(value: Any, expected: Any) -> None:
    assert check_analyzer(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("standard", "got the text 'standard'"),
        ({}, "non-empty mapping"),
        (["standard"], "non-empty mapping"),
        ({"type": object()}, "JSON-serialisable"),
    ],
)
def test_check_analyzer_refuses(value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_analyzer(value)


@pytest.mark.parametrize(
    ("version", "parsed", "supported"),
    [
        ("v2.3.5", (2, 3, 5), False),
        ("2.4.13", (2, 4, 13), False),
        ("v2.5.0", (2, 5, 0), True),
        ("v2.6.1-gpu", (2, 6, 1), True),
        ("milvus_lite-3.2.2", (3, 2, 2), True),
        ("milvus_lite-2.4.11", (2, 4, 11), False),
        ("Zilliz Cloud", None, None),
    ],
)
def test_server_versions(version: str, parsed: Any, supported: bool | None) -> None:
    assert parse_server_version(version) == parsed
    assert server_supports_full_text(version) is supported


def test_check_search_plans_each_mode() -> None:
    dense = check_search(mode="dense", vectors=VECTORS, texts=None, limit=3)
    assert (dense.mode, dense.queries, dense.limit) == ("dense", 1, 3)
    assert check_search(mode="FULL_TEXT", vectors=None, texts=["a", "b"], limit=3).queries == 2
    hybrid = check_search(
        mode="hybrid", vectors=VECTORS, texts=["a"], limit=3, fusion="Weighted", weights=[1, 0]
    )
    assert (hybrid.fusion, hybrid.weights, hybrid.candidates) == ("weighted", (1.0, 0.0), HYBRID_CANDIDATES)
    assert check_search(mode="hybrid", vectors=VECTORS, texts=["a"], limit=50).candidates == 50
    assert type(hybrid.ranker()).__name__ == "WeightedRanker"
    assert type(check_search(mode="hybrid", vectors=VECTORS, texts=["a"], limit=3).ranker()).__name__ == (
        "RRFRanker"
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "sparse"}, r"mode must be one of \['dense', 'full_text', 'hybrid'\], got 'sparse'"),
        ({"fusion": "max"}, r"fusion must be one of \['rrf', 'weighted'\], got 'max'"),
        ({"limit": 0}, "limit must be an integer from 1"),
        ({"limit": "3"}, "limit must be an integer"),
        ({"limit": True}, "limit must be an integer"),
        ({"rrf_k": 0}, "rrf_k must be an integer from 1 to 16383"),
        ({"rrf_k": 16384}, "rrf_k must be"),
        ({"weights": (1.0,)}, "weights must be two numbers from 0 to 1"),
        ({"weights": (2.0, 0.5)}, "weights must be two numbers from 0 to 1"),
        ({"weights": (1.0, -1.0)}, "weights must be two"),
        ({"weights": (1.0, float("nan"))}, "weights must be two"),
        ({"weights": "0.5,0.5"}, "weights must be two"),
        ({"weights": (0, 0)}, "not both 0"),
        ({"texts": None}, "hybrid search needs the query texts"),
        ({"vectors": None}, "hybrid search needs the query vectors"),
        ({"texts": ["a", "b"]}, "one text per query vector: 1 vectors, 2 texts"),
        ({"texts": [" "]}, r"texts\[0\] must be a non-empty string"),
        ({"texts": [3]}, r"texts\[0\] must be a non-empty string, got 3"),
    ],
)
def test_check_search_refuses(kwargs: dict[str, Any], message: str) -> None:
    request: dict[str, Any] = {"mode": "hybrid", "vectors": VECTORS, "texts": ["a"], "limit": 3, **kwargs}
    with pytest.raises(ValueError, match=message):
        check_search(**request)


def test_bm25_scores_are_positive() -> None:
    assert bm25_score(-0.97) == pytest.approx(0.97)
    assert bm25_score(1.5) == 1.5
