"""
Embed a large corpus in shards, one mapped task per shard, as it runs on the Celery or Kubernetes executor.

``split_corpus`` reads the corpus (``corpus_uri``: one JSONL / Parquet file or a folder of them, local or
``s3://`` ...; empty generates ``generated_documents`` synthetic ones) and writes it as ``shards`` JSONL
files in the staging location. A document goes to the shard its id hashes to, so it lands in the same shard
on every run. Each shard then gets its own embedding task and its own load task through dynamic task
mapping: ``GeminiEmbedOperator.partial(...).expand(documents=shard_uris)``, then
``MilvusInsertOperator.partial(...).expand(data=embed.output)``. ``embed.output`` of a mapped task is the
list of its map results, so ``load_shard[i]`` loads the manifest of ``embed_shard[i]``.

Nothing goes through a worker's local disk: shard files and staged Parquet parts live under the staging
location and only URIs and manifests travel in XCom. With several workers set the staging location to
shared object storage, ``[gemini_milvus] staging_uri`` (``AIRFLOW__GEMINI_MILVUS__STAGING_URI=s3://...``).

**Pool.** The load tasks (and the final check) run in the pool ``milvus_load``; its size is the one
setting that differs between targets, so create it before the first run:

* Milvus Lite (a ``.db`` file): one process at a time may open the file, so loads must be serialised:
  ``airflow pools set milvus_load 1 "one writer per Milvus Lite file"``. (Lite also needs every worker to
  see the same local file: it suits one machine, not a cluster.)
* A Milvus server or Zilliz Cloud takes loads in parallel: ``airflow pools set milvus_load 4 "parallel
  Milvus loads"`` (as many loads at once as the server should take).

The scheduler does not run a task whose pool does not exist (it logs a warning and shows a DAG warning).
``dag.test()`` runs one task at a time and does not look at pools.

**No corpus-wide ``delete_missing`` per shard.** Incremental mode (``collection_name=`` on the embed task)
may be added to the ``partial``: each shard then embeds only its new or changed documents.
``delete_missing=True`` must not: a shard sees only its own documents, so it would take every other shard's
rows for deleted ones (and delete them, or trip ``max_delete_fraction``). Prune vanished documents in one
task that sees the whole corpus, after all loads. On Milvus Lite, incremental mode also opens the file from
the embedding tasks, which then need the pool too.

**A folder of files shards by source.** For Markdown, HTML, text or PDF files, skip ``split_corpus``: every
shard lists the same folder and takes the files whose URI hashes to it, and per-source cleanup is safe per
shard (it never touches another shard's sources)::

    GeminiEmbedOperator.partial(
        task_id="embed_shard", documents="s3://bucket/handbook/", chunking={"max_tokens": 512},
        collection_name=COLLECTION, delete_missing="source",
    ).expand(source_shard=[f"{i}/{SHARDS}" for i in range(SHARDS)])

Connections: ``gemini_default`` (the API key in the password) and ``milvus_default`` (the URI in the host:
``http://...:19530`` for a server, empty for a Lite file in ``$AIRFLOW_HOME``).
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pendulum
from airflow.sdk import Param, dag, get_current_context, task

from airflow_provider_gemini_milvus.embedding.sources import open_document_source
from airflow_provider_gemini_milvus.hooks.milvus import MilvusHook
from airflow_provider_gemini_milvus.operators.gemini import GeminiEmbedOperator
from airflow_provider_gemini_milvus.operators.milvus import MilvusInsertOperator
from airflow_provider_gemini_milvus.staging import staging_root, task_staging_dir

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

COLLECTION = "gemini_sharded_docs"
DIM = 768
#: The pool of every task that opens the Milvus target: 1 slot for Milvus Lite, more for a server.
LOAD_POOL = "milvus_load"
DEFAULT_SHARDS = 4
DEFAULT_GENERATED_DOCUMENTS = 2000
TOPICS = ("astronomy", "botany", "cooking", "databases", "geology", "music", "sailing", "weather")
log = logging.getLogger(__name__)


def shard_of(document: Any, shards: int) -> int:
    """
    The shard of a document: its id (or, without one, its text) hashed, so it is the same on every run.

    :param document: a raw document, a dict with ``id`` or ``text``, or a string.
    :param shards: how many shards there are.
    """
    key = (document.get("id") or document.get("text")) if isinstance(document, dict) else document
    digest = hashlib.sha256(str(key).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % shards


def generated_corpus(count: int) -> Iterator[dict[str, Any]]:
    """``count`` synthetic documents with stable ids, for trying the DAG without a corpus."""
    for number in range(count):
        topic = TOPICS[number % len(TOPICS)]
        yield {
            "id": f"doc-{number:07d}",
            "text": f"Note {number} on {topic}: observation {number * 7919 % 10007} of the {topic} series.",
            "topic": topic,
        }


def corpus_documents(corpus_uri: str) -> Iterable[Any]:
    """The raw documents of a JSONL / Parquet file or folder, read in chunks."""
    for chunk in open_document_source(corpus_uri).chunks():
        for document in chunk:
            yield document.item


@dag(
    dag_id="example_gemini_milvus_sharded",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    # Two runs would load the same shards at once; with Lite they would also contend for the file.
    max_active_runs=1,
    tags=["example", "gemini", "milvus"],
    default_args={"retries": 1, "retry_delay": timedelta(seconds=30)},
    params={
        "corpus_uri": Param("", type="string", description="JSONL / Parquet file or folder; empty: generate"),
        "shards": Param(DEFAULT_SHARDS, type="integer", minimum=1, maximum=256),
        "generated_documents": Param(DEFAULT_GENERATED_DOCUMENTS, type="integer", minimum=1),
    },
)
def example_gemini_milvus_sharded() -> None:
    @task
    def split_corpus() -> list[str]:
        """Write the corpus as ``shards`` JSONL files in staging; return the URIs of those not empty."""
        context = get_current_context()
        ti, params = context["ti"], context["params"]
        corpus_uri, shards = str(params["corpus_uri"]).strip(), int(params["shards"])
        generated_documents = int(params["generated_documents"])
        folder = task_staging_dir(
            staging_root(), dag_id=ti.dag_id, run_id=ti.run_id, task_id=ti.task_id, map_index=-1
        )
        folder.mkdir(parents=True, exist_ok=True)
        documents = corpus_documents(corpus_uri) if corpus_uri else generated_corpus(generated_documents)
        paths = [folder / f"shard-{number:05d}.jsonl" for number in range(shards)]
        counts = [0] * shards
        handles = [path.open("w", encoding="utf-8") for path in paths]
        try:
            for document in documents:
                number = shard_of(document, shards)
                handles[number].write(json.dumps(document, ensure_ascii=False) + "\n")
                counts[number] += 1
        finally:
            for handle in handles:
                handle.close()
        log.info("Split %d documents into %d shards of %s to %s", sum(counts), shards, counts, folder)
        return [str(path) for path, count in zip(paths, counts, strict=True) if count]

    shard_uris = split_corpus()

    # [START howto_operator_gemini_embed_sharded]
    embed = GeminiEmbedOperator.partial(
        task_id="embed_shard",
        output_dimensionality=DIM,
        metadata_fields=["topic"],
    ).expand(documents=shard_uris)
    load = MilvusInsertOperator.partial(
        task_id="load_shard",
        collection_name=COLLECTION,
        pool=LOAD_POOL,
    ).expand(data=embed.output)
    # [END howto_operator_gemini_embed_sharded]

    @task(pool=LOAD_POOL)
    def check_collection(summaries: Iterable[dict[str, Any]]) -> dict[str, int]:
        """Add up what the shards wrote and count the collection's rows."""
        results = list(summaries)
        written = sum(int(summary["written"]) for summary in results)
        with MilvusHook() as milvus:
            rows = milvus.count(COLLECTION)
        log.info("%d shards wrote %d rows; the collection holds %d", len(results), written, rows)
        return {"shards": len(results), "written": written, "rows": rows}

    # At run time the XComArg resolves to the list of every load_shard result.
    check_collection(load.output)  # type: ignore[arg-type]


example_gemini_milvus_sharded()
