"""
The two DAGs ``bench_large_corpus.py`` runs with ``dag.test()``; it copies this file into a DAGs folder.

Their inputs come from environment variables the benchmark sets before Airflow parses the file.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import TYPE_CHECKING

import pendulum
from airflow.sdk import dag

from airflow_provider_gemini_milvus.operators.gemini import GeminiEmbedOperator
from airflow_provider_gemini_milvus.operators.milvus import MilvusInsertOperator

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow.sdk import Context

    from airflow_provider_gemini_milvus.embedding.cost import DryRunReport
    from airflow_provider_gemini_milvus.embedding.outputs import EmbedResult

START = pendulum.datetime(2025, 1, 1, tz="UTC")
DIM = 768
COLLECTION = "bench_dag"
#: Called with the try number at the start of each try of the retry DAG's embed task (set by the benchmark).
ON_TRY: list[Callable[[int], None]] = []


class TryObservingEmbedOperator(GeminiEmbedOperator):
    """The embedding operator, telling :data:`ON_TRY` which try of the task instance is starting."""

    def execute(self, context: Context) -> EmbedResult | DryRunReport:
        for callback in ON_TRY:
            callback(context["ti"].try_number)
        return super().execute(context)


@dag(schedule=None, start_date=START, catchup=False, tags=["benchmark"])
def bench_large_corpus() -> None:
    embed = GeminiEmbedOperator(
        task_id="embed",
        documents=os.environ.get("BENCH_CORPUS_URI", "file:///missing.jsonl"),
        output_dimensionality=DIM,
        staging_uri=os.environ.get("BENCH_STAGING_URI"),
    )
    MilvusInsertOperator(task_id="load", collection_name=COLLECTION, data=embed.output)


@dag(schedule=None, start_date=START, catchup=False, tags=["benchmark"])
def bench_large_corpus_retry() -> None:
    TryObservingEmbedOperator(
        task_id="embed",
        documents=os.environ.get("BENCH_RETRY_CORPUS_URI", "file:///missing.jsonl"),
        gemini_conn_id="gemini_retry",
        output_dimensionality=DIM,
        staging_uri=os.environ.get("BENCH_STAGING_URI"),
        retries=1,
        retry_delay=timedelta(0),
    )


bench_large_corpus()
bench_large_corpus_retry()
