"""MilvusInsertOperator against real Milvus Lite files: validation, idempotency, deletes, Assets, locks."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import Asset, AssetAlias

from airflow_provider_gemini_milvus.exceptions import MilvusCollectionMismatchError
from airflow_provider_gemini_milvus.hooks.milvus import MilvusHook
from airflow_provider_gemini_milvus.loading.insert import STAGED_READ_ROWS
from airflow_provider_gemini_milvus.milvus.rows import content_hash
from airflow_provider_gemini_milvus.observability.assets import COLLECTIONS_ALIAS
from airflow_provider_gemini_milvus.operators.milvus import MilvusInsertOperator, milvus_asset_uri
from airflow_provider_gemini_milvus.staging import (
    PartWriter,
    StagedManifest,
    StagedPart,
    staged_parts,
    write_id_list,
)

DIM = 4


def rows(count: int, *, prefix: str = "doc", dim: int = DIM, start: int = 0) -> list[dict[str, Any]]:
    return [
        {"id": f"{prefix}-{i}", "vector": [1.0, float(i)] + [0.25] * (dim - 2), "text": f"text {i}"}
        for i in range(start, start + count)
    ]


def run(**kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("task_id", "load")
    kwargs.setdefault("collection_name", "docs")
    return MilvusInsertOperator(**kwargs).execute({})


def count(collection: str = "docs") -> int | None:
    """Rows in the collection, or None if it does not exist."""
    with MilvusHook() as hook:
        return hook.count(collection) if hook.has_collection(collection) else None


def lite_file_is_unlocked(path: Path) -> bool:
    fd = os.open(path / "LOCK", os.O_CREAT | os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    finally:
        os.close(fd)


# --- construction (no I/O) ------------------------------------------------------------------------


def test_constructor_declares_the_collection_asset_without_io() -> None:
    op = MilvusInsertOperator(task_id="t", collection_name="docs", data=[], milvus_conn_id="no_such_conn")
    assert op.outlets == [AssetAlias(COLLECTIONS_ALIAS), Asset(uri="milvus://no_such_conn/docs")]
    assert op.outlets[1].uri == milvus_asset_uri("no_such_conn", "docs") == "milvus://no_such_conn/docs"


def test_templated_collection_name_has_only_the_run_time_alias() -> None:
    op = MilvusInsertOperator(task_id="t", collection_name="docs_{{ ds_nodash }}", data=[])
    assert op.outlets == [AssetAlias(COLLECTIONS_ALIAS)]


def test_explicit_outlets_replace_the_default() -> None:
    mine = Asset(uri="milvus://milvus_default/docs_v2")
    op = MilvusInsertOperator(task_id="t", collection_name="docs_{{ ds_nodash }}", data=[], outlets=[mine])
    assert op.outlets == [mine]
    assert MilvusInsertOperator(task_id="u", collection_name="docs", data=[], outlets=[]).outlets == []


def test_template_fields_and_defaults() -> None:
    assert {"collection_name", "data", "partition_name", "milvus_conn_id", "mode", "batch_size"} <= set(
        MilvusInsertOperator.template_fields
    )
    op = MilvusInsertOperator(task_id="t", collection_name="docs", data=[])
    assert op.milvus_conn_id == MilvusHook.default_conn_name
    assert op.mode == "upsert"
    assert op.hook.milvus_conn_id == MilvusHook.default_conn_name


def test_arguments_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        MilvusInsertOperator("docs", [], task_id="t")  # type: ignore[call-arg]


# --- writing --------------------------------------------------------------------------------------


@pytest.mark.usefixtures("milvus_connection")
def test_creates_the_collection_and_returns_a_json_safe_summary() -> None:
    summary = run(data=rows(7))
    assert summary == {
        "collection": "docs",
        "written": 7,
        "deleted": 0,
        "dim": DIM,
        "mode": "upsert",
        "skipped": 0,
        "batches": 1,
        "created": True,
        "parts": 0,
        "load_method": "batches",
    }
    assert json.loads(json.dumps(summary)) == summary
    assert count() == 7


@pytest.mark.usefixtures("milvus_connection")
def test_rerun_upserts_in_place_and_reuses_the_collection() -> None:
    run(data=rows(10))
    again = run(data=rows(10))
    assert again["created"] is False
    assert again["written"] == 10
    assert count() == 10


@pytest.mark.usefixtures("milvus_connection")
def test_rows_get_content_hash_and_model_defaults() -> None:
    given = {**rows(1)[0], "model": "m", "content_hash": "h"}
    run(data=[{"id": "a", "vector": [1, 0, 0, 0], "text": "héllo"}, given])
    with MilvusHook() as hook:
        fingerprints = hook.fetch_fingerprints("docs", ["a", "doc-0"])
    assert fingerprints == {"a": (content_hash("héllo"), ""), "doc-0": ("h", "m")}


@pytest.mark.usefixtures("milvus_connection")
def test_batch_size_and_payload_size_cap_batches() -> None:
    assert run(data=rows(11), batch_size=4)["batches"] == 3
    assert run(data=rows(11), batch_size="5")["batches"] == 3  # rendered from Jinja as a string
    assert run(data=rows(11), max_batch_bytes=300)["batches"] == 11
    assert count() == 11


@pytest.mark.usefixtures("milvus_connection")
def test_dict_form_deletes_after_writing() -> None:
    tricky = ["it's", 'say "hi"', "back\\slash"]
    run(data=rows(5) + [{"id": i, "vector": [0, 1, 0, 0], "text": i} for i in tricky])
    summary = run(
        data={
            "rows": rows(2, prefix="new"),
            "delete_ids": ["doc-0", "doc-1", *tricky, "never-existed"],
            "model": "ignored",
        }
    )
    assert (summary["written"], summary["deleted"]) == (2, 5)
    with MilvusHook() as hook:
        assert sorted(hook.list_ids("docs")) == ["doc-2", "doc-3", "doc-4", "new-0", "new-1"]


@pytest.mark.usefixtures("milvus_connection")
def test_empty_rows_are_a_no_op_that_still_deletes() -> None:
    assert run(data={"rows": [], "delete_ids": ["x"]})["deleted"] == 0
    assert count() is None  # no collection needed, none created
    assert run(data=[])["written"] == 0
    run(data=rows(3))
    summary = run(data={"rows": [], "delete_ids": ["doc-1"]})
    assert summary == {
        "collection": "docs",
        "written": 0,
        "deleted": 1,
        "dim": DIM,
        "mode": "upsert",
        "skipped": 0,
        "batches": 0,
        "created": False,
        "parts": 0,
        "load_method": "batches",
    }
    assert count() == 2


@pytest.mark.usefixtures("milvus_connection")
def test_insert_mode_loads_a_fresh_collection() -> None:
    assert run(data=rows(4), mode="insert")["written"] == 4
    assert run(data=rows(2, prefix="more"), mode="insert")["written"] == 2
    assert count() == 6


@pytest.mark.usefixtures("milvus_connection")
def test_insert_mode_refuses_ids_stored_with_other_content_and_writes_nothing() -> None:
    run(data=rows(3))
    batch = rows(2, prefix="fresh") + [{**rows(3)[2], "text": "edited"}]
    with pytest.raises(
        ValueError,
        match=r"rows\[2\] \(id 'doc-2'\): id already exists in collection 'docs' with another",
    ):
        run(data=batch, mode="insert")
    assert count() == 3


@pytest.mark.usefixtures("milvus_connection")
def test_insert_mode_retry_after_a_partial_load_completes_it() -> None:
    first_try = run(data=rows(4)[:2], mode="insert")  # what a try that failed after its first batch left
    assert first_try["written"] == 2

    retry = run(data=rows(4), mode="insert", batch_size=1)

    assert (retry["written"], retry["skipped"], retry["batches"]) == (2, 2, 2)
    assert count() == 4
    assert run(data=rows(4), mode="insert")["skipped"] == 4


@pytest.mark.usefixtures("milvus_connection")
def test_partition_is_created_with_the_collection() -> None:
    run(data=rows(3), partition_name="p2025")
    with MilvusHook() as hook:
        assert hook.has_partition("docs", "p2025")
    with pytest.raises(ValueError, match="partition 'other' does not exist"):
        run(data=rows(3), partition_name="other", create_collection=False)


@pytest.mark.usefixtures("milvus_connection")
def test_missing_collection_without_create_is_an_error() -> None:
    with pytest.raises(ValueError, match="collection 'docs' does not exist and create_collection is False"):
        run(data=rows(2), create_collection=False)
    assert count() is None


# --- errors before anything is written ------------------------------------------------------------

GOOD = rows(1)[0]

BAD_DATA = [
    pytest.param(42, "data must be a list of row dicts", id="not-a-list"),
    pytest.param("{{ ti.xcom_pull('embed') }}", "data is a string", id="string"),
    pytest.param({"vectors": []}, "needs 'rows' and/or 'delete_ids'", id="dict-without-rows"),
    pytest.param({"rows": "abc"}, r"data\['rows'\] must be a list", id="rows-not-a-list"),
    pytest.param(
        {"rows": [GOOD], "delete_ids": [1]}, r"delete_ids\[0\] must be a non-empty string", id="bad-delete"
    ),
    pytest.param([GOOD, "row"], r"rows\[1\] must be a dict", id="row-not-a-dict"),
    pytest.param([GOOD, {"vector": [1, 2, 3, 4], "text": ""}], r"rows\[1\] \(id None\): id must", id="no-id"),
    pytest.param([GOOD, {**GOOD, "id": 7}], r"rows\[1\] \(id 7\): id must be a non-empty", id="int-id"),
    pytest.param([GOOD, {**GOOD, "id": " "}], r"rows\[1\] \(id ' '\): id must be a non-empty", id="blank-id"),
    pytest.param([GOOD, {**GOOD, "id": "é" * 257}], "id is 514 bytes in UTF-8, longer than", id="long-id"),
    pytest.param([GOOD, GOOD], r"rows\[1\] \(id 'doc-0'\): duplicate id, also used by", id="dup-id"),
    pytest.param([GOOD, {"id": "b", "text": ""}], r"rows\[1\] \(id 'b'\): missing vector", id="no-vector"),
    pytest.param([GOOD, {**GOOD, "id": "b", "vector": "1,2"}], "vector must be a list", id="vector-str"),
    pytest.param(
        [GOOD, {**GOOD, "id": "b", "vector": [1, "x", 3, 4]}], "value 1 is not a number", id="nan-str"
    ),
    pytest.param(
        [GOOD, {**GOOD, "id": "b", "vector": [1, True, 3, 4]}], "value 1 is not a number", id="bool"
    ),
    pytest.param(
        [GOOD, {**GOOD, "id": "b", "vector": [1, 2, 3]}], r"3 values, rows\[0\] has dim", id="short"
    ),
    pytest.param([GOOD, {**GOOD, "id": "b", "vector": []}], "vector is empty", id="empty-vector"),
    pytest.param([GOOD, {**GOOD, "id": "b", "vector": [1, float("nan"), 3, 4]}], "value 1 is nan", id="nan"),
    pytest.param(
        [GOOD, {**GOOD, "id": "b", "vector": [1, 2, float("-inf"), 4]}], "value 2 is -inf", id="inf"
    ),
    pytest.param(
        [GOOD, {**GOOD, "id": "b", "text": None}], "text must be a string, got NoneType", id="no-text"
    ),
    pytest.param(
        [GOOD, {**GOOD, "id": "b", "text": "é" * 40000}],
        "text is 80000 bytes in UTF-8, longer than the text field's max_length 65535",
        id="text-bytes",
    ),
    pytest.param([GOOD, {**GOOD, "id": "b", "metadata": ["x"]}], "metadata must be a dict", id="meta-list"),
    pytest.param(
        [GOOD, {**GOOD, "id": "b", "metadata": {"s": {1}}}], "metadata is not JSON-serial", id="meta-set"
    ),
    pytest.param(
        [GOOD, {**GOOD, "id": "b", "metadata": {"x": float("nan")}}],
        "metadata is not JSON-serial",
        id="meta-nan",
    ),
    pytest.param(
        [GOOD, {**GOOD, "id": "b", "content_hash": 5}], "content_hash must be a string", id="hash-int"
    ),
    pytest.param([GOOD, {**GOOD, "id": "b", "model": "m" * 257}], "model is 257 bytes", id="model-long"),
    pytest.param(
        [GOOD, {**GOOD, "id": "b", "tags": {1, 2}}], "extra field 'tags' is not JSON", id="extra-set"
    ),
    pytest.param(
        {"rows": [GOOD], "delete_ids": ["doc-0"]},
        r"rows\[0\] \(id 'doc-0'\) is also in",
        id="overlap",
    ),
]


@pytest.mark.usefixtures("milvus_connection")
@pytest.mark.parametrize(("data", "message"), BAD_DATA)
def test_invalid_data_writes_nothing(data: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        run(data=data)
    assert count() is None


@pytest.mark.usefixtures("milvus_connection")
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param(
            {"mode": "merge"}, r"mode must be one of \['upsert', 'insert'\], got 'merge'", id="mode"
        ),
        pytest.param({"batch_size": 0}, "batch_size must be an integer >= 1, got 0", id="batch-size"),
        pytest.param(
            {"batch_size": "5.5"}, "batch_size must be an integer >= 1, got '5.5'", id="batch-size-str"
        ),
        pytest.param({"create_collection": "no"}, "create_collection must be true or false", id="create"),
        pytest.param({"create_collection": "False"}, "does not exist and create_collection is False", id="f"),
        pytest.param({"max_batch_bytes": "lots"}, "max_batch_bytes must be an integer >= 1", id="bytes"),
        pytest.param(
            {"index_type": "DISKANN"}, "Milvus Lite .* cannot build index_type 'DISKANN'", id="index"
        ),
        pytest.param({"metric_type": "JACCARD"}, "unknown metric_type 'JACCARD'", id="metric"),
        pytest.param({"max_batch_bytes": 50}, r"rows\[0\] \(id 'doc-0'\) is about \d+", id="row-too-big"),
        pytest.param({"full_text": "yes please"}, "full_text must be true or false", id="full-text"),
        pytest.param(
            {"full_text": "True", "full_text_analyzer": "standard"},
            "full_text_analyzer must be a mapping",
            id="analyzer",
        ),
    ],
)
def test_invalid_arguments_write_nothing(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        run(data=rows(2), **kwargs)
    assert count() is None


@pytest.mark.usefixtures("milvus_connection")
def test_bad_row_against_an_existing_collection_writes_nothing() -> None:
    run(data=rows(3))
    with pytest.raises(ValueError, match=r"rows\[1\] \(id 'x'\): vector has 5 values, rows\[0\] has dim 4"):
        run(data=[rows(1, prefix="new")[0], {"id": "x", "vector": [1, 2, 3, 4, 5], "text": ""}])
    assert count() == 3


@pytest.mark.usefixtures("milvus_connection")
def test_text_length_is_checked_in_bytes_against_the_existing_field() -> None:
    with MilvusHook() as hook:
        hook.ensure_collection("docs", DIM, text_max_length=4)
    run(data=[{"id": "ok", "vector": [1, 0, 0, 0], "text": "abcd"}])
    # 4 characters fit Milvus Lite's check, but they are 8 bytes: a Milvus server would refuse them.
    with pytest.raises(
        ValueError, match="text is 8 bytes in UTF-8, longer than the text field's max_length 4"
    ):
        run(data=[{"id": "é", "vector": [1, 0, 0, 0], "text": "éééé"}])
    assert count() == 1


@pytest.mark.usefixtures("milvus_connection")
def test_dim_mismatch_with_the_collection_names_both_dims() -> None:
    run(data=rows(2, dim=8))
    with pytest.raises(
        MilvusCollectionMismatchError, match="collection 'docs' has dim 8, the vectors have dim 4"
    ):
        run(data=rows(2, prefix="new"))
    with pytest.raises(
        MilvusCollectionMismatchError, match="indexed with metric COSINE, the task asks for IP"
    ):
        run(data=rows(2, prefix="new", dim=8), metric_type="IP")
    assert count() == 2


# --- Milvus Lite file lock ------------------------------------------------------------------------


def test_sequential_operators_and_another_process_share_the_lite_file(
    milvus_connection: str, milvus_db_path: Path
) -> None:
    run(task_id="first", data=rows(4), milvus_conn_id=milvus_connection)
    assert lite_file_is_unlocked(milvus_db_path)
    run(task_id="second", data=rows(3, prefix="later"), milvus_conn_id=milvus_connection)
    assert lite_file_is_unlocked(milvus_db_path)
    with pytest.raises(ValueError, match="duplicate id"):
        run(task_id="failing", data=[GOOD, GOOD])
    assert lite_file_is_unlocked(milvus_db_path)  # released on failure too

    script = textwrap.dedent(
        """
        import sys
        from pymilvus import MilvusClient
        client = MilvusClient(sys.argv[1])
        client.load_collection("docs")
        print(client.query("docs", filter="", output_fields=["count(*)"])[0]["count(*)"])
        client.close()
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(milvus_db_path)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "7"


