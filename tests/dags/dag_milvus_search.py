"""
Questions and labelled queries built by upstream tasks reach MilvusSearchOperator and
MilvusSearchEvaluationOperator through XCom, on a full-text collection read through an alias; run with
dag.test().
"""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, task

from airflow_provider_gemini_milvus.operators.gemini import GeminiEmbedOperator
from airflow_provider_gemini_milvus.operators.milvus import MilvusInsertOperator
from airflow_provider_gemini_milvus.operators.milvus_search import MilvusSearchOperator
from airflow_provider_gemini_milvus.operators.milvus_search_evaluation import MilvusSearchEvaluationOperator

COLLECTION = "dag_search_docs"
ALIAS = "dag_search"
DOCUMENTS = [
    {"id": "milvus", "text": "Milvus stores vectors for similarity search."},
    {"id": "airflow", "text": "Airflow schedules data pipelines every day."},
    {"id": "gemini", "text": "Gemini turns text into embeddings."},
]
QUESTIONS = ["Which database stores vectors?", "Who schedules data pipelines?"]
LABELLED = [
    {"query": "Which database stores vectors?", "relevant": ["milvus"]},
    {"query": "Who schedules data pipelines?", "relevant": ["airflow"]},
]


@dag(
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    params={"limit": 2, "mode": "hybrid"},
    tags=["test", "milvus"],
)
def milvus_search() -> None:
    embed = GeminiEmbedOperator(task_id="embed", documents=DOCUMENTS, output_dimensionality=256)
    load = MilvusInsertOperator(
        task_id="load", collection_name=COLLECTION, data=embed.output, full_text="{{ 'True' }}"
    )

    @task
    def make_alias() -> None:
        from airflow_provider_gemini_milvus.hooks.milvus import MilvusHook

        with MilvusHook() as milvus:
            milvus.get_conn().create_alias(COLLECTION, ALIAS)

    @task
    def questions() -> list[str]:
        return QUESTIONS

    @task
    def labelled() -> list[dict[str, object]]:
        return LABELLED

    search = MilvusSearchOperator(
        task_id="search",
        collection_name=ALIAS,
        queries=questions(),
        mode="{{ params.mode }}",
        limit="{{ params.limit }}",
    )
    evaluate = MilvusSearchEvaluationOperator(
        task_id="evaluate", collection_name=ALIAS, labelled_queries=labelled(), k="{{ params.limit }}"
    )
    load >> make_alias() >> [search, evaluate]


milvus_search()
