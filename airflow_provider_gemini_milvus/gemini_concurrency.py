"""
Adaptive concurrency for Gemini requests: additive increase, multiplicative decrease (AIMD), as TCP flows
share a link.

Users rarely know their quota, and a quota set per task is wrong once several mapped shards share one
project quota. So, unless a fixed concurrency is pinned, the hook learns how many requests to keep in flight:

* it starts with :data:`DEFAULT_INITIAL_WINDOW` requests in flight and, while answers come back fast and
  without 429, adds one request per answer ("slow start": the window doubles every round trip) up to the
  ceiling (the connection's ``max_concurrency``);
* on a 429 it cuts the window, once per round trip (the answers to requests sent before the cut carry no
  news), to :data:`DEFAULT_DECREASE_FACTOR` of the smaller of the window and what the quota actually
  delivered since the previous cut (successful answers per round trip): a quota counted over a sliding
  minute lets a burst through and then refuses everything, so the window alone would overstate it;
* after the first 429 it grows by :data:`ADDITIVE_INCREASE` of a request per round trip (the quota is near,
  and a sliding window punishes an overshoot late) and spreads starts evenly over the round trip
  (``window / latency`` a second), so a window of 2.5 sends at 2.5 requests per round trip, not in bursts;
* when the 429 says how long to wait (``RetryInfo`` / ``Retry-After``), no request of the hook starts before
  then: the quota is spent, and every request sent in the meantime would be answered 429 too. That wait
  also counts in the delivered rate: what got through must last until it has passed.

Several hooks (shards in other processes) against one quota each run their own window; like TCP flows
they settle on shares that add up to the quota.

:class:`AimdWindow` is the pure arithmetic; :class:`AdaptiveConcurrency` holds the threads of one hook to it.
"""

from __future__ import annotations

import math
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["DEFAULT_INITIAL_WINDOW", "AdaptiveConcurrency", "AimdWindow"]

#: Requests in flight when a hook starts: twice the fixed 8 of earlier versions. A 429 costs what is in flight
#: when the quota runs out, and slow start reaches the ceiling before a minute's quota is spent anyway; a
#: start of 8 instead costs a round trip on every short job.
DEFAULT_INITIAL_WINDOW = 16

#: Share of the window kept on a 429.
DEFAULT_DECREASE_FACTOR = 0.8

#: Requests added to the window per round trip once a 429 has been seen.
ADDITIVE_INCREASE = 0.03

#: The smallest window: one request every ten round trips. A window below one still lets one request be
#: in flight, but spaces starts further apart than a round trip, so many shards sharing a small quota can
#: each go slower than one request at a time.
MIN_WINDOW = 0.1

#: An answer slower than this many times the fastest answer seen is not "fast": the window does not grow
#: on it (the server, or this machine's CPU, is already the bound).
SLOW_ANSWER_FACTOR = 3.0

#: Weight of a new latency sample in the smoothed round-trip time.
_LATENCY_SMOOTHING = 0.125

#: Longest single wait while holding a thread back, so a cancelled call is noticed soon.
_MAX_WAIT_SECONDS = 0.25


class AimdWindow:
    """
    How many requests may be in flight: the pure arithmetic of AIMD, without threads or clocks.

    :param initial: the window to start with (clipped to ``[floor, ceiling]``).
    :param ceiling: the largest window.
    :param floor: the smallest window; whatever the window, one request may always be in flight.
    :param decrease_factor: share of the window kept on a 429, in ``(0, 1)``.
    """

    def __init__(
        self,
        initial: float = DEFAULT_INITIAL_WINDOW,
        ceiling: float = 32,
        *,
        floor: float = MIN_WINDOW,
        decrease_factor: float = DEFAULT_DECREASE_FACTOR,
    ) -> None:
        if not 0 < floor <= ceiling:
            raise ValueError(f"need 0 < floor <= ceiling, got floor {floor:g} and ceiling {ceiling:g}")
        if not 0 < decrease_factor < 1:
            raise ValueError(f"decrease_factor must be in (0, 1), got {decrease_factor:g}")
        self.ceiling = float(ceiling)
        self.floor = float(floor)
        self.decrease_factor = decrease_factor
        self.window = min(max(float(initial), self.floor), self.ceiling)
        self.slow_start = True
        self.fastest_answer: float | None = None
        self._last_decrease: float | None = None

    @property
    def allowed_in_flight(self) -> int:
        """Requests that may be in flight at once: the window rounded up, and never fewer than one."""
        return max(1, math.ceil(self.window))

    def raise_ceiling(self, ceiling: float) -> None:
        """Allow a larger window (a call asked for more requests in flight than the connection)."""
        self.ceiling = max(self.ceiling, float(ceiling))

    def on_success(self, latency: float, sent_at: float | None = None) -> None:
        """
        An answer came back usable after ``latency`` seconds: grow the window if the answer was fast and
        its request was sent after the last cut (earlier ones report on the window before it).

        In slow start the window grows by one per answer (doubling per round trip), afterwards by
        ``ADDITIVE_INCREASE / window`` per answer (:data:`ADDITIVE_INCREASE` per round trip).
        """
        if self.fastest_answer is None or latency < self.fastest_answer:
            self.fastest_answer = latency
        if latency > SLOW_ANSWER_FACTOR * self.fastest_answer:
            return
        if sent_at is not None and self._last_decrease is not None and sent_at <= self._last_decrease:
            return
        step = 1.0 if self.slow_start else ADDITIVE_INCREASE / self.window
        self.window = min(self.ceiling, self.window + step)

    def on_rate_limited(self, sent_at: float, now: float, delivered: float | None = None) -> bool:
        """
        A request sent at ``sent_at`` was answered 429 at ``now``: cut the window, once per round trip.

        A request sent before the last cut reports on the old window, so it changes nothing.

        :param delivered: successful answers per round trip since the previous cut, if known; the cut
            starts from it when it is smaller than the window.
        :return: whether the window was cut.
        """
        self.slow_start = False
        if self._last_decrease is not None and sent_at <= self._last_decrease:
            return False
        base = self.window if delivered is None else min(self.window, delivered)
        self.window = max(self.floor, base * self.decrease_factor)
        self._last_decrease = now
        return True


