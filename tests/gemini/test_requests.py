"""Request planning, input validation and answer checks: pure code, no server."""

from __future__ import annotations

import numpy as np
import pytest
from google.genai import types

from airflow_provider_gemini_milvus.gemini.models import MODELS
from airflow_provider_gemini_milvus.gemini.requests import (
    EmbeddingRunStats,
    PlannedRequest,
    UnusableResponse,
    check_sendable,
    checked_rows,
    per_request_bodies,
    plan_requests,
    scrubbed,
    validated_request,
    validated_texts,
    validated_titles,
)

GEMINI_001 = MODELS["gemini-embedding-001"]


def batch_at(start: int, count: int, index: int = 2) -> PlannedRequest:
    texts = [f"text {start + offset}" for offset in range(count)]
    return PlannedRequest(index=index, start=start, texts=texts, titles=None, tokens=count)


def embeddings(*rows: list[float] | None) -> list[types.ContentEmbedding]:
    return [types.ContentEmbedding(values=row) for row in rows]


# -- planning ---------------------------------------------------------------------------------------------


def test_a_batch_names_its_request_and_the_callers_indexes() -> None:
    assert batch_at(200, 50).describe() == "request 3 (texts[200..249])"
    assert batch_at(7, 1, index=0).describe() == "request 1 (texts[7])"


def test_a_batch_splits_into_halves_that_keep_its_index_positions_titles_and_tokens() -> None:
    texts = ["a" * 40, "b" * 8, "c" * 4, "d" * 400, "e" * 12]
    batch = plan_requests(texts, ["t0", None, "t2", "t3", "t4"], 100, None)[0]

    first, second = batch.halves()

    assert (first.index, first.start, first.texts, first.titles, first.tokens) == (
        0,
        0,
        texts[:2],
        ["t0", None],
        12,
    )
    assert (second.start, second.texts, second.titles, second.tokens) == (
        2,
        texts[2:],
        ["t2", "t3", "t4"],
        104,
    )
    assert second.describe() == "request 1 (texts[2..4])"
    lone, rest = second.halves()
    assert (lone.start, lone.texts, rest.start, rest.texts) == (2, texts[2:3], 3, texts[3:])


def test_batches_hold_at_most_batch_size_texts_in_order() -> None:
    texts = [f"text {index}" for index in range(250)]
    batches = plan_requests(texts, None, 100, None)
    assert [(batch.index, batch.start, len(batch.texts)) for batch in batches] == [
        (0, 0, 100),
        (1, 100, 100),
        (2, 200, 50),
    ]
    assert [text for batch in batches for text in batch.texts] == texts


def test_batches_also_hold_at_most_a_minute_of_token_quota() -> None:
    texts = ["x" * 40] * 10  # ten tokens each
    titles: list[str | None] = [f"title {index}" for index in range(10)]
    batches = plan_requests(texts, titles, 100, 35)
    assert [len(batch.texts) for batch in batches] == [3, 3, 3, 1]
    assert [batch.tokens for batch in batches] == [30, 30, 30, 10]
    assert batches[1].titles == ["title 3", "title 4", "title 5"]


def test_a_text_over_the_token_quota_can_never_be_planned() -> None:
    with pytest.raises(ValueError, match=r"texts\[1\] is about 25 tokens, more than .*tokens_per_minute=20"):
        plan_requests(["short", "y" * 100], None, 100, 20)


# -- validation -------------------------------------------------------------------------------------------


