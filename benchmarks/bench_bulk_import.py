"""
Bulk import against batched upserts of the same staged rows into a fresh collection on a Milvus server.

For each size, the rows (random 768-dim vectors, texts of about 300 bytes) are staged once as the
embedding operator stages them (Parquet parts of 1,000 rows), then ``MilvusInsertOperator`` loads the same
manifest twice, each time into a new collection: ``load_method="batches"`` (upserts of up to 16 MiB, one
flush) and ``load_method="bulk_import"`` (one ``Import`` job per 100,000 rows, waited for until every row
is queryable). Each load is timed from ``execute`` to its return, the collection created inside it; the
row count is checked after both. The sizes run in the order given; the two methods alternate which goes
first, so neither always runs on a server still busy with the other's compaction.

Printed: seconds of each (context: the machine is shared), the ratio batches / import side by side, and
the crossover, where a straight line through each method's times (fixed cost + cost per row) meets.

Run against a server (``make bench`` starts one with ``ci/milvus_server.py``)::

    MILVUS_SERVER_URI=http://127.0.0.1:19530 .venv/bin/python benchmarks/bench_bulk_import.py \
        [--sizes 1000 10000 50000 100000 200000]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from airflow_provider_gemini_milvus.staging.manifest import ManifestXCom

DIM = 768
PART_ROWS = 1000
TEXT = "Milvus builds segments from Parquet files itself when it imports them. " * 4


def stage(folder: Path, rows: int) -> ManifestXCom:
    """Stage ``rows`` rows in parts of PART_ROWS and return the manifest (as XCom carries it)."""
    from airflow_provider_gemini_milvus.milvus.rows import content_hash
    from airflow_provider_gemini_milvus.staging import PartWriter, StagedManifest

    generator = np.random.default_rng(rows)
    writer = PartWriter(str(folder), DIM)
    parts = []
    for start in range(0, rows, PART_ROWS):
        count = min(PART_ROWS, rows - start)
        vectors = generator.standard_normal((count, DIM), dtype=np.float32)
        parts.append(
            writer.write(
                [
                    {
                        "id": f"doc-{start + i:08d}",
                        "vector": vectors[i],
                        "text": TEXT,
                        "content_hash": content_hash(TEXT),
                        "model": f"gemini-embedding-001/{DIM}/RETRIEVAL_DOCUMENT",
                        "metadata": {"source": "bench", "n": start + i},
                    }
                    for i in range(count)
                ]
            )
        )
    return StagedManifest(
        parts=parts,
        rows=rows,
        dim=DIM,
        model=f"gemini-embedding-001/{DIM}/RETRIEVAL_DOCUMENT",
        task_type="RETRIEVAL_DOCUMENT",
    ).to_xcom()


def load(manifest: ManifestXCom, collection: str, load_method: str) -> float:
    """Seconds ``MilvusInsertOperator`` takes to load ``manifest`` into the new ``collection``."""
    from airflow_provider_gemini_milvus.hooks.milvus import MilvusHook
    from airflow_provider_gemini_milvus.operators.milvus import MilvusInsertOperator

    operator = MilvusInsertOperator(
        task_id=f"load_{load_method}", collection_name=collection, data=manifest, load_method=load_method
    )
    started = time.perf_counter()
    summary = operator.execute({})
    seconds = time.perf_counter() - started
    with MilvusHook() as hook:
        stored = hook.count(collection)
        hook.get_conn().drop_collection(collection)
    if summary["load_method"] != load_method or stored != manifest["rows"]:
        raise SystemExit(f"{load_method}: {summary} but the collection holds {stored} rows")
    return seconds


def crossover(sizes: list[int], batches: list[float], imports: list[float]) -> float | None:
    """Rows where the fitted lines ``a + b * rows`` of the two methods meet; None if they do not."""
    if len(sizes) < 2:
        return None
    slope_batches, fixed_batches = np.polyfit(sizes, batches, 1)
    slope_imports, fixed_imports = np.polyfit(sizes, imports, 1)
    if slope_batches <= slope_imports:
        return None
    return float((fixed_imports - fixed_batches) / (slope_batches - slope_imports))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 50_000, 100_000, 200_000])
    options = parser.parse_args()
    uri = os.environ.get("MILVUS_SERVER_URI")
    if not uri:
        print("bench_bulk_import: SKIPPED: set MILVUS_SERVER_URI to a Milvus server (make bench starts one)")
        return 0
    os.environ["AIRFLOW_CONN_MILVUS_DEFAULT"] = json.dumps({"conn_type": "milvus", "host": uri})
    import logging

    logging.disable(logging.INFO)  # the operators log every batch

    from airflow_provider_gemini_milvus.hooks.milvus import MilvusHook

    with MilvusHook() as hook:
        version = hook.get_conn().get_server_version()
    print(f"Bulk import vs batched upserts, {DIM}-dim rows, fresh collection, Milvus {version} at {uri}")
    print(f"{'rows':>8} {'batches s':>10} {'import s':>9} {'batches/import':>15} {'import rows/s':>14}")
    batches: list[float] = []
    imports: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-bulk-import-") as folder:
        for round_number, rows in enumerate(options.sizes):
            manifest = stage(Path(folder) / f"rows-{rows}", rows)
            order = ["batches", "bulk_import"] if round_number % 2 == 0 else ["bulk_import", "batches"]
            seconds = {method: load(manifest, f"bench_{method}_{rows}", method) for method in order}
            batches.append(seconds["batches"])
            imports.append(seconds["bulk_import"])
            ratio = seconds["batches"] / seconds["bulk_import"]
            print(
                f"{rows:>8} {seconds['batches']:>10.1f} {seconds['bulk_import']:>9.1f} "
                f"{ratio:>14.2f}x {rows / seconds['bulk_import']:>14.0f}",
                flush=True,
            )
    meet = crossover(options.sizes, batches, imports)
    if meet is None:
        print("crossover: none within these sizes (batched upserts cost no more per row than an import)")
    else:
        print(f"crossover: bulk import pays off from about {meet:,.0f} rows (where the fitted lines meet)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
