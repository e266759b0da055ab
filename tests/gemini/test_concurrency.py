"""Adaptive concurrency: the AIMD arithmetic and the gate, with a fake clock (no timing)."""

from __future__ import annotations

import threading

import pytest

from airflow_provider_gemini_milvus.gemini.concurrency import (
    GROWTH_PAST_REFUSED_LEVEL,
    NOTHING_DELIVERED_ESTIMATE,
    PLATEAU_SHARE,
    ROOM_AGAIN_SHARE,
    ROUND_TRIPS_TO_PLATEAU,
    ROUND_TRIPS_TO_REFUSED_LEVEL,
    AdaptiveConcurrency,
    AimdWindow,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_slow_start_grows_the_window_by_half_a_request_per_fast_answer() -> None:
    window = AimdWindow(initial=8, ceiling=32)
    for _ in range(8):
        window.on_success(0.3)
    assert window.window == 8 * 1.5


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
    assert 10 < window.window < 11


def grow_for(window: AimdWindow, round_trips: float) -> list[float]:
    """Feed ``window`` fast answers for ``round_trips`` round trips; return the window after each one."""
    seen = []
    elapsed = 0.0
    while elapsed < round_trips:
        elapsed += 1.0 / window.window
        window.on_success(0.3, sent_at=3.0)
        seen.append(window.window)
    return seen


def test_after_a_cut_the_window_climbs_quickly_to_a_plateau_under_the_refused_level_then_slowly() -> None:
    window = AimdWindow(initial=10, ceiling=32, decrease_factor=0.8)
    window.slow_start = False
    window.on_rate_limited(sent_at=1.0, now=2.0)
    assert window.window == pytest.approx(8)

    rising = grow_for(window, ROUND_TRIPS_TO_PLATEAU)
    assert rising == sorted(rising)
    assert window.window == pytest.approx(10 * PLATEAU_SHARE, abs=0.05)
    plateau = grow_for(window, ROUND_TRIPS_TO_REFUSED_LEVEL / 2)
    # Half way to the refused level, the cubic has covered an eighth of the way.
    assert plateau[-1] - 9 == pytest.approx((10 - 9) / 8, abs=0.05)
    grow_for(window, ROUND_TRIPS_TO_REFUSED_LEVEL / 2)
    assert window.window == pytest.approx(10, abs=0.1)


def test_past_the_refused_level_without_a_429_the_window_takes_up_the_room_quickly() -> None:
    window = AimdWindow(initial=2, ceiling=32, decrease_factor=0.8)
    window.slow_start = False
    window.on_rate_limited(sent_at=1.0, now=2.0)
    while window.window < 2 * ROOM_AGAIN_SHARE:
        window.on_success(0.3, sent_at=3.0)
    grow_for(window, 10)
    assert window.window >= 2 * ROOM_AGAIN_SHARE * (1 + GROWTH_PAST_REFUSED_LEVEL) ** 9


def test_a_small_window_climbs_back_as_fast_as_a_window_of_one_request() -> None:
    small = AimdWindow(initial=0.2, ceiling=32, decrease_factor=0.8)
    small.slow_start = False
    small.on_rate_limited(sent_at=1.0, now=2.0)
    grow_for(small, ROUND_TRIPS_TO_PLATEAU + ROUND_TRIPS_TO_REFUSED_LEVEL)
    # From its plateau it gains what a window of one request gains, not a fifth of that.
    assert small.window >= 0.2 * PLATEAU_SHARE + (1.0 - PLATEAU_SHARE) * 1.0 - 1e-9


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


def test_the_cut_ending_slow_start_starts_from_what_the_quota_delivered_when_that_is_less() -> None:
    window = AimdWindow(initial=30, ceiling=32, decrease_factor=0.5)
    window.on_rate_limited(sent_at=1.0, now=2.0, delivered=4.0)
    assert window.window == 2


def test_later_cuts_start_from_the_window() -> None:
    window = AimdWindow(initial=30, ceiling=32, decrease_factor=0.5)
    window.on_rate_limited(sent_at=1.0, now=2.0, delivered=8.0)
    window.on_rate_limited(sent_at=3.0, now=4.0, delivered=0.5)
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
    assert window.window == 8.5


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
    assert gate.window == 2.5
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


def test_the_first_cut_counts_what_got_through_until_the_servers_retry_delay_has_passed() -> None:
    clock = FakeClock()
    gate = AdaptiveConcurrency(initial=4, ceiling=8, clock=clock)
    sent = [gate.acquire() for _ in range(4)]
    clock.now += 0.3
    for started in sent[:3]:
        gate.succeeded(started)
    gate.rate_limited(sent[3], retry_delay=2.7)
    # 3 answers over the 3 s until the hold ends, at 0.3 s a round trip: 0.3 per round trip, cut to 0.8.
    assert gate.window == pytest.approx(0.3 * 0.8)


def test_a_first_cut_before_anything_got_through_starts_from_one_request_not_the_window() -> None:
    clock = FakeClock()
    gate = AdaptiveConcurrency(initial=16, ceiling=32, clock=clock)
    sent = gate.acquire()
    clock.now += 0.3
    gate.rate_limited(sent, retry_delay=5.0)
    assert gate.window == pytest.approx(NOTHING_DELIVERED_ESTIMATE * 0.8)


def test_successes_of_the_round_trip_that_met_the_first_429_raise_the_first_cut() -> None:
    window = AimdWindow(initial=30, ceiling=32, decrease_factor=0.5)
    window.on_rate_limited(sent_at=1.0, now=2.0, delivered=2.0)
    assert window.window == 1
    window.on_late_success(sent_at=1.0, delivered=8.0)
    assert window.window == 4
    # Never above the window slow start had reached.
    window.on_late_success(sent_at=1.0, delivered=100.0)
    assert window.window == 15


def test_late_successes_change_nothing_after_a_second_cut_or_when_sent_after_the_cut() -> None:
    window = AimdWindow(initial=30, ceiling=32, decrease_factor=0.5)
    window.on_rate_limited(sent_at=1.0, now=2.0, delivered=2.0)
    window.on_late_success(sent_at=2.5, delivered=8.0)
    assert window.window == 1
    window.on_rate_limited(sent_at=3.0, now=4.0)
    window.on_late_success(sent_at=1.0, delivered=8.0)
    assert window.window == 0.5


def test_a_first_429_arriving_before_the_successes_of_its_round_trip_cuts_from_what_they_delivered() -> None:
    clock = FakeClock()
    gate = AdaptiveConcurrency(initial=16, ceiling=32, clock=clock)
    sent = [gate.acquire() for _ in range(16)]
    clock.now += 0.3
    gate.rate_limited(sent[0], retry_delay=0.3)
    for started in sent[1:]:
        gate.succeeded(started)
    # 15 answers over the 0.6 s until the hold ends, at 0.3 s a round trip: 7.5 per round trip, cut to 0.8.
    assert gate.window == pytest.approx(7.5 * 0.8)


def test_the_first_cut_counts_round_trips_at_the_fastest_answer_not_the_crowded_slow_start_ones() -> None:
    clock = FakeClock()
    gate = AdaptiveConcurrency(initial=4, ceiling=8, clock=clock)
    sent = [gate.acquire() for _ in range(4)]
    clock.now += 0.3
    gate.succeeded(sent[0])
    clock.now += 0.6
    gate.succeeded(sent[1])
    gate.succeeded(sent[2])
    gate.rate_limited(sent[3], retry_delay=2.1)
    # 3 answers over the 3 s until the hold ends, at the fastest answer's 0.3 s a round trip.
    assert gate.window == pytest.approx(0.3 * 0.8)
