"""The model migration example DAG, end to end with ``dag.test()`` on the emulator and Milvus Lite."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from airflow_provider_gemini_milvus.hooks.gemini import GeminiHook
from airflow_provider_gemini_milvus.hooks.milvus import MilvusHook
from airflow_provider_gemini_milvus.loading.alias_migration import alias_target, versioned_collection_name
from airflow_provider_gemini_milvus.operators.gemini import GeminiEmbedOperator
from airflow_provider_gemini_milvus.operators.milvus import MilvusInsertOperator
from airflow_provider_gemini_milvus.testing.gemini_emulator import GeminiEmulator
from airflow_provider_gemini_milvus.testing.xcom import xcom_return_value
from tests.example_dags.test_example_dags import load_example, run_dag

pytestmark = pytest.mark.usefixtures("airflow_db", "gemini_connection")

DAG_ID = "example_gemini_milvus_model_migration"
FIRST: dict[str, Any] = {"model": "gemini-embedding-001", "output_dimensionality": 768}
#: Another model at the same dimension: a reader's query vector fits both collections.
SAME_DIM: dict[str, Any] = {"model": "gemini-embedding-2", "output_dimensionality": 768}
SMALLER: dict[str, Any] = {"model": "gemini-embedding-001", "output_dimensionality": 256}
DROP_AT_ONCE = {"keep_previous": 0, "retention_hours": 0}


@pytest.fixture
def module() -> Any:
    return load_example(DAG_ID)


def migrate(module: Any, **conf: Any) -> dict[str, Any]:
    """Run the DAG with these params; return the promote task's result."""
    run = run_dag(module, DAG_ID, **conf)
    return dict(xcom_return_value(DAG_ID, "promote", run.run_id))


def collection_of(settings: dict[str, Any]) -> str:
    return versioned_collection_name("gemini_docs_live", **settings)


@pytest.mark.usefixtures("milvus_connection")
def test_first_run_creates_the_alias_and_a_migration_moves_it_and_drops_the_old_version(
    module: Any, gemini_emulator: GeminiEmulator
) -> None:
    first = migrate(module)
    assert (first["previous"], first["switched"], first["rows"], first["probes"]) == (None, True, 10, 2)
    assert gemini_emulator.stats.task_types == {"RETRIEVAL_DOCUMENT": 10, "RETRIEVAL_QUERY": 2}

    second = migrate(module, **SMALLER, **DROP_AT_ONCE)

    assert (second["previous"], second["collection"]) == (collection_of(FIRST), collection_of(SMALLER))
    assert second["dropped"] == [collection_of(FIRST)]
    with MilvusHook() as hook:
        assert alias_target(hook, module.ALIAS) == collection_of(SMALLER)
        assert hook.get_conn().list_collections() == [collection_of(SMALLER)]
        info = hook.describe(module.ALIAS)
        assert info is not None
        assert info.dim == 256
        assert hook.count(module.ALIAS) == len(module.DOCUMENTS)


@pytest.mark.usefixtures("milvus_connection")
def test_a_rerun_after_the_switch_sends_nothing_and_switches_nothing(
    module: Any, gemini_emulator: GeminiEmulator
) -> None:
    migrate(module)
    gemini_emulator.reset_stats()

    again = migrate(module)

    assert (again["switched"], again["probes"]) == (False, 0)
    assert gemini_emulator.stats.requests == 0


@pytest.mark.usefixtures("milvus_connection")
def test_after_a_migration_the_ingest_operators_on_the_alias_send_nothing(
    module: Any, gemini_emulator: GeminiEmulator
) -> None:
    migrate(module)
    migrate(module, **SMALLER)
    gemini_emulator.reset_stats()

    embed = GeminiEmbedOperator(
        task_id="embed",
        documents=module.DOCUMENTS,
        metadata_fields=module.METADATA_FIELDS,
        collection_name=module.ALIAS,
        delete_missing=True,
        **SMALLER,
    ).execute({})
    load = MilvusInsertOperator(task_id="load", collection_name=module.ALIAS, data=embed).execute({})

    assert gemini_emulator.stats.requests == 0
    assert embed["stats"]["unchanged"] == len(module.DOCUMENTS)
    assert (load["written"], load["deleted"]) == (0, 0)
    with MilvusHook() as hook:
        assert hook.get_conn().list_collections() == sorted([collection_of(FIRST), collection_of(SMALLER)])


@pytest.mark.usefixtures("milvus_connection")
def test_a_failed_probe_leaves_the_alias_on_the_old_collection(module: Any) -> None:
    migrate(module)
    module.PROBES["Which tower was built for a World's Fair?"] = "moon"
    try:
        from airflow.sdk import DagRunState

        run = module.example_gemini_milvus_model_migration().test(run_conf=SMALLER)
        assert run.state == DagRunState.FAILED
        # A failed check is not transient: the task fails on its first try, its retry is not waited for.
        promote = next(ti for ti in run.get_task_instances() if ti.task_id == "promote")
        assert (promote.state, promote.try_number) == ("failed", 1)
    finally:
        del module.PROBES["Which tower was built for a World's Fair?"]
    with MilvusHook() as hook:
        assert alias_target(hook, module.ALIAS) == collection_of(FIRST)


# -- a reader searching through the alias during a whole migration ---------------------------------


class AliasReader(threading.Thread):
    """Searches the alias in a loop until stopped, counting searches, errors and empty results."""

    def __init__(self, alias: str, vector: list[float]) -> None:
        super().__init__(daemon=True)
        self.alias = alias
        self.vector = vector
        self.searches = 0
        self.empty = 0
        self.errors: list[str] = []
        self.top_ids: set[str] = set()
        self.stop = threading.Event()
        self.searched = threading.Condition()

    def run(self) -> None:
        with MilvusHook() as hook:
            while not self.stop.is_set():
                try:
                    hits = hook.search(self.alias, [self.vector], limit=3, output_fields=())[0]
                except Exception as err:
                    self.errors.append(f"{type(err).__name__}: {err}")
                    hits = None
                if hits == []:
                    self.empty += 1
                elif hits:
                    self.top_ids.add(str(hits[0]["id"]))
                with self.searched:
                    self.searches += 1
                    self.searched.notify_all()
                self.stop.wait(0.01)

    def wait_for_searches(self, count: int) -> None:
        with self.searched:
            assert self.searched.wait_for(lambda: self.searches >= count or not self.is_alive(), timeout=120)


@pytest.mark.usefixtures("lite_served_over_grpc")
def test_a_reader_on_the_alias_sees_no_error_and_no_empty_result_during_a_migration(module: Any) -> None:
    migrate(module)
    vector = GeminiHook().encode_queries(["Where was Alan Turing born?"], output_dimensionality=768)[0]
    reader = AliasReader(module.ALIAS, vector.tolist())
    reader.start()
    try:
        reader.wait_for_searches(1)
        before = reader.searches

        summary = migrate(module, **SAME_DIM, **DROP_AT_ONCE)

        during = reader.searches - before
        reader.wait_for_searches(reader.searches + 1)
    finally:
        reader.stop.set()
        reader.join(timeout=60)
    assert summary["dropped"] == [collection_of(FIRST)]
    assert reader.errors == []
    assert reader.empty == 0
    assert during > 0
    # The query was embedded with the old model, whose vectors rank the new model's rows differently: the
    # reader was served by both collections. (A real reader embeds with the new settings after the switch.)
    assert "turing-born" in reader.top_ids
    assert len(reader.top_ids) == 2
    with MilvusHook() as hook:
        assert alias_target(hook, module.ALIAS) == collection_of(SAME_DIM)