# --- staged manifests -----------------------------------------------------------------------------


def stage(folder: Path, counts: list[int], *, dim: int = DIM, start: int = 0) -> list[StagedPart]:
    """Write parts of ``counts`` rows each (ids ``doc-{start}`` on), as the embedding operator stages them."""
    writer = PartWriter(folder, dim)
    parts = []
    for count in counts:
        parts.append(writer.write(rows(count, prefix="doc", dim=dim, start=start)))
        start += count
    return parts


def manifest(
    parts: list[StagedPart], *, dim: int = DIM, delete_uri: str | None = None, deletes: int = 0
) -> dict[str, Any]:
    return StagedManifest(
        folder=(parts[0].uri if parts else str(delete_uri)).rpartition("/")[0],
        parts=parts,
        rows=sum(part.rows for part in parts),
        dim=dim,
        model=f"gemini-embedding-001/{dim}/RETRIEVAL_DOCUMENT",
        task_type="RETRIEVAL_DOCUMENT",
        delete_ids_uri=delete_uri,
        delete_count=deletes,
    ).to_xcom()


@pytest.mark.usefixtures("milvus_connection")
def test_a_manifest_of_several_parts_is_loaded_and_its_deletes_applied(tmp_path: Path) -> None:
    run(data=rows(3, prefix="old"))
    parts = stage(tmp_path, [4, 1, 5])
    delete_uri = write_id_list(tmp_path, ["old-0", "old-2", "never-existed"])

    summary = run(data=manifest(parts, delete_uri=delete_uri, deletes=3), batch_size=3)

    assert summary == {
        "collection": "docs",
        "written": 10,
        "deleted": 2,
        "dim": DIM,
        "mode": "upsert",
        "skipped": 0,
        "batches": 4,  # 10 rows in batches of 3: a batch runs on across parts
        "created": False,
        "parts": 3,
        "load_method": "batches",
    }
    assert json.loads(json.dumps(summary)) == summary
    with MilvusHook() as hook:
        assert sorted(hook.list_ids("docs")) == sorted(["old-1"] + [f"doc-{i}" for i in range(10)])
        stored = hook.get_conn().query("docs", filter='id == "doc-7"', output_fields=["vector", "metadata"])
    assert stored[0]["vector"] == rows(8)[7]["vector"]
    assert stored[0]["metadata"] == {}


