"""The collection layout: names, index choices, describe results and the fit check. No Milvus."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_gemini_milvus.exceptions import MilvusCollectionMismatchError
from airflow_provider_gemini_milvus.milvus.layout import (
    check_collection_matches,
    check_index_choice,
    check_name,
    check_new_collection,
    collection_info,
    search_hits,
)

OUR_FIELDS: list[dict[str, Any]] = [
    {"name": "id", "type": "VARCHAR", "params": {"max_length": 512}},
    {"name": "vector", "type": "FLOAT_VECTOR", "params": {"dim": "768"}},
    {"name": "text", "type": "VARCHAR", "params": {"max_length": 1000}},
    {"name": "content_hash", "type": "VARCHAR", "params": {"max_length": 64}},
    {"name": "model", "type": "VARCHAR", "params": {"max_length": 256}},
    {"name": "metadata", "type": "JSON"},
]


@pytest.mark.parametrize("name", ["docs", "_private", "Docs_2024", "a" * 255])
def test_names_a_server_accepts(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("bad-name!", "collection name 'bad-name!' is not valid in Milvus: it must start with a letter"),
        ("a b", "collection name 'a b' is not valid"),
        ("1abc", "collection name '1abc' is not valid"),
        ("é", "collection name 'é' is not valid"),
        ("", "collection name must be a non-empty string"),
        (None, "collection name must be a non-empty string, got None"),
        ("a" * 256, "collection name is 256 characters long; Milvus allows at most 255"),
    ],
)
def test_names_a_server_refuses_though_lite_accepts_them(name: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_name(name)


def test_partition_names_follow_the_same_rule() -> None:
    with pytest.raises(ValueError, match="partition name '2024-01' is not valid"):
        check_name("2024-01", "partition")


def test_new_collection_arguments_are_checked_before_anything_is_created() -> None:
    check_new_collection("docs", 768, 1000)
    with pytest.raises(ValueError, match="dim must be an integer from 1 to 32768, got True"):
        check_new_collection("docs", True, 1000)
    with pytest.raises(ValueError, match="text_max_length must be from 1 to 65535, got 70000"):
        check_new_collection("docs", 8, 70000)
    with pytest.raises(ValueError, match="collection name 'my docs' is not valid"):
        check_new_collection("my docs", 8, 1000)


def test_index_choices_on_a_server_and_on_lite() -> None:
    assert check_index_choice("cosine", "diskann") == ("COSINE", "DISKANN")
    assert check_index_choice("l2", "flat", lite_uri="/x.db") == ("L2", "FLAT")
    with pytest.raises(ValueError, match="unknown metric_type 'HAMMING'"):
        check_index_choice("HAMMING", "FLAT")
    with pytest.raises(ValueError, match=r"Milvus Lite \(/x.db\) cannot build index_type 'DISKANN'"):
        check_index_choice("COSINE", "DISKANN", lite_uri="/x.db")
    with pytest.raises(ValueError, match="Milvus Lite needs faiss-cpu installed to build index_type HNSW"):
        check_index_choice("COSINE", "hnsw", lite_uri="/x.db", lite_faiss=False)


def test_collection_info_reads_a_describe_result() -> None:
    info = collection_info("docs", {"fields": OUR_FIELDS}, {"metric_type": "cosine", "index_type": "hnsw"})
    assert info.to_dict() == {
        "name": "docs",
        "dim": 768,
        "metric_type": "COSINE",
        "index_type": "HNSW",
        "id_max_length": 512,
        "text_max_length": 1000,
        "field_types": {
            "id": "VARCHAR",
            "vector": "FLOAT_VECTOR",
            "text": "VARCHAR",
            "content_hash": "VARCHAR",
            "model": "VARCHAR",
            "metadata": "JSON",
        },
        "full_text": False,
    }
    check_collection_matches(info, dim=768, metric_type="cosine")


def test_a_foreign_collection_has_no_dim_index_or_limits() -> None:
    info = collection_info("foreign", {"fields": [{"name": "id", "type": "INT64"}]}, None)
    assert (info.dim, info.metric_type, info.id_max_length) == (None, None, None)
    with pytest.raises(MilvusCollectionMismatchError, match="collection 'foreign' field 'id' is INT64"):
        check_collection_matches(info, dim=4)


def test_mismatches_name_both_sides() -> None:
    info = collection_info("docs", {"fields": OUR_FIELDS}, {"metric_type": "L2", "index_type": "FLAT"})
    with pytest.raises(MilvusCollectionMismatchError, match="has dim 768, the vectors have dim 3072"):
        check_collection_matches(info, dim=3072)
    with pytest.raises(
        MilvusCollectionMismatchError, match="indexed with metric L2, the task asks for COSINE"
    ):
        check_collection_matches(info, dim=768, metric_type="cosine")
    missing = collection_info("docs", {"fields": OUR_FIELDS[:-1]}, None)
    with pytest.raises(MilvusCollectionMismatchError, match="has no field 'metadata' \\(JSON\\)"):
        check_collection_matches(missing, dim=768)


def test_search_hits_are_plain_dicts_with_the_asked_fields() -> None:
    results = [[{"id": "a", "distance": 0.5, "entity": {"text": "t"}}, {"id": "b", "distance": 1}], []]
    assert search_hits(results, ["text", "metadata"]) == [
        [
            {"id": "a", "distance": 0.5, "text": "t", "metadata": None},
            {"id": "b", "distance": 1.0, "text": None, "metadata": None},
        ],
        [],
    ]
