"""A staged manifest reaches MilvusInsertOperator through XCom; the parts stay in the staging folder."""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import dag, get_current_context, task

from airflow_provider_gemini_milvus.operators.milvus import MilvusInsertOperator
from airflow_provider_gemini_milvus.staging import PartWriter, StagedManifest, staging_root, task_staging_dir

COLLECTION = "dag_staged_docs"
PART_ROWS = (7, 7, 3)


@dag(
    schedule=None, start_date=pendulum.datetime(2025, 1, 1, tz="UTC"), catchup=False, tags=["test", "milvus"]
)
def milvus_staged() -> None:
    @task
    def stage_rows() -> dict[str, Any]:
        context = get_current_context()
        ti = context["ti"]
        folder = task_staging_dir(
            staging_root(), dag_id=ti.dag_id, run_id=ti.run_id, task_id=ti.task_id, map_index=ti.map_index
        )
        writer = PartWriter(folder, 4)
        parts, start = [], 0
        for count in PART_ROWS:
            rows = [
                {"id": f"doc-{i}", "vector": [1.0, float(i), 0.5, -0.25], "text": f"document {{{{ {i} }}}}"}
                for i in range(start, start + count)
            ]
            parts.append(writer.write(rows))
            start += count
        return StagedManifest(
            folder=str(folder),
            parts=parts,
            rows=start,
            dim=4,
            model="test-model/4/RETRIEVAL_DOCUMENT",
            task_type="RETRIEVAL_DOCUMENT",
        ).to_xcom()

    MilvusInsertOperator(task_id="load", collection_name=COLLECTION, data=stage_rows())


milvus_staged()