def test_model_none_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="model must be a model name"):
        validated_request(None, "RETRIEVAL_DOCUMENT", None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("\ud800", r"texts\[1\] holds a lone surrogate \(U\+D800 at character 0\)"),
        ("caf\u00e9 \udc80 ok", r"texts\[1\] holds a lone surrogate \(U\+DC80 at character 5\)"),
        ("z" * 8200, r"texts\[1\] is about 2050 tokens; gemini-embedding-001 accepts at most 2048"),
    ],
)
def test_texts_that_cannot_be_sent_are_named(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validated_texts(["fine", text], GEMINI_001)


def test_a_surrogate_pair_is_fine_as_one_character() -> None:
    assert validated_texts(["emoji \U0001f600 here"], GEMINI_001) == ["emoji \U0001f600 here"]


@pytest.mark.parametrize(
    ("title", "message"),
    [
        ("\udfff", r"titles\[1\] holds a lone surrogate \(U\+DFFF at character 0\)"),
        ("t" * 8200, r"titles\[1\] is about 2050 tokens; gemini-embedding-001 accepts at most 2048"),
        (3.5, r"titles\[1\] is not a string \(got float\)"),
    ],
)
def test_titles_get_the_checks_texts_get(title: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validated_titles([None, title], 2, "RETRIEVAL_DOCUMENT", GEMINI_001)  # type: ignore[list-item]


# -- the wire ---------------------------------------------------------------------------------------------


def test_per_text_titles_go_in_per_request_bodies_of_either_api() -> None:
    request = validated_request("gemini-embedding-001", "RETRIEVAL_DOCUMENT", 256)
    batch = PlannedRequest(index=0, start=0, texts=["a", "b"], titles=["Title", None], tokens=2)

    gemini = per_request_bodies(batch, request, vertexai=False)
    vertex = per_request_bodies(batch, request, vertexai=True)

    assert gemini[0] == {
        "model": "models/gemini-embedding-001",
        "content": {"parts": [{"text": "a"}], "role": "user"},
        "taskType": "RETRIEVAL_DOCUMENT",
        "title": "Title",
        "outputDimensionality": 256,
    }
    assert "title" not in gemini[1]
    assert vertex[1] == {
        "content": {"parts": [{"text": "b"}], "role": "user"},
        "embedContentConfig": {"taskType": "RETRIEVAL_DOCUMENT", "outputDimensionality": 256},
    }


# -- answers ------------------------------------------------------------------------------------------------


def test_rows_come_back_unit_length_float32() -> None:
    rows = checked_rows(embeddings([3.0, 4.0], [0.0, -2.0]), batch_at(0, 2), 2)
    assert rows.dtype == np.float32
    np.testing.assert_allclose(rows, [[0.6, 0.8], [0.0, -1.0]], atol=1e-7)


def test_extreme_but_finite_values_are_normalised_without_overflow() -> None:
    rows = checked_rows(embeddings([3e38, 3e38, 3e38, 3e38], [1e-40, 0.0, 0.0, 0.0]), batch_at(0, 2), 4)
    np.testing.assert_allclose(rows, [[0.5, 0.5, 0.5, 0.5], [1.0, 0.0, 0.0, 0.0]])


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([[1.0, 0.0]], r"1 vectors for 2 texts"),
        ([[1.0, 0.0], None], r"no values for texts\[201\]"),
        ([[1.0, 0.0], [1.0, 0.0, 0.0]], r"3 values for texts\[201\]; expected 2"),
        ([[1.0, float("nan")], [1.0, 0.0]], r"NaN or infinity in the vector for texts\[200\]"),
        ([[1.0, 0.0], [float("-inf"), 0.0]], r"NaN or infinity in the vector for texts\[201\]"),
        ([[1.0, 0.0], [1e39, 1.0]], r"NaN or infinity in the vector for texts\[201\]"),
        ([[1.0, 0.0], [0.0, 0.0]], r"all-zero vector for texts\[201\]"),
    ],
)
def test_unusable_answers_name_the_text(rows: list[list[float] | None], message: str) -> None:
    with pytest.raises(UnusableResponse, match=message):
        checked_rows(embeddings(*rows), batch_at(200, 2), 2)


def test_no_embeddings_at_all_is_unusable() -> None:
    with pytest.raises(UnusableResponse, match="0 vectors for 1 texts"):
        checked_rows(None, batch_at(0, 1), 2)


def test_stats_estimate_cost_from_the_models_price() -> None:
    stats = EmbeddingRunStats(tokens=2_000_000, usd_per_million_tokens=0.15)
    assert stats.estimated_cost_usd == pytest.approx(0.30)
    assert EmbeddingRunStats(tokens=5).as_dict()["estimated_cost_usd"] is None
    assert EmbeddingRunStats(refused=2, split_requests=9).as_dict() | {"seconds": 0} == {
        "model": "",
        "texts": 0,
        "estimated_tokens": 0,
        "requests": 0,
        "retries": 0,
        "rate_limited": 0,
        "refused": 2,
        "split_requests": 9,
        "seconds": 0,
        "estimated_cost_usd": None,
    }


def test_scrubbed_hides_the_secret_and_leaves_text_without_one_alone() -> None:
    assert scrubbed("bad key AIza-123 (AIza-123)", "AIza-123") == "bad key *** (***)"
    assert scrubbed("no secret here", None) == "no secret here"


def test_check_sendable_names_the_item_as_the_caller_does() -> None:
    with pytest.raises(
        ValueError, match=r"^documents\[4\] title holds a lone surrogate \(U\+D83D at character 2\)"
    ):
        check_sendable("documents[4] title", "ab\ud83d", GEMINI_001)


def test_scrubbed_hides_every_secret_of_several() -> None:
    assert (
        scrubbed("key AIza-1, sa key-body, id k-1", ("key-body", "AIza-1", "k-1", ""))
        == "key ***, sa ***, id ***"
    )
