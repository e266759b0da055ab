"""
Embed a small corpus with Gemini, load it into Milvus, then search it with questions.

Documents are embedded with task type ``RETRIEVAL_DOCUMENT`` and questions with ``RETRIEVAL_QUERY``:
Gemini optimises each side for its role in search.

Connections (nothing secret lives in this file):

* ``gemini_default``: type ``gemini``, the API key in the password.
* ``milvus_default``: type ``milvus``, the URI in the host (empty: a Milvus Lite file in ``$AIRFLOW_HOME``).

``make demo`` runs this DAG with ``airflow dags test``, against the bundled emulator when no
``GEMINI_API_KEY`` is set.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import dag

from airflow_provider_gemini_milvus.operators.gemini import GeminiEmbedOperator
from airflow_provider_gemini_milvus.operators.milvus import MilvusInsertOperator
from airflow_provider_gemini_milvus.operators.milvus_search import MilvusSearchOperator

COLLECTION = "gemini_seed_demo"
DIM = 768

# The three documents and two questions of the Milvus "Gemini" embedding page, among a small corpus.
DOCUMENTS: list[dict[str, Any]] = [
    {
        "id": "ai-founded",
        "text": "Artificial intelligence was founded as an academic discipline in 1956.",
        "topic": "history",
    },
    {
        "id": "turing-research",
        "text": "Alan Turing was the first person to conduct substantial research in AI.",
        "topic": "people",
    },
    {
        "id": "turing-born",
        "text": "Born in Maida Vale, London, Turing was raised in southern England.",
        "topic": "people",
    },
    {
        "id": "milvus",
        "text": "Milvus is an open-source vector database built for similarity search at scale.",
        "topic": "software",
    },
    {
        "id": "airflow",
        "text": "Apache Airflow schedules and monitors workflows written as Python DAGs.",
        "topic": "software",
    },
    {
        "id": "eiffel",
        "text": "The Eiffel Tower was completed in Paris for the 1889 World's Fair.",
        "topic": "places",
    },
    {
        "id": "photosynthesis",
        "text": "Photosynthesis lets plants turn sunlight, water and carbon dioxide into sugar.",
        "topic": "science",
    },
    {
        "id": "moon",
        "text": "Apollo 11 landed the first humans on the Moon in July 1969.",
        "topic": "history",
    },
    {
        "id": "python",
        "text": "Python is a programming language that emphasises readable code.",
        "topic": "software",
    },
    {
        "id": "everest",
        "text": "Mount Everest, on the border of Nepal and China, is the highest mountain on Earth.",
        "topic": "places",
    },
]

QUESTIONS = ["When was artificial intelligence founded", "Where was Alan Turing born?"]


@dag(
    dag_id="example_gemini_milvus_ingest",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    # Milvus Lite lets one process at a time open its file; on a server this keeps runs from racing.
    max_active_runs=1,
    tags=["example", "gemini", "milvus"],
    default_args={"retries": 1, "retry_delay": timedelta(seconds=30)},
)
def example_gemini_milvus_ingest() -> None:
    # [START howto_operator_gemini_embed]
    embed = GeminiEmbedOperator(
        task_id="embed_documents",
        documents=DOCUMENTS,
        task_type="RETRIEVAL_DOCUMENT",
        output_dimensionality=DIM,
        metadata_fields=["topic"],
    )
    # [END howto_operator_gemini_embed]

    # [START howto_operator_milvus_insert]
    load = MilvusInsertOperator(task_id="load_into_milvus", collection_name=COLLECTION, data=embed.output)
    # [END howto_operator_milvus_insert]

    # [START howto_operator_milvus_search]
    # Dense search: the questions are embedded like the documents were (the model and dimension are read
    # from the collection's rows), as RETRIEVAL_QUERY, and each returns its top hits (XCom).
    answers = MilvusSearchOperator(
        task_id="answer_questions",
        collection_name=COLLECTION,
        queries=QUESTIONS,
        limit=3,
        output_fields=["text"],
    )
    # [END howto_operator_milvus_search]

    load >> answers


example_gemini_milvus_ingest()
