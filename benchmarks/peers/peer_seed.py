"""
The seed's way on the benchmark's corpus; run by ``run_peers.py`` with ``.venv-bench/seed``.

pymilvus-model's ``GeminiEmbeddingFunction`` (its extra keyword arguments go to ``genai.Client``, so
``http_options=HttpOptions(base_url=...)`` points it at the emulator) and a ``MilvusClient.upsert`` loop in
chunks of 100, one request at a time, into a quick-setup collection on a Milvus Lite file. It keeps no
record of what it embedded, so every run embeds every document; to drop the documents that vanished from
the source it lists the stored ids and deletes the missing ones.

Usage: ``peer_seed.py WORKDIR CORPUS.jsonl``
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from google.genai import types
from pymilvus import MilvusClient, model

CHUNK = 100


def main() -> None:
    workdir, corpus_path = Path(sys.argv[1]), Path(sys.argv[2])
    rows = [json.loads(line) for line in corpus_path.read_text(encoding="utf-8").splitlines()]
    dim = int(os.environ["BENCH_DIM"])
    collection = os.environ["BENCH_COLLECTION"]
    gemini_ef = model.dense.GeminiEmbeddingFunction(
        model_name="gemini-embedding-001",
        api_key=os.environ["BENCH_GEMINI_API_KEY"],
        config=types.EmbedContentConfig(output_dimensionality=dim, task_type="RETRIEVAL_DOCUMENT"),
        http_options=types.HttpOptions(base_url=os.environ["BENCH_GEMINI_BASE_URL"]),
    )
    client = MilvusClient(uri=str(workdir / "milvus.db"))
    if not client.has_collection(collection):
        client.create_collection(
            collection, dimension=dim, id_type="string", max_length=64, metric_type="COSINE"
        )
    else:
        client.load_collection(collection)  # a reopened Lite file holds it released
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start : start + CHUNK]
        vectors = gemini_ef.encode_documents([row["text"] for row in chunk])
        client.upsert(
            collection,
            [{**row, "vector": vector.tolist()} for row, vector in zip(chunk, vectors, strict=True)],
        )
    wanted = {row["id"] for row in rows}
    iterator = client.query_iterator(collection, batch_size=1000, filter="", output_fields=["id"])
    stored: list[str] = []
    while batch := iterator.next():
        stored.extend(hit["id"] for hit in batch)
    iterator.close()
    missing = [pk for pk in stored if pk not in wanted]
    if missing:
        client.delete(collection, ids=missing)
    client.close()
    print(json.dumps({"upserted": len(rows), "deleted": len(missing)}))


if __name__ == "__main__":
    main()
