"""OpenLineage datasets and run facets built from the operators' arguments and results, without a run."""

from __future__ import annotations

from openlineage.client.serde import Serde

from airflow_provider_gemini_milvus.observability.assets import CollectionAddress
from airflow_provider_gemini_milvus.observability.lineage import (
    EMBEDDING_FACET,
    PROMOTION_FACET,
    SEARCH_FACET,
    WRITE_FACET,
    document_source_datasets,
    embedding_lineage,
    insert_lineage,
    location_dataset,
    promotion_lineage,
    search_lineage,
)

DOCS = CollectionAddress("milvus://milvus:19530", "default", "docs")


def _names(datasets: list) -> list[tuple[str, str]]:
    return [(dataset.namespace, dataset.name) for dataset in datasets]


def test_locations_follow_the_openlineage_naming_conventions() -> None:
    assert _names([location_dataset("file:///data/docs/")]) == [("file", "/data/docs")]
    assert _names([location_dataset("/data/a.jsonl")]) == [("file", "/data/a.jsonl")]
    assert _names([location_dataset("s3://aws_default@bucket/corpus/")]) == [("s3://bucket", "corpus")]
    assert _names([location_dataset("gs://bucket/a/b.parquet")]) == [("gs://bucket", "a/b.parquet")]
    assert document_source_datasets([{"id": "a", "text": "inline"}]) == []


def test_embedding_lineage_carries_the_stats_never_the_texts() -> None:
    result = {
        "format": "gemini-milvus-staged/1",
        "folder": "file:///stage/dag/run/task",
        "rows": 5,
        "stats": {
            "documents": 6,
            "embedded": 5,
            "unchanged": 1,
            "texts": 5,
            "estimated_tokens": 40,
            "estimated_cost_usd": 0.00006,
            "requests": 1,
            "retries": 0,
            "rate_limited": 0,
            "mode": "batch",
            "batch_job": "batches/123",
        },
        "skipped_documents": [{"id": "x", "reason": "a secret document text"}],
    }
    lineage = embedding_lineage(
        documents="s3://b/docs/",
        model="gemini-embedding-001",
        dimension=768,
        task_type="RETRIEVAL_DOCUMENT",
        result=result,
        collection=DOCS,
    )

    assert _names(lineage.inputs) == [("s3://b", "docs"), ("milvus://milvus:19530", "default.docs")]
    assert _names(lineage.outputs) == [("file", "/stage/dag/run/task")]
    facet = Serde.to_dict(lineage.run_facets[EMBEDDING_FACET])
    assert {
        key: facet[key]
        for key in (
            "model",
            "dimension",
            "taskType",
            "mode",
            "textsEmbedded",
            "estimatedTokens",
            "estimatedCostUsd",
            "batchJobName",
        )
    } == {
        "model": "gemini-embedding-001",
        "dimension": 768,
        "taskType": "RETRIEVAL_DOCUMENT",
        "mode": "batch",
        "textsEmbedded": 5,
        "estimatedTokens": 40,
        "estimatedCostUsd": 0.00006,
        "batchJobName": "batches/123",
    }
    assert "secret" not in str(Serde.to_dict(lineage.run_facets))


def test_insert_lineage_outputs_the_collection_with_its_row_count() -> None:
    result = {
        "collection": "docs",
        "written": 3,
        "skipped": 0,
        "deleted": 1,
        "dim": 8,
        "mode": "upsert",
        "batches": 1,
        "created": True,
        "parts": 0,
        "load_method": "batches",
    }
    lineage = insert_lineage(collection=DOCS, data={"rows": []}, result=result)  # type: ignore[arg-type]

    assert lineage.inputs == []
    (output,) = lineage.outputs
    assert (output.namespace, output.name) == ("milvus://milvus:19530", "default.docs")
    assert output.outputFacets["outputStatistics"].rowCount == 3
    assert output.facets["lifecycleStateChange"].lifecycleStateChange.value == "CREATE"
    assert Serde.to_dict(lineage.run_facets[WRITE_FACET])["deleted"] == 1


def test_promotion_lineage_names_the_alias_and_the_dropped_collections() -> None:
    result = {
        "alias": "docs",
        "collection": "docs_v2",
        "previous": "docs_v1",
        "switched": True,
        "rows": 9,
        "probes": 1,
        "quality": None,
        "dropped": ["docs_v0"],
    }
    lineage = promotion_lineage(
        collection=CollectionAddress("milvus://m:19530", "default", "docs_v2"), alias="docs", result=result
    )  # type: ignore[arg-type]

    assert _names(lineage.inputs) == [("milvus://m:19530", "default.docs_v2")]
    assert _names(lineage.outputs) == [
        ("milvus://m:19530", "default.docs"),
        ("milvus://m:19530", "default.docs_v0"),
    ]
    assert lineage.outputs[0].facets["symlinks"].identifiers[0].name == "default.docs_v2"
    assert lineage.outputs[1].facets["lifecycleStateChange"].lifecycleStateChange.value == "DROP"
    assert lineage.run_facets[PROMOTION_FACET].switched is True


def test_search_lineage_counts_queries_and_hits_only() -> None:
    hits = [{"query": "a private question", "hits": [{"id": "a", "score": 0.9}]}]
    lineage = search_lineage(collection=DOCS, mode="dense", queries=1, limit=3, filtered=False, result=hits)

    assert _names(lineage.inputs) == [("milvus://milvus:19530", "default.docs")]
    assert Serde.to_dict(lineage.run_facets[SEARCH_FACET])["hits"] == 1
    assert "private" not in str(Serde.to_dict(lineage.run_facets))
