"""
Aliases on a Milvus 2.3 server, as a blue/green migration uses them: load a new collection, then move the
alias.

Milvus Lite has no aliases worth testing a migration on; the server does (``create_alias``/``alter_alias``).
"""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_gemini_milvus.hooks.milvus import MilvusHook
from airflow_provider_gemini_milvus.operators.milvus import MilvusInsertOperator

pytestmark = pytest.mark.usefixtures("milvus_connection")

DIM = 4
ALIAS = "docs_live"


def rows(prefix: str, count: int) -> list[dict[str, Any]]:
    return [
        {"id": f"{prefix}-{i}", "vector": [1.0, float(i), 0.5, 0.5], "text": f"{prefix} {i}"}
        for i in range(count)
    ]


def load(collection: str, data: list[dict[str, Any]]) -> dict[str, Any]:
    return MilvusInsertOperator(task_id="load", collection_name=collection, data=data).execute({})


def test_an_alias_moves_readers_from_the_old_collection_to_the_new_one() -> None:
    load("docs_v1", rows("old", 3))
    load("docs_v2", rows("new", 5))
    with MilvusHook() as hook:
        client = hook.get_conn()
        client.create_alias("docs_v1", ALIAS)
        assert client.describe_alias(ALIAS)["collection_name"] == "docs_v1"
        assert hook.has_collection(ALIAS)
        assert hook.count(ALIAS) == 3
        assert hook.search(ALIAS, [[1.0, 2.0, 0.5, 0.5]], limit=1)[0][0]["id"] == "old-2"

        client.alter_alias("docs_v2", ALIAS)

        assert client.describe_alias(ALIAS)["collection_name"] == "docs_v2"
        assert client.list_aliases("docs_v1")["aliases"] == []
        assert client.list_aliases("docs_v2")["aliases"] == [ALIAS]
        assert hook.count(ALIAS) == 5
        assert sorted(hook.list_ids(ALIAS)) == sorted(f"new-{i}" for i in range(5))


def test_the_operator_writes_through_an_alias_into_the_collection_it_names() -> None:
    load("docs_v1", rows("old", 2))
    with MilvusHook() as hook:
        hook.get_conn().create_alias("docs_v1", ALIAS)

    summary = load(ALIAS, rows("more", 3))

    assert (summary["written"], summary["created"]) == (3, False)
    with MilvusHook() as hook:
        assert hook.count("docs_v1") == 5
        info = hook.describe(ALIAS)
        assert info is not None
        assert info.dim == DIM
        assert hook.get_conn().list_collections() == ["docs_v1"]


def test_the_migration_lease_is_exclusive_on_a_server() -> None:
    """A server may answer a second create of an identical collection with success: the lease reads back."""
    from airflow_provider_gemini_milvus.exceptions import AliasMigrationLockedError
    from airflow_provider_gemini_milvus.loading.alias_lease import LeaseOwner, acquire_lease

    with MilvusHook() as hook:
        lease = acquire_lease(hook, ALIAS, LeaseOwner("run_1", "the first run"), minutes=60)
        with pytest.raises(AliasMigrationLockedError, match="is being migrated by the first run"):
            acquire_lease(hook, ALIAS, LeaseOwner("run_2", "the second run"), minutes=60)
        lease.release()
        acquire_lease(hook, ALIAS, LeaseOwner("run_2", "the second run"), minutes=60).release()
        assert f"{ALIAS}__migration_lock" not in hook.get_conn().list_collections()
