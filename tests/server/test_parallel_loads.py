"""Shards loaded at once into one collection of a Milvus server, as mapped tasks on several workers do."""

from __future__ import annotations

import subprocess
import sys

import pytest

from airflow_provider_gemini_milvus.hooks.milvus import MilvusHook

SHARDS = 3
ROWS_PER_SHARD = 50

LOAD_ONE_SHARD = """
import sys
from airflow_provider_gemini_milvus.operators.milvus import MilvusInsertOperator

shard = int(sys.argv[1])
rows = [
    {"id": f"shard{shard}-{i}", "vector": [1.0, float(shard), float(i), 0.5], "text": f"row {i}"}
    for i in range(int(sys.argv[2]))
]
summary = MilvusInsertOperator(task_id=f"load_{shard}", collection_name="docs", data=rows).execute({})
print(summary["written"], summary["created"])
"""


@pytest.mark.usefixtures("milvus_connection")
def test_shards_load_in_parallel_into_a_collection_none_of_them_found() -> None:
    # Every process finds no collection and creates it; the losers of that race must reuse the winner's.
    loads = [
        subprocess.Popen(
            [sys.executable, "-c", LOAD_ONE_SHARD, str(shard), str(ROWS_PER_SHARD)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for shard in range(SHARDS)
    ]
    results = [load.communicate(timeout=180) for load in loads]

    for load, (_, stderr) in zip(loads, results, strict=True):
        assert load.returncode == 0, stderr[-3000:]
    summaries = [stdout.strip().splitlines()[-1].split() for stdout, _ in results]
    assert [written for written, _ in summaries] == [str(ROWS_PER_SHARD)] * SHARDS
    with MilvusHook() as hook:
        assert hook.count("docs") == SHARDS * ROWS_PER_SHARD
        assert len(hook.list_ids("docs")) == SHARDS * ROWS_PER_SHARD
