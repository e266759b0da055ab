"""
Keep a Milvus collection in step with a folder of documents, paying only for what changed.

Every day, ``GeminiEmbedOperator`` reads the files under ``docs_uri`` (Markdown, HTML and text; PDF and
Office documents with the ``files`` extra; local by default, or ``s3://``, ``gs://`` ... with the matching
provider installed) and cuts them into chunks (``chunking=``). A chunk's id comes from its file and its own
text, so an edited paragraph re-embeds that chunk, not the rest of the file; a file whose bytes did not
change is not even parsed. ``delete_missing="source"`` removes the chunks an edited file no longer has and
every chunk of a deleted file, and nothing else. An unchanged folder costs zero Gemini requests, and a
folder of any size runs with flat memory: documents and vectors go through object storage, not XCom.

Connections: ``gemini_default`` (API key in the password) and ``milvus_default``. Milvus Lite allows one
process at a time per file, hence ``max_active_runs=1``.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag

from airflow_provider_gemini_milvus.operators.gemini import GeminiEmbedOperator
from airflow_provider_gemini_milvus.operators.milvus import MilvusInsertOperator

COLLECTION = "gemini_docs"
DIM = 768

DEFAULT_DOCS_URI = os.environ.get(
    "GEMINI_MILVUS_DOCS_URI",
    "file://" + os.path.join(os.environ.get("AIRFLOW_HOME", os.path.expanduser("~/airflow")), "docs"),
)


@dag(
    dag_id="example_gemini_milvus_reembed",
    schedule="@daily",
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["example", "gemini", "milvus"],
    default_args={"retries": 1, "retry_delay": timedelta(seconds=30)},
    params={
        "docs_uri": Param(DEFAULT_DOCS_URI, type="string", description="Folder of documents"),
        "prune": Param(True, type="boolean", description="Delete the chunks of files gone from the folder"),
    },
)
def example_gemini_milvus_reembed() -> None:
    # [START howto_operator_gemini_embed_incremental]
    embed = GeminiEmbedOperator(
        task_id="embed_changed_documents",
        documents="{{ params.docs_uri }}",
        # Chunks of at most 512 tokens, cut at headings, paragraphs and code blocks.
        chunking={"max_tokens": 512},
        output_dimensionality=DIM,
        collection_name=COLLECTION,
        # Renders to "source" or "False": per-source cleanup, or none.
        delete_missing="{{ 'source' if params.prune else False }}",
    )
    MilvusInsertOperator(task_id="upsert_into_milvus", collection_name=COLLECTION, data=embed.output)
    # [END howto_operator_gemini_embed_incremental]


example_gemini_milvus_reembed()
