"""What an attempt came to, summarised without the SDK's objects (which may hold the request and its key)."""

from __future__ import annotations

import json

import pytest

from airflow_provider_gemini_milvus.gemini.attempts import (
    FailedAttempt,
    parse_failure,
    short_reason,
    unparsable_response_errors,
)


def test_a_parse_failure_names_where_not_the_body() -> None:
    with pytest.raises(json.JSONDecodeError) as excinfo:
        json.loads('{"embeddings": [AIza-secret')
    assert isinstance(excinfo.value, unparsable_response_errors())
    text = parse_failure(excinfo.value)
    assert text.startswith("invalid JSON: Expecting value at character ")
    assert "AIza" not in text


@pytest.mark.parametrize(
    ("attempt", "expected"),
    [
        (FailedAttempt("unusable answer: NaN", retryable=True, http_status=200), "unusable answer"),
        (
            FailedAttempt("503 UNAVAILABLE: busy", retryable=True, http_status=503, status="UNAVAILABLE"),
            "503 UNAVAILABLE",
        ),
        (FailedAttempt("ReadTimeout: timed out", retryable=True), "ReadTimeout"),
    ],
)
def test_short_reasons_for_logs(attempt: FailedAttempt, expected: str) -> None:
    assert short_reason(attempt) == expected


def test_a_refusal_reason_quotes_the_api_message() -> None:
    refused = FailedAttempt(
        "400",
        retryable=False,
        http_status=400,
        status="INVALID_ARGUMENT",
        api_message="bad text",
        document_refusal=True,
    )
    assert refused.refusal_reason == "400 INVALID_ARGUMENT: bad text"
    assert FailedAttempt("ConnectError: refused", retryable=True).refusal_reason == "ConnectError: refused"
