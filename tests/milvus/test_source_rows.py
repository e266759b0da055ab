"""Chunk rows by source: the filter that finds them and how a queried row is read."""

from __future__ import annotations

from airflow_provider_gemini_milvus.milvus.source_rows import SourceRow, source_filter, source_row


def test_the_filter_stops_the_like_pattern_at_the_first_wildcard() -> None:
    assert source_filter(None) == 'exists metadata["source_id"]'
    assert source_filter("s3://bucket/handbook/") == 'metadata["source_id"] like "s3://bucket/handbook/%"'
    # ``_`` and ``%`` match anything in ``like``: the pattern may match more, the caller filters exactly.
    assert source_filter("file:///data/my_docs/") == 'metadata["source_id"] like "file:///data/my%"'
    assert source_filter('s3://b/"q"/') == 'metadata["source_id"] like "s3://b/\\"q\\"/%"'


def test_a_row_is_read_with_its_source_and_without_a_bad_count() -> None:
    row = {
        "id": "s3://b/a.md#1f",
        "model": "m/768/RETRIEVAL_DOCUMENT",
        "metadata": {"source_id": "s3://b/a.md", "source_hash": "ab", "chunk_count": 3},
    }

    assert source_row(row) == SourceRow("s3://b/a.md#1f", "s3://b/a.md", "ab", 3, "m/768/RETRIEVAL_DOCUMENT")
    assert source_row({**row, "metadata": {"source_id": "s3://b/a.md", "chunk_count": True}}) == SourceRow(
        "s3://b/a.md#1f", "s3://b/a.md", None, None, "m/768/RETRIEVAL_DOCUMENT"
    )
    assert source_row({**row, "metadata": {"lang": "en"}}) is None
    assert source_row({**row, "metadata": None}) is None
