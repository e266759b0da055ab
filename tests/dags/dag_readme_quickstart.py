"""The README's quickstart DAG, verbatim below this docstring (tests/test_docs.py checks they agree)."""

from __future__ import annotations

import pendulum
from airflow.sdk import dag

from airflow_provider_gemini_milvus.operators.gemini import GeminiEmbedOperator
from airflow_provider_gemini_milvus.operators.milvus import MilvusInsertOperator


@dag(schedule="@daily", start_date=pendulum.datetime(2025, 1, 1, tz="UTC"), catchup=False, max_active_runs=1)
def embed_docs():
    embed = GeminiEmbedOperator(
        task_id="embed",
        documents=[
            {"id": "a", "text": "Milvus is a vector database."},
            {"id": "b", "text": "Airflow runs DAGs."},
        ],
        output_dimensionality=768,
        collection_name="docs",  # incremental: embed only what changed in the collection
        delete_missing=True,  # and delete what vanished from the source
    )
    MilvusInsertOperator(task_id="load", collection_name="docs", data=embed.output)


embed_docs()
