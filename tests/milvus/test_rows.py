"""The row contract: checks a Milvus server makes, batching, filter literals and content_hash. No Milvus."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest

from airflow_provider_gemini_milvus.milvus.layout import CONTENT_HASH_MAX_LENGTH
from airflow_provider_gemini_milvus.milvus.rows import (
    DEFAULT_MAX_BATCH_BYTES,
    ModelFingerprint,
    content_hash,
    embedding_input_hash,
    embedding_part,
    estimate_row_bytes,
    ids_after_filter,
    ids_in_filter,
    metadata_hash,
    milvus_string_literal,
    model_fingerprint,
    parse_model_fingerprint,
    prepare_columns,
    prepare_rows,
    row_sizes,
    sized_batches,
    skip_stored_rows,
    split_batches,
)

GOOD: dict[str, Any] = {"id": "a", "vector": [1.0, 0.0, 0.0, 0.0], "text": "hello"}


def make_rows(count: int, *, dim: int = 4) -> list[dict[str, Any]]:
    return [
        {
            "id": f"doc-{i}",
            "vector": [float(i + 1)] + [0.5] * (dim - 1),
            "text": f"hello {i}",
            "metadata": {"n": i},
        }
        for i in range(count)
    ]


# --- filter literals --------------------------------------------------------------------------------


def test_string_literal_escapes_quotes_backslashes_and_line_breaks() -> None:
    assert milvus_string_literal('a"b') == '"a\\"b"'
    assert milvus_string_literal("a\\b") == '"a\\\\b"'
    assert milvus_string_literal("it's") == '"it\'s"'
    assert milvus_string_literal("x\ny") == '"x\\ny"'
    assert milvus_string_literal("café") == '"café"'  # no \\u escapes: Milvus Lite rejects them
    assert ids_in_filter(["a", 'b"']) == 'id in ["a", "b\\""]'


def test_id_pages_start_with_every_id_then_follow_the_quoted_cursor() -> None:
    assert ids_after_filter(None) == 'id != ""'
    assert ids_after_filter('say "hi"') == 'id > "say \\"hi\\""'


# --- batching -----------------------------------------------------------------------------------------


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
        ValueError, match=r"rows\[0\] \(id 'doc-0'\) is about \d+ bytes, more than max_batch_bytes=100"
    ):
        split_batches(rows, max_batch_bytes=100)


def test_estimate_counts_vector_bytes_and_utf8_text() -> None:
    small = prepare_rows([{"id": "a", "vector": [0.0] * 8, "text": "é"}])[0][0]
    large = prepare_rows([{"id": "a", "vector": [0.0] * 16, "text": "éé"}])[0][0]
    assert estimate_row_bytes(large) - estimate_row_bytes(small) == 8 * 4 + 2


# --- content_hash ---------------------------------------------------------------------------------------


def test_content_hash_is_the_embedding_input_hash_then_the_metadata_hash() -> None:
    # Pinned: rows in every collection store these values; a change would re-embed every corpus.
    metadata = {"b": [1, 2.5, None], "a": {"z": True, "y": "é"}}
    value = content_hash("héllo wörld", title="Grüße", metadata=metadata)
    assert value == "10145cb0b136ae840367bb5ce394bbbc:0a738cc17a37002b204224615451bab"
    assert value == f"{embedding_input_hash('héllo wörld', 'Grüße')}:{metadata_hash(metadata)}"
    assert content_hash("plain") == "30b4c751ff9bd1c2eed50b62d7bae948:44136fa355b3678a1146ad16f7e8649"


def test_content_hash_fits_the_field_every_existing_collection_has() -> None:
    value = content_hash("x" * 10_000, title="t" * 500, metadata={"k": "v" * 10_000})
    assert len(value.encode("utf-8")) == CONTENT_HASH_MAX_LENGTH == 64


def test_content_hash_changes_with_title_and_metadata_but_not_key_order() -> None:
    base = content_hash("t", metadata={"a": 1, "b": 2})
    assert base == content_hash("t", metadata={"b": 2, "a": 1})
    assert content_hash("t") == content_hash("t", metadata={})
    assert len({base, content_hash("t", title="x", metadata={"a": 1, "b": 2}), content_hash("t")}) == 3


def test_the_embedding_half_ignores_metadata_and_follows_text_and_title() -> None:
    base = embedding_part(content_hash("t", title="x", metadata={"lang": "en"}))
    assert base is not None
    assert base == embedding_part(content_hash("t", title="x", metadata={"lang": "fr"}))
    assert base != embedding_part(content_hash("t", metadata={"lang": "en"}))
    assert base != embedding_part(content_hash("t2", title="x", metadata={"lang": "en"}))


@pytest.mark.parametrize(
    "stored",
    [
        "0333014eb5224df05f85a38f99437adc6606c316a5682c5e50ad4fcd4f96b6f1",  # the one-part format
        "h",
        "",
        "a:b",
    ],
)
def test_hashes_without_an_embedding_half_have_none(stored: str) -> None:
    assert embedding_part(stored) is None


def test_prepare_rows_fills_hash_model_and_metadata() -> None:
    rows, dim = prepare_rows([{"id": "a", "vector": (1, 2, 3), "text": "héllo", "source": "wiki"}])
    assert dim == 3
    assert rows == [
        {
            "id": "a",
            "vector": [1.0, 2.0, 3.0],
            "text": "héllo",
            "content_hash": content_hash("héllo"),
            "model": "",
            "metadata": {},
            "source": "wiki",
        }
    ]


def test_prepare_rows_hashes_like_the_embed_operator_with_title_and_metadata() -> None:
    given = {**GOOD, "title": "T", "metadata": {"lang": "en"}}
    rows, _ = prepare_rows([given, {**GOOD, "id": "b", "content_hash": "kept"}])
    assert rows[0]["content_hash"] == content_hash("hello", title="T", metadata={"lang": "en"})
    assert rows[1]["content_hash"] == "kept"


# --- what a Milvus server refuses, checked before anything is written --------------------------------


def test_a_value_that_overflows_float32_is_refused() -> None:
    # 1e39 is a finite Python float, and +inf once Milvus stores it as float32.
    with pytest.raises(
        ValueError, match=r"rows\[1\] \(id 'b'\): vector value 2 is 1e\+39, which is not finite"
    ):
        prepare_rows([GOOD, {**GOOD, "id": "b", "vector": [0.0, 1.0, 1e39, 0.0]}])
    with pytest.raises(ValueError, match=r"rows\[0\] \(id 'a'\): vector value 0 is too large for float32"):
        prepare_rows([{**GOOD, "vector": [10**400, 0, 0, 0]}])
    rows, _ = prepare_rows([{**GOOD, "vector": np.array([3.4e38, -3.4e38, 1e-45, 0.0])}])
    assert rows[0]["vector"][0] == 3.4e38


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nan_and_inf_are_refused(bad: float) -> None:
    with pytest.raises(ValueError, match=r"rows\[0\] \(id 'a'\): vector value 3 is"):
        prepare_rows([{**GOOD, "vector": [0.0, 0.0, 0.0, bad]}])


def test_metadata_over_64_kib_of_json_is_refused() -> None:
    fits = {"k": "x" * (65536 - len('{"k":""}'))}
    prepare_rows([{**GOOD, "metadata": fits}])
    with pytest.raises(
        ValueError, match=r"rows\[1\] \(id 'b'\): metadata is 65537 bytes as JSON, more than the 65536"
    ):
        prepare_rows([GOOD, {**GOOD, "id": "b", "metadata": {"k": fits["k"] + "x"}}])
    with pytest.raises(ValueError, match=r"rows\[0\] \(id 'a'\): extra field 'notes' is 70002 bytes as JSON"):
        prepare_rows([{**GOOD, "notes": "n" * 70000}])
    # Milvus stores the dynamic fields together in one JSON field, with the same limit.
    with pytest.raises(ValueError, match=r"the extra \(dynamic\) fields together is 8\d{4} bytes as JSON"):
        prepare_rows([{**GOOD, "notes": "n" * 40000, "more": "m" * 40000}])


def test_extra_fields_are_named_when_they_are_not_json() -> None:
    with pytest.raises(
        ValueError, match=r"rows\[0\] \(id 'a'\): extra field 'tags' is not JSON-serialisable"
    ):
        prepare_rows([{**GOOD, "tags": {"x"}}])
    with pytest.raises(ValueError, match=r"extra field 'n'\['deep'\] is 18446744073709551616, outside"):
        prepare_rows([{**GOOD, "n": {"deep": 2**64}}])


@pytest.mark.parametrize(
    ("metadata", "where"),
    [
        ({"big": 2**63}, r"metadata\['big'\] is 9223372036854775808"),
        (
            {"deep": [1, {"small": -(2**63) - 1}]},
            r"metadata\['deep'\]\[1\]\['small'\] is -9223372036854775809",
        ),
        ({"huge": 10**200}, r"metadata\['huge'\] is an integer of 665 bits"),
    ],
)
def test_integers_outside_int64_anywhere_in_metadata_are_refused(
    metadata: dict[str, Any], where: str
) -> None:
    with pytest.raises(ValueError, match=rf"rows\[1\] \(id 'b'\): {where}, outside the int64 range"):
        prepare_rows([GOOD, {**GOOD, "id": "b", "metadata": metadata}])


def test_int64_limits_themselves_are_accepted() -> None:
    rows, _ = prepare_rows([{**GOOD, "metadata": {"max": 2**63 - 1, "min": -(2**63), "flag": True}}])
    assert rows[0]["metadata"]["max"] == 2**63 - 1


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({**GOOD, "text": "bad \ud800"}, r"rows\[0\] \(id 'a'\): text holds a lone surrogate \(U\+D800 at"),
        ({**GOOD, "id": "x\udfff"}, r"rows\[0\] \(id 'x\\udfff'\): id holds a lone surrogate"),
        ({**GOOD, "metadata": {"k": ["\ud800"]}}, r"metadata\['k'\]\[0\] holds a lone surrogate"),
    ],
)
def test_lone_surrogates_are_refused(row: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        prepare_rows([row])


def test_errors_name_the_row_index_and_id() -> None:
    with pytest.raises(ValueError, match=r"rows\[1\] \(id 'a'\): duplicate id, also used by rows\[0\]"):
        prepare_rows([GOOD, GOOD])
    with pytest.raises(ValueError, match=r"rows\[1\] \(id 'b'\): vector has 3 values, rows\[0\] has dim 4"):
        prepare_rows([GOOD, {**GOOD, "id": "b", "vector": [1, 2, 3]}])
    with pytest.raises(ValueError, match=r"rows\[1\] must be a dict, got str"):
        prepare_rows([GOOD, "row"])


# --- mode="insert" retries --------------------------------------------------------------------------------


def test_insert_retry_skips_rows_stored_with_the_same_content() -> None:
    rows, _ = prepare_rows(make_rows(5))
    batches = split_batches(rows, max_batch_rows=2)
    stored = {row["id"]: (row["content_hash"], row["model"]) for row in rows[:3]}
    remaining, skipped = skip_stored_rows(batches, stored, "docs")
    assert skipped == 3
    # Batches keep their request boundaries, without the stored rows and without empty batches.
    assert [[row["id"] for row in batch] for batch in remaining] == [["doc-3"], ["doc-4"]]


def test_insert_retry_refuses_ids_stored_with_other_content() -> None:
    rows, _ = prepare_rows(make_rows(8))
    stored = {row["id"]: ("another-hash", "") for row in rows[1:8]}
    stored["doc-0"] = (rows[0]["content_hash"], "another-model")
    with pytest.raises(ValueError, match="id already exists in collection 'docs'") as raised:
        skip_stored_rows(split_batches(rows, max_batch_rows=3), stored, "docs")
    message = str(raised.value)
    assert message.startswith("rows[0] (id 'doc-0'), rows[1] (id 'doc-1'), rows[2] (id 'doc-2'), ")
    assert (
        "and 3 more: id already exists in collection 'docs' with another content_hash or model (8 row(s))"
        in (message)
    )
    assert "use mode='upsert'" in message


# --- staged rows column by column ----------------------------------------------------------------


def staged_columns(count: int = 3, dim: int = 4) -> dict[str, Any]:
    """Columns as a staged part holds them: JSON text metadata, a float32 matrix."""
    return {
        "ids": [f"doc-{index}" for index in range(count)],
        "vectors": np.arange(count * dim, dtype=np.float32).reshape(count, dim) + 1,
        "texts": [f"text é {index}" for index in range(count)],
        "hashes": [f"{index:064d}" for index in range(count)],
        "models": ["m/4/RETRIEVAL_DOCUMENT", None, ""][:count] + ["m"] * max(0, count - 3),
        "metadata": ['{"lang":"fr","n":1}', None, ""][:count] + ["{}"] * max(0, count - 3),
    }


def columns_as_rows(columns: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "id": columns["ids"][index],
            "vector": columns["vectors"][index],
            "text": columns["texts"][index],
            "content_hash": columns["hashes"][index],
            "model": columns["models"][index],
            "metadata": json.loads(columns["metadata"][index]) if columns["metadata"][index] else {},
        }
        for index in range(len(columns["ids"]))
    ]


def test_prepare_columns_gives_the_rows_and_sizes_of_the_row_by_row_check() -> None:
    columns = staged_columns()
    checked = prepare_columns(**columns, dim=4)
    assert checked is not None
    rows, sizes = checked
    expected, _ = prepare_rows(columns_as_rows(columns), dim=4)

    def plain(row: dict[str, Any]) -> dict[str, Any]:
        metadata = row["metadata"]
        return {
            **row,
            "vector": list(row["vector"]),
            "metadata": json.loads(metadata) if isinstance(metadata, str) else metadata,
        }

    assert [plain(row) for row in rows] == [plain(row) for row in expected]
    assert [row["metadata"] for row in rows] == ['{"lang":"fr","n":1}', "{}", "{}"]
    assert [row["model"] for row in rows] == ["m/4/RETRIEVAL_DOCUMENT", "", ""]
    assert all(
        np.array_equal(row["vector"], want["vector"]) for row, want in zip(rows, expected, strict=True)
    )
    assert sizes == row_sizes(expected, max_batch_bytes=DEFAULT_MAX_BATCH_BYTES)


@pytest.mark.parametrize(
    ("column", "index", "value"),
    [
        ("ids", 1, "   "),  # blank id
        ("ids", 2, "doc-0"),  # duplicate id
        ("ids", 1, "x" * 600),  # longer than the id field
        ("texts", 0, None),
        ("hashes", 1, None),  # no content_hash: computed row by row
        ("hashes", 1, "h" * 65),
        ("models", 1, 7),
        ("metadata", 0, "[1, 2]"),  # not an object
        ("metadata", 0, "{not json"),
        ("metadata", 0, '{"x": NaN}'),
        ("metadata", 0, '{"n": 9223372036854775808}'),  # beyond int64
        ("metadata", 0, '{"x": 1e999}'),  # beyond float
        ("metadata", 0, '{"s": "\\ud800"}'),  # a lone surrogate
        ("metadata", 0, '{"s": "' + "x" * 65_536 + '"}'),  # over 64 KiB
    ],
)
def test_prepare_columns_leaves_a_row_it_cannot_pass_to_the_row_by_row_check(
    column: str, index: int, value: Any
) -> None:
    columns = staged_columns()
    columns[column] = list(columns[column])
    columns[column][index] = value
    assert prepare_columns(**columns, dim=4) is None


def test_prepare_columns_refuses_vectors_it_cannot_pass() -> None:
    columns = staged_columns()
    columns["vectors"][1, 2] = np.inf
    assert prepare_columns(**columns, dim=4) is None
    assert prepare_columns(**staged_columns(), dim=5) is None  # another dimension
    assert prepare_columns(**staged_columns(), dim=4, max_batch_bytes=100) is None  # a row over the cap


def test_prepare_columns_passes_metadata_whose_large_numbers_fit() -> None:
    columns = staged_columns()
    columns["metadata"] = ['{"n":9223372036854775807,"f":1e300}', '{"code":"e-1234"}', '{"s":"\\u00e9"}']
    checked = prepare_columns(**columns, dim=4)
    assert checked is not None
    assert [row["metadata"] for row in checked[0]] == columns["metadata"]


def test_sized_batches_run_on_across_chunks() -> None:
    chunks = [([{"id": "a"}, {"id": "b"}], [10, 10]), ([{"id": "c"}], [10]), ([{"id": "d"}], [25])]
    ids = [[row["id"] for row in batch] for batch in sized_batches(chunks, max_batch_bytes=30)]
    assert ids == [["a", "b", "c"], ["d"]]
    ids = [[row["id"] for row in batch] for batch in sized_batches(chunks, max_batch_rows=2)]
    assert ids == [["a", "b"], ["c", "d"]]


def test_row_sizes_names_a_row_larger_than_a_batch() -> None:
    rows, _ = prepare_rows([{"id": "big", "vector": [1.0] * 8, "text": "x" * 500}])
    with pytest.raises(
        ValueError, match=r"rows\[0\] \(id 'big'\) is about \d+ bytes, more than max_batch_bytes=100"
    ):
        row_sizes(rows, max_batch_bytes=100)


@pytest.mark.parametrize(
    ("model", "dim", "task_type", "request_format"),
    [
        ("gemini-embedding-001", 768, "RETRIEVAL_DOCUMENT", ""),
        ("gemini-embedding-2", 3072, "SEMANTIC_SIMILARITY", "prompt-v1"),
        ("publishers/google/models/text-embedding-005", 256, "CODE_RETRIEVAL_QUERY", ""),
    ],
)
def test_a_fingerprint_reads_back_into_its_parts(
    model: str, dim: int, task_type: str, request_format: str
) -> None:
    fingerprint = model_fingerprint(model, dim, task_type, request_format)
    assert parse_model_fingerprint(fingerprint) == ModelFingerprint(model, dim, task_type, request_format)


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "test-model",
        "gemini-embedding-001/768",
        "gemini-embedding-001/big/RETRIEVAL_DOCUMENT",
        "gemini-embedding-001/0/RETRIEVAL_DOCUMENT",
        "gemini-embedding-001/768/retrieval_document",
        "/768/RETRIEVAL_DOCUMENT",
        "gemini-embedding-2/768/RETRIEVAL_DOCUMENT/",
        "gemini-embedding-2/768/prompt-v1",
    ],
)
def test_a_field_that_is_no_fingerprint_reads_as_none(stored: str) -> None:
    assert parse_model_fingerprint(stored) is None
