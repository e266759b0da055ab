"""MilvusHook against real Milvus Lite files (its pure helpers are tested in tests/test_milvus_*.py)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_gemini_milvus.exceptions import GeminiMilvusProviderError, MilvusCollectionMismatchError
from airflow_provider_gemini_milvus.hooks import milvus as milvus_module
from airflow_provider_gemini_milvus.hooks.milvus import MilvusHook
from airflow_provider_gemini_milvus.milvus.rows import (
    content_hash,
    estimate_row_bytes,
    prepare_rows,
    split_batches,
)

DIM = 4
TRICKY_IDS = ["it's", 'say "hi"', "back\\slash", "both'\"\\", "café ☕", "line\nbreak", "tab\there"]


def make_rows(
    count: int, *, dim: int = DIM, prefix: str = "doc", text: str = "hello"
) -> list[dict[str, Any]]:
    return [
        {
            "id": f"{prefix}-{i}",
            "vector": [float(i + 1)] + [0.5] * (dim - 1),
            "text": f"{text} {i}",
            "metadata": {"n": i},
        }
        for i in range(count)
    ]


@pytest.fixture
def hook(milvus_connection: str) -> Iterator[MilvusHook]:
    milvus_hook = MilvusHook(milvus_conn_id=milvus_connection)
    yield milvus_hook
    milvus_hook.close()


def write(hook: MilvusHook, name: str, rows: list[dict[str, Any]], **kwargs: Any) -> Any:
    prepared, dim = prepare_rows(rows)
    assert dim is not None
    hook.ensure_collection(name, dim)
    mode = kwargs.pop("mode", "upsert")
    return hook.write_batches(name, split_batches(prepared, **kwargs), mode=mode)


# --- the connection ------------------------------------------------------------------------------


def test_hook_reads_the_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_MILVUS_PROD",
        json.dumps(
            {
                "conn_type": "milvus",
                "host": "http://milvus:19530",
                "login": "root",
                "password": "pw",
                "schema": "analytics",
                "extra": {"timeout": 12, "secure": False},
            }
        ),
    )
    hook = MilvusHook(milvus_conn_id="milvus_prod")
    assert hook.client_kwargs == {
        "uri": "http://milvus:19530",
        "token": "root:pw",
        "db_name": "analytics",
        "timeout": 12.0,
    }
    assert hook.uri == "http://milvus:19530"
    assert not hook.is_lite
    assert hook.timeout == 12.0


def test_a_missing_connection_fails_on_use_not_on_init() -> None:
    hook = MilvusHook(milvus_conn_id="does_not_exist")  # no such connection: only using it fails
    ok, message = hook.test_connection()
    assert not ok
    assert "does_not_exist" in message


# --- Milvus Lite ----------------------------------------------------------------------------------


def test_lite_parent_folder_is_created(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "nested" / "deeper" / "vectors.db"
    monkeypatch.setenv("AIRFLOW_CONN_LITE_NESTED", json.dumps({"conn_type": "milvus", "host": str(path)}))
    with MilvusHook(milvus_conn_id="lite_nested") as hook:
        assert hook.is_lite
        assert hook.uri == str(path)
        assert hook.test_connection() == (True, f"Connected to Milvus at {path}: 0 collection(s).")
    assert path.parent.is_dir()


def test_test_connection_reports_failure_without_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_MILVUS_DOWN",
        json.dumps(
            {
                "conn_type": "milvus",
                "host": "http://127.0.0.1:1",
                "password": "sup3r-secret",
                "extra": {"timeout": 1},
            }
        ),
    )
    ok, message = MilvusHook(milvus_conn_id="milvus_down").test_connection()
    assert not ok
    assert message.startswith("Could not list collections at http://127.0.0.1:1: Could not open Milvus at ")
    assert "Fail connecting to server" in message
    assert "sup3r-secret" not in message


def test_creating_a_lite_collection_logs_no_error(hook: MilvusHook, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)
    hook.ensure_collection("quiet", DIM)
    assert [record for record in caplog.records if record.levelno >= logging.ERROR] == []


def test_ensure_collection_creates_then_reuses(hook: MilvusHook) -> None:
    assert hook.describe("docs") is None
    assert hook.ensure_collection("docs", DIM, text_max_length=1000) is True
    assert hook.ensure_collection("docs", DIM) is False
    info = hook.describe("docs")
    assert info is not None
    assert info.to_dict() == {
        "name": "docs",
        "dim": DIM,
        "metric_type": "COSINE",
        "index_type": "AUTOINDEX",
        "id_max_length": 512,
        "text_max_length": 1000,
        "field_types": {
            "id": "VARCHAR",
            "vector": "FLOAT_VECTOR",
            "text": "VARCHAR",
            "content_hash": "VARCHAR",
            "model": "VARCHAR",
            "metadata": "JSON",
        },
        "full_text": False,
    }


def test_dim_mismatch_names_both_dims(hook: MilvusHook) -> None:
    hook.ensure_collection("docs", 768)
    with pytest.raises(
        MilvusCollectionMismatchError, match="collection 'docs' has dim 768, the vectors have dim 3072"
    ):
        hook.ensure_collection("docs", 3072)


def test_metric_mismatch_is_refused(hook: MilvusHook) -> None:
    hook.ensure_collection("docs", DIM, metric_type="L2")
    with pytest.raises(
        MilvusCollectionMismatchError, match="indexed with metric L2, the task asks for COSINE"
    ):
        hook.ensure_collection("docs", DIM, metric_type="cosine")


def test_collection_without_our_fields_is_refused(hook: MilvusHook) -> None:
    hook.get_conn().create_collection("foreign", dimension=DIM)
    with pytest.raises(MilvusCollectionMismatchError, match="collection 'foreign' field 'id' is INT64"):
        hook.ensure_collection("foreign", DIM)


@pytest.mark.parametrize("index_type", ["DISKANN", "IVF_PQ", "SCANN", "GPU_CAGRA"])
def test_lite_refuses_index_types_it_cannot_load(hook: MilvusHook, index_type: str) -> None:
    with pytest.raises(ValueError, match=f"Milvus Lite .* cannot build index_type '{index_type}'"):
        hook.ensure_collection("docs", DIM, index_type=index_type)
    assert not hook.has_collection("docs")


def test_unknown_metric_and_bad_dim_are_refused(hook: MilvusHook) -> None:
    with pytest.raises(ValueError, match="unknown metric_type 'HAMMING'"):
        hook.ensure_collection("docs", DIM, metric_type="HAMMING")
    with pytest.raises(ValueError, match="dim must be an integer"):
        hook.ensure_collection("docs", 0)


def test_hnsw_with_params_is_built_on_lite(hook: MilvusHook) -> None:
    hook.ensure_collection("docs", DIM, index_type="hnsw", index_params={"M": 8, "efConstruction": 64})
    info = hook.describe("docs")
    assert info is not None
    assert info.index_type == "HNSW"


def test_write_batches_upsert_is_idempotent_and_flushes_once(hook: MilvusHook) -> None:
    first = write(hook, "docs", make_rows(25))
    assert first.to_dict() | {"seconds": 0} == {
        "collection": "docs",
        "mode": "upsert",
        "written": 25,
        "batches": 1,
        "seconds": 0,
        "skipped": 0,
    }
    write(hook, "docs", make_rows(25))
    assert hook.count("docs") == 25


def index_files(db: Path) -> list[str]:
    """The vector index files Milvus Lite has written into a ``.db`` folder."""
    return sorted(path.name for path in db.rglob("*.idx"))


def test_a_lite_write_leaves_no_index_build_for_close_to_wait_on(
    hook: MilvusHook, milvus_db_path: Path
) -> None:
    # Lite builds the index of what a flush sealed in a background thread when the collection is loaded,
    # and closing the file waits for that thread: the flush releases the collection first, so the index is
    # built by the next load (every reopening of a Lite file loads its collections) instead of at close.
    write(hook, "docs", make_rows(25))
    hook.close()
    assert index_files(milvus_db_path) == []

    with MilvusHook() as reopened:
        hits = reopened.search("docs", [make_rows(25)[3]["vector"]], limit=1)
        assert hits[0][0]["id"] == "doc-3"
        assert reopened.get_conn().query("docs", filter='id == "doc-7"', output_fields=["text"])[0][
            "text"
        ] == ("hello 7")
    assert len(index_files(milvus_db_path)) == 1


def test_a_lite_write_is_searchable_with_the_same_hook(hook: MilvusHook) -> None:
    write(hook, "docs", make_rows(25))  # the flush released the collection: the hook loads it again
    assert hook.search("docs", [make_rows(25)[3]["vector"]], limit=1)[0][0]["id"] == "doc-3"
    assert hook.count("docs") == 25


def test_write_batches_without_flush_leaves_the_rows_to_flush(hook: MilvusHook) -> None:
    prepared, _ = prepare_rows(make_rows(5))
    hook.ensure_collection("docs", DIM)
    result = hook.write_batches("docs", [prepared], flush=False)
    assert (result.written, result.batches) == (5, 1)
    assert hook.count("docs") == 5  # Strong reads see unflushed rows
    hook.flush("docs")
    assert hook.count("docs") == 5


def test_write_batches_splits_by_payload_size(hook: MilvusHook) -> None:
    rows, _ = prepare_rows(make_rows(30, dim=DIM))
    limit = estimate_row_bytes(rows[0]) * 4
    hook.ensure_collection("docs", DIM)
    result = hook.write_batches("docs", split_batches(rows, max_batch_bytes=limit))
    assert result.batches == len(split_batches(rows, max_batch_bytes=limit)) >= 8
    assert hook.count("docs") == 30


def test_write_batches_rejects_an_unknown_mode(hook: MilvusHook) -> None:
    with pytest.raises(ValueError, match="unknown mode 'merge'"):
        hook.write_batches("docs", [], mode="merge")


def test_fingerprints_and_deletes_handle_quotes_and_backslashes(hook: MilvusHook) -> None:
    rows = [
        {"id": row_id, "vector": [1.0, 0.0, 0.0, 0.0], "text": row_id, "model": "m1"} for row_id in TRICKY_IDS
    ]
    write(hook, "docs", rows)
    fingerprints = hook.fetch_fingerprints("docs", [*TRICKY_IDS, "missing", 'missing"too'])
    assert fingerprints == {row_id: (content_hash(row_id), "m1") for row_id in TRICKY_IDS}
    assert hook.delete_ids("docs", ["it's", "both'\"\\", "never-there"]) == 2
    assert hook.count("docs") == len(TRICKY_IDS) - 2
    assert sorted(hook.list_ids("docs")) == sorted(set(TRICKY_IDS) - {"it's", "both'\"\\"})


def test_fingerprints_of_a_missing_collection_are_empty(hook: MilvusHook) -> None:
    assert hook.fetch_fingerprints("nope", ["a"]) == {}
    assert hook.list_ids("nope") == []
    assert hook.delete_ids("nope", ["a"]) == 0


def test_list_ids_pages_past_ids_with_quotes(hook: MilvusHook, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(milvus_module, "LIST_IDS_PAGE", 2)
    rows = [{"id": row_id, "vector": [1.0, 2.0, 3.0, 4.0], "text": ""} for row_id in TRICKY_IDS]
    write(hook, "docs", rows + make_rows(5))
    listed = hook.list_ids("docs")
    assert len(listed) == len(TRICKY_IDS) + 5
    assert set(listed) == set(TRICKY_IDS) | {f"doc-{i}" for i in range(5)}


def test_fingerprints_of_most_of_the_collection_come_from_one_scan(
    hook: MilvusHook, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(milvus_module, "ID_QUERY_BATCH", 3)
    monkeypatch.setattr(milvus_module, "LIST_IDS_PAGE", 4)
    rows = [{"id": row_id, "vector": [1.0, 2.0, 3.0, 4.0], "text": row_id} for row_id in TRICKY_IDS]
    write(hook, "docs", rows + make_rows(10))
    asked = [*TRICKY_IDS, *(f"doc-{i}" for i in range(8)), "missing"]
    queries: list[str] = []
    client = hook.get_conn()
    original_query = client.query

    def counting_query(collection: str, **kwargs: Any) -> Any:
        queries.append(kwargs.get("filter", ""))
        return original_query(collection, **kwargs)

    monkeypatch.setattr(client, "query", counting_query)
    fingerprints = hook.fetch_fingerprints("docs", asked)

    assert fingerprints.keys() == set(asked) - {"missing"}
    assert not any(" in [" in expression for expression in queries), "a scan, not id-in lookups"
    assert fingerprints["doc-1"] == hook.fetch_fingerprints("docs", ["doc-1"])["doc-1"]
    assert any(" in [" in expression for expression in queries), "a few ids: an id-in lookup"
    assert dict(hook.iter_fingerprints("docs")).keys() == set(TRICKY_IDS) | {f"doc-{i}" for i in range(10)}


def test_delete_ids_in_batches(hook: MilvusHook, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(milvus_module, "ID_QUERY_BATCH", 3)
    write(hook, "docs", make_rows(10))
    assert hook.fetch_fingerprints("docs", [f"doc-{i}" for i in range(10)]).keys() == {
        f"doc-{i}" for i in range(10)
    }
    assert hook.delete_ids("docs", [f"doc-{i}" for i in range(8)]) == 8
    assert hook.list_ids("docs") == ["doc-8", "doc-9"]


def test_search_returns_json_safe_hits(hook: MilvusHook) -> None:
    write(hook, "docs", make_rows(5))
    hits = hook.search("docs", [[5.0, 0.5, 0.5, 0.5]], limit=2)
    assert json.loads(json.dumps(hits)) == hits
    assert len(hits) == 1
    assert [sorted(hit) for hit in hits[0]] == [["distance", "id", "metadata", "text"]] * 2
    assert hits[0][0]["id"] == "doc-4"
    assert hits[0][0]["metadata"] == {"n": 4}


def test_close_releases_lite_and_a_new_hook_reopens_the_file(
    hook: MilvusHook, milvus_connection: str
) -> None:
    write(hook, "docs", make_rows(3))
    hook.close()
    hook.close()  # closing twice is harmless
    with MilvusHook(milvus_conn_id=milvus_connection) as again:
        # Milvus Lite forgets the load state when it restarts; the hook loads the collection again.
        assert again.count("docs") == 3
        assert again.fetch_fingerprints("docs", ["doc-1"])["doc-1"][1] == ""


# --- test_connection and connection errors -----------------------------------------------------------


def test_test_connection_leaves_a_client_it_did_not_open(hook: MilvusHook) -> None:
    client = hook.get_conn()
    assert hook.test_connection()[0]
    assert hook.get_conn() is client
    assert client.list_collections() == []  # still open


def test_the_password_milvus_does_not_mangle_the_word_milvus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_MILVUS_DOWN",
        json.dumps(
            {
                "conn_type": "milvus",
                "host": "http://127.0.0.1:1",
                "login": "root",
                "password": "Milvus",
                "extra": {"timeout": 1},
            }
        ),
    )
    ok, message = MilvusHook(milvus_conn_id="milvus_down").test_connection()
    assert not ok
    assert "Could not open Milvus at http://127.0.0.1:1 (connection 'milvus_down')" in message
    assert "***" not in message
    assert "root:Milvus" not in message


def test_a_connection_error_carries_no_cause_that_could_hold_the_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_MILVUS_DOWN",
        json.dumps(
            {
                "conn_type": "milvus",
                "host": "http://127.0.0.1:1",
                "password": "sup3r-secret",
                "extra": {"timeout": 1},
            }
        ),
    )
    with pytest.raises(GeminiMilvusProviderError) as raised:
        MilvusHook(milvus_conn_id="milvus_down").get_conn()
    assert raised.value.__cause__ is None
    assert raised.value.__suppress_context__
    assert "sup3r-secret" not in "".join(traceback.format_exception(raised.value))


# --- what a server refuses, refused on Lite too ------------------------------------------------------


@pytest.mark.parametrize("name", ["bad-name!", "a b", "1abc"])
def test_names_a_server_refuses_are_refused_on_lite_too(hook: MilvusHook, name: str) -> None:
    with pytest.raises(ValueError, match=f"collection name '{name}' is not valid in Milvus"):
        hook.ensure_collection(name, DIM)
    with pytest.raises(ValueError, match="is not valid in Milvus"):
        hook.write_batches(name, [])
    with pytest.raises(ValueError, match="is not valid in Milvus"):
        hook.fetch_fingerprints(name, ["a"])  # what the incremental embed operator asks before embedding
    assert hook.get_conn().list_collections() == []


# --- Milvus Lite forgets load states on reopening a file ----------------------------------------------


def test_the_raw_client_of_a_new_hook_searches_what_an_earlier_hook_wrote(milvus_connection: str) -> None:
    with MilvusHook(milvus_conn_id=milvus_connection) as writer:
        write(writer, "docs", make_rows(5))
    with MilvusHook(milvus_conn_id=milvus_connection) as reader:
        client = reader.get_conn()
        hits = client.search("docs", data=[[5.0, 0.5, 0.5, 0.5]], limit=1, anns_field="vector")
        assert hits[0][0]["id"] == "doc-4"
        assert len(client.query("docs", filter='id != ""', output_fields=["id"])) == 5


WRITE_IN_ANOTHER_PROCESS = """
import sys
from airflow_provider_gemini_milvus.hooks.milvus import MilvusHook
from airflow_provider_gemini_milvus.milvus.rows import prepare_rows, split_batches

