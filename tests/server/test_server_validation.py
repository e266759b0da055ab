"""
What a Milvus server refuses, or silently stores wrong, that Milvus Lite accepts: the row checks catch it
first.

Each case is sent twice: raw through pymilvus, to show what the server itself does with it, and through
MilvusInsertOperator, which must refuse it naming the row before anything is written.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from pymilvus import MilvusClient

from airflow_provider_gemini_milvus.hooks.milvus import MilvusHook
from airflow_provider_gemini_milvus.milvus.layout import build_index_params, build_schema
from airflow_provider_gemini_milvus.operators.milvus import MilvusInsertOperator

DIM = 4
TEXT_MAX_LENGTH = 8


def row(row_id: str, **fields: Any) -> dict[str, Any]:
    base = {"id": row_id, "vector": [1.0, 0.5, 0.5, 0.5], "text": "t", "content_hash": "h", "model": "m"}
    return base | {"metadata": {}} | fields


@pytest.fixture
def raw_client(milvus_connection: str, milvus_server_uri: str) -> Iterator[MilvusClient]:
    """A pymilvus client on the server, with the collection ``docs`` laid out as the operator makes it."""
    client = MilvusClient(uri=milvus_server_uri, dedicated=True)
    client.create_collection(
        "docs",
        schema=build_schema(DIM, TEXT_MAX_LENGTH),
        index_params=build_index_params("COSINE", "AUTOINDEX", None),
    )
    # pymilvus logs each refused call at ERROR with a traceback: expected here, so kept out of the output.
    logging.getLogger("pymilvus").disabled = True
    yield client
    logging.getLogger("pymilvus").disabled = False
    client.close()


def stored(client: MilvusClient) -> int:
    client.flush("docs")
    result = client.query("docs", filter="", output_fields=["count(*)"], consistency_level="Strong")
    return int(result[0]["count(*)"])


def load(rows: list[dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
    return MilvusInsertOperator(task_id="load", collection_name="docs", data=rows, **kwargs).execute({})


REFUSED_BY_THE_SERVER = [
    pytest.param(
        row("a", vector=[1.0, float("nan"), 0.5, 0.5]),
        "'NaN' is not a number",
        r"rows\[1\] \(id 'a'\): vector value 1 is nan",
        id="nan",
    ),
    pytest.param(
        row("a", vector=[1.0, 0.5, 0.5, 1e39]),  # a finite float64 that is +Inf as float32
        r"'\+Inf' is not a number",
        r"rows\[1\] \(id 'a'\): vector value 3 is 1e\+39, which is not finite as float32",
        id="float32-overflow",
    ),
    pytest.param(
        row("a", text="ééééé"),  # 5 characters fit max_length 8 on Lite; the server counts 10 bytes
        r"length \(10\) of 0th string exceeds max length \(8\)",
        r"rows\[1\] \(id 'a'\): text is 10 bytes in UTF-8, longer than the text field's max_length 8",
        id="text-bytes",
    ),
    pytest.param(
        row("a", metadata={"blob": "x" * 70_000}),
        r"json field \(metadata\) exceeds max length \(65536\)",
        r"rows\[1\] \(id 'a'\): metadata is \d+ bytes as JSON",
        id="json-64k",
    ),
]


@pytest.mark.parametrize(("bad_row", "server_says", "we_say"), REFUSED_BY_THE_SERVER)
def test_what_the_server_refuses_is_refused_first_naming_the_row(
    raw_client: MilvusClient, bad_row: dict[str, Any], server_says: str, we_say: str
) -> None:
    with pytest.raises(Exception, match=server_says):
        raw_client.upsert("docs", [bad_row])
    assert stored(raw_client) == 0

    good = row("good")
    with pytest.raises(ValueError, match=we_say):
        load([good, bad_row])
    assert stored(raw_client) == 0  # nothing of the refused task was written, not even the good row


def test_an_id_twice_in_one_batch_is_stored_twice_by_the_server_and_refused_by_us(
    raw_client: MilvusClient,
) -> None:
    # Milvus 2.3 takes both rows of one upsert and keeps both: count(*) says 2 for one primary key.
    raw_client.upsert("docs", [row("twin", text="first"), row("twin", text="second")])
    assert stored(raw_client) == 2
    raw_client.delete("docs", filter='id == "twin"')
    assert stored(raw_client) == 0

    with pytest.raises(ValueError, match=r"rows\[1\] \(id 'twin'\): duplicate id, also used by rows\[0\]"):
        load([row("twin", text="first"), row("twin", text="second")])
    assert stored(raw_client) == 0


def test_an_integer_outside_int64_in_metadata_is_refused_naming_the_row(raw_client: MilvusClient) -> None:
    with pytest.raises(Exception, match="Integer exceeds 64-bit range"):
        raw_client.upsert("docs", [row("a", metadata={"n": 2**64})])
    with pytest.raises(ValueError, match=r"rows\[0\] \(id 'a'\): metadata\['n'\] is 18446744073709551616"):
        load([row("a", metadata={"n": 2**64})])
    assert stored(raw_client) == 0


@pytest.mark.usefixtures("milvus_connection")
@pytest.mark.parametrize(
    ("name", "server_says"),
    [
        ("bad-name!", "can only contain numbers, letters and underscores"),
        ("a b", "can only contain numbers, letters and underscores"),
        ("1abc", "the first character of a collection name must be an underscore or letter"),
        ("n" * 256, "must be less than 255 characters"),
    ],
)
def test_collection_names_the_server_refuses_are_refused_first(
    milvus_server_uri: str, name: str, server_says: str
) -> None:
    client = MilvusClient(uri=milvus_server_uri, dedicated=True)
    logging.getLogger("pymilvus").disabled = True
    try:
        with pytest.raises(Exception, match=server_says):
            client.create_collection(name, dimension=DIM)
    finally:
        logging.getLogger("pymilvus").disabled = False
        client.close()
    with pytest.raises(ValueError, match="is not valid in Milvus|Milvus allows at most 255"):
        MilvusInsertOperator(task_id="load", collection_name=name, data=[row("a")]).execute({})


@pytest.mark.usefixtures("milvus_connection")
def test_the_longest_name_and_largest_dim_our_checks_allow_are_accepted_by_the_server() -> None:
    name = "n" * 255
    with MilvusHook() as hook:
        assert hook.ensure_collection(name, 32768, text_max_length=TEXT_MAX_LENGTH) is True
        info = hook.describe(name)
    assert info is not None
    assert info.dim == 32768


def test_the_server_counts_text_length_in_bytes_as_our_check_does(raw_client: MilvusClient) -> None:
    fits = row("fits", text="éééé")  # 4 characters, 8 bytes: exactly max_length
    raw_client.upsert("docs", [fits])
    assert load([fits | {"id": "fits-too"}])["written"] == 1
    assert stored(raw_client) == 2
