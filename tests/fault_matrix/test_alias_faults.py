"""
Fault matrix, alias stages: a failure between the tag and the switch, and a kill during the clean-up, each
followed by a retry, while a reader searches the alias the whole time.

Outcomes asserted: the alias's target, the collections left, the rows readers get, the probe texts sent to
Gemini (the emulator's stats) and the migration lock left behind. Milvus is one Lite server served over
gRPC, shared by the tasks, the reader and (for the kill) another process, as workers share a server.
"""

from __future__ import annotations

import os
import subprocess
import sys
from types import SimpleNamespace
from typing import Any

import pytest
from pymilvus import MilvusClient, MilvusException

from airflow_provider_gemini_milvus.exceptions import AliasMigrationLockedError
from airflow_provider_gemini_milvus.hooks.milvus import MilvusHook
from airflow_provider_gemini_milvus.loading.alias_lease import lock_collection_name
from airflow_provider_gemini_milvus.loading.alias_migration import PROPERTY_ALIAS, alias_target
from airflow_provider_gemini_milvus.operators.milvus import MilvusInsertOperator
from airflow_provider_gemini_milvus.operators.milvus_alias import MilvusPromoteAliasOperator
from airflow_provider_gemini_milvus.testing.gemini_emulator import GeminiEmulator
from tests.example_dags.test_example_migration import AliasReader

pytestmark = pytest.mark.usefixtures("gemini_connection", "lite_served_over_grpc")

ALIAS = "docs"
DIM = 128
SETTINGS: dict[str, Any] = {"model": "gemini-embedding-2", "output_dimensionality": DIM}
FINGERPRINT = f"gemini-embedding-2/{DIM}/RETRIEVAL_DOCUMENT/prompt-v1"
ROWS = 3
PROBES = ["Which database stores vectors?"]
DROP_AT_ONCE = {"keep_previous": 0, "retention_hours": 0}


def load(collection: str) -> None:
    data = [
        {
            "id": f"{collection}-{i}",
            "vector": [1.0, float(i)] + [0.5] * (DIM - 2),
            "text": f"row {i}",
            "model": FINGERPRINT,
        }
        for i in range(ROWS)
    ]
    MilvusInsertOperator(task_id="load", collection_name=collection, data=data).execute({})


def ti_context(run_id: str, try_number: int = 1) -> dict[str, Any]:
    ti = SimpleNamespace(
        dag_id="migrate", run_id=run_id, task_id="promote", map_index=-1, try_number=try_number
    )
    return {"ti": ti}


def promote(collection: str, run_id: str, try_number: int = 1, **kwargs: Any) -> dict[str, Any]:
    operator = MilvusPromoteAliasOperator(
        task_id="promote", alias=ALIAS, collection_name=collection, probe_queries=PROBES, **SETTINGS, **kwargs
    )
    return operator.execute(ti_context(run_id, try_number))  # type: ignore[arg-type]


def state() -> tuple[str | None, list[str]]:
    """The alias's target and every collection left."""
    with MilvusHook() as hook:
        return alias_target(hook, ALIAS), sorted(hook.get_conn().list_collections())


@pytest.fixture
def reader() -> Any:
    """A thread searching the alias in a loop from the first switch to the end of the test."""
    load("docs_v1")
    promote("docs_v1", "first")
    alias_reader = AliasReader(ALIAS, [1.0] * DIM)
    alias_reader.start()
    alias_reader.wait_for_searches(1)
    yield alias_reader
    alias_reader.stop.set()
    alias_reader.join(timeout=60)


def assert_readers_saw_no_error(alias_reader: AliasReader) -> None:
    alias_reader.wait_for_searches(alias_reader.searches + 1)
    assert alias_reader.errors == []
    assert alias_reader.empty == 0


