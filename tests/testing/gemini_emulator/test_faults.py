"""Injected faults: queued error answers, random faults, dropped connections and corrupted answers."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import numpy as np
import pytest
from google import genai
from google.genai import errors, types

from airflow_provider_gemini_milvus.testing.gemini_emulator import GeminiEmulator, emulated_embedding
from tests.testing.gemini_emulator.calls import (
    BATCH_PATH,
    MODEL,
    element,
    embed,
    error_detail,
    make_client,
    raw_request,
)


def test_fail_next_answers_queued_faults_then_recovers(
    gemini_emulator: GeminiEmulator, client: genai.Client
) -> None:
    gemini_emulator.fail_next(1, status=429, retry_delay=0.5)
    gemini_emulator.fail_next(1, status=500)
    gemini_emulator.fail_next(1, status=503)

    with pytest.raises(errors.ClientError) as too_many:
        embed(client, ["a"])
    with pytest.raises(errors.ServerError) as internal:
        embed(client, ["a"])
    with pytest.raises(errors.ServerError) as overloaded:
        embed(client, ["a"])

    gemini_emulator.fail_next(1, status=429)
    with pytest.raises(errors.ClientError) as bare:
        embed(client, ["a"])
    assert bare.value.status == "RESOURCE_EXHAUSTED"
    assert "details" not in bare.value.details["error"]
    retry = error_detail(too_many.value, "RetryInfo")
    assert retry is not None
    assert retry["retryDelay"] == "0.5s"
    assert (internal.value.code, internal.value.status) == (500, "INTERNAL")
    assert (overloaded.value.code, overloaded.value.message) == (
        503,
        "The model is overloaded. Please try again later.",
    )
    assert embed(client, ["a"]) == [emulated_embedding("a")]
    assert gemini_emulator.stats.requests == 5
    assert gemini_emulator.stats.embedded_texts == ["a"]


def test_sdk_retries_ride_out_queued_faults(gemini_emulator: GeminiEmulator) -> None:
    retrying = make_client(
        gemini_emulator,
        retry_options=types.HttpRetryOptions(attempts=4, initial_delay=0.01, max_delay=0.02, jitter=0),
    )
    gemini_emulator.fail_next(2, status=504)

    assert embed(retrying, ["a"]) == [emulated_embedding("a")]
    assert gemini_emulator.stats.status_counts == {504: 2, 200: 1}


def test_drop_next_closes_the_connection(gemini_emulator: GeminiEmulator, client: genai.Client) -> None:
    gemini_emulator.drop_next(1)

    with pytest.raises(httpx2.TransportError):
        embed(client, ["a"])

    assert embed(client, ["a"]) == [emulated_embedding("a")]
    stats = gemini_emulator.stats
    assert (stats.requests, stats.dropped, stats.succeeded_requests) == (2, 1, 1)


def test_fault_rate_is_seeded(gemini_emulator: GeminiEmulator, client: genai.Client) -> None:
    def outcomes() -> list[int]:
        gemini_emulator.configure(fault_rate=0.5, fault_statuses=(500, 503), seed=7)
        codes = []
        for _ in range(12):
            try:
                embed(client, ["a"])
                codes.append(200)
            except errors.APIError as error:
                codes.append(error.code)
        return codes

    first, second = outcomes(), outcomes()

    assert first == second
    assert 200 in first
    assert {500, 503} & set(first)


TWO_TEXTS = {"requests": [element("first", output_dimensionality=128), element("second")]}


@pytest.mark.parametrize(
    ("kind", "token"), [pytest.param("nan", "NaN", id="nan"), pytest.param("inf", "Infinity", id="inf")]
)
def test_corrupt_next_writes_a_non_finite_token_into_the_first_embedding(
    gemini_emulator: GeminiEmulator, kind: str, token: str
) -> None:
    gemini_emulator.corrupt_next(kind=kind)

    answer = raw_request(gemini_emulator, BATCH_PATH, TWO_TEXTS, key=gemini_emulator.api_key)

    assert (answer.status, answer.content_type) == (200, "application/json; charset=UTF-8")
    assert answer.text.count(token) == 1
    first, second = (item["values"] for item in answer.body["embeddings"])
    expected = emulated_embedding("first", output_dimensionality=128)
    spoiled = [index for index, value in enumerate(first) if not np.isfinite(value)]
    assert spoiled == [64]
    assert first[:64] + first[65:] == expected[:64] + expected[65:]
    assert second == emulated_embedding("second")


@pytest.mark.parametrize(
    ("kind", "expected_values"),
    [
        pytest.param("zero", [0.0] * 128, id="zero"),
        pytest.param("short", emulated_embedding("first", output_dimensionality=128)[:-1], id="short"),
        pytest.param("null", None, id="null"),
    ],
)
def test_corrupt_next_spoils_the_values_of_one_embedding(
    gemini_emulator: GeminiEmulator, kind: str, expected_values: list[float] | None
) -> None:
    gemini_emulator.corrupt_next(kind=kind)

    answer = raw_request(gemini_emulator, BATCH_PATH, TWO_TEXTS, key=gemini_emulator.api_key)

    first, second = answer.body["embeddings"]
    assert first == {"values": expected_values}
    assert second == {"values": emulated_embedding("second")}


def test_corrupt_next_missing_leaves_values_out(gemini_emulator: GeminiEmulator) -> None:
    gemini_emulator.corrupt_next(kind="missing")

    answer = raw_request(gemini_emulator, BATCH_PATH, TWO_TEXTS, key=gemini_emulator.api_key)

    assert answer.body["embeddings"][0] == {}


def test_corrupt_next_html_is_a_200_html_page(gemini_emulator: GeminiEmulator) -> None:
    gemini_emulator.corrupt_next(kind="html")

    answer = raw_request(gemini_emulator, BATCH_PATH, TWO_TEXTS, key=gemini_emulator.api_key)

    assert (answer.status, answer.content_type) == (200, "text/html; charset=UTF-8")
    assert answer.text.startswith("<!DOCTYPE html>")


def test_corrupt_next_truncated_is_the_first_half_of_the_json(gemini_emulator: GeminiEmulator) -> None:
    gemini_emulator.corrupt_next(kind="truncated")

    spoiled = raw_request(gemini_emulator, BATCH_PATH, TWO_TEXTS, key=gemini_emulator.api_key).text
    whole = raw_request(gemini_emulator, BATCH_PATH, TWO_TEXTS, key=gemini_emulator.api_key).text

    assert spoiled == whole[: len(whole) // 2]
    with pytest.raises(json.JSONDecodeError):
        json.loads(spoiled)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        pytest.param(f"/v1beta/models/{MODEL}:embedContent", element("first"), id="gemini-embedContent"),
        pytest.param(
            f"/v1beta1/publishers/google/models/{MODEL}:batchEmbedContents",
            {"requests": [{"content": {"parts": [{"text": "first"}]}}]},
            id="vertex-batchEmbedContents",
        ),
        pytest.param(
            "/v1beta1/publishers/google/models/text-embedding-005:predict",
            {"instances": [{"content": "first"}]},
            id="vertex-predict",
        ),
    ],
)
def test_corrupt_next_covers_every_embed_route(
    gemini_emulator: GeminiEmulator, path: str, body: dict[str, Any]
) -> None:
    gemini_emulator.corrupt_next(kind="null")

    answer = raw_request(gemini_emulator, path, body, key=gemini_emulator.api_key)

    assert '"values":null' in answer.text


def test_corruptions_spoil_only_successful_answers_then_stop(
    gemini_emulator: GeminiEmulator, client: genai.Client
) -> None:
    gemini_emulator.corrupt_next(2, kind="zero")
    gemini_emulator.fail_next(1, status=503)

    with pytest.raises(errors.ServerError):
        embed(client, ["a"])
    spoiled = [embed(client, ["a"]), embed(client, ["a"])]
    healthy = embed(client, ["a"])

    assert spoiled == [[[0.0] * 3072]] * 2
    assert healthy == [emulated_embedding("a")]
    stats = gemini_emulator.stats
    assert (stats.corrupted, stats.succeeded_requests, stats.status_counts) == (2, 3, {503: 1, 200: 3})


def test_sdk_reads_a_nan_corruption_as_a_nan_value(
    gemini_emulator: GeminiEmulator, client: genai.Client
) -> None:
    gemini_emulator.corrupt_next(kind="nan")

    [values] = embed(client, ["a"], output_dimensionality=128)

    assert np.isnan(values[64])


def test_clear_faults_forgets_corruptions(gemini_emulator: GeminiEmulator, client: genai.Client) -> None:
    gemini_emulator.corrupt_next(3, kind="html")

    gemini_emulator.clear_faults()

    assert embed(client, ["a"]) == [emulated_embedding("a")]
    assert gemini_emulator.stats.corrupted == 0


def test_corrupt_next_rejects_an_unknown_kind(gemini_emulator: GeminiEmulator) -> None:
    with pytest.raises(ValueError, match="'garbled'"):
        gemini_emulator.corrupt_next(kind="garbled")


# -- refuse_texts ----------------------------------------------------------------------------------------


def test_refuse_texts_refuses_the_whole_call_holding_a_matching_text(
    gemini_emulator: GeminiEmulator, client: genai.Client
) -> None:
    gemini_emulator.refuse_texts("forbidden", "The document could not be embedded.")

    with pytest.raises(errors.ClientError) as refused:
        embed(client, ["fine", "a forbidden word", "also fine"])

    assert (refused.value.code, refused.value.status) == (400, "INVALID_ARGUMENT")
    assert refused.value.message == "The document could not be embedded."
    violation = error_detail(refused.value, "BadRequest")
    assert violation is not None
    assert violation["fieldViolations"][0]["field"] == "requests[1].content"
    assert embed(client, ["fine", "also fine"]) == [
        emulated_embedding("fine"),
        emulated_embedding("also fine"),
    ]
    stats = gemini_emulator.stats
    assert stats.status_counts == {400: 1, 200: 1}
    assert stats.embedded_texts == ["fine", "also fine"]


def test_refuse_texts_answers_google_s_generic_400_by_default(gemini_emulator: GeminiEmulator) -> None:
    gemini_emulator.refuse_texts("bad")

    answer = raw_request(
        gemini_emulator, BATCH_PATH, {"requests": [element("bad text")]}, key=gemini_emulator.api_key
    )

    assert answer.status == 400
    error = answer.body["error"]
    assert (error["code"], error["status"], error["message"]) == (
        400,
        "INVALID_ARGUMENT",
        "Request contains an invalid argument.",
    )


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        pytest.param(
            f"/v1beta/models/{MODEL}:embedContent", element("a bad text"), "content", id="gemini-embedContent"
        ),
        pytest.param(
            f"/v1beta1/publishers/google/models/{MODEL}:batchEmbedContents",
            {
                "requests": [
                    {"content": {"parts": [{"text": "fine"}]}},
                    {"content": {"parts": [{"text": "bad"}]}},
                ]
            },
            "requests[1].content",
            id="vertex-batchEmbedContents",
        ),
        pytest.param(
            "/v1beta1/publishers/google/models/text-embedding-005:predict",
            {"instances": [{"content": "fine"}, {"content": "fine"}, {"content": "so bad"}]},
            "instances[2].content",
            id="vertex-predict",
        ),
    ],
)
def test_refuse_texts_covers_every_embed_route(
    gemini_emulator: GeminiEmulator, path: str, body: dict[str, Any], field: str
) -> None:
    gemini_emulator.refuse_texts("bad", "refused on purpose")

    answer = raw_request(gemini_emulator, path, body, key=gemini_emulator.api_key)

    assert answer.status == 400
    error = answer.body["error"]
    assert (error["status"], error["message"]) == ("INVALID_ARGUMENT", "refused on purpose")
    assert error["details"][0]["fieldViolations"][0]["field"] == field


def test_a_refused_call_spends_no_quota(gemini_emulator: GeminiEmulator, client: genai.Client) -> None:
    gemini_emulator.configure(requests_per_day=1)
    gemini_emulator.refuse_texts("bad")

    with pytest.raises(errors.ClientError):
        embed(client, ["bad"])

    assert embed(client, ["good"]) == [emulated_embedding("good")]


def test_clear_faults_forgets_refused_texts(gemini_emulator: GeminiEmulator, client: genai.Client) -> None:
    gemini_emulator.refuse_texts("bad")

    gemini_emulator.clear_faults()

    assert embed(client, ["bad"]) == [emulated_embedding("bad")]


@pytest.mark.parametrize(
    ("substring", "message", "error"),
    [
        pytest.param("", "no", "substring must be a non-empty string, got ''", id="empty-substring"),
        pytest.param(None, "no", "substring must be a non-empty string, got None", id="no-substring"),
        pytest.param("bad", "", "message must be a non-empty string, got ''", id="empty-message"),
    ],
)
def test_refuse_texts_rejects_empty_arguments(
    gemini_emulator: GeminiEmulator, substring: Any, message: str, error: str
) -> None:
    with pytest.raises(ValueError, match=error):
        gemini_emulator.refuse_texts(substring, message)
