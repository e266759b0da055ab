"""
MilvusInsertOperator's bulk import route against a real Milvus server: staged parts imported by gRPC
``Import``, deletes applied after, and never a row lost or stored twice, also on a retry after a partial
import, with an earlier try's job still running, or when the server cannot read the files.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymilvus import connections, utility

from airflow_provider_gemini_milvus.exceptions import BulkImportFailed
from airflow_provider_gemini_milvus.hooks.milvus import MilvusHook
from airflow_provider_gemini_milvus.loading.bulk_import import (
    IMPORT_FOLDER,
    run_bulk_import,
    server_path,
    write_import_files,
)
from airflow_provider_gemini_milvus.milvus.layout import ID_MAX_LENGTH, TEXT_MAX_LENGTH
from airflow_provider_gemini_milvus.staging import PartWriter, StagedManifest, write_id_list
from tests.operators.test_milvus import DIM, manifest, rows, run, stage
from tests.operators.test_milvus_bulk_import import logged

pytestmark = pytest.mark.usefixtures("milvus_connection")


def stored_ids() -> list[str]:
    with MilvusHook() as hook:
        ids = hook.list_ids("docs")
        assert hook.count("docs") == len(ids)
    return ids


def staged_ids(count: int) -> list[str]:
    return sorted(f"doc-{i}" for i in range(count))


def import_files(data: dict, rows_per_file: int) -> list[tuple[str, int]]:
    return write_import_files(
        StagedManifest.from_xcom(data),
        id_max_length=ID_MAX_LENGTH,
        text_max_length=TEXT_MAX_LENGTH,
        rows_per_file=rows_per_file,
    )


@pytest.fixture
def orm_alias(milvus_server_uri: str) -> Iterator[str]:
    alias = f"bulk-test-{uuid.uuid4().hex[:8]}"
    connections.connect(alias=alias, uri=milvus_server_uri)
    yield alias
    connections.disconnect(alias)


def test_auto_imports_a_staged_load_into_a_new_collection(tmp_path: Path) -> None:
    summary = run(data=manifest(stage(tmp_path, [30, 25])), bulk_import_min_rows=50)

    assert summary["load_method"] == "bulk_import"
    assert (summary["written"], summary["batches"], summary["created"], summary["parts"]) == (55, 0, True, 2)
    assert stored_ids() == staged_ids(55)
    with MilvusHook() as hook:
        stored = hook.get_conn().query(
            "docs",
            filter='id == "doc-7"',
            output_fields=["vector", "text", "metadata", "content_hash", "model"],
        )
    assert stored[0]["vector"] == rows(8)[7]["vector"]
    assert (stored[0]["text"], stored[0]["metadata"], stored[0]["model"]) == ("text 7", {}, "")
    assert len(stored[0]["content_hash"]) == 64
    assert not any((tmp_path / IMPORT_FOLDER).iterdir())


def test_auto_writes_batches_below_the_threshold(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    summary = run(data=manifest(stage(tmp_path, [10])), bulk_import_min_rows=11)
    assert (summary["load_method"], summary["written"]) == ("batches", 10)
    assert "10 rows are below bulk_import_min_rows (11)" in logged(capsys)


def test_a_shard_is_imported_beside_other_ids_and_its_deletes_applied(tmp_path: Path) -> None:
    run(data=rows(3, prefix="old"))
    delete_uri = write_id_list(tmp_path, ["old-1", "never-stored"])

    summary = run(
        data=manifest(stage(tmp_path, [12]), delete_uri=delete_uri, deletes=2),
        load_method="bulk_import",
        partition_name="shard_1",
    )

    assert (summary["load_method"], summary["written"], summary["deleted"]) == ("bulk_import", 12, 1)
    assert stored_ids() == sorted(["old-0", "old-2", *staged_ids(12)])
    with MilvusHook() as hook:
        in_shard = hook.get_conn().query(
            "docs",
            filter="",
            output_fields=["count(*)"],
            partition_names=["shard_1"],
            consistency_level="Strong",
        )
    assert in_shard[0]["count(*)"] == 12


def test_a_retry_after_a_partial_import_ends_with_exactly_the_staged_rows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = manifest(stage(tmp_path, [10, 10, 10]))
    with MilvusHook() as hook:
        hook.ensure_collection("docs", DIM)
        run_bulk_import(
            hook, "docs", import_files(data, rows_per_file=10)[:1]
        )  # the first try imported one part, then died
    assert stored_ids() == staged_ids(10)

    summary = run(data=data, load_method="bulk_import")

    assert (summary["load_method"], summary["written"]) == ("batches", 30)
    assert "already holds 10+ of the staged ids, e.g. 'doc-0'" in logged(capsys)
    assert stored_ids() == staged_ids(30)


def test_a_retry_waits_for_the_import_job_an_earlier_try_left_running(
    tmp_path: Path, orm_alias: str, capsys: pytest.CaptureFixture[str]
) -> None:
    data = manifest(stage(tmp_path, [2000, 2000]))
    with MilvusHook() as hook:
        hook.ensure_collection("docs", DIM)
    (first, _), _ = import_files(data, rows_per_file=2000)
    utility.do_bulk_insert("docs", files=[server_path(first)], using=orm_alias)  # not waited for

    summary = run(data=data)

    assert "Waited for 1 import job(s) an earlier try left running in docs" in logged(capsys)
    assert (summary["load_method"], summary["written"]) == ("batches", 4000)
    assert stored_ids() == staged_ids(4000)


def test_files_the_server_cannot_read_fall_back_to_upserts_in_auto(
    s3_bucket: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Staged in a bucket, but this server stores its data on local disk: the import job cannot read them.
    writer = PartWriter(f"{s3_bucket}/staging/run", DIM)
    data = manifest([writer.write(rows(8)), writer.write(rows(8, start=8))])

    summary = run(data=data, bulk_import_min_rows=1)

    assert (summary["load_method"], summary["written"]) == ("batches", 16)
    assert "upserting every staged row instead" in logged(capsys)
    assert stored_ids() == staged_ids(16)


def test_files_the_server_cannot_read_fail_an_explicit_bulk_import(s3_bucket: str) -> None:
    writer = PartWriter(f"{s3_bucket}/staging/run", DIM)
    data = manifest([writer.write(rows(8))])

    with pytest.raises(BulkImportFailed, match="staging/run/bulk_import/part-00000000-"):
        run(data=data, load_method="bulk_import")
    assert stored_ids() == []