@pytest.mark.usefixtures("milvus_connection")
def test_a_manifest_creates_the_collection_with_its_dim(tmp_path: Path) -> None:
    summary = run(data=manifest(stage(tmp_path, [2, 2], dim=6), dim=6))
    assert (summary["created"], summary["dim"], summary["written"]) == (True, 6, 4)
    with MilvusHook() as hook:
        info = hook.describe("docs")
    assert info is not None
    assert info.dim == 6


@pytest.mark.usefixtures("milvus_connection")
def test_insert_mode_retry_of_a_manifest_skips_what_is_stored(tmp_path: Path) -> None:
    parts = stage(tmp_path, [3, 3])
    run(data=rows(4, prefix="doc"), mode="insert")  # an earlier try stored the first 4 rows
    retry = run(data=manifest(parts), mode="insert")
    assert (retry["written"], retry["skipped"], retry["parts"]) == (2, 4, 2)
    assert count() == 6


@pytest.mark.usefixtures("milvus_connection")
def test_a_manifest_with_only_deletes_applies_them(tmp_path: Path) -> None:
    run(data=rows(3))
    summary = run(data=manifest([], delete_uri=write_id_list(tmp_path, ["doc-1"]), deletes=1))
    assert (summary["written"], summary["deleted"], summary["parts"]) == (0, 1, 0)
    assert count() == 2