given = [{"id": f"doc-{i}", "vector": [i + 1.0, 0.5, 0.5, 0.5], "text": "t"} for i in range(5)]
rows, dim = prepare_rows(given)
with MilvusHook() as hook:
    hook.ensure_collection("docs", dim)
    result = hook.write_batches("docs", split_batches(rows), mode="insert")
print(result.written)
"""


def test_a_task_in_another_process_writes_and_the_next_task_queries_with_the_raw_client(
    milvus_connection: str,
) -> None:
    # The other process is the MilvusInsertOperator task; this one is a task using MilvusHook().get_conn().
    written = subprocess.run(
        [sys.executable, "-c", WRITE_IN_ANOTHER_PROCESS], check=True, capture_output=True, text=True
    )
    assert written.stdout.strip().splitlines()[-1] == "5"
    with MilvusHook(milvus_conn_id=milvus_connection) as hook:
        rows = hook.get_conn().query("docs", filter='id in ["doc-1", "doc-3"]', output_fields=["id"])
        assert sorted(row["id"] for row in rows) == ["doc-1", "doc-3"]
        assert (
            hook.search("docs", [[1.0, 0.5, 0.5, 0.5]], limit=1, filter='id != "doc-0"')[0][0]["id"]
            != "doc-0"
        )


# --- mode="insert" retries ------------------------------------------------------------------------------


def test_an_insert_retry_after_a_failure_midway_completes_the_load(hook: MilvusHook) -> None:
    rows, dim = prepare_rows(make_rows(7))
    assert dim is not None
    batches = split_batches(rows, max_batch_rows=3)
    hook.ensure_collection("docs", dim)
    hook.write_batches("docs", batches[:1], mode="insert")  # the first attempt wrote one batch, then failed
    retry = hook.write_batches("docs", batches, mode="insert")
    assert (retry.written, retry.skipped, retry.batches) == (4, 3, 2)
    assert hook.count("docs") == 7


def test_an_insert_refuses_ids_stored_with_other_content_before_writing(hook: MilvusHook) -> None:
    write(hook, "docs", make_rows(3), mode="insert")
    changed = make_rows(5)
    changed[1]["text"] = "edited"
    rows, _ = prepare_rows(changed)
    with pytest.raises(
        ValueError, match=r"rows\[1\] \(id 'doc-1'\): id already exists in collection 'docs' with another"
    ):
        hook.write_batches("docs", split_batches(rows), mode="insert")
    assert hook.count("docs") == 3  # nothing of the refused call was written


@pytest.mark.usefixtures("lite_served_over_grpc")
def test_closing_one_hook_leaves_another_hook_on_the_same_server_working() -> None:
    """pymilvus 2.6 shares one connection per URI and user in a process; each hook must own its own."""
    with MilvusHook() as first:
        first.ensure_collection("shared_server", dim=4)
        second = MilvusHook()
        try:
            assert second.count("shared_server") == 0
            first.close()
            assert second.count("shared_server") == 0
        finally:
            second.close()
