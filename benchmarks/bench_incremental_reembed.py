"""
What a scheduled re-embedding run costs when 1% of the corpus changed: full vs incremental, side by side.

Both contenders run in one process, against the bundled emulator (simulated latency) and a real
Milvus Lite file, on the same corpus and the same edits. The printed figures are ratios and counts.

Run: ``make bench`` (or ``.venv/bin/python benchmarks/bench_incremental_reembed.py``).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from airflow_provider_gemini_milvus.operators.gemini import GeminiEmbedOperator
from airflow_provider_gemini_milvus.operators.milvus import MilvusInsertOperator
from airflow_provider_gemini_milvus.testing.gemini_emulator import GeminiEmulator

DOCUMENTS = 2000
EDITED = 20
COLLECTION = "bench_docs"


def corpus(edit_rounds: int = 0) -> list[dict[str, Any]]:
    """The corpus after ``edit_rounds`` days, each of which edited a different ``EDITED`` documents."""
    documents = [
        {"id": f"doc-{i}", "text": f"document {i} on topic {i % 40}: details {i * 31}"}
        for i in range(DOCUMENTS)
    ]
    for edit_round in range(1, edit_rounds + 1):
        for index in range(edit_round * EDITED, (edit_round + 1) * EDITED):
            documents[index]["text"] += f" (edited on day {edit_round})"
    return documents


def embed_and_load(
    documents: list[dict[str, Any]], *, incremental: bool
) -> tuple[float, int, dict[str, Any]]:
    started = time.perf_counter()
    embed = GeminiEmbedOperator(
        task_id="embed",
        documents=documents,
        output_dimensionality=768,
        collection_name=COLLECTION if incremental else None,
    )
    result: dict[str, Any] = dict(embed.execute(context={}))
    MilvusInsertOperator(task_id="load", collection_name=COLLECTION, data=result).execute(context={})
    return time.perf_counter() - started, len(json.dumps(result)), result["stats"]


def main() -> None:
    logging.basicConfig(level=logging.WARNING, force=True)
    for noisy in (
        "httpx",
        "httpx2",
        "airflow",
        "airflow_provider_gemini_milvus",
        "pymilvus",
        "faiss",
        "grpc",
    ):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp, GeminiEmulator(latency_seconds=0.05) as emulator:
        os.environ["AIRFLOW_CONN_GEMINI_DEFAULT"] = json.dumps(
            {"conn_type": "gemini", "password": emulator.api_key, "extra": {"base_url": emulator.base_url}}
        )
        os.environ["AIRFLOW_CONN_MILVUS_DEFAULT"] = json.dumps(
            {"conn_type": "milvus", "host": str(Path(tmp) / "bench.db")}
        )
        embed_and_load(corpus(), incremental=False)  # the initial load, not measured

        figures = {}
        for edit_round, (label, is_incremental) in enumerate(
            (("full", False), ("incremental", True)), start=1
        ):
            emulator.reset_stats()
            seconds, xcom_bytes, _ = embed_and_load(corpus(edit_round), incremental=is_incremental)
            figures[label] = (seconds, xcom_bytes, emulator.stats.texts, emulator.stats.requests)

        full, incremental = figures["full"], figures["incremental"]
        print(
            f"{DOCUMENTS} documents, {EDITED} edited since the last run, 768 dims, 50 ms simulated latency:"
        )
        print(
            f"  texts sent to Gemini   full {full[2]:5d}   incremental {incremental[2]:5d}   "
            f"({full[2] / max(incremental[2], 1):.0f}x fewer)"
        )
        print(f"  Gemini requests        full {full[3]:5d}   incremental {incremental[3]:5d}")
        print(f"  XCom payload           incremental is {incremental[1] / full[1]:.3f}x the full run's")
        print(f"  wall time              incremental is {incremental[0] / full[0]:.2f}x the full run's")


if __name__ == "__main__":
    main()
