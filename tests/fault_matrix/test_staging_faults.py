"""
Fault matrix of the staged data path: for each stage a kill or a failure, then a retry of the task
instance; the outcome is asserted as rows in Milvus, texts sent (the emulator's stats) and files left
behind in the staging folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_gemini_milvus.exceptions import GeminiAPIError
from airflow_provider_gemini_milvus.hooks.milvus import MilvusHook
from airflow_provider_gemini_milvus.operators.gemini import GeminiEmbedOperator
from airflow_provider_gemini_milvus.operators.milvus import MilvusInsertOperator
from airflow_provider_gemini_milvus.staging.storage import MARKER_FILE
from airflow_provider_gemini_milvus.testing.gemini_emulator import GeminiEmulator
from airflow_provider_gemini_milvus.testing.pytest_plugin import GeminiConnectionFactory

COLLECTION = "faults"
OPERATOR = {"task_id": "embed", "output_dimensionality": 128, "inline_max_rows": 0, "batch_size": 5}


def corpus(count: int, *, start: int = 0) -> list[dict[str, Any]]:
    return [{"id": f"d{n:03d}", "text": f"document {n} on topic {n % 5}"} for n in range(start, count)]


def embed(documents: Any, staging: Path, **kwargs: Any) -> dict[str, Any]:
    operator = GeminiEmbedOperator(documents=documents, staging_uri=f"file://{staging}", **OPERATOR, **kwargs)
    return operator.execute(context={})  # type: ignore[arg-type]


def load(manifest: dict[str, Any]) -> dict[str, Any]:
    operator = MilvusInsertOperator(task_id="load", collection_name=COLLECTION, data=manifest, mode="insert")
    return operator.execute(context={})  # type: ignore[arg-type]


def stored() -> dict[str, str]:
    with MilvusHook() as milvus:
        rows = milvus.get_conn().query(COLLECTION, filter="", output_fields=["id", "text"], limit=1000)
    return {row["id"]: row["text"] for row in rows}


def task_folder(staging: Path) -> Path:
    # The one task instance folder: dag/run/task/map_index, marked as the provider's.
    (folder,) = (path for path in staging.glob("*/*/*/*") if (path / MARKER_FILE).exists())
    return folder


KILL_MID_PART = textwrap.dedent(
    """
    import json, os, signal, sys
    import pyarrow.parquet as pq
    from airflow_provider_gemini_milvus.operators.gemini import GeminiEmbedOperator

    written = []
    real_write_table = pq.write_table

    def write_table(table, where, **kwargs):
        if len(written) == 2:  # the third part: half of it on disk, then the worker is killed
            with open(where, "wb") as handle:
                handle.write(b"PAR1 half a part")
            os.kill(os.getpid(), signal.SIGKILL)
        written.append(where)
        real_write_table(table, where, **kwargs)

    pq.write_table = write_table
    documents, staging, operator = json.loads(sys.argv[1])
    GeminiEmbedOperator(documents=documents, staging_uri=staging, part_rows=5, **operator).execute({})
    """
)


@pytest.mark.usefixtures("milvus_connection")
def test_a_worker_killed_mid_part_write_then_retried(
    tmp_path: Path, gemini_emulator: GeminiEmulator, gemini_connection_factory: GeminiConnectionFactory
) -> None:
    gemini_connection_factory(max_concurrency=1)
    documents = corpus(30)
    argument = json.dumps([documents, f"file://{tmp_path}", OPERATOR])
    killed = subprocess.run(
        [sys.executable, "-c", KILL_MID_PART, argument],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ.copy(),
    )
    assert killed.returncode == -9, killed.stderr[-2000:]
    folder = task_folder(tmp_path)
    left = sorted(path.name for path in folder.iterdir())
    assert len([name for name in left if name.startswith("part-")]) == 2
    assert any(name.startswith(".tmp-") for name in left), "the kill left half a part in a temporary file"
    first_try = gemini_emulator.stats.texts
    assert 15 <= first_try <= 30

    gemini_emulator.reset_stats()
    manifest = embed(documents, tmp_path, part_rows=5)

    assert gemini_emulator.stats.texts == 20, "the two whole parts (10 rows) are not paid for again"
    assert manifest["rows"] == 30
    assert load(manifest)["written"] == 30
    assert sorted(stored()) == [doc["id"] for doc in documents]
    left = sorted(path.name for path in folder.iterdir())
    assert left[0] == MARKER_FILE
    assert all(name.startswith("part-") for name in left[1:]), "no temporary file is left behind"
    assert len(left) == 1 + len(manifest["parts"])


@pytest.mark.usefixtures("milvus_connection")
def test_a_failure_between_staging_and_load_then_a_retry_with_a_changed_source(
    tmp_path: Path, gemini_emulator: GeminiEmulator, gemini_connection_factory: GeminiConnectionFactory
) -> None:
    gemini_connection_factory(max_concurrency=1, max_retries=0)
    documents = corpus(20)
    first = embed(documents, tmp_path, part_rows=5)
    assert first["rows"] == 20
    assert gemini_emulator.stats.texts == 20
    # The load task fails before it writes anything (Milvus down, the worker lost...), and the embedding
    # task is cleared and retried after the source changed: d000 gone, d001 edited, d020 added.
    changed = [dict(doc) for doc in documents[1:]] + corpus(21, start=20)
    changed[0]["text"] = "document 1, edited"
    gemini_emulator.reset_stats()

    second = embed(changed, tmp_path, part_rows=5)

    assert gemini_emulator.stats.texts == 2, "only the edited and the new document are sent"
    assert second["rows"] == 20
    assert load(second)["written"] == 20
    assert stored() == {doc["id"]: doc["text"] for doc in changed}
    folder = task_folder(tmp_path)
    parts = sorted(path.name for path in folder.glob("part-*.parquet"))
    assert parts == sorted(part["uri"].rsplit("/", 1)[-1] for part in second["parts"])
    assert sorted(path.name for path in folder.iterdir()) == sorted([MARKER_FILE, *parts])


@pytest.mark.usefixtures("milvus_connection")
def test_a_failed_try_with_a_vanished_document_then_a_retry(
    tmp_path: Path, gemini_emulator: GeminiEmulator, gemini_connection_factory: GeminiConnectionFactory
) -> None:
    gemini_connection_factory(max_concurrency=1, max_retries=0)
    gemini_emulator.refuse_texts("document 12 ")
    documents = corpus(20)
    with pytest.raises(GeminiAPIError):
        embed(documents, tmp_path, part_rows=5)
    assert gemini_emulator.stats.texts == 10

    gemini_emulator.clear_faults()
    gemini_emulator.reset_stats()
    current = documents[:3] + documents[4:]  # d003, staged by the failed try, is gone
    manifest = embed(current, tmp_path, part_rows=5)

    assert gemini_emulator.stats.texts == 10
    assert load(manifest)["written"] == 19
    assert sorted(stored()) == sorted(doc["id"] for doc in current), "d003 is not resurrected"
