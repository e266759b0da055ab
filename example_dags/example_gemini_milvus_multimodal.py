"""
Embed product photos, a PDF and text into one Milvus collection with gemini-embedding-2, then find them
with a text question.

gemini-embedding-2 maps text, images, PDFs, audio and video into one space: a question in words finds the
photo that shows it. Each file is one document (``media_field="media"``: its URI); the rows store the
file's URI, MIME type and SHA-256 in the metadata, never the bytes, and an unchanged file is never embedded
twice (the content hash covers its bytes).

Connections (nothing secret lives in this file):

* ``gemini_default``: type ``gemini``, the API key in the password.
* ``milvus_default``: type ``milvus``, the URI in the host (empty: a Milvus Lite file in ``$AIRFLOW_HOME``).

Page counts and durations are checked with the ``media`` extra:
``pip install 'airflow-provider-gemini-milvus[media]'``. The bundled emulator serves media too, so the DAG
runs offline.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import dag, task

from airflow_provider_gemini_milvus.hooks.gemini import GeminiHook
from airflow_provider_gemini_milvus.hooks.milvus import MilvusHook
from airflow_provider_gemini_milvus.operators.gemini import GeminiEmbedOperator
from airflow_provider_gemini_milvus.operators.milvus import MilvusInsertOperator

log = logging.getLogger(__name__)

COLLECTION = "gemini_multimodal_demo"
MODEL = "gemini-embedding-2"
DIM = 768
#: The folder of photos, PDFs and a JSONL of text documents: the samples next to this file by default.
MEDIA_FOLDER = os.environ.get(
    "GEMINI_MILVUS_MEDIA_FOLDER", str(Path(__file__).parent / "data" / "multimodal")
)
MEDIA_SUFFIXES = (".png", ".jpg", ".jpeg", ".pdf", ".mp3", ".wav", ".mp4", ".mov")

QUESTIONS = ["a jacket that keeps the rain out", "how do I keep my tent out of the sunlight?"]


@dag(
    dag_id="example_gemini_milvus_multimodal",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["example", "gemini", "milvus", "multimodal"],
    default_args={"retries": 1, "retry_delay": timedelta(seconds=30)},
)
def example_gemini_milvus_multimodal() -> None:
    @task
    def list_documents(folder: str) -> list[dict[str, Any]]:
        """One document per media file (its URI, not its bytes: XCom stays small), plus the JSONL's texts."""
        documents: list[dict[str, Any]] = []
        for path in sorted(Path(folder).iterdir()):
            if path.suffix.lower() in MEDIA_SUFFIXES:
                documents.append({"id": path.name, "media": path.resolve().as_uri(), "file": path.name})
            elif path.suffix == ".jsonl":
                with path.open(encoding="utf-8") as lines:
                    documents.extend(json.loads(line) for line in lines if line.strip())
        log.info("Found %d documents in %s", len(documents), folder)
        return documents

    # [START howto_operator_gemini_embed_multimodal]
    embed = GeminiEmbedOperator(
        task_id="embed_documents",
        documents=list_documents(MEDIA_FOLDER),
        model=MODEL,
        media_field="media",
        output_dimensionality=DIM,
        # Incremental: an unchanged photo (same bytes) is not sent again on the next run.
        collection_name=COLLECTION,
    )
    # [END howto_operator_gemini_embed_multimodal]

    load = MilvusInsertOperator(task_id="load_into_milvus", collection_name=COLLECTION, data=embed.output)

    @task
    def search(questions: list[str]) -> list[dict[str, Any]]:
        """Embed each question as a query and log the photos, pages and texts it finds."""
        vectors = GeminiHook().encode_queries(questions, model=MODEL, output_dimensionality=DIM)
        with MilvusHook() as milvus:
            results = milvus.search(COLLECTION, vectors.tolist(), limit=3, output_fields=("text", "metadata"))
        answers = []
        for question, hits in zip(questions, results, strict=True):
            log.info("Q: %s", question)
            found = []
            for rank, hit in enumerate(hits, start=1):
                media = (hit.get("metadata") or {}).get("media") or {}
                log.info(
                    "   %d. [%.3f] %s %s", rank, hit["distance"], hit["id"], media.get("mime_type", "text")
                )
                found.append(
                    {
                        "id": hit["id"],
                        "distance": round(float(hit["distance"]), 4),
                        "uri": media.get("uri"),
                        "mime_type": media.get("mime_type"),
                    }
                )
            answers.append({"question": question, "hits": found})
        return answers

    load >> search(QUESTIONS)


example_gemini_milvus_multimodal()
