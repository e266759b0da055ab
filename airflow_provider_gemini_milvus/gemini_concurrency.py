"""
Adaptive concurrency for Gemini requests: additive increase, multiplicative decrease (AIMD), as TCP flows
share a link.

Users rarely know their quota, and a quota set per task is wrong once several mapped shards share one
project quota. So, unless a fixed concurrency is pinned, the hook learns how many requests to keep in flight:

* it starts with :data:`DEFAULT_INITIAL_WINDOW` requests in flight and, while answers come back fast and
  without 429, adds one request per answer ("slow start": the window doubles every round trip) up to the
  ceiling (the connection's ``max_concurrency``);
* on a 429 it halves the window, once per round trip (the answers to requests sent before the cut
  carry no news), leaves slow start, and from then on grows by one request per round trip and spreads
  starts evenly over the round trip (``window / latency`` a second), so a window of 2.5 sends at 2.5
  requests per round trip instead of in bursts of 3;
* when the 429 says how long to wait (``RetryInfo`` / ``Retry-After``), no request of the hook starts before
  then: the quota is spent, and every request sent in the meantime would be answered 429 too.

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

#: Requests in flight when a hook starts (the fixed concurrency of earlier versions).
DEFAULT_INITIAL_WINDOW = 8

#: Share of the window kept on a 429.
DEFAULT_DECREASE_FACTOR = 0.5

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
    :param floor: the smallest window; at least one request is always allowed.
    :param decrease_factor: share of the window kept on a 429, in ``(0, 1)``.
    """

    def __init__(
        self,
        initial: float = DEFAULT_INITIAL_WINDOW,
        ceiling: float = 32,
        *,
        floor: float = 1.0,
        decrease_factor: float = DEFAULT_DECREASE_FACTOR,
    ) -> None:
        if floor < 1 or ceiling < floor:
            raise ValueError(f"need 1 <= floor <= ceiling, got floor {floor:g} and ceiling {ceiling:g}")
        if not 0 < decrease_factor < 1:
            raise ValueError(f"decrease_factor must be in (0, 1), got {decrease_factor:g}")
        self.ceiling = float(ceiling)
        self.floor = float(floor)
        self.decrease_factor = decrease_factor
        self.window = min(max(float(initial), self.floor), self.ceiling)
        self.slow_start = True
        self.fastest_answer: float | None = None
        self._last_decrease: float | None = None

    def raise_ceiling(self, ceiling: float) -> None:
        """Allow a larger window (a call asked for more requests in flight than the connection)."""
        self.ceiling = max(self.ceiling, float(ceiling))

    def on_success(self, latency: float) -> None:
        """
        An answer came back usable after ``latency`` seconds: grow the window if the answer was fast.

        In slow start the window grows by one per answer (doubling per round trip), afterwards by
        ``1 / window`` per answer (one per round trip).
        """
        if self.fastest_answer is None or latency < self.fastest_answer:
            self.fastest_answer = latency
        if latency > SLOW_ANSWER_FACTOR * self.fastest_answer:
            return
        self.window = min(self.ceiling, self.window + (1.0 if self.slow_start else 1.0 / self.window))

    def on_rate_limited(self, sent_at: float, now: float) -> bool:
        """
        A request sent at ``sent_at`` was answered 429 at ``now``: cut the window, once per round trip.

        A request sent before the last cut reports on the old window, so it changes nothing.

        :return: whether the window was cut.
        """
        self.slow_start = False
        if self._last_decrease is not None and sent_at <= self._last_decrease:
            return False
        self.window = max(self.floor, self.window * self.decrease_factor)
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
                    if not self.aimd.slow_start and self._smoothed_latency is not None:
                        self._next_start = max(now, self._next_start) + (
                            self._smoothed_latency / self.aimd.window
                        )
                    return now
                self._condition.wait(min(wait, _MAX_WAIT_SECONDS))
            return self._clock()

    def _wait_before_start(self, now: float) -> float:
        """Seconds until a start is allowed; ``inf`` while the window is full."""
        if self._in_flight >= math.ceil(self.aimd.window):
            return math.inf
        return max(self._hold_until - now, self._next_start - now, 0.0)

    def succeeded(self, sent_at: float) -> None:
        """The request started at ``sent_at`` got a usable answer."""
        with self._condition:
            latency = self._finish(sent_at)
            self.aimd.on_success(latency)
            self._condition.notify_all()

    def rate_limited(self, sent_at: float, retry_delay: float | None) -> None:
        """
        The request started at ``sent_at`` was answered 429; ``retry_delay`` is the server's wait, if any.

        Cuts the window and, with a server wait, holds every start of this hook until it has passed.
        """
        with self._condition:
            now = self._clock()
            self._finish(sent_at)
            self.aimd.on_rate_limited(sent_at, now)
            if retry_delay is not None:
                self._hold_until = max(self._hold_until, now + retry_delay)
            self._condition.notify_all()

    def released(self) -> None:
        """A request ended otherwise (another error, not sent after all): no signal either way."""
        with self._condition:
            self._in_flight -= 1
            self._condition.notify_all()

    def _finish(self, sent_at: float) -> float:
        self._in_flight -= 1
        latency = max(self._clock() - sent_at, 0.0)
        if self._smoothed_latency is None:
            self._smoothed_latency = latency
        else:
            self._smoothed_latency += _LATENCY_SMOOTHING * (latency - self._smoothed_latency)
        return latency
