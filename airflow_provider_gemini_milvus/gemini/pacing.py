"""Client-side pacing to a per-minute quota, shared by the threads of one embedding job."""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["DEFAULT_HEADROOM", "QuotaPacers", "RatePacer"]

#: Pace a little under the quota, so that network jitter cannot push a window over it.
DEFAULT_HEADROOM = 0.03

_EPSILON_SECONDS = 1e-3


class RatePacer:
    """
    Start work so that at most ``per_minute`` units start in any sliding 60-second window.

    Two rules, both thread-safe (the wait happens outside the lock):

    * even spacing: each reservation of ``amount`` units occupies ``amount`` units of time after the
      previous one, so a quota is used steadily from the first second instead of in a burst followed by
      a storm of 429 answers;
    * an exact sliding-window count: even spacing alone can overshoot a window by the size of one large
      request (one ``batchEmbedContents`` call may carry a fifth of a minute's tokens), so a start is also
      held back until the window has room for it.

    With ``amount=1`` it paces requests; with ``amount=tokens`` it paces tokens.

    :param per_minute: the quota, in units per minute.
    :param headroom: share of the quota left unused as a margin for network jitter.
    :param window_seconds: the length of the quota window.
    :param clock: monotonic clock, replaceable in tests.
    :param sleep: sleep function, replaceable in tests.
    """

    def __init__(
        self,
        per_minute: float,
        *,
        headroom: float = DEFAULT_HEADROOM,
        window_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if per_minute <= 0:
            raise ValueError(f"per_minute must be positive, got {per_minute}")
        self.per_minute = per_minute
        self.window_seconds = window_seconds
        self.capacity = per_minute * (1.0 - headroom) * window_seconds / 60.0
        self._seconds_per_unit = 60.0 / (per_minute * (1.0 - headroom))
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_start = 0.0
        self._starts: deque[tuple[float, float]] = deque()
        self._in_window = 0.0

    def reserve(self, amount: float = 1.0) -> float:
        """Reserve ``amount`` units and return how long the caller must wait before starting."""
        if amount > self.capacity:
            raise ValueError(
                f"{amount:g} units can never start: the quota allows {self.capacity:g} per "
                f"{self.window_seconds:g}s window"
            )
        with self._lock:
            now = self._clock()
            start = max(now, self._next_start)
            self._forget_starts_before(start - self.window_seconds)
            while self._in_window + amount > self.capacity:
                start = self._starts[0][0] + self.window_seconds + _EPSILON_SECONDS
                self._forget_starts_before(start - self.window_seconds)
            self._starts.append((start, amount))
            self._in_window += amount
            self._next_start = start + amount * self._seconds_per_unit
            return start - now

    def _forget_starts_before(self, cutoff: float) -> None:
        while self._starts and self._starts[0][0] <= cutoff:
            self._in_window -= self._starts.popleft()[1]

    def acquire(self, amount: float = 1.0) -> float:
        """Block until ``amount`` units may start; return the seconds waited."""
        wait = self.reserve(amount)
        if wait > 0:
            self._sleep(wait)
        return wait


class QuotaPacers:
    """
    The request and token pacers of one connection; either may be absent.

    :param requests_per_minute: request quota, or ``None`` for no request pacing.
    :param tokens_per_minute: input-token quota, or ``None`` for no token pacing.
    """

    def __init__(self, requests_per_minute: int | None, tokens_per_minute: int | None) -> None:
        self.requests = RatePacer(requests_per_minute) if requests_per_minute else None
        self.tokens = RatePacer(tokens_per_minute) if tokens_per_minute else None

    def acquire(self, tokens: int) -> float:
        """Wait until one request carrying ``tokens`` input tokens may be sent; return seconds waited."""
        waited = 0.0
        if self.requests is not None:
            waited += self.requests.acquire(1)
        if self.tokens is not None:
            waited += self.tokens.acquire(tokens)
        return waited
