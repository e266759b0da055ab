"""
Keep a Milvus collection in step with a folder of documents, paying only for what changed.

Every day, the files under ``docs_uri`` (an ``ObjectStoragePath``: local by default, or ``s3://``,
``gs://`` ... with the matching provider installed) are split into chunks, written as one JSONL file to
the staging location. ``GeminiEmbedOperator`` reads that file in chunks, looks up each chunk's stored
content hash in the collection and embeds only new or edited chunks; chunks of deleted files are removed
once the new rows are in. An unchanged folder costs zero Gemini requests, and a folder of any size runs
with flat memory: documents and vectors go through object storage, not XCom.

Connections: ``gemini_default`` (API key in the password) and ``milvus_default``. Milvus Lite allows one
process at a time per file, hence ``max_active_runs=1``.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import timedelta

import pendulum
from airflow.sdk import ObjectStoragePath, Param, dag, task

from airflow_provider_gemini_milvus.operators.gemini import GeminiEmbedOperator
from airflow_provider_gemini_milvus.operators.milvus import MilvusInsertOperator
from airflow_provider_gemini_milvus.staging import staging_root

COLLECTION = "gemini_docs"
DIM = 768
SUFFIXES = {".md", ".txt", ".rst"}
MAX_CHUNK_CHARS = 4000
log = logging.getLogger(__name__)

DEFAULT_DOCS_URI = os.environ.get(
    "GEMINI_MILVUS_DOCS_URI",
    "file://" + os.path.join(os.environ.get("AIRFLOW_HOME", os.path.expanduser("~/airflow")), "docs"),
)


def chunk_text(text: str, max_chars: int = MAX_CHUNK_CHARS) -> list[str]:
    """Split on blank lines and pack paragraphs into chunks of at most ``max_chars`` characters."""
    pieces = [
        paragraph[start : start + max_chars]
        for paragraph in (part.strip() for part in text.split("\n\n"))
        for start in range(0, len(paragraph), max_chars)
    ]
    chunks: list[str] = []
    for piece in pieces:
        if chunks and len(chunks[-1]) + 2 + len(piece) <= max_chars:
            chunks[-1] = f"{chunks[-1]}\n\n{piece}"
        else:
            chunks.append(piece)
    return chunks


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
        "prune": Param(True, type="boolean", description="Delete the rows of files gone from the folder"),
    },
)
def example_gemini_milvus_reembed() -> None:
    @task
    def chunk_documents(docs_uri: str, run_id: str) -> str:
        """
        Write one JSONL line per chunk, with a stable id (the file's path and the chunk number), to the
        staging location; return its URI. Only the URI travels through XCom, whatever the folder's size.
        """
        root = ObjectStoragePath(docs_uri)
        if not root.is_dir():
            raise FileNotFoundError(f"docs_uri {docs_uri!r} is not a folder")
        target = staging_root() / "sources" / "example_gemini_milvus_reembed" / run_id / "chunks.jsonl"
        target.parent.mkdir(parents=True, exist_ok=True)
        count = 0
        with target.open("w", encoding="utf-8") as out:
            for path in sorted(root.rglob("*")):
                if not path.is_file() or path.suffix not in SUFFIXES:
                    continue
                relative = path.relative_to(root).as_posix()
                for number, chunk in enumerate(chunk_text(path.read_text(encoding="utf-8"))):
                    document = {
                        "id": f"{relative}#{number}",
                        "title": path.stem.replace("_", " ").replace("-", " "),
                        "text": chunk,
                        "path": relative,
                    }
                    out.write(json.dumps(document, ensure_ascii=False) + "\n")
                    count += 1
        log.info("Wrote %d chunks of %s to %s", count, root, target)
        return str(target)

    # [START howto_operator_gemini_embed_incremental]
    embed = GeminiEmbedOperator(
        task_id="embed_changed_documents",
        documents=chunk_documents(docs_uri="{{ params.docs_uri }}", run_id="{{ run_id }}"),
        title_field="title",
        output_dimensionality=DIM,
        collection_name=COLLECTION,
        # Renders to the text "True" or "False"; the operator reads it as the boolean it names.
        delete_missing="{{ params.prune }}",
    )
    MilvusInsertOperator(task_id="upsert_into_milvus", collection_name=COLLECTION, data=embed.output)
    # [END howto_operator_gemini_embed_incremental]


example_gemini_milvus_reembed()
