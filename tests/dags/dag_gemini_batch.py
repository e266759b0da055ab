"""GeminiEmbedOperator in batch mode feeding MilvusInsertOperator; tests run it with dag.test()."""

from __future__ import annotations

import pendulum
from airflow.sdk import dag

from airflow_provider_gemini_milvus.operators.gemini import GeminiEmbedOperator
from airflow_provider_gemini_milvus.operators.milvus import MilvusInsertOperator

COLLECTION = "dag_batch_docs"
DOCUMENTS = [{"id": f"doc-{n}", "text": f"batch document {n}"} for n in range(6)]


@dag(
    schedule=None, start_date=pendulum.datetime(2025, 1, 1, tz="UTC"), catchup=False, tags=["test", "gemini"]
)
def gemini_batch() -> None:
    embedded = GeminiEmbedOperator(
        task_id="embed",
        documents=DOCUMENTS,
        output_dimensionality=128,
        deferrable=True,
        batch_poll_interval=0.001,
    )
    MilvusInsertOperator(task_id="load", collection_name=COLLECTION, data=embedded.output)


gemini_batch()
