"""When to retry a Gemini request and how long to wait: pure logic."""

from __future__ import annotations

import random

import pytest

from airflow_provider_gemini_milvus.gemini.retries import (
    BackoffPolicy,
    is_daily_quota,
    is_document_refusal,
    is_retryable_status,
    server_retry_delay,
)
from airflow_provider_gemini_milvus.hooks.gemini import GeminiHook
from airflow_provider_gemini_milvus.testing.gemini_emulator import GeminiEmulator


def test_backoff_grows_exponentially_with_jitter_and_is_capped() -> None:
    policy = BackoffPolicy(max_retries=8, initial_delay=1.0, max_delay=10.0)
    rng = random.Random(7)
    delays = [policy.delay(number, rng) for number in range(1, 9)]
    for number, delay in enumerate(delays, start=1):
        ceiling = min(10.0, 2 ** (number - 1))
        assert ceiling / 2 <= delay <= ceiling
    assert max(delays) <= 10.0


@pytest.mark.parametrize(
    ("code", "retryable"), [(429, True), (500, True), (503, True), (504, True), (408, True)]
)
def test_retryable_statuses(code: int, retryable: bool) -> None:
    assert is_retryable_status(code) is retryable


@pytest.mark.parametrize("code", [400, 401, 403, 404, 409, None])
def test_client_errors_are_not_retryable(code: int | None) -> None:
    assert not is_retryable_status(code)


def _quota_body(retry_delay: str | None, quota_id: str = "EmbedContentRequestsPerMinutePerProjectPerModel"):
    details: list[dict[str, object]] = [
        {
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            "violations": [{"quotaId": quota_id, "quotaValue": "100"}],
        }
    ]
    if retry_delay is not None:
        details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay})
    return {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "quota", "details": details}}


def test_server_delay_comes_from_retry_info() -> None:
    assert server_retry_delay(_quota_body("15s")) == 15.0
    assert server_retry_delay(_quota_body("0.25s")) == 0.25


def test_server_delay_falls_back_to_retry_after_then_the_message() -> None:
    assert server_retry_delay(_quota_body(None), {"retry-after": "3"}) == 3.0
    body = {"error": {"message": "Quota exceeded. Please retry in 15.65861672s."}}
    assert server_retry_delay(body) == pytest.approx(15.65861672)
    assert server_retry_delay({"error": {"message": "no hint"}}) is None
    assert server_retry_delay(None) is None


def test_server_delay_is_capped() -> None:
    assert server_retry_delay(_quota_body("86400s")) == 300.0


def test_daily_quota_is_recognised() -> None:
    assert is_daily_quota(_quota_body(None, "EmbedContentRequestsPerDayPerProjectPerModel"))
    assert not is_daily_quota(_quota_body("2s"))
    assert not is_daily_quota({"error": {}})


@pytest.mark.parametrize(
    ("code", "status", "details", "refusal"),
    [
        pytest.param(400, "INVALID_ARGUMENT", {"error": {"message": "bad"}}, True, id="plain-400"),
        pytest.param(
            400,
            "INVALID_ARGUMENT",
            {"error": {"details": [{"@type": "type.googleapis.com/google.rpc.BadRequest"}]}},
            True,
            id="400-naming-a-field",
        ),
        pytest.param(
            400,
            "INVALID_ARGUMENT",
            {
                "error": {
                    "details": [
                        {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}
                    ]
                }
            },
            False,
            id="invalid-key",
        ),
        pytest.param(400, "FAILED_PRECONDITION", None, False, id="other-400"),
        pytest.param(429, "RESOURCE_EXHAUSTED", None, False, id="quota"),
        pytest.param(503, "UNAVAILABLE", None, False, id="server"),
        pytest.param(None, None, None, False, id="no-answer"),
    ],
)
def test_only_a_400_about_what_was_sent_is_a_document_refusal(
    code: int | None, status: str | None, details: object, refusal: bool
) -> None:
    assert is_document_refusal(code, status, details) is refusal


@pytest.mark.parametrize("value", ["nan", "NaN", "-1", "-0.5", "inf", "-inf", "Infinity", "Wed, 21 Oct 2015"])
def test_an_unusable_retry_after_is_no_hint(value: str) -> None:
    assert server_retry_delay(_quota_body(None), {"retry-after": value}) is None
    body = {"error": {"message": "Quota exceeded. Please retry in 2s."}}
    assert server_retry_delay(body, {"retry-after": value}) == 2.0  # the next hint still counts


@pytest.mark.usefixtures("gemini_connection")
@pytest.mark.parametrize("value", ["nan", "-3", "inf"])
def test_the_hook_retries_through_an_unusable_retry_after_header(
    gemini_emulator: GeminiEmulator, value: str
) -> None:
    gemini_emulator.fail_next(1, 503, retry_after=value)

    vectors = GeminiHook().embed(["a text"], output_dimensionality=128)

    assert vectors.shape == (1, 128)
    assert gemini_emulator.stats.status_counts[503] == 1