class AdaptiveConcurrency:
    """
    Holds the request threads of one hook to an :class:`AimdWindow` (thread-safe).

    Call :meth:`acquire` before sending and exactly one of :meth:`succeeded`, :meth:`rate_limited` or
    :meth:`released` after the answer.

    :param initial: the window to start with.
    :param ceiling: the largest window: the connection's ``max_concurrency``.
    :param clock: monotonic clock, replaceable in tests.
    """

    def __init__(
        self,
        initial: float = DEFAULT_INITIAL_WINDOW,
        ceiling: float = 32,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.aimd = AimdWindow(initial, ceiling)
        self._clock = clock
        self._condition = threading.Condition()
        self._in_flight = 0
        self._next_start = 0.0
        self._hold_until = 0.0
        self._smoothed_latency: float | None = None
        self._cycle_started: float | None = None
        self._cycle_successes = 0

    @property
    def window(self) -> float:
        return self.aimd.window

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def raise_ceiling(self, ceiling: int) -> None:
        with self._condition:
            self.aimd.raise_ceiling(ceiling)

    def acquire(self, cancelled: threading.Event | None = None) -> float:
        """
        Wait until one more request may start; return when it started (the clock's reading).

        Returns early, without taking a slot, if ``cancelled`` is set: the caller checks it next.
        """
        with self._condition:
            while cancelled is None or not cancelled.is_set():
                now = self._clock()
                wait = self._wait_before_start(now)
                if wait <= 0:
                    self._in_flight += 1
                    if self._cycle_started is None:
                        self._cycle_started = now
                    if not self.aimd.slow_start and self._smoothed_latency is not None:
                        self._next_start = max(now, self._next_start) + (
                            self._smoothed_latency / self.aimd.window
                        )
                    return now
                self._condition.wait(min(wait, _MAX_WAIT_SECONDS))
            return self._clock()

    def _wait_before_start(self, now: float) -> float:
        """Seconds until a start is allowed; ``inf`` while the window is full."""
        if self._in_flight >= self.aimd.allowed_in_flight:
            return math.inf
        return max(self._hold_until - now, self._next_start - now, 0.0)

    def succeeded(self, sent_at: float) -> None:
        """The request started at ``sent_at`` got a usable answer."""
        with self._condition:
            latency = self._finish(sent_at)
            self._cycle_successes += 1
            self.aimd.on_success(latency, sent_at)
            self._condition.notify_all()

    def rate_limited(self, sent_at: float, retry_delay: float | None) -> None:
        """
        The request started at ``sent_at`` was answered 429; ``retry_delay`` is the server's wait, if any.

        Cuts the window and, with a server wait, holds every start of this hook until it has passed.
        """
        with self._condition:
            now = self._clock()
            self._finish(sent_at)
            resume = max(self._hold_until, now + (retry_delay or 0.0))
            if self.aimd.on_rate_limited(sent_at, now, self._delivered_per_round_trip(resume)):
                self._cycle_started, self._cycle_successes = resume, 0
            self._hold_until = resume
            self._condition.notify_all()

    def released(self) -> None:
        """A request ended otherwise (another error, not sent after all): no signal either way."""
        with self._condition:
            self._in_flight -= 1
            self._condition.notify_all()

    def _delivered_per_round_trip(self, resume: float) -> float | None:
        """
        Successful answers per smoothed round trip from the last cut (or the first start) until ``resume``.

        The server's retry delay counts in: what was delivered before it must last until it has passed.
        """
        if not self._cycle_successes or self._smoothed_latency is None or self._cycle_started is None:
            return None  # nothing got through yet: no measure of the quota, only of the window
        if resume <= self._cycle_started:
            return None
        return self._cycle_successes / (resume - self._cycle_started) * self._smoothed_latency

    def _finish(self, sent_at: float) -> float:
        self._in_flight -= 1
        latency = max(self._clock() - sent_at, 0.0)
        if self._smoothed_latency is None:
            self._smoothed_latency = latency
        else:
            self._smoothed_latency += _LATENCY_SMOOTHING * (latency - self._smoothed_latency)
        return latency
