"""
Move a search corpus to another Gemini model, dimensionality or task type without downtime.

Readers search the alias ``gemini_docs_live``, never a collection. A run re-embeds the corpus with the
settings in its params into a collection named after the alias and those settings
(``gemini_docs_live__<model>_<dim>_<task type>_<hash>``), checks it, and only then moves the alias onto
it in one call; while it runs, readers keep getting answers from the collection the alias points to.

1. The collection's name is rendered from the alias and the settings (the DAG's ``versioned_collection_name``
   macro): the same name for the same settings, so a retry or a rerun continues filling it.
2. ``embed_documents`` embeds, in incremental mode against that collection: a retry sends only what is
   not in it yet, and documents gone from the corpus are deleted.
3. ``load_documents`` writes the rows (creating the collection with the new dimension).
4. ``promote`` checks that the collection holds as many rows as the corpus, all embedded with the new
   settings, and that each probe question finds its document; then it moves the alias (``create_alias`` on
   the first run) and drops collections the alias left, once they are older than the retention params.
   A failed check leaves the alias where it was.

Afterwards the scheduled ingest tasks can point at the alias (``collection_name="gemini_docs_live"``) with
the new settings: they find the new model's fingerprints and send nothing for unchanged documents.

Connections (nothing secret lives in this file), e.g. as environment variables:

* ``AIRFLOW_CONN_GEMINI_DEFAULT='{"conn_type": "gemini", "password": "<API key>"}'``
* ``AIRFLOW_CONN_MILVUS_DEFAULT='{"conn_type": "milvus", "host": "http://milvus:19530"}'`` (a ``.db``
  path for Milvus Lite)

Trigger with other params to migrate, e.g. ``airflow dags trigger example_gemini_milvus_model_migration
--conf '{"model": "gemini-embedding-001", "output_dimensionality": 1536}'``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import Param, dag

from airflow_provider_gemini_milvus.gemini.models import TASK_TYPES
from airflow_provider_gemini_milvus.loading.alias_migration import versioned_collection_name
from airflow_provider_gemini_milvus.operators.gemini import GeminiEmbedOperator
from airflow_provider_gemini_milvus.operators.milvus import MilvusInsertOperator
from airflow_provider_gemini_milvus.operators.milvus_alias import MilvusPromoteAliasOperator

ALIAS = "gemini_docs_live"

# The corpus of example_gemini_milvus_ingest.
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
METADATA_FIELDS = ["topic"]

#: Questions the new collection must answer with these documents before readers are moved onto it.
PROBES = {
    "When was artificial intelligence founded": "ai-founded",
    "Where was Alan Turing born?": "turing-born",
}

#: The collection these settings fill: the same name for the same settings (rendered when the run starts).
COLLECTION = (
    "{{ versioned_collection_name(alias, params.model, params.output_dimensionality, params.task_type) }}"
)
SETTINGS: dict[str, Any] = {
    "model": "{{ params.model }}",
    "output_dimensionality": "{{ params.output_dimensionality }}",
    "task_type": "{{ params.task_type }}",
}


@dag(
    dag_id="example_gemini_milvus_model_migration",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["example", "gemini", "milvus"],
    user_defined_macros={"alias": ALIAS, "versioned_collection_name": versioned_collection_name},
    default_args={"retries": 1, "retry_delay": timedelta(seconds=30)},
    params={
        "model": Param("gemini-embedding-001", type="string", description="Gemini embedding model"),
        "output_dimensionality": Param(768, type="integer", minimum=1, description="Vector length"),
        "task_type": Param("RETRIEVAL_DOCUMENT", enum=list(TASK_TYPES), description="Documents' task type"),
        "keep_previous": Param(1, type="integer", minimum=0, description="Old versions kept for rollback"),
        "retention_hours": Param(24, type="number", minimum=0, description="Hours an old version stays"),
    },
)
def example_gemini_milvus_model_migration() -> None:
    # [START howto_operator_milvus_promote_alias]
    embed = GeminiEmbedOperator(
        task_id="embed_documents",
        documents=DOCUMENTS,
        metadata_fields=METADATA_FIELDS,
        collection_name=COLLECTION,
        delete_missing=True,
        **SETTINGS,
    )
    load = MilvusInsertOperator(task_id="load_documents", collection_name=COLLECTION, data=embed.output)
    promote = MilvusPromoteAliasOperator(
        task_id="promote",
        alias=ALIAS,
        collection_name=COLLECTION,
        expected_rows=embed.output,
        probe_queries=PROBES,
        keep_previous="{{ params.keep_previous }}",
        retention_hours="{{ params.retention_hours }}",
        **SETTINGS,
    )
    load >> promote
    # [END howto_operator_milvus_promote_alias]


example_gemini_milvus_model_migration()
