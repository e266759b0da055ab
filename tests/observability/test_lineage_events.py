"""
Real ``dag.test()`` runs of the example DAGs with the OpenLineage provider's listener: the events it writes
(file transport) name the folder, the collection and the run's figures, and the write is an asset event of
``milvus://.../database/collection`` whose ``extra`` a downstream DAG reads.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_gemini_milvus.observability.assets import milvus_collection_uri
from airflow_provider_gemini_milvus.observability.lineage import EMBEDDING_FACET, SEARCH_FACET, WRITE_FACET
from tests.example_dags.test_example_dags import load_example, run_dag

pytestmark = pytest.mark.usefixtures("airflow_db", "gemini_connection", "milvus_connection")


@pytest.fixture
def lineage_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The OpenLineage listener registered for task events, writing them to one file (no fork)."""
    from airflow.providers.openlineage.plugins.listener import OpenLineageListener
    from airflow.sdk.lineage import get_hook_lineage_collector
    from airflow.sdk.listener import get_listener_manager

    events = tmp_path / "openlineage.jsonl"
    transport = {"type": "file", "log_file_path": str(events), "append": True}
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__TRANSPORT", json.dumps(transport))
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__EXECUTE_IN_THREAD", "True")
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__NAMESPACE", "gemini-milvus-tests")
    listener = OpenLineageListener()
    manager = get_listener_manager()
    manager.add_listener(listener)
    # What hooks report (object storage reads) is collected once per process; a task process starts empty,
    # and so does each test here.
    get_hook_lineage_collector.cache_clear()
    try:
        yield events
    finally:
        manager.pm.unregister(listener)
        get_hook_lineage_collector.cache_clear()


def _complete_events(path: Path) -> dict[str, dict[str, Any]]:
    events = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {
        event["job"]["name"].rsplit(".", 1)[-1]: event for event in events if event["eventType"] == "COMPLETE"
    }


def test_reembed_run_emits_lineage_and_a_collection_asset_event(
    tmp_path: Path, lineage_file: Path, milvus_db_path: Path
) -> None:
    module = load_example("example_gemini_milvus_reembed")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "milvus.md").write_text("Milvus stores vectors for similarity search.", encoding="utf-8")
    (docs / "airflow.txt").write_text("Airflow schedules data pipelines every day.", encoding="utf-8")

    run = run_dag(module, "example_gemini_milvus_reembed", docs_uri=f"file://{docs}")

    events = _complete_events(lineage_file)
    embed, load = events["embed_changed_documents"], events["upsert_into_milvus"]
    collection = ("milvus://" + str(milvus_db_path), f"default.{module.COLLECTION}")
    assert [(item["namespace"], item["name"]) for item in embed["inputs"]] == [
        ("file", str(docs)),
        collection,
    ]
    facet = embed["run"]["facets"][EMBEDDING_FACET]
    assert (facet["model"], facet["dimension"], facet["taskType"]) == (
        "gemini-embedding-001",
        module.DIM,
        "RETRIEVAL_DOCUMENT",
    )
    assert facet["textsEmbedded"] == 2
    assert facet["estimatedTokens"] > 0
    assert facet["estimatedCostUsd"] > 0
    assert [(item["namespace"], item["name"]) for item in load["outputs"]] == [collection]
    assert load["outputs"][0]["outputFacets"]["outputStatistics"]["rowCount"] == 2
    assert load["run"]["facets"][WRITE_FACET]["written"] == 2
    assert "Milvus stores vectors" not in lineage_file.read_text(encoding="utf-8")

    uri = milvus_collection_uri(str(milvus_db_path), module.COLLECTION)
    (extra,) = _asset_event_extras(uri, run.run_id)
    assert extra["written"] == 2
    assert extra["deleted"] == 0
    assert extra["embedding"]["embedded"] == 2
    assert extra["embedding"]["estimated_cost_usd"] == facet["estimatedCostUsd"]


def test_ingest_run_names_no_input_for_inline_documents_and_the_collection_searched(
    lineage_file: Path, milvus_db_path: Path
) -> None:
    module = load_example("example_gemini_milvus_ingest")

    run_dag(module, "example_gemini_milvus_ingest")

    events = _complete_events(lineage_file)
    collection = ("milvus://" + str(milvus_db_path), f"default.{module.COLLECTION}")
    embed = events["embed_documents"]
    assert embed["inputs"] == []  # documents listed in the DAG file are no dataset
    assert embed["run"]["facets"][EMBEDDING_FACET]["textsEmbedded"] == len(module.DOCUMENTS)
    load = events["load_into_milvus"]
    assert [(item["namespace"], item["name"]) for item in load["outputs"]] == [collection]
    search = events["answer_questions"]
    assert [(item["namespace"], item["name"]) for item in search["inputs"]] == [collection]
    assert search["outputs"] == []
    facet = search["run"]["facets"][SEARCH_FACET]
    assert (facet["mode"], facet["queries"]) == ("dense", len(module.QUESTIONS))
    assert all(question not in lineage_file.read_text(encoding="utf-8") for question in module.QUESTIONS)


def _asset_event_extras(uri: str, run_id: str) -> list[dict[str, Any]]:
    """The ``extra`` of each asset event of ``uri`` that the run's tasks emitted, read from Airflow's DB."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.scalars(
            select(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetModel.uri == uri, AssetEvent.source_run_id == run_id)
        ).all()
        return [dict(row.extra) for row in rows]
