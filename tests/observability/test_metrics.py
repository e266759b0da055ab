"""
The operators' Airflow metrics, received as StatsD packets by a real UDP listener on loopback while the
operators run against the Gemini emulator and Milvus Lite; the mapping from results to metrics alone.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_gemini_milvus.observability.metrics import (
    Metric,
    embed_metrics,
    evaluation_metrics,
    insert_metrics,
    model_name,
    promote_metrics,
    record_metrics,
    search_metrics,
)
from airflow_provider_gemini_milvus.operators.gemini import GeminiEmbedOperator
from airflow_provider_gemini_milvus.operators.milvus import MilvusInsertOperator
from airflow_provider_gemini_milvus.operators.milvus_alias import MilvusPromoteAliasOperator
from airflow_provider_gemini_milvus.operators.milvus_search import MilvusSearchOperator
from airflow_provider_gemini_milvus.operators.milvus_search_evaluation import MilvusSearchEvaluationOperator
from airflow_provider_gemini_milvus.testing.gemini_emulator import GeminiEmulator
from airflow_provider_gemini_milvus.testing.search_set import SEARCH_DOCUMENTS, SEARCH_QUERIES
from tests.conftest import REPO_ROOT
from tests.embedding.test_batch import run_batch

TASK = {"dag_id": "ingest", "task_id": "embed"}


@dataclass(frozen=True)
class Received:
    """One StatsD line: ``airflow.gemini_milvus.embed.tokens,dag_id=d,task_id=t:42|c``."""

    name: str
    tags: dict[str, str]
    value: float
    kind: str


class StatsdListener:
    """A UDP socket on 127.0.0.1 that Airflow's StatsD client sends to."""

    def __init__(self) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.port: int = self.socket.getsockname()[1]

    def environment(self) -> dict[str, str]:
        """Airflow's StatsD settings pointing at this listener, tags in the name (InfluxDB style)."""
        return {
            "AIRFLOW__METRICS__STATSD_ON": "True",
            "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
            "AIRFLOW__METRICS__STATSD_PORT": str(self.port),
            "AIRFLOW__METRICS__STATSD_PREFIX": "airflow",
            "AIRFLOW__METRICS__STATSD_INFLUXDB_ENABLED": "True",
        }

    def received(self, prefix: str = "airflow.gemini_milvus.") -> list[Received]:
        """Every line received since the last call whose name starts with ``prefix``."""
        lines: list[str] = []
        self.socket.settimeout(0.5)  # loopback delivers at once; this only ends the read
        try:
            while True:
                lines.extend(self.socket.recv(65535).decode().splitlines())
        except TimeoutError:
            pass
        found = []
        for line in lines:
            head, _, rest = line.rpartition(":")
            value, kind = rest.split("|")[:2]
            name, *tags = head.split(",")
            if name.startswith(prefix):
                tagged = dict(tag.split("=", 1) for tag in tags)
                found.append(Received(name.removeprefix(prefix), tagged, float(value), kind))
        return found

    def close(self) -> None:
        self.socket.close()


def initialize_stats(factory: Any) -> None:
    """What the task runner does before a task runs: give Airflow's ``Stats`` its backend factory."""
    from airflow.sdk.observability.stats import Stats

    try:
        Stats.initialize(factory=factory, export_legacy_names=False)  # Task SDK 1.3 (Airflow 3.3)
    except TypeError:
        Stats.initialize(factory=factory)  # Task SDK 1.2 (Airflow 3.2)


@pytest.fixture
def statsd(monkeypatch: pytest.MonkeyPatch) -> Iterator[StatsdListener]:
    """
    A loopback StatsD listener, Airflow configured to send to it and ``Stats`` initialised as the task runner
    does (``Stats`` keeps its backend per process: this test process set it up without StatsD).
    """
    from airflow.sdk._shared.observability.metrics.base_stats_logger import NoStatsLogger
    from airflow.sdk.observability.metrics.statsd_logger import get_statsd_logger

    listener = StatsdListener()
    for key, value in listener.environment().items():
        monkeypatch.setenv(key, value)
    initialize_stats(get_statsd_logger)
    yield listener
    initialize_stats(NoStatsLogger)
    listener.close()


