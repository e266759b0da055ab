"""The sharded example DAG: mapped embed + load per shard, end to end with ``dag.test()``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_gemini_milvus.hooks.milvus import MilvusHook
from airflow_provider_gemini_milvus.testing.gemini_emulator import GeminiEmulator
from airflow_provider_gemini_milvus.testing.xcom import xcom_return_value
from tests.example_dags.test_example_dags import load_example, run_dag

pytestmark = pytest.mark.usefixtures("airflow_db", "gemini_connection", "milvus_connection")

DAG_ID = "example_gemini_milvus_sharded"


@pytest.fixture
def staging(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A staging root of its own for one test, set as ``[gemini_milvus] staging_uri``."""
    root = tmp_path / "staging"
    monkeypatch.setenv("AIRFLOW__GEMINI_MILVUS__STAGING_URI", root.as_uri())
    return root


def mapped_results(task_id: str, run_id: str) -> list[Any]:
    """The return values of every mapped instance of ``task_id`` in a run, by map index."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    query = select(XComModel.map_index, XComModel.value).where(
        XComModel.dag_id == DAG_ID,
        XComModel.task_id == task_id,
        XComModel.run_id == run_id,
        XComModel.key == "return_value",
    )
    with create_session() as session:
        rows = session.execute(query.order_by(XComModel.map_index)).all()
    assert [map_index for map_index, _ in rows] == list(range(len(rows)))
    return [XComModel.deserialize_value(row) for row in rows]


def test_sharded_dag_embeds_and_loads_each_shard_in_its_own_mapped_tasks(
    staging: Path, gemini_emulator: GeminiEmulator
) -> None:
    module = load_example(DAG_ID)
    run = run_dag(module, DAG_ID, shards=3, generated_documents=450)

    shard_uris = xcom_return_value(DAG_ID, "split_corpus", run.run_id)
    assert len(shard_uris) == 3
    shard_ids = [
        {json.loads(line)["id"] for line in Path(uri.removeprefix("file://")).read_text().splitlines()}
        for uri in shard_uris
    ]
    assert sum(len(ids) for ids in shard_ids) == 450
    assert set.union(*shard_ids) == {f"doc-{number:07d}" for number in range(450)}

    manifests = mapped_results("embed_shard", run.run_id)
    loads = mapped_results("load_shard", run.run_id)
    for index, (ids, manifest, load) in enumerate(zip(shard_ids, manifests, loads, strict=True)):
        assert manifest["rows"] == len(ids), f"shard {index} is staged, not inline in XCom"
        assert all(f"/embed_shard/{index}/" in part["uri"] for part in manifest["parts"])
        assert load["written"] == len(ids), f"load_shard[{index}] loads the manifest of embed_shard[{index}]"
        assert load["parts"] == len(manifest["parts"])
    assert gemini_emulator.stats.texts == 450

    check = xcom_return_value(DAG_ID, "check_collection", run.run_id)
    assert check == {"shards": 3, "written": 450, "rows": 450}
    with MilvusHook() as milvus:
        assert sorted(milvus.list_ids(module.COLLECTION)) == sorted(set.union(*shard_ids))


def test_sharded_dag_splits_a_corpus_folder_and_a_rerun_leaves_the_same_rows(
    tmp_path: Path, staging: Path
) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    documents = [
        {"id": f"page-{n}", "text": f"Page {n} of the manual.", "topic": "manual"} for n in range(240)
    ]
    for name, part in (("a.jsonl", documents[:130]), ("b.jsonl", documents[130:])):
        (corpus / name).write_text("".join(json.dumps(doc) + "\n" for doc in part), encoding="utf-8")
    module = load_example(DAG_ID)

    first = run_dag(module, DAG_ID, corpus_uri=corpus.as_uri(), shards=2)
    second = run_dag(module, DAG_ID, corpus_uri=corpus.as_uri(), shards=2)

    for run in (first, second):
        assert xcom_return_value(DAG_ID, "check_collection", run.run_id) == {
            "shards": 2,
            "written": 240,
            "rows": 240,
        }
    with MilvusHook() as milvus:
        assert sorted(milvus.list_ids(module.COLLECTION)) == sorted(doc["id"] for doc in documents)


def test_shard_of_is_stable_and_spreads_documents() -> None:
    module = load_example(DAG_ID)
    shards = [module.shard_of({"id": f"doc-{n}"}, 4) for n in range(400)]
    assert shards == [module.shard_of({"id": f"doc-{n}", "text": "edited"}, 4) for n in range(400)]
    assert all(shards.count(shard) > 60 for shard in range(4))
    assert module.shard_of("a text without an id", 4) == module.shard_of({"text": "a text without an id"}, 4)


def test_only_the_tasks_that_open_milvus_use_the_load_pool() -> None:
    module = load_example(DAG_ID)
    dag = module.example_gemini_milvus_sharded()
    pools = {task.task_id: task.pool for task in dag.tasks}
    assert pools == {
        "split_corpus": "default_pool",
        "embed_shard": "default_pool",
        "load_shard": module.LOAD_POOL,
        "check_collection": module.LOAD_POOL,
    }
