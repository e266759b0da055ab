"""
MilvusHook against a Milvus server: the tests of tests/hooks/test_milvus.py that hold for any backend, run
here with ``milvus_connection`` on the server, and what only a server shows (segments, lagging reads).
"""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_gemini_milvus.exceptions import (
    MilvusCollectionMismatchError,
    MilvusFullTextUnsupportedError,
)
from airflow_provider_gemini_milvus.hooks.milvus import MilvusHook
from tests.hooks.test_milvus import (  # noqa: F401  (imported tests run here, against the server)
    make_rows,
    test_a_task_in_another_process_writes_and_the_next_task_queries_with_the_raw_client,
    test_an_insert_refuses_ids_stored_with_other_content_before_writing,
    test_an_insert_retry_after_a_failure_midway_completes_the_load,
    test_delete_ids_in_batches,
    test_ensure_collection_creates_then_reuses,
    test_fingerprints_and_deletes_handle_quotes_and_backslashes,
    test_fingerprints_of_a_missing_collection_are_empty,
    test_fingerprints_of_most_of_the_collection_come_from_one_scan,
    test_list_ids_pages_past_ids_with_quotes,
    test_metric_mismatch_is_refused,
    test_names_a_server_refuses_are_refused_on_lite_too,
    test_search_returns_json_safe_hits,
    test_write_batches_upsert_is_idempotent_and_flushes_once,
    write,
)


def fingerprints(milvus: MilvusHook, collection: str) -> dict[str, Any]:
    return dict(milvus.iter_fingerprints(collection))


def test_a_scan_reads_every_segment_and_the_deletes_just_made(hook: MilvusHook) -> None:
    # Three loads, each flushed: three segments on a server. A page cut short where one segment ends is not
    # the end of the scan, and a delete made just before is already seen.
    for start in (0, 10, 20):
        rows = [row | {"id": f"doc-{start + i:02d}"} for i, row in enumerate(make_rows(10))]
        write(hook, "docs", rows)
    assert hook.delete_ids("docs", ["doc-00", "doc-15", "doc-29"]) == 3

    expected = {f"doc-{i:02d}" for i in range(30)} - {"doc-00", "doc-15", "doc-29"}
    assert hook.list_ids("docs") == sorted(expected)
    assert fingerprints(hook, "docs").keys() == expected
    assert hook.count("docs") == 27


def test_full_text_is_refused_on_a_server_too_old_for_it(hook: MilvusHook) -> None:
    # The server of `make test-server` is Milvus 2.3, which has no BM25 functions.
    version = hook.server_version()
    with pytest.raises(MilvusFullTextUnsupportedError) as raised:
        hook.ensure_collection("docs", 4, full_text=True)
    assert (
        f"full-text search needs Milvus 2.5 or later (BM25 functions); the server at {hook.uri} runs "
        in str(raised.value)
    )
    assert version in str(raised.value)
    assert not hook.has_collection("docs")
    # A plain collection there works, and its full-text modes are refused by name.
    write(hook, "plain", make_rows(3))
    with pytest.raises(MilvusCollectionMismatchError, match="collection 'plain' has no full-text"):
        hook.search("plain", texts=["hello"], mode="full_text")
