"""Rows built by an upstream task reach MilvusInsertOperator through XCom; tests run it with dag.test()."""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import dag, task

from airflow_provider_gemini_milvus.operators.milvus import MilvusInsertOperator

COLLECTION = "dag_test_docs"
ROW_COUNT = 12


@dag(
    schedule=None, start_date=pendulum.datetime(2025, 1, 1, tz="UTC"), catchup=False, tags=["test", "milvus"]
)
def milvus_insert() -> None:
    @task
    def build_rows() -> dict[str, Any]:
        rows = [
            {
                "id": f"doc-{i}",
                "vector": [1.0, float(i), 0.5, -0.25],
                "text": f"document {i} with {{{{ braces }}}} kept verbatim",
                "metadata": {"position": i},
                "model": "test-model",
            }
            for i in range(ROW_COUNT)
        ]
        return {"rows": rows, "delete_ids": ["never-written"], "model": "test-model"}

    MilvusInsertOperator(task_id="load", collection_name=COLLECTION, data=build_rows(), batch_size=5)


milvus_insert()
