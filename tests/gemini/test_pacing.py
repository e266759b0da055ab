"""Client-side quota pacing: pure logic with a fake clock."""

from __future__ import annotations

import random

import pytest

from airflow_provider_gemini_milvus.gemini.pacing import RatePacer


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


def test_a_short_window_holds_its_share_of_the_per_minute_quota() -> None:
    clock = FakeClock()
    pacer = RatePacer(3600, window_seconds=1.0, clock=clock, sleep=clock.sleep)
    starts = []
    for amount in [1, 5, 20] * 40:
        pacer.acquire(amount)
        starts.append((clock.now, amount))
    for index, (start, _) in enumerate(starts):
        assert sum(amount for other, amount in starts[index:] if other < start + 1.0) <= 60