def by_name(received: list[Received]) -> dict[str, Received]:
    found = {item.name: item for item in received}
    assert len(found) == len(received), f"a metric was sent twice: {received}"
    return found


# -- the mapping alone -----------------------------------------------------------------------------
SYNC_STATS = {
    "documents": 5,
    "embedded": 3,
    "metadata_only": 1,
    "unchanged": 1,
    "to_delete": 2,
    "refused": 0,
    "estimated_tokens": 120,
    "requests": 2,
    "retries": 1,
    "rate_limited": 1,
    "split_requests": 0,
    "seconds": 0.4,
    "estimated_cost_usd": 0.000018,
}


def test_an_embed_result_gives_counters_the_cost_in_micro_dollars_and_a_cost_gauge() -> None:
    tags = {**TASK, "model": "gemini-embedding-001", "collection": None}
    metrics = {metric.name: metric for metric in embed_metrics({"stats": SYNC_STATS, "rows": []}, tags)}
    expected_tags = {**TASK, "model": "gemini-embedding-001", "mode": "sync"}
    assert metrics["gemini_milvus.embed.tokens"] == Metric(
        "counter", "gemini_milvus.embed.tokens", 120, expected_tags
    )
    assert {name: metric.value for name, metric in metrics.items()} == {
        "gemini_milvus.embed.documents": 5,
        "gemini_milvus.embed.embedded": 3,
        "gemini_milvus.embed.unchanged": 1,
        "gemini_milvus.embed.metadata_only": 1,
        "gemini_milvus.embed.refused": 0,
        "gemini_milvus.embed.to_delete": 2,
        "gemini_milvus.embed.tokens": 120,
        "gemini_milvus.embed.requests": 2,
        "gemini_milvus.embed.retries": 1,
        "gemini_milvus.embed.rate_limited": 1,
        "gemini_milvus.embed.cost_micro_usd": 18,
        "gemini_milvus.embed.cost_usd": 0.000018,
    }
    assert {metric.kind for metric in metrics.values()} == {"counter", "gauge"}
    assert metrics["gemini_milvus.embed.cost_usd"].kind == "gauge"


def test_a_batch_result_is_tagged_batch_and_an_unpriced_model_sends_no_cost() -> None:
    stats = {**SYNC_STATS, "mode": "batch", "batch_job": "batches/1", "estimated_cost_usd": None}
    metrics = embed_metrics({"stats": stats}, TASK)
    assert {metric.tags["mode"] for metric in metrics} == {"batch"}
    assert not [metric for metric in metrics if "cost" in metric.name]
    assert embed_metrics({"dry_run": True, "estimated_cost_usd": 1.0}, TASK) == []


def test_insert_promote_search_and_evaluation_results_give_their_metrics() -> None:
    load = {
        "collection": "docs",
        "written": 10,
        "skipped": 2,
        "deleted": 3,
        "batches": 1,
        "load_method": "batches",
    }
    assert [(m.name, m.value) for m in insert_metrics(load, TASK)] == [
        ("gemini_milvus.insert.written", 10),
        ("gemini_milvus.insert.deleted", 3),
        ("gemini_milvus.insert.skipped", 2),
        ("gemini_milvus.insert.batches", 1),
    ]
    quality = {"metric": "ndcg", "new": 0.9, "live": 0.8}
    promoted = {"alias": "kb", "collection": "kb_v2", "switched": True, "rows": 7, "dropped": ["kb_v1"]}
    metrics = promote_metrics({**promoted, "quality": quality}, TASK)
    assert [(m.name, m.kind, m.value) for m in metrics] == [
        ("gemini_milvus.promote.switched", "counter", 1),
        ("gemini_milvus.promote.dropped", "counter", 1),
        ("gemini_milvus.promote.rows", "gauge", 7.0),
        ("gemini_milvus.promote.quality_new", "gauge", 0.9),
        ("gemini_milvus.promote.quality_live", "gauge", 0.8),
    ]
    assert metrics[-1].tags == {**TASK, "alias": "kb", "collection": "kb_v2", "metric": "ndcg"}
    hits = [{"query": "q1", "hits": [{"id": "a"}, {"id": "b"}]}, {"query": "q2", "hits": []}]
    assert [m.value for m in search_metrics(hits, TASK, search_mode="full_text")] == [2, 0, 2]
    scores = {"collection": "kb", "k": 5, "queries": 4, "scores": {"full_text": {"recall": 0.5}}}
    (queries, embedded, score) = evaluation_metrics(scores, TASK)
    assert (queries.value, embedded.value, score.value) == (4, 0, 0.5)
    assert score.tags == {
        **TASK,
        "collection": "kb",
        "search_mode": "full_text",
        "metric": "recall",
        "k": "5",
    }
    assert model_name({"model": "gemini-embedding-001/768/RETRIEVAL_DOCUMENT"}) == "gemini-embedding-001"
    assert model_name([{"id": "a"}]) is None


