"""Adaptive concurrency: the AIMD arithmetic and the gate, with a fake clock (no timing)."""

from __future__ import annotations

import threading

import pytest

from airflow_provider_gemini_milvus.gemini.concurrency import (
    GROWTH_PAST_REFUSED_LEVEL,
    MIN_SUCCESSES_TO_LEARN,
    NOTHING_DELIVERED_ESTIMATE,
    PLATEAU_SHARE,
    RESUME_SHARE,
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


# -- starting from a rate an earlier job found, and what a window learns -------------------------------------


def test_a_window_started_from_a_rate_spaces_its_first_starts_at_that_rate_without_slow_start() -> None:
    clock = FakeClock()
    gate = AdaptiveConcurrency(initial=16, ceiling=32, start_rate=10.0, clock=clock)
    assert gate.started_from_rate
    first = gate.acquire()
    held: list[float] = []
    waiter = threading.Thread(target=lambda: held.append(gate.acquire()))
    waiter.start()
    waiter.join(timeout=0.5)
    assert waiter.is_alive(), "a second request started at once: slow start, not the learned rate"
    clock.now += 1 / (10.0 * RESUME_SHARE)
    waiter.join(timeout=5)
    assert held == [clock.now]
    clock.now = first + 0.3
    gate.succeeded(first)
    # The first round trip sets the window that holds the rate: RESUME_SHARE of 10/s x 0.3 s, no slow start.
    assert not gate.aimd.slow_start
    assert gate.window == pytest.approx(RESUME_SHARE * 10.0 * 0.3)


def test_a_resumed_window_probes_slowly_up_to_the_learned_level_then_faster() -> None:
    window = AimdWindow(initial=16, ceiling=1000)
    window.resume_at(100.0)
    assert window.window == pytest.approx(100.0 * RESUME_SHARE)
    for _ in range(int(ROUND_TRIPS_TO_REFUSED_LEVEL * 0.5) * 100):
        window.on_success(0.3)
    assert RESUME_SHARE * 100 < window.window < 100
    for _ in range(int(ROUND_TRIPS_TO_REFUSED_LEVEL) * 200):
        window.on_success(0.3)
    assert window.window > 100 * ROOM_AGAIN_SHARE


def test_the_first_429_of_a_resumed_window_holds_it_without_a_cut_the_next_one_cuts() -> None:
    clock = FakeClock()
    gate = AdaptiveConcurrency(initial=16, ceiling=32, start_rate=10.0, clock=clock)
    sent = gate.acquire()
    clock.now += 0.3
    gate.succeeded(sent)
    level = gate.window
    sent = gate.acquire()
    clock.now += 0.3
    gate.rate_limited(sent, retry_delay=1.0)
    assert gate.window == level
    clock.now += 1.0
    sent = gate.acquire()
    clock.now += 0.3
    gate.rate_limited(sent, retry_delay=1.0)
    assert gate.window == pytest.approx(level * 0.8)


def test_a_window_learns_nothing_until_the_quota_refuses_it() -> None:
    clock = FakeClock()
    gate = AdaptiveConcurrency(initial=16, ceiling=32, clock=clock)
    gate.begin_call()
    for _ in range(3):
        sent = [gate.acquire() for _ in range(gate.aimd.allowed_in_flight)]
        clock.now += 0.3
        for started in sent:
            gate.succeeded(started, tokens=50)
    gate.end_call()
    assert gate.learned_rates() is None


def test_the_first_cut_learns_what_the_quota_let_through_per_second_until_its_wait_had_passed() -> None:
    clock = FakeClock()
    gate = AdaptiveConcurrency(initial=16, ceiling=32, clock=clock)
    gate.begin_call()
    sent = [gate.acquire() for _ in range(16)]
    clock.now += 0.3
    for started in sent[:12]:
        gate.succeeded(started, tokens=100)
    gate.rate_limited(sent[12], retry_delay=5.7)
    for _ in sent[13:]:
        gate.released()
    # 12 answers over the 6 s until the wait ends, counted over one 0.3 s round trip less: 12 / 5.7 s.
    assert gate.learned_rates() is None  # too few answers since to keep it
    clock.now += 5.7
    for _ in range(MIN_SUCCESSES_TO_LEARN):
        started = gate.acquire()
        clock.now += 0.3
        gate.succeeded(started, tokens=100)
        clock.now += 1.0
    gate.end_call()
    requests, tokens = gate.learned_rates() or (0.0, 0.0)
    assert requests == pytest.approx(12 / 5.7)
    assert tokens == pytest.approx(requests * 100)


def test_a_later_cut_at_a_higher_level_is_not_learned_a_lower_one_is() -> None:
    clock = FakeClock()
    gate = AdaptiveConcurrency(initial=16, ceiling=32, clock=clock)
    gate.begin_call()
    sent = [gate.acquire() for _ in range(16)]
    clock.now += 0.3
    for started in sent[:12]:
        gate.succeeded(started)
    gate.rate_limited(sent[12], retry_delay=5.7)
    for _ in sent[13:]:
        gate.released()
    clock.now += 5.7
    for _ in range(MIN_SUCCESSES_TO_LEARN):
        started = gate.acquire()
        clock.now += 0.3
        gate.succeeded(started)
        clock.now += 1.0
    first = (gate.learned_rates() or (0.0, 0.0))[0]
    gate.aimd.window = 20.0  # took up the room neighbours left, then refused there
    started = gate.acquire()
    clock.now += 0.3
    gate.rate_limited(started, retry_delay=None)
    assert (gate.learned_rates() or (0.0, 0.0))[0] == pytest.approx(first)
    gate.aimd.window = 0.2
    clock.now += 0.1
    started = gate.acquire()
    clock.now += 0.3
    gate.rate_limited(started, retry_delay=None)
    assert (gate.learned_rates() or (0.0, 0.0))[0] < first


def test_a_resumed_window_never_cut_learns_the_higher_of_its_start_and_what_it_got_through() -> None:
    clock = FakeClock()
    gate = AdaptiveConcurrency(initial=16, ceiling=32, start_rate=2.0, clock=clock)
    gate.begin_call()
    for _ in range(MIN_SUCCESSES_TO_LEARN):
        started = gate.acquire()
        clock.now += 1.0
        gate.succeeded(started, tokens=10)
    gate.end_call()
    # One a second got through: the start rate stands.
    assert gate.learned_rates() == pytest.approx((2.0, 20.0))

    clock = FakeClock()
    gate = AdaptiveConcurrency(initial=16, ceiling=32, start_rate=0.5, clock=clock)
    for call in range(2):
        gate.begin_call()
        for request in range(MIN_SUCCESSES_TO_LEARN):
            started = gate.acquire()
            clock.now += 0.1
            gate.succeeded(started, tokens=10)
            clock.now += 0.9
            if call == request == 0:  # the first start was paced at the start rate: the next waits for it
                clock.now = started + 1 / (0.5 * RESUME_SHARE)
        gate.end_call()
        clock.now += 100.0  # between calls: not counted
    # About one a second got through (the calls' time only), more than it started at.
    requests, tokens = gate.learned_rates() or (0.0, 0.0)
    assert requests > 0.9
    assert tokens == pytest.approx(10 * requests)


def test_a_start_rate_must_be_positive() -> None:
    with pytest.raises(ValueError, match="start_rate must be a positive number"):
        AdaptiveConcurrency(start_rate=0.0)
