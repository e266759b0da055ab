"""
LangChain's indexing API on the benchmark's corpus; run by ``run_peers.py`` with ``.venv-bench/langchain``.

``index()`` from ``langchain_core.indexing`` with ``GoogleGenerativeAIEmbeddings`` (pointed at the emulator
by its ``base_url`` field, which it hands to google-genai's ``HttpOptions``), the ``Milvus`` vector store on
a Milvus Lite file and a ``SQLRecordManager`` (langchain-classic) on a SQLite file beside it.
``cleanup="full"``: the full corpus is passed on every run, and only "full" deletes what is no longer in it
("incremental" removes older versions of the sources seen in this run, so a deleted document would stay).

Usage: ``peer_langchain.py WORKDIR CORPUS.jsonl``
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from langchain_classic.indexes import SQLRecordManager
from langchain_core.documents import Document
from langchain_core.indexing import index
from langchain_google_genai import GoogleGenerativeAIEmbeddings
from langchain_milvus import Milvus


def main() -> None:
    workdir, corpus_path = Path(sys.argv[1]), Path(sys.argv[2])
    rows = [json.loads(line) for line in corpus_path.read_text(encoding="utf-8").splitlines()]
    documents = [
        Document(
            page_content=row["text"],
            metadata={"source": row["id"], **{k: v for k, v in row.items() if k not in ("id", "text")}},
        )
        for row in rows
    ]
    embeddings = GoogleGenerativeAIEmbeddings(
        model="gemini-embedding-001",
        google_api_key=os.environ["BENCH_GEMINI_API_KEY"],
        base_url=os.environ["BENCH_GEMINI_BASE_URL"],
        task_type="RETRIEVAL_DOCUMENT",
        output_dimensionality=int(os.environ["BENCH_DIM"]),
    )
    vector_store = Milvus(
        embedding_function=embeddings,
        collection_name=os.environ["BENCH_COLLECTION"],
        connection_args={"uri": str(workdir / "milvus.db")},
        auto_id=False,
    )
    record_manager = SQLRecordManager("milvus/docs", db_url=f"sqlite:///{workdir / 'record_manager.sqlite'}")
    record_manager.create_schema()
    result = index(
        documents,
        record_manager,
        vector_store,
        cleanup="full",
        source_id_key="source",
        key_encoder="sha256",
    )
    print(json.dumps(dict(result)))


if __name__ == "__main__":
    main()