def test_the_switch_fails_after_the_checks_then_the_retry_completes_it(
    reader: AliasReader, gemini_emulator: GeminiEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    load("docs_v2")
    real = MilvusClient.alter_alias
    failures: list[str] = []

    def alter_alias(self: MilvusClient, collection_name: str, alias: str, **kwargs: Any) -> None:
        if not failures:
            failures.append(collection_name)
            raise MilvusException(code=2, message="server unavailable")
        real(self, collection_name, alias, **kwargs)

    monkeypatch.setattr(MilvusClient, "alter_alias", alter_alias)
    gemini_emulator.reset_stats()

    with pytest.raises(MilvusException, match="server unavailable"):
        promote("docs_v2", "run_1", **DROP_AT_ONCE)

    assert failures == ["docs_v2"]
    assert state() == ("docs_v1", ["docs_v1", "docs_v2"])  # no lock left behind either
    with MilvusHook() as hook:
        assert PROPERTY_ALIAS not in (hook.get_conn().describe_collection("docs_v2").get("properties") or {})
    assert gemini_emulator.stats.texts == len(PROBES)

    summary = promote("docs_v2", "run_1", try_number=2, **DROP_AT_ONCE)

    assert (summary["previous"], summary["switched"], summary["dropped"]) == ("docs_v1", True, ["docs_v1"])
    assert state() == ("docs_v2", ["docs_v2"])
    assert gemini_emulator.stats.texts == 2 * len(PROBES)  # the retry checks again: the alias had not moved
    assert_readers_saw_no_error(reader)


def test_a_failed_switch_then_a_migration_elsewhere_keeps_the_never_live_collection(
    reader: AliasReader, monkeypatch: pytest.MonkeyPatch
) -> None:
    load("docs_v2")
    load("docs_v3")

    def unavailable(self: MilvusClient, collection_name: str, alias: str, **kwargs: Any) -> None:
        raise MilvusException(code=2, message="server unavailable")

    with monkeypatch.context() as patch:
        patch.setattr(MilvusClient, "alter_alias", unavailable)
        with pytest.raises(MilvusException):
            promote("docs_v2", "run_1", **DROP_AT_ONCE)

    summary = promote("docs_v3", "run_2", **DROP_AT_ONCE)

    assert summary["dropped"] == ["docs_v1"]
    assert state() == ("docs_v3", ["docs_v2", "docs_v3"])
    assert_readers_saw_no_error(reader)


KILLED_DURING_CLEAN_UP = """
import os, sys, types
from pymilvus import MilvusClient

real_drop = MilvusClient.drop_collection
dropped = []

def drop_collection(self, collection_name, *args, **kwargs):
    if collection_name.endswith("__migration_lock"):
        return real_drop(self, collection_name, *args, **kwargs)
    if dropped:
        print("killed before dropping", collection_name, flush=True)
        os._exit(137)  # as SIGKILL: no finally, no clean-up
    real_drop(self, collection_name, *args, **kwargs)
    dropped.append(collection_name)

MilvusClient.drop_collection = drop_collection
from airflow_provider_gemini_milvus.operators.milvus_alias import MilvusPromoteAliasOperator

ti = types.SimpleNamespace(dag_id="migrate", run_id="run_3", task_id="promote", map_index=-1, try_number=1)
MilvusPromoteAliasOperator(
    task_id="promote", alias="docs", collection_name="docs_v3", model="gemini-embedding-2",
    output_dimensionality=128, keep_previous=0, retention_hours=0,
).execute({"ti": ti})
"""


def test_a_kill_during_the_clean_up_then_the_retry_finishes_it(
    reader: AliasReader, gemini_emulator: GeminiEmulator
) -> None:
    for name in ("docs_v2", "docs_v3"):
        load(name)
    promote("docs_v2", "run_2", keep_previous=5)  # docs_v1 retired and kept
    gemini_emulator.reset_stats()

    killed = subprocess.run(
        [sys.executable, "-c", KILLED_DURING_CLEAN_UP],
        check=False,
        capture_output=True,
        text=True,
        env=os.environ.copy(),
    )

    assert killed.returncode == 137, killed.stderr[-2000:]
    assert "killed before dropping" in killed.stdout
    target, left = state()
    assert target == "docs_v3"
    assert len(left) == 3  # one of docs_v1/docs_v2 dropped, the other not yet, and the lock left behind
    assert {"docs_v3", lock_collection_name(ALIAS)} <= set(left)

    # Another run is refused while the killed task's lease lasts, and is told how to clear it.
    with pytest.raises(AliasMigrationLockedError, match="run 'run_3', try 1") as raised:
        promote("docs_v3", "run_4", **DROP_AT_ONCE)
    assert "drop_collection('docs__migration_lock')" in str(raised.value)

    summary = promote("docs_v3", "run_3", try_number=2, **DROP_AT_ONCE)

    assert (summary["switched"], summary["probes"], len(summary["dropped"])) == (False, 0, 1)
    assert state() == ("docs_v3", ["docs_v3"])
    assert gemini_emulator.stats.requests == 0  # the switch was done: nothing checked or sent again
    assert_readers_saw_no_error(reader)