@pytest.mark.usefixtures("milvus_connection")
def test_a_manifest_of_another_dim_than_the_collection_writes_nothing(tmp_path: Path) -> None:
    run(data=rows(2))
    parts = stage(tmp_path, [3], dim=8, start=10)
    delete_uri = write_id_list(tmp_path, ["doc-0"])
    with pytest.raises(MilvusCollectionMismatchError, match="dim"):
        run(data=manifest(parts, dim=8, delete_uri=delete_uri, deletes=1))
    assert count() == 2


@pytest.mark.usefixtures("milvus_connection")
def test_a_manifest_that_disagrees_with_its_parts_writes_nothing(tmp_path: Path) -> None:
    parts = stage(tmp_path, [2, 3])
    with pytest.raises(
        ValueError, match=r"manifest parts\[0\] .* holds vectors of dim 4, the manifest says dim 5"
    ):
        run(data=manifest(parts, dim=5))
    overlapping = write_id_list(tmp_path, ["doc-3"])
    with pytest.raises(ValueError, match=r"staged parts\[1\] rows\[1\] \(id 'doc-3'\) is also in the ids to"):
        run(data=manifest(parts, delete_uri=overlapping, deletes=1))
    Path(parts[1].uri.removeprefix("file://")).unlink()
    with pytest.raises(ValueError, match=r"manifest parts\[1\] .* does not exist"):
        run(data=manifest(parts))
    with pytest.raises(ValueError, match=r"manifest\['format'\] is 'gemini-milvus-staged/9'"):
        run(data={**manifest(parts), "format": "gemini-milvus-staged/9"})
    assert count() is None


