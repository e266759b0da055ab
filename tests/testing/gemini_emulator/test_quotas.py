"""Per-minute and per-day quotas: 429s with Google's details, sliding windows."""

from __future__ import annotations

import time

import pytest
from google import genai
from google.genai import errors

from airflow_provider_gemini_milvus.testing.gemini_emulator import GeminiEmulator
from tests.testing.gemini_emulator.calls import embed, error_detail


def test_requests_per_minute_quota_is_429_with_retry_info(
    gemini_emulator: GeminiEmulator, client: genai.Client
) -> None:
    gemini_emulator.configure(requests_per_minute=24, quota_window_seconds=5.0)  # two calls per 5 s window
    embed(client, ["a"])
    embed(client, ["b"])

    with pytest.raises(errors.ClientError) as caught:
        embed(client, ["c"])

    assert caught.value.code == 429
    assert caught.value.status == "RESOURCE_EXHAUSTED"
    failure = error_detail(caught.value, "QuotaFailure")
    assert failure is not None
    assert failure["violations"][0]["quotaId"] == "EmbedContentRequestsPerMinutePerProjectPerModel"
    retry = error_detail(caught.value, "RetryInfo")
    assert retry is not None
    assert 0 < float(retry["retryDelay"].removesuffix("s")) <= 5.0
    assert "Please retry in" in (caught.value.message or "")
    gemini_emulator.configure(
        requests_per_minute=36
    )  # room for exactly one more call: the refused one did not count
    assert embed(client, ["c"])
    assert gemini_emulator.stats.status_counts == {200: 3, 429: 1}


def test_quota_window_slides(gemini_emulator: GeminiEmulator, client: genai.Client) -> None:
    gemini_emulator.configure(requests_per_minute=120, quota_window_seconds=0.5)  # one call per 0.5 s
    embed(client, ["a"])
    with pytest.raises(errors.ClientError) as caught:
        embed(client, ["b"])
    retry = error_detail(caught.value, "RetryInfo")
    assert retry is not None

    time.sleep(float(retry["retryDelay"].removesuffix("s")))

    assert embed(client, ["b"])


def test_tokens_per_minute_quota(gemini_emulator: GeminiEmulator, client: genai.Client) -> None:
    gemini_emulator.configure(tokens_per_minute=60, quota_window_seconds=10.0)  # ten tokens per 10 s window
    embed(client, ["x" * 40])  # ten tokens

    with pytest.raises(errors.ClientError) as caught:
        embed(client, ["y"])

    failure = error_detail(caught.value, "QuotaFailure")
    assert failure is not None
    assert failure["violations"][0]["quotaId"] == "EmbedContentInputTokensPerMinutePerProjectPerModel"
    assert error_detail(caught.value, "RetryInfo") is not None


def test_request_quota_can_count_texts(gemini_emulator: GeminiEmulator, client: genai.Client) -> None:
    gemini_emulator.configure(
        requests_per_minute=180, quota_window_seconds=1.0, quota_counts_texts=True
    )  # 3 a second
    embed(client, ["a", "b"])

    with pytest.raises(errors.ClientError) as caught:
        embed(client, ["c", "d"])

    assert caught.value.code == 429
    assert embed(client, ["c"])


def test_per_day_quota_has_no_retry_info(gemini_emulator: GeminiEmulator, client: genai.Client) -> None:
    gemini_emulator.configure(requests_per_day=1)
    embed(client, ["a"])

    with pytest.raises(errors.ClientError) as caught:
        embed(client, ["b"])

    assert caught.value.code == 429
    failure = error_detail(caught.value, "QuotaFailure")
    assert failure is not None
    assert failure["violations"][0]["quotaId"] == "EmbedContentRequestsPerDayPerProjectPerModel"
    assert error_detail(caught.value, "RetryInfo") is None
