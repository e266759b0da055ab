"""
The README Quickstart DAG with the benchmark's corpus: embed (incremental, deleting what vanished) >> load.

``peer_provider.py`` runs it with ``dag.test()``; the documents are read from the JSONL file named by
``BENCH_PEERS_CORPUS`` when Airflow parses this file, and passed as the literal list the Quickstart shows.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pendulum
from airflow.sdk import dag

from airflow_provider_gemini_milvus.operators.gemini import GeminiEmbedOperator
from airflow_provider_gemini_milvus.operators.milvus import MilvusInsertOperator

COLLECTION = "docs"


def read_corpus() -> list[dict[str, object]]:
    path = os.environ.get("BENCH_PEERS_CORPUS")
    if not path:
        return [{"id": "missing", "text": "BENCH_PEERS_CORPUS is not set"}]
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]


@dag(schedule="@daily", start_date=pendulum.datetime(2025, 1, 1, tz="UTC"), catchup=False, max_active_runs=1)
def embed_docs() -> None:
    embed = GeminiEmbedOperator(
        task_id="embed",
        documents=read_corpus(),
        output_dimensionality=768,
        collection_name=COLLECTION,  # incremental: embed only what changed in the collection
        delete_missing=True,  # and delete what vanished from the source
    )
    MilvusInsertOperator(task_id="load", collection_name=COLLECTION, data=embed.output)


bench_dag = embed_docs()
