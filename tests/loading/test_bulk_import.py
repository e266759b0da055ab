"""The import files written from staged parts, and the paths a server is given for them (no Milvus here)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from airflow_provider_gemini_milvus.loading.bulk_import import (
    IMPORT_FOLDER,
    remove_import_files,
    server_path,
    write_import_files,
)
from airflow_provider_gemini_milvus.milvus.rows import content_hash
from airflow_provider_gemini_milvus.staging import StagedPart
from tests.loading.staged import stage


def row(index: int, **extra: object) -> dict:
    return {"id": f"doc-{index}", "vector": [1.0, float(index), 0.5, -0.5], "text": f"text {index}", **extra}


def test_each_part_is_rewritten_beside_it_with_list_vectors_and_filled_defaults(tmp_path: Path) -> None:
    manifest = stage(
        tmp_path,
        [
            [row(0, metadata={"lang": "en"}, model="m", content_hash="h" * 64), row(1)],
            [row(2)],
        ],
    )

    files = write_import_files(manifest, id_max_length=512, text_max_length=100, rows_per_file=2)

    assert [rows for _, rows in files] == [2, 1]
    assert files[0][0].endswith(f"{tmp_path}/{IMPORT_FOLDER}/{Path(manifest.parts[0].uri).name}")
    table = pq.read_table(server_path(files[0][0]))
    assert table.schema.field("vector").type == pa.list_(pa.float32())
    assert table.column("vector").to_pylist() == [[1.0, 0.0, 0.5, -0.5], [1.0, 1.0, 0.5, -0.5]]
    assert table.column("metadata").to_pylist() == ['{"lang":"en"}', "{}"]
    assert table.column("model").to_pylist() == ["m", ""]
    assert table.column("content_hash").to_pylist() == ["h" * 64, content_hash("text 1")]
    assert table.column("id").to_pylist() == ["doc-0", "doc-1"]

    remove_import_files(files)
    remove_import_files(files)  # already gone: fine
    assert not list((tmp_path / IMPORT_FOLDER).iterdir())


def test_consecutive_parts_are_joined_up_to_rows_per_file(tmp_path: Path) -> None:
    manifest = stage(tmp_path, [[row(0), row(1)], [row(2)], [row(3), row(4)], [row(5)]])
    files = write_import_files(manifest, id_max_length=512, text_max_length=100, rows_per_file=3)
    assert [rows for _, rows in files] == [3, 3]
    assert [Path(uri).name for uri, _ in files] == [Path(manifest.parts[i].uri).name for i in (0, 2)]
    assert pq.read_table(server_path(files[1][0])).column("id").to_pylist() == ["doc-3", "doc-4", "doc-5"]


def test_a_row_the_collection_would_refuse_is_named_by_part_and_row(tmp_path: Path) -> None:
    manifest = stage(tmp_path, [[row(0)], [row(1), row(2, text="x" * 11)]])
    with pytest.raises(
        ValueError, match=r"staged parts\[1\] \(.*\): rows\[1\] \(id 'doc-2'\): text is 11 bytes"
    ):
        write_import_files(manifest, id_max_length=512, text_max_length=10)


def test_an_id_repeated_in_another_part_is_refused(tmp_path: Path) -> None:
    manifest = stage(tmp_path, [[row(0), row(1)], [row(2), row(1)]])
    with pytest.raises(
        ValueError, match=r"staged parts\[1\] .*rows\[1\] \(id 'doc-1'\) repeats staged parts\[0\] rows\[1\]"
    ):
        write_import_files(manifest, id_max_length=512, text_max_length=100)


def test_the_server_reads_local_files_by_absolute_path_and_objects_by_key(tmp_path: Path) -> None:
    part = StagedPart(uri=f"file://{tmp_path}/run/part-00000000-0123abcd.parquet", rows=1)
    assert server_path(part.uri) == f"{tmp_path}/run/part-00000000-0123abcd.parquet"
    assert server_path(str(tmp_path / "a.parquet")) == str(tmp_path / "a.parquet")


def test_an_object_is_given_by_its_key_in_the_bucket(s3_bucket: str) -> None:
    assert server_path(f"{s3_bucket}/staging/run/part-00000000-0123abcd.parquet") == (
        "staging/run/part-00000000-0123abcd.parquet"
    )