# -- what the operators send -----------------------------------------------------------------------
@pytest.mark.usefixtures("milvus_connection")
def test_each_operator_sends_what_it_did_to_a_statsd_listener(
    statsd: StatsdListener, gemini_connection: str, gemini_emulator: GeminiEmulator
) -> None:
    gemini_emulator.fail_next(2, status=429, retry_delay=0.05)
    embed = GeminiEmbedOperator(
        task_id="embed", documents=SEARCH_DOCUMENTS, output_dimensionality=768, collection_name="kb"
    )
    result = embed.execute({})
    sent = by_name(statsd.received())
    stats = result["stats"]
    assert sent["embed.embedded"] == Received(
        "embed.embedded",
        {
            "dag_id": embed.dag_id,
            "task_id": "embed",
            "model": "gemini-embedding-001",
            "collection": "kb",
            "mode": "sync",
        },
        len(SEARCH_DOCUMENTS),
        "c",
    )
    assert (sent["embed.tokens"].value, sent["embed.requests"].value) == (
        stats["estimated_tokens"],
        stats["requests"],
    )
    assert (sent["embed.rate_limited"].value, sent["embed.retries"].value) == (2, stats["retries"])
    assert sent["embed.cost_micro_usd"].value == round(stats["estimated_cost_usd"] * 1_000_000) > 0
    assert sent["embed.cost_usd"].kind == "g"

    load = MilvusInsertOperator(task_id="load", collection_name="kb", data=result)
    load.execute({})
    sent = by_name(statsd.received())
    assert sent["insert.written"].value == len(SEARCH_DOCUMENTS)
    assert sent["insert.written"].tags == {
        "dag_id": load.dag_id,
        "task_id": "load",
        "model": "gemini-embedding-001",
        "collection": "kb",
        "load_method": "batches",
    }

    again = GeminiEmbedOperator(
        task_id="embed", documents=SEARCH_DOCUMENTS, output_dimensionality=768, collection_name="kb"
    ).execute({})
    sent = by_name(statsd.received())
    assert again["stats"]["unchanged"] == len(SEARCH_DOCUMENTS)
    assert (
        sent["embed.unchanged"].value,
        sent["embed.embedded"].value,
        sent["embed.cost_micro_usd"].value,
    ) == (
        len(SEARCH_DOCUMENTS),
        0,
        0,
    )

    queries = [query["query"] for query in SEARCH_QUERIES[:3]]
    hits = MilvusSearchOperator(task_id="search", collection_name="kb", queries=queries, limit=2).execute({})
    sent = by_name(statsd.received())
    assert {name: item.value for name, item in sent.items()} == {
        "search.queries": 3,
        "search.queries_embedded": 3,
        "search.hits": sum(len(query["hits"]) for query in hits),
    }
    assert sent["search.hits"].tags["search_mode"] == "dense"

    MilvusSearchEvaluationOperator(
        task_id="evaluate", collection_name="kb", labelled_queries=SEARCH_QUERIES, modes=["dense"], k=5
    ).execute({})
    received = statsd.received()
    scores = {item.tags["metric"]: item for item in received if item.name == "evaluation.score"}
    assert set(scores) == {"recall", "mrr", "ndcg"}
    assert all(item.kind == "g" and item.tags["search_mode"] == "dense" for item in scores.values())