@pytest.mark.usefixtures("milvus_connection")
def test_a_bad_staged_row_is_named_by_part_and_row(tmp_path: Path) -> None:
    stage(tmp_path, [2])
    bad = rows(STAGED_READ_ROWS + 5, prefix="big")
    bad[STAGED_READ_ROWS + 3]["id"] = "x" * 600
    part = PartWriter(tmp_path, DIM).write(bad)
    parts = staged_parts(tmp_path)
    assert parts[-1] == part
    message = rf"staged parts\[1\] \({part.uri}\): rows\[{STAGED_READ_ROWS + 3}\] \(id 'xxx.*600 bytes"
    with pytest.raises(ValueError, match=message):
        run(data=manifest(parts))


# --- inside a DAG ---------------------------------------------------------------------------------


@pytest.mark.usefixtures("airflow_db", "milvus_connection")
def test_operator_runs_in_a_dag_with_rows_from_xcom() -> None:
    from airflow.sdk import DagRunState

    from tests.dags.dag_milvus_insert import COLLECTION, ROW_COUNT, milvus_insert

    run_result = milvus_insert().test()
    assert run_result.state == DagRunState.SUCCESS
    assert count(COLLECTION) == ROW_COUNT
    with MilvusHook() as hook:
        hits = hook.search(COLLECTION, [[1.0, 3.0, 0.5, -0.25]], limit=1)
    # Texts that came through XCom are not rendered by Jinja.
    assert hits[0][0]["text"] == "document 3 with {{ braces }} kept verbatim"


