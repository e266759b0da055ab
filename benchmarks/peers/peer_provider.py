"""
This provider on the benchmark's corpus, run in a fresh process of the project's ``.venv``.

``dag``: the Quickstart DAG (``quickstart_dag.py``) under ``dag.test()``; ``operators``: its two operators
called directly (``execute``), the same arguments; ``floor``: ``empty_dag.py``, the same DAG shape with
tasks that do nothing (what Airflow's ``dag.test()`` costs by itself). Connections come from
``AIRFLOW_CONN_*`` variables set by ``run_peers.py``; ``AIRFLOW_HOME`` is a temporary folder (migrated
beforehand), and the DAGs folder a temporary one holding the DAG file alone.

Usage: ``peer_provider.py {dag,operators,floor} CORPUS.jsonl``
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any


def quiet_logs() -> None:
    logging.basicConfig(level=logging.WARNING, force=True)
    for noisy in ("httpx", "airflow", "airflow.task", "airflow_provider_gemini_milvus", "pymilvus", "grpc"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def run_dag(name: str = "quickstart_dag") -> None:
    from airflow.sdk import DagRunState

    dag_file = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"]) / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, dag_file)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dag = module.bench_dag
    result = dag.test()
    if result.state != DagRunState.SUCCESS:
        raise SystemExit(f"the DAG run ended {result.state}")


def run_operators(corpus: list[dict[str, Any]]) -> None:
    from airflow_provider_gemini_milvus.operators.gemini import GeminiEmbedOperator
    from airflow_provider_gemini_milvus.operators.milvus import MilvusInsertOperator

    embed = GeminiEmbedOperator(
        task_id="embed",
        documents=corpus,
        output_dimensionality=768,
        collection_name="docs",
        delete_missing=True,
    )
    result = embed.execute(context={})
    MilvusInsertOperator(task_id="load", collection_name="docs", data=result).execute(context={})


def main() -> None:
    mode, corpus_path = sys.argv[1], sys.argv[2]
    quiet_logs()
    if mode == "dag":
        os.environ["BENCH_PEERS_CORPUS"] = corpus_path
        run_dag()
    elif mode == "floor":
        run_dag("empty_dag")
    else:
        corpus = [json.loads(line) for line in Path(corpus_path).read_text(encoding="utf-8").splitlines()]
        run_operators(corpus)


if __name__ == "__main__":
    main()
