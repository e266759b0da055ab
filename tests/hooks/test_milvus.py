"""MilvusHook against real Milvus Lite files, plus its pure helpers (batching, quoting, client kwargs)."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_gemini_milvus.exceptions import GeminiMilvusProviderError, MilvusCollectionMismatchError
from airflow_provider_gemini_milvus.hooks import milvus as milvus_module
from airflow_provider_gemini_milvus.hooks.milvus import MilvusHook
from airflow_provider_gemini_milvus.milvus_rows import (
    estimate_row_bytes,
    ids_in_filter,
    milvus_string_literal,
    prepare_rows,
    split_batches,
)
from airflow_provider_gemini_milvus.milvus_uri import build_client_kwargs

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


# --- pure helpers ---------------------------------------------------------------------------------


def test_string_literal_escapes_quotes_backslashes_and_line_breaks() -> None:
    assert milvus_string_literal('a"b') == '"a\\"b"'
    assert milvus_string_literal("a\\b") == '"a\\\\b"'
    assert milvus_string_literal("it's") == '"it\'s"'
    assert milvus_string_literal("x\ny") == '"x\\ny"'
    assert milvus_string_literal("café") == '"café"'  # no \\u escapes: Milvus Lite rejects them
    assert ids_in_filter(["a", 'b"']) == 'id in ["a", "b\\""]'


def test_split_batches_never_exceeds_the_byte_limit() -> None:
    rows, _ = prepare_rows(make_rows(50, dim=64))
    row_bytes = estimate_row_bytes(rows[0])
    limit = row_bytes * 7 + row_bytes // 2  # room for 7 rows, not 8
    batches = split_batches(rows, max_batch_bytes=limit)
    assert len(batches) == math.ceil(50 / 7)
    assert all(sum(estimate_row_bytes(row) for row in batch) <= limit for batch in batches)
    assert [row["id"] for batch in batches for row in batch] == [row["id"] for row in rows]


def test_split_batches_respects_the_row_cap_and_empty_input() -> None:
    rows, _ = prepare_rows(make_rows(10))
    assert [len(batch) for batch in split_batches(rows, max_batch_rows=4)] == [4, 4, 2]
    assert split_batches([], max_batch_rows=4) == []


def test_split_batches_refuses_a_row_larger_than_the_limit() -> None:
    rows, _ = prepare_rows(make_rows(1, dim=256))
    with pytest.raises(
        ValueError, match=r"row 0 \(id 'doc-0'\) is about \d+ bytes, more than max_batch_bytes=100"
    ):
        split_batches(rows, max_batch_bytes=100)


def test_estimate_counts_vector_bytes_and_utf8_text() -> None:
    small = prepare_rows([{"id": "a", "vector": [0.0] * 8, "text": "é"}])[0][0]
    large = prepare_rows([{"id": "a", "vector": [0.0] * 16, "text": "éé"}])[0][0]
    assert estimate_row_bytes(large) - estimate_row_bytes(small) == 8 * 4 + 2


def test_prepare_rows_fills_hash_model_and_metadata() -> None:
    rows, dim = prepare_rows([{"id": "a", "vector": (1, 2, 3), "text": "héllo", "source": "wiki"}])
    assert dim == 3
    assert rows == [
        {
            "id": "a",
            "vector": [1.0, 2.0, 3.0],
            "text": "héllo",
            "content_hash": hashlib.sha256("héllo".encode()).hexdigest(),
            "model": "",
            "metadata": {},
            "source": "wiki",
        }
    ]


# --- connection kwargs (no connection made) -------------------------------------------------------


def test_kwargs_for_a_lite_path_are_absolute_and_dedicated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    kwargs = build_client_kwargs(host="data/milvus.db", extra={"timeout": "7"})
    assert kwargs == {"uri": str(tmp_path / "data" / "milvus.db"), "dedicated": True, "timeout": 7.0}


def test_kwargs_default_to_a_lite_file_in_airflow_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    assert build_client_kwargs(host=None)["uri"] == str(tmp_path / "milvus_lite" / "milvus.db")
    assert build_client_kwargs(host="  ")["uri"] == str(tmp_path / "milvus_lite" / "milvus.db")


def test_kwargs_for_a_server_with_token_and_database() -> None:
    kwargs = build_client_kwargs(
        host="https://in01.zillizcloud.com:19538", password="api-key", schema="prod", extra={"timeout": 30}
    )
    assert kwargs == {
        "uri": "https://in01.zillizcloud.com:19538",
        "token": "api-key",
        "db_name": "prod",
        "timeout": 30.0,
    }


def test_kwargs_join_user_and_password_into_the_token() -> None:
    kwargs = build_client_kwargs(host="http://milvus:19530", login="root", password="Milvus")
    assert kwargs == {"uri": "http://milvus:19530", "token": "root:Milvus"}


def test_kwargs_move_credentials_out_of_the_uri() -> None:
    kwargs = build_client_kwargs(host="https://alice:s3cret@milvus.example.com/db1")
    assert kwargs["uri"] == "https://milvus.example.com/db1"
    assert kwargs["token"] == "alice:s3cret"
    # An explicit password wins over credentials in the URI.
    assert build_client_kwargs(host="http://u:p@h:1", password="tok")["token"] == "tok"


def test_kwargs_for_a_bare_host_use_port_and_secure() -> None:
    assert build_client_kwargs(host="milvus", port=19531) == {"uri": "http://milvus:19531"}
    assert build_client_kwargs(host="milvus", extra={"secure": "true"}) == {
        "uri": "https://milvus",
        "secure": True,
    }


def test_kwargs_refuse_a_user_without_password_and_a_bad_timeout() -> None:
    with pytest.raises(ValueError, match="User is set but Password is empty"):
        build_client_kwargs(host="http://milvus:19530", login="root")
    with pytest.raises(ValueError, match="extra 'timeout' must be a positive number, got 'soon'"):
        build_client_kwargs(host="http://milvus:19530", extra={"timeout": "soon"})
    with pytest.raises(ValueError, match="extra 'secure' must be true or false, got 'treu'"):
        build_client_kwargs(host="milvus", extra={"secure": "treu"})


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


def test_hook_init_does_no_io() -> None:
    hook = MilvusHook(milvus_conn_id="does_not_exist")
    assert hook.milvus_conn_id == "does_not_exist"
    assert MilvusHook.default_conn_name == "milvus_default"
    assert MilvusHook.conn_type == "milvus"


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
    }
    write(hook, "docs", make_rows(25))
    assert hook.count("docs") == 25


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
    assert fingerprints == {
        row_id: (hashlib.sha256(row_id.encode()).hexdigest(), "m1") for row_id in TRICKY_IDS
    }
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


def test_a_file_held_by_another_process_gives_a_clear_error(
    milvus_connection: str, milvus_db_path: Path
) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LITE_FILE, str(milvus_db_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "holding"
        with pytest.raises(GeminiMilvusProviderError, match="another process may hold it"):
            MilvusHook(milvus_conn_id=milvus_connection).get_conn()
    finally:
        holder.communicate("done\n", timeout=30)
    with MilvusHook(milvus_conn_id=milvus_connection) as hook:
        assert hook.test_connection()[0]


HOLD_LITE_FILE = """
import sys
from pymilvus import MilvusClient
client = MilvusClient(sys.argv[1])
print("holding", flush=True)
sys.stdin.readline()
"""
