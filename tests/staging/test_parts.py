"""Parquet parts and id lists on local files: exact float32 round trips, atomic writes, streaming reads."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from airflow_provider_gemini_milvus.staging import (
    PartWriter,
    count_rows,
    describe_part,
    iter_id_list,
    iter_part_ids,
    iter_part_rows,
    row_schema,
    staged_fingerprints,
    staged_parts,
    write_id_list,
)
from airflow_provider_gemini_milvus.staging.parts import ROW_GROUP_ROWS, iter_part_columns
from airflow_provider_gemini_milvus.staging.storage import MARKER_FILE

DIM = 8


def make_rows(count: int, *, start: int = 0, dim: int = DIM, seed: int = 0) -> list[dict[str, Any]]:
    generator = np.random.default_rng(seed)
    vectors = generator.standard_normal((count, dim)).astype(np.float32)
    return [
        {
            "id": f"doc-{start + i}",
            "vector": vectors[i],
            "text": f"texte n° {start + i}",
            "content_hash": f"h{start + i}",
            "model": "gemini-embedding-001/8/RETRIEVAL_DOCUMENT",
            "metadata": {"page": start + i, "tags": ["a", "ß"]},
        }
        for i in range(count)
    ]


def test_rows_round_trip_with_float32_vectors_exact(tmp_path: Path) -> None:
    rows = make_rows(5)
    rows[1]["vector"] = rows[1]["vector"].tolist()  # lists are taken as well as arrays
    rows[2]["metadata"] = None
    rows[3]["content_hash"] = rows[3]["model"] = None
    part = PartWriter(tmp_path, DIM).write(rows)
    assert part.rows == 5
    assert pq.read_schema(Path(part.uri.removeprefix("file://"))) == row_schema(DIM)
    read = [row for chunk in iter_part_rows(part.uri) for row in chunk]
    assert [row["id"] for row in read] == [row["id"] for row in rows]
    for got, given in zip(read, rows, strict=True):
        expected = np.asarray(given["vector"], dtype=np.float32)
        assert np.array_equal(np.asarray(got["vector"], dtype=np.float32), expected)
        assert got["vector"].dtype == np.float32  # float32 rows, checked at once on load (milvus/rows.py)
        assert got["text"] == given["text"]
    assert read[0]["metadata"] == {"page": 0, "tags": ["a", "ß"]}
    assert read[2]["metadata"] == {}
    assert (read[3]["content_hash"], read[3]["model"]) == (None, None)


def test_parts_are_numbered_in_order_and_a_new_writer_continues_after_them(tmp_path: Path) -> None:
    first = PartWriter(tmp_path, DIM)
    a = first.write(make_rows(2))
    b = first.write(make_rows(3, start=2))
    c = PartWriter(tmp_path, DIM).write(make_rows(1, start=5))  # the retry of a task instance
    names = [Path(part.uri).name for part in (a, b, c)]
    assert [name[:13] for name in names] == ["part-00000000", "part-00000001", "part-00000002"]
    assert staged_parts(tmp_path) == [a, b, c]
    assert [part.rows for part in staged_parts(tmp_path)] == [2, 3, 1]


def test_parts_are_written_in_row_groups_and_read_in_chunks_of_the_asked_size(tmp_path: Path) -> None:
    part = PartWriter(tmp_path, 2).write(make_rows(ROW_GROUP_ROWS + 10, dim=2))
    assert pq.ParquetFile(part.uri.removeprefix("file://")).num_row_groups == 2
    assert [len(chunk) for chunk in iter_part_rows(part.uri, batch_rows=1000)] == [1000, 1000, 58]
    assert sum(len(ids) for ids in iter_part_ids(part.uri)) == ROW_GROUP_ROWS + 10
    assert describe_part(part.uri).rows == count_rows(part.uri) == ROW_GROUP_ROWS + 10
    assert describe_part(part.uri).dim == 2


def test_a_failed_write_leaves_nothing_a_retry_would_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = PartWriter(tmp_path, DIM)
    good = writer.write(make_rows(2))

    def crash(table: pa.Table, where: str, **kwargs: Any) -> None:
        Path(where).write_bytes(b"PAR1 half a part")
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", crash)
    with pytest.raises(OSError, match="disk full"):
        writer.write(make_rows(2, start=2))
    assert sorted(os.listdir(tmp_path)) == [MARKER_FILE, Path(good.uri).name]
    assert staged_parts(tmp_path) == [good]


def test_a_leftover_temporary_file_of_a_killed_writer_is_not_a_part(tmp_path: Path) -> None:
    good = PartWriter(tmp_path, DIM).write(make_rows(1))
    (tmp_path / ".tmp-0a1b2c3d-part-00000001-0a1b2c3d.parquet").write_bytes(b"PAR1 half")
    (tmp_path / "notes.txt").write_text("not a part")
    assert staged_parts(tmp_path) == [good]
    assert staged_fingerprints(tmp_path) == {"doc-0": ("h0", "gemini-embedding-001/8/RETRIEVAL_DOCUMENT")}


def test_staged_fingerprints_cover_every_part_and_a_later_part_wins(tmp_path: Path) -> None:
    writer = PartWriter(tmp_path, DIM)
    writer.write(make_rows(3))
    writer.write([{**make_rows(1, start=1)[0], "content_hash": "changed", "model": None}])
    assert staged_fingerprints(tmp_path) == {
        "doc-0": ("h0", "gemini-embedding-001/8/RETRIEVAL_DOCUMENT"),
        "doc-1": ("changed", ""),
        "doc-2": ("h2", "gemini-embedding-001/8/RETRIEVAL_DOCUMENT"),
    }
    assert staged_fingerprints(tmp_path / "never-written") == {}
    assert staged_parts(tmp_path / "never-written") == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"id": ""}, r"rows\[1\] \(id ''\): id must be a non-empty string"),
        ({"vector": [1.0, 2.0]}, r"rows\[1\] \(id 'doc-1'\): vector has shape \(2,\), the part's dim is 8"),
        ({"vector": "0.1 0.2"}, r"rows\[1\] \(id 'doc-1'\): vector must be a list of 8 numbers, got str"),
        ({"vector": [float("nan")] * DIM}, r"rows\[1\] \(id 'doc-1'\): vector holds a value that is not fin"),
        ({"vector": [1e39] * DIM}, r"rows\[1\] \(id 'doc-1'\): vector holds a value that is not fin"),
        ({"text": None}, r"rows\[1\] \(id 'doc-1'\): text must be a string, got NoneType"),
        ({"model": 3}, r"rows\[1\] \(id 'doc-1'\): model must be a string, got int"),
        ({"metadata": ["a"]}, r"rows\[1\] \(id 'doc-1'\): metadata must be a dict, got list"),
        ({"metadata": {"x": {1, 2}}}, r"rows\[1\] \(id 'doc-1'\): metadata is not JSON-serialisable"),
    ],
)
def test_a_bad_row_is_refused_by_index_and_nothing_is_written(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    rows = make_rows(3)
    rows[1] = {**rows[1], **change}
    with pytest.raises(ValueError, match=message):
        PartWriter(tmp_path, DIM).write(rows)
    assert staged_parts(tmp_path) == []


def test_writer_refuses_a_bad_dim_and_empty_parts(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="dim must be an integer from 1 to 32768, got 0"):
        PartWriter(tmp_path, 0)
    with pytest.raises(ValueError, match="a part needs at least one row"):
        PartWriter(tmp_path, DIM).write([])


def test_a_foreign_parquet_file_is_not_a_part(tmp_path: Path) -> None:
    path = tmp_path / "other.parquet"
    pq.write_table(pa.table({"id": ["a"], "vector": [[1.0, 2.0]]}), path)
    with pytest.raises(ValueError, match=r"not a staged part: it has no column\(s\) \['text'"):
        describe_part(str(path))


def test_id_lists_round_trip_in_chunks_from_a_generator(tmp_path: Path) -> None:
    uri = write_id_list(tmp_path, (f"id-{i}" for i in range(25_000)))
    assert Path(uri.removeprefix("file://")) == tmp_path / "delete_ids.parquet"
    assert count_rows(uri) == 25_000
    chunks = list(iter_id_list(uri))
    assert [len(chunk) for chunk in chunks] == [10_000, 10_000, 5_000]
    assert chunks[2][-1] == "id-24999"
    empty = write_id_list(tmp_path, [], name="nothing")
    assert count_rows(empty) == 0
    assert list(iter_id_list(empty)) == []
    assert staged_parts(tmp_path) == []  # id lists are not parts


def test_id_lists_refuse_bad_ids_and_names(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"ids\[10001\] must be a non-empty string, got None"):
        write_id_list(tmp_path, [f"id-{i}" for i in range(10_001)] + [None])  # type: ignore[list-item]
    assert os.listdir(tmp_path) == []
    for name in ("../x", "part-00000000-0a1b2c3d", ""):
        with pytest.raises(ValueError, match="id list name must be"):
            write_id_list(tmp_path, ["a"], name=name)


def test_an_empty_a_foreign_or_a_damaged_part_is_named_by_file_and_row(tmp_path: Path) -> None:
    part = tmp_path / "part-00000000-0a1b2c3d.parquet"
    part.write_bytes(b"")
    for read in (describe_part, count_rows, lambda uri: list(iter_part_rows(uri))):
        with pytest.raises(ValueError, match=rf"^{part}.* is not a Parquet file \(Parquet file size is 0"):
            read(str(part))
    part.write_text('{"id": "d0"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"is not a Parquet file \(Parquet magic bytes not found"):
        list(iter_part_ids(str(part)))

    rows = make_rows(3)
    table = PartWriter(tmp_path / "w", DIM)._table(rows)
    texts = pa.array([b"ok", b"ok", b"caf\xe9"], pa.binary()).cast(pa.string(), safe=False)
    pq.write_table(table.set_column(2, "text", texts), part)
    with pytest.raises(
        ValueError, match=r"part-00000000-0a1b2c3d.parquet rows\[2\] column 'text' is not valid UTF-8"
    ):
        list(iter_part_rows(str(part)))
    metadata = pa.array(["{}", "[" * 100_000, "{}"], pa.string())
    pq.write_table(table.set_column(5, "metadata", metadata), part)
    with pytest.raises(
        ValueError, match=r"rows\[1\] \(id 'doc-1'\): metadata nests arrays or objects too deeply"
    ):
        list(iter_part_rows(str(part)))
    pq.write_table(table.set_column(5, "metadata", pa.array(["{}", "{}", "{oops"], pa.string())), part)
    with pytest.raises(ValueError, match=r"rows\[2\] \(id 'doc-2'\): metadata is not JSON"):
        list(iter_part_rows(str(part)))


def test_iter_part_columns_gives_the_stored_columns_and_the_rows_iter_part_rows_gives(tmp_path: Path) -> None:
    rows = make_rows(5)
    rows[1]["metadata"] = {"lang": "fr", "n": 1}
    part = PartWriter(tmp_path, DIM).write(rows)

    chunks = list(iter_part_columns(part.uri, batch_rows=2))

    assert [(chunk.offset, len(chunk.ids)) for chunk in chunks] == [(0, 2), (2, 2), (4, 1)]
    first = chunks[0]
    assert first.ids == ["doc-0", "doc-1"]
    assert first.vectors.dtype == np.float32
    assert first.vectors.shape == (2, DIM)
    assert first.metadata[1] == '{"lang":"fr","n":1}'
    from_rows = [row for chunk in iter_part_rows(part.uri, batch_rows=2) for row in chunk]
    from_columns = [row for chunk in chunks for row in chunk.rows()]
    assert [{**row, "vector": row["vector"].tolist()} for row in from_columns] == [
        {**row, "vector": row["vector"].tolist()} for row in from_rows
    ]
    assert from_columns[1]["metadata"] == {"lang": "fr", "n": 1}
