"""Pacing and retry policy: pure logic with a fake clock."""

from __future__ import annotations

import random

import pytest

from airflow_provider_gemini_milvus.pacing import RatePacer
from airflow_provider_gemini_milvus.retries import (
    BackoffPolicy,
    is_daily_quota,
    is_retryable_status,
    server_retry_delay,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_pacer_never_starts_more_than_the_quota_in_any_minute() -> None:
    clock = FakeClock()
    pacer = RatePacer(120, clock=clock, sleep=clock.sleep)
    starts = []
    for _ in range(600):
        pacer.acquire()
        starts.append(clock.now)
    for index, start in enumerate(starts):
        in_window = sum(1 for other in starts[index:] if other < start + 60)
        assert in_window <= 120


def test_pacer_stays_under_the_quota_with_uneven_amounts() -> None:
    clock = FakeClock()
    pacer = RatePacer(10_000, clock=clock, sleep=clock.sleep)
    rng = random.Random(3)
    starts = []
    for _ in range(400):
        amount = rng.choice([10, 50, 400, 2000])
        pacer.acquire(amount)
        starts.append((clock.now, amount))
    for index, (start, _) in enumerate(starts):
        in_window = sum(amount for other, amount in starts[index:] if other < start + 60)
        assert in_window <= 10_000


def test_pacer_refuses_an_amount_that_can_never_fit() -> None:
    with pytest.raises(ValueError, match="can never start"):
        RatePacer(100).reserve(200)


def test_pacer_uses_nearly_all_of_the_quota() -> None:
    clock = FakeClock()
    pacer = RatePacer(120, clock=clock, sleep=clock.sleep)
    for _ in range(120):
        pacer.acquire()
    assert 58 <= clock.now - 100.0 <= 62


def test_pacer_charges_by_amount() -> None:
    clock = FakeClock()
    pacer = RatePacer(1000, headroom=0.0, clock=clock, sleep=clock.sleep)
    assert pacer.acquire(500) == 0
    assert pacer.acquire(1) == pytest.approx(30.0)


def test_pacer_refuses_a_non_positive_quota() -> None:
    with pytest.raises(ValueError, match="must be positive"):
        RatePacer(0)


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
