"""The spend view's figures, added up from task results without Airflow."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from airflow_provider_gemini_milvus.plugins.spend_data import (
    UNNAMED_COLLECTION,
    EmbedRecord,
    LoadRecord,
    build_report,
    embed_figures,
)

MODEL = "gemini-embedding-001/768/RETRIEVAL_DOCUMENT"


def at(hour: int) -> datetime:
    return datetime(2026, 12, 1, hour, tzinfo=UTC)


def stats(**values: Any) -> dict[str, Any]:
    base = {
        "documents": 10,
        "embedded": 10,
        "metadata_only": 0,
        "unchanged": 0,
        "to_delete": 0,
        "refused": 0,
        "estimated_tokens": 200,
        "requests": 4,
        "retries": 0,
        "rate_limited": 0,
        "estimated_cost_usd": 0.00003,
    }
    return {**base, **values}


def embed(
    run: str, collection: str | None = "docs", dag: str = "ingest", hour: int = 1, **values: Any
) -> EmbedRecord:
    return EmbedRecord(
        dag_id=dag,
        run_id=run,
        task_id="embed",
        when=at(hour),
        collection=collection,
        model=MODEL,
        stats=stats(**values),
    )


def load(
    run: str, collection: str = "docs", dag: str = "ingest", written: int = 10, deleted: int = 0
) -> LoadRecord:
    return LoadRecord(
        dag_id=dag,
        run_id=run,
        task_id="load",
        when=at(1),
        collection=collection,
        written=written,
        deleted=deleted,
    )


def test_a_run_adds_up_its_embedding_and_load_results() -> None:
    report = build_report([embed("r1", rate_limited=1)], [load("r1", written=10, deleted=2)])

    (run,) = report.runs
    assert (run.dag_id, run.run_id, run.collection, run.models) == ("ingest", "r1", "docs", (MODEL,))
    assert (run.documents, run.texts, run.tokens, run.requests, run.rate_limited) == (10, 10, 200, 4, 1)
    assert (run.written, run.deleted) == (10, 2)
    assert run.sync_usd == pytest.approx(0.00003)
    assert run.batch_usd == 0.0
    assert run.rate_limited_share == pytest.approx(0.25)
    assert report.total.runs == 1


def test_batch_mode_cost_is_kept_apart_from_sync() -> None:
    report = build_report(
        [embed("r1", estimated_cost_usd=0.004), embed("r2", hour=2, mode="batch", estimated_cost_usd=0.002)],
        [],
    )

    assert report.total.sync_usd == pytest.approx(0.004)
    assert report.total.batch_usd == pytest.approx(0.002)
    assert report.total.cost_usd == pytest.approx(0.006)
    assert [run.batch for run in report.runs] == [True, False], "newest first"


def test_an_incremental_run_saves_its_not_re_sent_documents_at_its_own_price_per_text() -> None:
    report = build_report(
        [embed("r1", embedded=2, unchanged=7, metadata_only=1, estimated_cost_usd=0.002)], []
    )

    (run,) = report.runs
    assert run.not_resent == 8
    assert run.saved_usd == pytest.approx(8 * 0.001)


def test_a_run_that_sent_nothing_saves_at_the_price_per_text_of_the_models_other_runs() -> None:
    full = embed("r1", hour=1, embedded=10, estimated_cost_usd=0.01)
    nothing_sent = embed(
        "r2", hour=2, embedded=0, unchanged=10, estimated_tokens=0, requests=0, estimated_cost_usd=0.0
    )
    report = build_report([full, nothing_sent], [])

    newest = report.runs[0]
    assert newest.run_id == "r2"
    assert newest.saved_usd == pytest.approx(0.01)
    assert newest.rate_limited_share is None, "no requests, no share"


def test_a_saving_with_no_price_to_go_by_is_unknown_not_zero() -> None:
    report = build_report([embed("r1", embedded=0, unchanged=5, estimated_cost_usd=0.0)], [])

    assert report.runs[0].saved_usd is None
    assert report.total.saved_usd is None


def test_a_model_without_a_price_makes_the_cost_unknown() -> None:
    report = build_report([embed("r1", estimated_cost_usd=None), embed("r2", hour=2)], [])

    assert report.runs[1].sync_usd is None
    assert report.total.sync_usd is None
    assert report.total.cost_usd is None
    assert report.total.texts == 20, "the counts still add up"


def test_an_embedding_task_counts_towards_its_collection_name_else_the_one_collection_its_run_loaded() -> (
    None
):
    named = embed("r1", collection="named")
    by_load = embed("r2", collection=None, hour=2)
    ambiguous = embed("r3", collection=None, hour=3)
    loads = [load("r1", "named"), load("r2", "loaded"), load("r3", "a"), load("r3", "b")]

    report = build_report([named, by_load, ambiguous], loads)

    texts = {(run.run_id, run.collection): run.texts for run in report.runs}
    assert texts == {
        ("r1", "named"): 10,
        ("r2", "loaded"): 10,
        ("r3", UNNAMED_COLLECTION): 10,
        ("r3", "a"): 0,
        ("r3", "b"): 0,
    }


def test_totals_per_dag_and_per_collection() -> None:
    records = [
        embed("r1", dag="a", collection="x", estimated_cost_usd=0.5),
        embed("r2", dag="a", collection="y", hour=2, estimated_cost_usd=0.25),
        embed("r3", dag="b", collection="x", hour=3, estimated_cost_usd=2.0),
    ]
    report = build_report(records, [load("r1", "x", "a"), load("r3", "x", "b", written=3)])

    by_dag = {totals.key: totals for totals in report.by_dag}
    by_collection = {totals.key: totals for totals in report.by_collection}
    assert [totals.key for totals in report.by_dag] == ["b", "a"], "the most expensive first"
    assert (by_dag["a"].runs, by_dag["a"].texts, by_dag["a"].collections) == (2, 20, ("x", "y"))
    assert by_dag["a"].sync_usd == pytest.approx(0.75)
    assert by_dag["a"].last == at(2)
    assert (by_collection["x"].runs, by_collection["x"].written, by_collection["x"].dag_ids) == (
        2,
        13,
        ("a", "b"),
    )
    assert report.total.runs == 3


def test_one_dag_run_writing_two_collections_is_one_run_of_its_dag() -> None:
    report = build_report([], [load("r1", "x"), load("r1", "y")])

    assert len(report.runs) == 2
    assert report.by_dag[0].runs == 1


@pytest.mark.parametrize(
    ("value", "counted"),
    [(None, 0), ("12", 0), (True, 0), (-3, 0), (float("nan"), 0), (4.0, 4), (7, 7)],
)
def test_a_figure_of_the_wrong_type_counts_as_nothing(value: Any, counted: int) -> None:
    assert embed_figures({"embedded": value}).texts == counted


def test_a_cost_that_is_not_a_number_is_unknown() -> None:
    assert embed_figures({"embedded": 3, "estimated_cost_usd": "cheap"}).cost_usd is None
    assert embed_figures({"embedded": 0}).cost_usd == 0.0, "nothing embedded costs nothing"


def test_no_records_make_an_empty_report() -> None:
    report = build_report([], [])

    assert (report.runs, report.by_dag, report.by_collection) == ([], [], [])
    assert report.total.runs == 0
    assert report.total.rate_limited_share is None
