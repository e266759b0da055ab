"""
LlamaIndex's ingestion pipeline on the benchmark's corpus; run by ``run_peers.py`` with
``.venv-bench/llamaindex``.

``IngestionPipeline`` with a ``SentenceSplitter`` and ``GoogleGenAIEmbedding`` (pointed at the emulator
by its ``http_options`` argument, google-genai's ``HttpOptions(base_url=...)``; ``embed_batch_size=100``,
the API's most per request, where LlamaIndex's default is 10), ``MilvusVectorStore`` on a Milvus Lite
file and a
``SimpleDocumentStore`` persisted between runs with the pipeline (``persist`` / ``load``),
``docstore_strategy=UPSERTS_AND_DELETE`` so documents gone from the source are deleted from the store.
One line a user must add: ``load_collection`` after opening the store (see below).

Usage: ``peer_llamaindex.py WORKDIR CORPUS.jsonl``
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from google.genai import types
from llama_index.core import Document
from llama_index.core.ingestion import DocstoreStrategy, IngestionPipeline
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.storage.docstore import SimpleDocumentStore
from llama_index.embeddings.google_genai import GoogleGenAIEmbedding
from llama_index.vector_stores.milvus import MilvusVectorStore


def main() -> None:
    workdir, corpus_path = Path(sys.argv[1]), Path(sys.argv[2])
    rows = [json.loads(line) for line in corpus_path.read_text(encoding="utf-8").splitlines()]
    dim = int(os.environ["BENCH_DIM"])
    documents = [
        Document(
            id_=row["id"],
            text=row["text"],
            metadata={k: v for k, v in row.items() if k not in ("id", "text")},
        )
        for row in rows
    ]
    embed_model = GoogleGenAIEmbedding(
        model_name="gemini-embedding-001",
        api_key=os.environ["BENCH_GEMINI_API_KEY"],
        embedding_config=types.EmbedContentConfig(output_dimensionality=dim, task_type="RETRIEVAL_DOCUMENT"),
        http_options=types.HttpOptions(base_url=os.environ["BENCH_GEMINI_BASE_URL"]),
        embed_batch_size=100,
    )
    vector_store = MilvusVectorStore(
        uri=str(workdir / "milvus.db"), dim=dim, collection_name=os.environ["BENCH_COLLECTION"]
    )
    # Milvus Lite 3 reopens a collection released, and MilvusVectorStore does not load it: without this
    # the second run's first delete fails ("call load() before search/get/query").
    vector_store.client.load_collection(os.environ["BENCH_COLLECTION"])
    pipeline = IngestionPipeline(
        # The splitter (one node per document here: the texts are short) is what gives each node the
        # ref_doc_id that the vector store's delete looks for; with documents as nodes, deletes find nothing.
        transformations=[SentenceSplitter(chunk_size=1024, chunk_overlap=0), embed_model],
        vector_store=vector_store,
        docstore=SimpleDocumentStore(),
        docstore_strategy=DocstoreStrategy.UPSERTS_AND_DELETE,
    )
    storage = workdir / "pipeline_storage"
    if storage.exists():
        pipeline.load(str(storage))
    nodes = pipeline.run(documents=documents)
    pipeline.persist(str(storage))
    vector_store.client.close()
    print(json.dumps({"nodes": len(nodes)}))


if __name__ == "__main__":
    main()
