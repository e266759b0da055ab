"""Documents from a list, or from JSONL and Parquet files read in chunks, named by position and line."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from airflow.sdk import ObjectStoragePath

from airflow_provider_gemini_milvus.embedding.sources import open_document_source


def flat(source) -> list:  # type: ignore[no-untyped-def]
    return [document for chunk in source.chunks() for document in chunk]


def test_a_list_is_chunked_and_named_by_position() -> None:
    source = open_document_source(["a", "b", "c"], chunk_documents=2)
    assert [len(chunk) for chunk in source.chunks()] == [2, 1]
    assert [(d.index, d.item, d.where) for d in flat(source)][2] == (2, "c", "documents[2]")
    assert source.is_inline


def test_a_folder_of_jsonl_and_parquet_reads_in_path_order(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "a.jsonl").write_text('{"id": "1", "text": "one"}\n\n"two"\n', encoding="utf-8")
    pq.write_table(pa.table({"id": ["3", "4"], "text": ["three", "four"]}), tmp_path / "b" / "c.parquet")
    (tmp_path / "notes.txt").write_text("ignored", encoding="utf-8")

    source = open_document_source(f"file://{tmp_path}", chunk_documents=3)
    documents = flat(source)

    assert [d.item for d in documents] == [
        {"id": "1", "text": "one"},
        "two",
        {"id": "3", "text": "three"},
        {"id": "4", "text": "four"},
    ]
    assert [d.where for d in documents] == [
        "documents[0] (a.jsonl line 1)",
        "documents[1] (a.jsonl line 3)",
        "documents[2] (b/c.parquet row 0)",
        "documents[3] (b/c.parquet row 1)",
    ]
    assert not source.is_inline
    assert flat(open_document_source(str(tmp_path / "a.jsonl")))[1].item == "two"
    assert flat(open_document_source(ObjectStoragePath(f"file://{tmp_path}/b/c.parquet")))[0].index == 0


def test_source_problems_are_named(tmp_path: Path) -> None:
    (tmp_path / "bad.jsonl").write_text(json.dumps({"text": "ok"}) + "\n{oops\n", encoding="utf-8")
    with pytest.raises(ValueError, match="bad.jsonl line 2 is not JSON"):
        flat(open_document_source(str(tmp_path / "bad.jsonl")))
    with pytest.raises(ValueError, match="does not exist"):
        flat(open_document_source(str(tmp_path / "missing.jsonl")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no .jsonl"):
        flat(open_document_source(str(tmp_path / "empty")))
    with pytest.raises(ValueError, match="did not render to a list"):
        open_document_source("{{ ti.xcom_pull('x') }}")
    with pytest.raises(ValueError, match="got dict"):
        open_document_source({"text": "x"})


def test_bad_bytes_deep_nesting_and_non_parquet_files_are_named_by_file_and_line(tmp_path: Path) -> None:
    bad_utf8 = tmp_path / "bad.jsonl"
    bad_utf8.write_bytes(b'{"text": "fine"}\n{"text": "caf\xe9"}\n')
    with pytest.raises(ValueError, match=r"^bad.jsonl line 2 is not valid UTF-8 \(byte 14 of the line"):
        flat(open_document_source(str(bad_utf8)))

    deep = tmp_path / "deep.jsonl"
    deep.write_text('"fine"\n' + "[" * 100_000 + "]" * 100_000 + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"^deep.jsonl line 2 nests JSON arrays or objects too deeply"):
        flat(open_document_source(str(deep)))
    nested: object = "leaf"
    for _ in range(150):
        nested = {"a": nested}
    deep.write_text(json.dumps({"text": "t", "meta": nested}) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"^deep.jsonl line 1 nests arrays or objects more than 100 levels"):
        flat(open_document_source(str(deep)))

    folder = tmp_path / "parquet"
    folder.mkdir()
    (folder / "empty.parquet").write_bytes(b"")
    with pytest.raises(ValueError, match=r"^empty.parquet is not a Parquet file \(Parquet file size is 0"):
        flat(open_document_source(str(folder)))
    (folder / "empty.parquet").write_text('{"text": "I am JSON"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"^empty.parquet is not a Parquet file \(Parquet magic bytes"):
        flat(open_document_source(str(folder)))
    (folder / "empty.parquet").unlink()

    texts = pa.array([b"fine", b"caf\xe9"], pa.binary()).cast(pa.string(), safe=False)
    pq.write_table(pa.table({"id": ["1", "2"], "text": texts}), folder / "latin1.parquet")
    with pytest.raises(ValueError, match=r"^latin1.parquet row 1 column 'text' is not valid UTF-8"):
        flat(open_document_source(str(folder)))
