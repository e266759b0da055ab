"""
Fixtures for the tests against a real Milvus server (``make test-server`` starts one with
``ci/milvus_server.py``).

Every test in this folder is skipped unless ``MILVUS_SERVER_URI`` names a running server. Here
``milvus_connection`` points ``milvus_default`` at that server instead of a Milvus Lite file, so the Lite
tests imported into this folder run unchanged against the server; every collection (and its aliases) is
dropped before and after each test, as a fresh Lite file would be empty.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest

from airflow_provider_gemini_milvus.hooks.milvus import MilvusHook

SERVER_URI_VARIABLE = "MILVUS_SERVER_URI"


@pytest.fixture(autouse=True)
def milvus_server_uri() -> str:
    """The URI of the Milvus server under test; the test is skipped when none is given."""
    uri = os.environ.get(SERVER_URI_VARIABLE, "")
    if not uri:
        pytest.skip(f"needs a Milvus server: set {SERVER_URI_VARIABLE} (make test-server does)")
    return uri


def drop_every_collection(uri: str) -> None:
    """Drop every collection on the server, its aliases first (Milvus 2.4 on refuses to drop it before)."""
    from pymilvus import MilvusClient

    client = MilvusClient(uri=uri, dedicated=True)
    try:
        for name in client.list_collections():
            for alias in client.list_aliases(name).get("aliases", []):
                client.drop_alias(alias)
            client.drop_collection(name)
    finally:
        client.close()


@pytest.fixture
def milvus_connection(monkeypatch: pytest.MonkeyPatch, milvus_server_uri: str) -> Iterator[str]:
    """``milvus_default`` pointing at the Milvus server, empty at the start of the test and after it."""
    drop_every_collection(milvus_server_uri)
    monkeypatch.setenv(
        "AIRFLOW_CONN_MILVUS_DEFAULT", json.dumps({"conn_type": "milvus", "host": milvus_server_uri})
    )
    yield "milvus_default"
    drop_every_collection(milvus_server_uri)


@pytest.fixture
def hook(milvus_connection: str) -> Iterator[MilvusHook]:
    """A MilvusHook on the server (the fixture of the same name in tests/hooks/test_milvus.py uses Lite)."""
    milvus_hook = MilvusHook(milvus_conn_id=milvus_connection)
    yield milvus_hook
    milvus_hook.close()
