"""Adaptive concurrency: the AIMD arithmetic and the gate, with a fake clock (no timing)."""

from __future__ import annotations

import threading

import pytest

from airflow_provider_gemini_milvus.gemini_concurrency import (
    ADDITIVE_INCREASE,
    AdaptiveConcurrency,
    AimdWindow,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_slow_start_adds_one_request_per_fast_answer() -> None:
    window = AimdWindow(initial=8, ceiling=32)
    for _ in range(5):
        window.on_success(0.3)
    assert window.window == 13


def test_growth_stops_at_the_ceiling() -> None:
    window = AimdWindow(initial=8, ceiling=10)
    for _ in range(50):
        window.on_success(0.3)
    assert window.window == 10
    assert window.allowed_in_flight == 10


def test_a_429_cuts_the_window_multiplicatively_and_ends_slow_start() -> None:
    window = AimdWindow(initial=20, ceiling=32, decrease_factor=0.5)
    assert window.on_rate_limited(sent_at=1.0, now=2.0)
    assert window.window == 10
    assert not window.slow_start
    window.on_success(0.3, sent_at=3.0)
    assert window.window == pytest.approx(10 + ADDITIVE_INCREASE / 10)


def test_one_cut_per_round_trip() -> None:
    window = AimdWindow(initial=16, ceiling=32, decrease_factor=0.5)
    assert window.on_rate_limited(sent_at=1.0, now=2.0)
    # Sent before the cut: it reports on the old window.
    assert not window.on_rate_limited(sent_at=1.5, now=2.1)
    assert window.window == 8
    assert window.on_rate_limited(sent_at=2.2, now=2.5)
    assert window.window == 4


def test_answers_to_requests_sent_before_a_cut_do_not_grow_the_window() -> None:
    window = AimdWindow(initial=16, ceiling=32, decrease_factor=0.5)
    window.on_rate_limited(sent_at=1.0, now=2.0)
    window.on_success(0.3, sent_at=1.5)
    assert window.window == 8


def test_the_cut_starts_from_what_the_quota_delivered_when_that_is_less() -> None:
    window = AimdWindow(initial=30, ceiling=32, decrease_factor=0.5)
    window.on_rate_limited(sent_at=1.0, now=2.0, delivered=4.0)
    assert window.window == 2


def test_the_window_has_a_floor_and_one_request_may_always_be_in_flight() -> None:
    window = AimdWindow(initial=1, ceiling=32, floor=0.25, decrease_factor=0.5)
    for round_trip in range(10):
        window.on_rate_limited(sent_at=float(2 * round_trip), now=float(2 * round_trip + 1))
    assert window.window == 0.25
    assert window.allowed_in_flight == 1


def test_slow_answers_do_not_grow_the_window() -> None:
    window = AimdWindow(initial=8, ceiling=32)
    window.on_success(0.3)
    window.on_success(5.0)
    assert window.window == 9


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"floor": 0}, "need 0 < floor <= ceiling"),
        ({"floor": 40}, "need 0 < floor <= ceiling"),
        ({"decrease_factor": 1.0}, "decrease_factor must be in"),
    ],
)
def test_bad_parameters_are_refused(arguments: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AimdWindow(8, 32, **arguments)


def test_the_gate_admits_up_to_the_window_and_frees_a_slot_per_answer() -> None:
    clock = FakeClock()
    gate = AdaptiveConcurrency(initial=2, ceiling=4, clock=clock)
    first, second = gate.acquire(), gate.acquire()
    assert gate.in_flight == 2
    third: list[float] = []
    waiter = threading.Thread(target=lambda: third.append(gate.acquire()))
    waiter.start()
    waiter.join(timeout=0.5)
    assert waiter.is_alive(), "a third request started in a window of two"
    clock.now += 0.3
    gate.succeeded(first)
    waiter.join(timeout=5)
    assert third
    assert gate.in_flight == 2
    assert gate.window == 3
    gate.succeeded(second)
    gate.released()
    assert gate.in_flight == 0


def test_the_server_retry_delay_holds_every_start_until_it_has_passed() -> None:
    clock = FakeClock()
    gate = AdaptiveConcurrency(initial=4, ceiling=8, clock=clock)
    sent = gate.acquire()
    gate.rate_limited(sent, retry_delay=30.0)
    cancelled = threading.Event()
    started: list[float] = []
    waiter = threading.Thread(target=lambda: started.append(gate.acquire(cancelled)))
    waiter.start()
    waiter.join(timeout=0.5)
    assert waiter.is_alive(), "a request started during the server's retry delay"
    clock.now += 31.0
    waiter.join(timeout=5)
    assert started == [clock.now]
    assert gate.window < 4


def test_a_cancelled_call_stops_waiting_without_taking_a_slot() -> None:
    gate = AdaptiveConcurrency(initial=1, ceiling=1, clock=FakeClock())
    gate.acquire()
    cancelled = threading.Event()
    cancelled.set()
    gate.acquire(cancelled)
    assert gate.in_flight == 1
