"""
MilvusInsertOperator on a staged manifest against a raw ``MilvusClient.upsert`` of the same rows.

The rows (random 768-dim vectors, texts of about 300 bytes, JSON metadata of three keys) are staged once as
the embedding operator stages them (Parquet parts of 1,000 rows, ``content_hash`` and ``model`` set). Each
round loads them twice, each time into a fresh collection of the operator's own schema created beforehand
(untimed), and alternates which of the two goes first:

- the operator: ``MilvusInsertOperator(data=manifest).execute()``, timed from the call to its return: it
  opens the connection, checks every row, writes them, flushes and closes (on Milvus Lite, closing stops
  the in-process server and releases the file);
- raw: ``MilvusClient(uri)``, ``upsert`` of the same rows (dicts built beforehand, untimed, vectors as
  lists, metadata as dicts) in calls of 4,000 rows, one ``flush``, ``close``. A raw client's ``close`` does
  not stop Milvus Lite's in-process server: the work Lite still does in the background (the index build
  the flush started) is waited for after the timing, so that it does not run into the next measurement.

Printed per backend: the median over the rounds of operator seconds / raw seconds as ``measured ratio``
beside ``target <= 1.1x`` (seconds in parentheses are context only: the machine is shared). Milvus Lite
always; a Milvus server when ``MILVUS_SERVER_URI`` is set (``ci/milvus_server.py run -- ...`` sets it),
with ``load_method="batches"`` (bulk import is measured by ``bench_bulk_import.py``).

Run: ``.venv/bin/python benchmarks/bench_load.py [--rows 20000] [--rounds 5] [--quick]``, or with a server:
``python ci/milvus_server.py run --skip-if-unavailable -- .venv/bin/python benchmarks/bench_load.py``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

# This checkout's package, not another one installed in the environment.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

DIM = 768
PART_ROWS = 1000
RAW_BATCH_ROWS = 4000
TARGET = 1.1
TEXT = "A staged row is loaded by the operator or by hand; both should take the same time. " * 4


def stage(folder: Path, rows: int) -> dict[str, Any]:
    """Stage ``rows`` rows in parts of PART_ROWS as the embedding operator does; return the manifest."""
    from airflow_provider_gemini_milvus.milvus.rows import content_hash, model_fingerprint
    from airflow_provider_gemini_milvus.staging import PartWriter, StagedManifest

    generator = np.random.default_rng(rows)
    model = model_fingerprint("gemini-embedding-001", DIM, "RETRIEVAL_DOCUMENT")
    writer = PartWriter(str(folder), DIM)
    parts = []
    for start in range(0, rows, PART_ROWS):
        batch = []
        for index in range(start, min(rows, start + PART_ROWS)):
            text = f"{index}: {TEXT}"
            metadata = {"source": f"docs/file-{index // 50}.md", "chunk": index % 50, "lang": "en"}
            batch.append(
                {
                    "id": f"doc-{index:07d}",
                    "vector": generator.standard_normal(DIM).astype(np.float32),
                    "text": text,
                    "metadata": metadata,
                    "content_hash": content_hash(text, metadata=metadata),
                    "model": model,
                }
            )
        parts.append(writer.write(batch))
    return dict(
        StagedManifest(
            parts=parts,
            rows=rows,
            dim=DIM,
            model=model,
            task_type="RETRIEVAL_DOCUMENT",
            folder=parts[0].uri.rpartition("/")[0],
        ).to_xcom()
    )


def raw_rows(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The staged rows as a user holds them before an upsert: vectors as lists, metadata as dicts."""
    from airflow_provider_gemini_milvus.staging import iter_part_rows

    return [
        {**row, "vector": row["vector"].tolist()}
        for part in manifest["parts"]
        for chunk in iter_part_rows(part["uri"])
        for row in chunk
    ]