@pytest.mark.usefixtures("milvus_connection")
def test_promotion_and_a_batch_completion_send_their_metrics(
    statsd: StatsdListener, gemini_connection: str, tmp_path: Path
) -> None:
    documents = [{"id": f"doc-{n}", "text": f"document {n}"} for n in range(4)]
    embed = GeminiEmbedOperator(
        task_id="embed",
        documents=documents,
        output_dimensionality=128,
        deferrable=True,
        batch_poll_interval=0.001,
        staging_uri=f"file://{tmp_path}",
    )
    result = run_batch(embed)
    sent = by_name(statsd.received())
    assert sent["embed.embedded"].value == 4
    assert sent["embed.embedded"].tags["mode"] == "batch"
    assert sent["embed.cost_micro_usd"].value == round(result["stats"]["estimated_cost_usd"] * 1_000_000)

    MilvusInsertOperator(task_id="load", collection_name="docs_v1", data=result).execute({})
    statsd.received()
    promote = MilvusPromoteAliasOperator(
        task_id="promote", alias="docs", collection_name="docs_v1", output_dimensionality=128, expected_rows=4
    )
    promote.execute({})
    sent = by_name(statsd.received())
    assert (sent["promote.switched"].value, sent["promote.rows"].value, sent["promote.dropped"].value) == (
        1,
        4,
        0,
    )
    assert sent["promote.rows"].tags == {
        "dag_id": promote.dag_id,
        "task_id": "promote",
        "model": "gemini-embedding-001",
        "alias": "docs",
        "collection": "docs_v1",
    }


@pytest.mark.usefixtures("milvus_connection")
def test_a_metrics_set_up_that_fails_warns_once_and_the_task_succeeds(
    statsd: StatsdListener, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from airflow.sdk.observability.metrics.statsd_logger import get_statsd_logger

    # a custom client that is not a statsd.StatsClient: Airflow refuses it when Stats is first used
    monkeypatch.setenv("AIRFLOW__METRICS__STATSD_CUSTOM_CLIENT_PATH", "collections.OrderedDict")
    initialize_stats(get_statsd_logger)
    rows = [{"id": f"doc-{n}", "vector": [1.0, float(n)], "text": "t", "model": "m"} for n in range(3)]
    with caplog.at_level(logging.WARNING):
        result = MilvusInsertOperator(task_id="load", collection_name="docs", data=rows).execute({})
    assert result["written"] == 3
    warnings = [record.getMessage() for record in caplog.records if "Metrics" in record.getMessage()]
    assert len(warnings) == 1, warnings
    assert "AirflowConfigException" in warnings[0]
    assert statsd.received() == []
    record_metrics(insert_metrics, {"no": "collection"}, TASK)  # a result it cannot read: a warning too
    assert "KeyError" in caplog.records[-1].getMessage()


@pytest.mark.usefixtures("airflow_db", "milvus_connection")
def test_the_quickstart_dag_run_sends_its_metrics_through_airflows_own_set_up(gemini_connection: str) -> None:
    """One ``dag.test()`` in a fresh process: Airflow initialises ``Stats`` from the configuration itself."""
    listener = StatsdListener()
    try:
        script = (
            "from tests.dags.dag_readme_quickstart import embed_docs\n"
            "run = embed_docs().test()\n"
            "raise SystemExit(0 if run.state == 'success' else f'the run ended {run.state}')\n"
        )
        environment = {**os.environ, **listener.environment(), "PYTHONPATH": str(REPO_ROOT)}
        done = subprocess.run(
            [sys.executable, "-c", script],
            check=False,
            cwd=REPO_ROOT,
            env=environment,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        sent = by_name(listener.received())
    finally:
        listener.close()
    assert sent["embed.embedded"].value == 2
    assert sent["embed.embedded"].tags == {
        "dag_id": "embed_docs",
        "task_id": "embed",
        "model": "gemini-embedding-001",
        "collection": "docs",
        "mode": "sync",
    }
    assert sent["insert.written"].value == 2
    assert sent["insert.written"].tags["task_id"] == "load"
