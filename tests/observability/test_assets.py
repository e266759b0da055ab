"""Collection asset URIs: built from the server address, checked and normalised by the scheme's handler."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from airflow.sdk import Asset

from airflow_provider_gemini_milvus.observability.assets import (
    CollectionAddress,
    asset_event_extra,
    convert_asset_to_openlineage,
    milvus_collection_asset,
    milvus_collection_uri,
    parse_collection_uri,
    sanitize_uri,
    server_namespace,
)


@pytest.mark.parametrize(
    ("uri", "namespace"),
    [
        ("http://Milvus.Internal:19530", "milvus://milvus.internal:19530"),
        ("http://milvus", "milvus://milvus:19530"),
        ("https://in01-abc.zillizcloud.com", "milvus://in01-abc.zillizcloud.com:443"),
        ("tcp://10.0.0.5:29530", "milvus://10.0.0.5:29530"),
        ("/data/milvus.db", "milvus:///data/milvus.db"),
    ],
)
def test_server_namespace_names_the_server_not_the_connection(uri: str, namespace: str) -> None:
    assert server_namespace(uri) == namespace


def test_collection_uri_is_server_database_collection() -> None:
    assert milvus_collection_uri("http://milvus:19530", "docs") == "milvus://milvus:19530/default/docs"
    assert milvus_collection_uri("http://milvus", "docs", "prod") == "milvus://milvus:19530/prod/docs"
    assert milvus_collection_uri("/tmp/x/milvus.db", "docs") == "milvus:/tmp/x/milvus.db/default/docs"


def test_airflow_sanitises_milvus_uris_through_the_registered_handler() -> None:
    assert Asset("milvus://MILVUS/default/docs").uri == "milvus://milvus:19530/default/docs"
    assert milvus_collection_asset("http://milvus", "docs").uri == "milvus://milvus:19530/default/docs"
    assert Asset("milvus:///tmp/x/milvus.db/default/docs").uri == milvus_collection_uri(
        "/tmp/x/milvus.db", "docs"
    )
    assert Asset("milvus://milvus_default/docs").uri == "milvus://milvus_default/docs"  # milvus_asset()
    with pytest.raises(ValueError, match="collection name 'no such' is not valid in Milvus"):
        Asset("milvus://milvus:19530/default/no such")


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("milvus://host:19530/a/b/c", "must be"),
        ("milvus:///tmp/docs", "no host nor a Lite .db file"),
        ("milvus://host:19530/db/docs?x=1", "query or fragment"),
        ("milvus://host:port/db/docs", "bad port"),
    ],
)
def test_handler_refuses_what_names_no_collection(uri: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        sanitize_uri(urlsplit(uri))


def test_parse_and_openlineage_conversion_agree_with_the_lineage_datasets() -> None:
    address = parse_collection_uri("milvus:///tmp/x/milvus.db/default/docs")
    assert address == CollectionAddress("milvus:///tmp/x/milvus.db", "default", "docs")
    dataset = convert_asset_to_openlineage(Asset("milvus://milvus:19530/prod/docs"))
    assert dataset is not None
    assert (dataset.namespace, dataset.name) == ("milvus://milvus:19530", "prod.docs")
    assert convert_asset_to_openlineage(Asset("milvus://milvus_default/docs")) is None


def test_asset_event_extra_says_what_changed_and_what_it_cost() -> None:
    address = CollectionAddress("milvus://milvus:19530", "default", "docs")
    result = {
        "collection": "docs",
        "written": 3,
        "skipped": 0,
        "deleted": 1,
        "dim": 8,
        "mode": "upsert",
        "batches": 1,
        "created": False,
        "parts": 0,
        "load_method": "batches",
    }
    data = {
        "rows": [{"id": "a", "text": "secret text"}],
        "model": "m:8:RETRIEVAL_DOCUMENT",
        "stats": {
            "documents": 4,
            "embedded": 3,
            "unchanged": 1,
            "estimated_tokens": 12,
            "estimated_cost_usd": 0.0001,
            "texts": 3,
        },
    }

    extra = asset_event_extra(address, result, data)  # type: ignore[arg-type]

    assert extra == {
        "server": "milvus://milvus:19530",
        "database": "default",
        "collection": "docs",
        "written": 3,
        "skipped": 0,
        "deleted": 1,
        "created": False,
        "mode": "upsert",
        "load_method": "batches",
        "parts": 0,
        "dim": 8,
        "embedding": {
            "documents": 4,
            "embedded": 3,
            "unchanged": 1,
            "texts": 3,
            "estimated_tokens": 12,
            "estimated_cost_usd": 0.0001,
            "model": "m:8:RETRIEVAL_DOCUMENT",
        },
    }
    assert "secret text" not in str(extra)
