"""
Bulk import on Milvus 2.3.5: the gRPC ``Import`` call (pymilvus ``utility.do_bulk_insert``) reads Parquet
files the server can reach (here its local storage: absolute paths on this machine). The REST
``bulk_import`` of Milvus 2.4 and later (``/v2/vectordb/jobs/import/create``, pymilvus'
``bulk_writer.bulk_import``) is not there.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pymilvus import connections, utility

from airflow_provider_gemini_milvus.hooks.milvus import MilvusHook
from airflow_provider_gemini_milvus.milvus.rows import prepare_rows
from airflow_provider_gemini_milvus.staging import PartWriter, StagedPart

DIM = 4
ROWS = 20
WAIT_SECONDS = 90


@pytest.fixture
def orm_alias(milvus_connection: str, milvus_server_uri: str) -> Iterator[str]:
    """A pymilvus ORM connection to the server (bulk insert has no MilvusClient method on 2.3)."""
    alias = f"bulk-{uuid.uuid4().hex[:8]}"
    connections.connect(alias=alias, uri=milvus_server_uri)
    yield alias
    connections.disconnect(alias)


def staged_part(folder: Path) -> StagedPart:
    rows, _ = prepare_rows(
        [
            {"id": f"doc-{i}", "vector": [1.0, float(i), 0.5, 0.5], "text": f"text {i}", "metadata": {"n": i}}
            for i in range(ROWS)
        ]
    )
    return PartWriter(folder, DIM).write(rows)


def with_list_vectors(part: StagedPart) -> str:
    """The part rewritten with ``list<float>`` vectors, the only vector layout 2.3's Parquet reader takes."""
    path = part.uri.removeprefix("file://")
    table = pq.read_table(path)
    vectors = table.column("vector").combine_chunks()
    offsets = pa.array(range(0, len(vectors) * DIM + 1, DIM), pa.int32())
    table = table.set_column(
        table.schema.get_field_index("vector"), "vector", pa.ListArray.from_arrays(offsets, vectors.flatten())
    )
    converted = path.replace(".parquet", "-list.parquet")
    pq.write_table(table, converted)
    return converted


def import_and_wait(alias: str, path: str) -> utility.BulkInsertState:
    task_id = utility.do_bulk_insert("docs", files=[path], using=alias)
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        state = utility.get_bulk_insert_state(task_id, using=alias)
        if state.state_name in ("Completed", "Failed") or time.monotonic() > deadline:
            return state
        time.sleep(0.5)


def test_a_staged_part_with_list_vectors_is_bulk_imported(orm_alias: str, tmp_path: Path) -> None:
    with MilvusHook() as hook:
        hook.ensure_collection("docs", DIM)
    state = import_and_wait(orm_alias, with_list_vectors(staged_part(tmp_path)))
    assert (state.state_name, state.row_count) == ("Completed", ROWS), state.failed_reason

    with MilvusHook() as hook:
        # Imported segments become searchable a few seconds after the task completes.
        deadline = time.monotonic() + WAIT_SECONDS
        while hook.count("docs") < ROWS and time.monotonic() < deadline:
            time.sleep(0.5)
        assert hook.count("docs") == ROWS
        stored = hook.get_conn().query(
            "docs", filter='id == "doc-7"', output_fields=["vector", "metadata", "content_hash"]
        )
    assert stored[0]["vector"] == [1.0, 7.0, 0.5, 0.5]
    assert stored[0]["metadata"] == {"n": 7}
    assert len(stored[0]["content_hash"]) == 64


def test_the_staged_fixed_size_list_vectors_are_refused_by_2_3(orm_alias: str, tmp_path: Path) -> None:
    with MilvusHook() as hook:
        hook.ensure_collection("docs", DIM)
    part = staged_part(tmp_path)
    state = import_and_wait(orm_alias, part.uri.removeprefix("file://"))
    assert state.state_name == "Failed"
    assert "fixed_size_list" in state.failed_reason


@pytest.mark.usefixtures("milvus_connection")
def test_the_rest_bulk_import_of_later_versions_is_absent(milvus_server_uri: str) -> None:
    request = urllib.request.Request(
        f"{milvus_server_uri}/v2/vectordb/jobs/import/create",
        data=b'{"collectionName": "docs", "files": []}',
        headers={"Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=10)
    assert raised.value.code == 404
