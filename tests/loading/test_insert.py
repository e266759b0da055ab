"""The load engine on staged manifests, against real Milvus Lite files (the operator's face is tested in
tests/operators/test_milvus.py)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_gemini_milvus.hooks.milvus import MilvusHook
from airflow_provider_gemini_milvus.loading import insert
from airflow_provider_gemini_milvus.loading.insert import InsertArguments, load_manifest
from airflow_provider_gemini_milvus.milvus.rows import DEFAULT_MAX_BATCH_BYTES
from airflow_provider_gemini_milvus.staging import StagedManifest
from tests.loading.staged import DIM, stage

LOG = logging.getLogger(__name__)


def row(index: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"doc-{index}",
        "vector": [1.0, float(index), 0.5, -0.5],
        "text": f"text {index}",
        "content_hash": f"{index:064d}",
        "model": f"m/{DIM}/RETRIEVAL_DOCUMENT",
        **extra,
    }


def arguments(**changes: Any) -> InsertArguments:
    values: dict[str, Any] = {
        "collection_name": "docs",
        "mode": "upsert",
        "create_collection": True,
        "metric_type": "COSINE",
        "index_type": "AUTOINDEX",
        "batch_size": None,
        "partition_name": None,
        "max_batch_bytes": DEFAULT_MAX_BATCH_BYTES,
        "load_method": "batches",
        "bulk_import_min_rows": 100_000,
        "bulk_import_timeout": 60.0,
    }
    return InsertArguments(**(values | changes))


def load(manifest: StagedManifest, **changes: Any) -> dict[str, Any]:
    with MilvusHook() as hook:
        return dict(load_manifest(hook, manifest, arguments(**changes), LOG))


def stored(ids: list[str]) -> dict[str, dict[str, Any]]:
    with MilvusHook() as hook:
        rows = hook.get_conn().query(
            "docs",
            filter=f"id in {ids!r}".replace("'", '"'),
            output_fields=["id", "text", "metadata", "model", "content_hash"],
        )
    return {row["id"]: row for row in rows}


@pytest.mark.usefixtures("milvus_connection")
@pytest.mark.parametrize("mode", ["upsert", "insert"])
def test_a_lite_load_with_deletes_leaves_no_index_build_behind(
    tmp_path: Path, milvus_db_path: Path, mode: str
) -> None:
    # The deletes read the collection: they run before the last flush, which releases the collection, so
    # neither they nor closing the file build the index (the next load of the collection builds it).
    load(stage(tmp_path / "first", [[row(0), row(1)]]))
    with MilvusHook() as hook:
        hook.get_conn()  # opening the file loads the collection, which builds the first load's index
    built = sorted(milvus_db_path.rglob("*.idx"))
    assert len(built) == 1
    manifest = stage(tmp_path / "second", [[row(2), row(3)], [row(4)]], deletes=["doc-0", "never-stored"])

    summary = load(manifest, mode=mode)

    assert (summary["written"], summary["deleted"], summary["skipped"]) == (3, 1, 0)
    assert sorted(milvus_db_path.rglob("*.idx")) == built
    assert sorted(stored([f"doc-{index}" for index in range(5)])) == ["doc-1", "doc-2", "doc-3", "doc-4"]


@pytest.mark.usefixtures("milvus_connection")
def test_staged_metadata_is_stored_as_the_json_object_it_was_staged_as(tmp_path: Path) -> None:
    metadata = {"lang": "fr", "title": 'café ☕ "quoted"', "n": 2**62, "nested": {"a": [1, 2.5, None, True]}}
    load(stage(tmp_path, [[row(0, metadata=metadata), row(1)]]))
    rows = stored(["doc-0", "doc-1"])
    assert rows["doc-0"]["metadata"] == metadata
    assert rows["doc-1"]["metadata"] == {}
    assert rows["doc-0"]["content_hash"] == f"{0:064d}"


@pytest.mark.usefixtures("milvus_connection")
def test_a_staged_row_without_content_hash_gets_the_hash_of_its_content(tmp_path: Path) -> None:
    load(stage(tmp_path, [[row(0), row(1, content_hash=None, model=None, metadata={"k": "v"})]]))
    rows = stored(["doc-1"])
    from airflow_provider_gemini_milvus.milvus.rows import content_hash

    assert rows["doc-1"]["content_hash"] == content_hash("text 1", metadata={"k": "v"})
    assert rows["doc-1"]["model"] == ""


@pytest.mark.usefixtures("milvus_connection")
def test_metadata_with_an_integer_beyond_int64_is_refused_by_part_row_and_id(tmp_path: Path) -> None:
    manifest = stage(tmp_path, [[row(0)], [row(1), row(2, metadata={"n": 2**63})]])
    with pytest.raises(
        ValueError, match=r"staged parts\[1\] \(.*\): rows\[1\] \(id 'doc-2'\): metadata\['n'\]"
    ):
        load(manifest)
    with MilvusHook() as hook:
        assert not hook.has_collection("docs") or hook.count("docs") <= 1


@pytest.mark.usefixtures("milvus_connection")
def test_a_bad_row_in_a_later_chunk_of_a_part_is_named_by_its_row_in_the_part(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(insert, "STAGED_READ_ROWS", 2)
    manifest = stage(tmp_path, [[row(0), row(1), row(2), row(3, id="   "), row(4)]])
    with pytest.raises(
        ValueError, match=r"staged parts\[0\] \(.*\): rows\[3\] \(id '   '\): id must be a non-empty"
    ):
        load(manifest)


@pytest.mark.usefixtures("milvus_connection")
def test_batches_run_on_across_parts_up_to_the_limits(tmp_path: Path) -> None:
    manifest = stage(tmp_path, [[row(0), row(1)], [row(2)], [row(3), row(4), row(5)]])
    assert load(manifest)["batches"] == 1
    assert load(manifest, batch_size=4)["batches"] == 2
    assert load(manifest, mode="insert")["skipped"] == 6  # insert writes a part at a time: all stored