@pytest.mark.usefixtures("airflow_db", "milvus_connection")
def test_operator_loads_a_staged_manifest_from_xcom_in_a_dag(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from airflow.sdk import DagRunState

    from tests.dags.dag_milvus_staged import COLLECTION, PART_ROWS, milvus_staged

    monkeypatch.setenv("AIRFLOW__GEMINI_MILVUS__STAGING_URI", str(tmp_path / "staging"))
    run_result = milvus_staged().test()
    assert run_result.state == DagRunState.SUCCESS
    assert count(COLLECTION) == sum(PART_ROWS)
    parts = list((tmp_path / "staging" / "milvus_staged").glob("*/stage_rows/-1/part-*.parquet"))
    assert len(parts) == len(PART_ROWS)
    with MilvusHook() as hook:
        hits = hook.search(COLLECTION, [[1.0, 3.0, 0.5, -0.25]], limit=1)
    assert hits[0][0]["text"] == "document {{ 3 }}"  # staged texts are never rendered by Jinja


def test_staged_parts_are_grouped_by_rows_between_lite_flushes() -> None:
    from airflow_provider_gemini_milvus.loading.insert import _groups_of_rows
    from airflow_provider_gemini_milvus.staging import StagedPart

    parts = list(enumerate(StagedPart(uri=f"p{n}", rows=rows) for n, rows in enumerate([30, 30, 50, 10, 80])))
    groups = _groups_of_rows(parts, 60)
    assert [[index for index, _ in group] for group in groups] == [[0, 1], [2, 3], [4]]


# --- full-text search ------------------------------------------------------------------------------


@pytest.mark.usefixtures("milvus_connection")
@pytest.mark.parametrize("full_text", [True, "True", "true"])  # as given, and as a template renders it
def test_full_text_creates_a_collection_with_bm25(full_text: Any) -> None:
    result = run(data=rows(3), full_text=full_text, full_text_analyzer='{"type": "standard"}')
    assert result["created"] is True
    with MilvusHook() as hook:
        info = hook.describe("docs")
        assert info is not None
        assert info.full_text is True
        hits = hook.search("docs", texts=["text 2"], mode="full_text", limit=1)
    assert hits[0][0]["id"] == "doc-2"


@pytest.mark.usefixtures("milvus_connection")
def test_full_text_false_rendered_keeps_a_plain_collection() -> None:
    run(data=rows(2), full_text="False")
    with MilvusHook() as hook:
        info = hook.describe("docs")
    assert info is not None
    assert info.full_text is False


@pytest.mark.usefixtures("milvus_connection")
def test_full_text_on_an_existing_plain_collection_writes_nothing() -> None:
    run(data=rows(2))
    with pytest.raises(MilvusCollectionMismatchError, match="collection 'docs' has no full-text search"):
        run(data=rows(4), full_text=True)
    assert count() == 2


@pytest.mark.usefixtures("milvus_connection")
def test_plain_loads_and_deletes_keep_working_on_a_full_text_collection() -> None:
    run(data=rows(3), full_text=True)
    result = run(data={"rows": rows(1, start=5), "delete_ids": ["doc-0"]}, mode="insert")
    assert (result["written"], result["deleted"]) == (1, 1)
    with MilvusHook() as hook:
        assert [hit["id"] for hit in hook.search("docs", texts=["text 5"], mode="full_text", limit=1)[0]] == [
            "doc-5"
        ]
        assert hook.search("docs", texts=["0"], mode="full_text")[0] == []