class Backend:
    """Where a round writes: a fresh Lite file per load, or a fresh collection on a server."""

    def __init__(self, name: str, folder: Path, server_uri: str | None) -> None:
        self.name = name
        self.folder = folder
        self.server_uri = server_uri
        self.count = 0

    def fresh(self) -> tuple[str, str]:
        """Create an empty collection of the operator's schema (untimed); return (uri, collection)."""
        from airflow_provider_gemini_milvus.hooks.milvus import MilvusHook

        self.count += 1
        uri = self.server_uri or str(self.folder / f"load-{self.count}.db")
        collection = f"bench_load_{self.count}"
        os.environ["AIRFLOW_CONN_MILVUS_DEFAULT"] = json.dumps({"conn_type": "milvus", "host": uri})
        with MilvusHook() as hook:
            hook.ensure_collection(collection, DIM)
        return uri, collection

    def settle(self, uri: str, collection: str) -> None:
        """After a timing: wait for Lite's background work, or drop the server's collection."""
        if self.server_uri is None:
            from milvus_lite.server_manager import server_manager_instance

            server_manager_instance.release_server(uri)
            return
        from pymilvus import MilvusClient

        client = MilvusClient(uri=uri)
        client.drop_collection(collection)
        client.close()


def time_operator(backend: Backend, manifest: dict[str, Any]) -> float:
    from airflow_provider_gemini_milvus.operators.milvus import MilvusInsertOperator

    uri, collection = backend.fresh()
    started = time.perf_counter()
    result = MilvusInsertOperator(
        task_id="load", collection_name=collection, data=manifest, load_method="batches"
    ).execute(context={})
    seconds = time.perf_counter() - started
    assert result["written"] == manifest["rows"], result
    backend.settle(uri, collection)
    return seconds


def time_raw(backend: Backend, rows: list[dict[str, Any]]) -> float:
    from pymilvus import MilvusClient

    uri, collection = backend.fresh()
    started = time.perf_counter()
    client = MilvusClient(uri=uri)
    for start in range(0, len(rows), RAW_BATCH_ROWS):
        client.upsert(collection, rows[start : start + RAW_BATCH_ROWS])
    client.flush(collection)
    client.close()
    seconds = time.perf_counter() - started
    backend.settle(uri, collection)
    return seconds


def measure(backend: Backend, manifest: dict[str, Any], rows: list[dict[str, Any]], rounds: int) -> None:
    timings: dict[str, list[float]] = {"operator": [], "raw": []}
    for round_number in range(rounds):
        order = ("operator", "raw") if round_number % 2 == 0 else ("raw", "operator")
        for contender in order:
            if contender == "operator":
                timings["operator"].append(time_operator(backend, manifest))
            else:
                timings["raw"].append(time_raw(backend, rows))
            print(
                f"[{time.strftime('%H:%M:%S')}] {backend.name} round {round_number + 1}: {contender} "
                f"{timings[contender][-1]:.1f}s",
                file=sys.stderr,
            )
    ratios = [op / raw for op, raw in zip(timings["operator"], timings["raw"], strict=True)]
    ratio = statistics.median(ratios)
    verdict = "target met" if ratio <= TARGET else "TARGET MISSED"
    print(
        f"{backend.name}: MilvusInsertOperator (manifest) vs raw MilvusClient.upsert, {len(rows):,} rows, "
        f"{rounds} interleaved rounds: measured ratio {ratio:.2f}x   target <= {TARGET}x   ({verdict})"
    )
    print(
        f"   (per round {', '.join(f'{value:.2f}x' for value in ratios)}; median operator "
        f"{statistics.median(timings['operator']):.1f}s, raw {statistics.median(timings['raw']):.1f}s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--rows", type=int, default=20_000, help="staged rows (default 20,000)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--quick", action="store_true", help="4,000 rows, 3 rounds")
    parser.add_argument("--no-lite", action="store_true", help="measure only the server")
    args = parser.parse_args()
    rows_wanted, rounds = (4_000, 3) if args.quick else (args.rows, args.rounds)
    logging.disable(logging.WARNING)
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")  # the operator's progress lines
    server_uri = os.environ.get("MILVUS_SERVER_URI")
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp_name:
        tmp = Path(tmp_name)
        os.environ.setdefault("AIRFLOW_HOME", str(tmp / "airflow_home"))
        manifest = stage(tmp / "staged", rows_wanted)
        rows = raw_rows(manifest)
        if not args.no_lite:
            measure(Backend("Milvus Lite", tmp, None), manifest, rows, rounds)
        if server_uri:
            measure(Backend(f"Milvus server ({server_uri})", tmp, server_uri), manifest, rows, rounds)
        else:
            print("Milvus server: SKIPPED (set MILVUS_SERVER_URI; ci/milvus_server.py run -- ... sets it)")


if __name__ == "__main__":
    main()
