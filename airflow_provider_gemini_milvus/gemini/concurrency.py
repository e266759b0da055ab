"""
Adaptive concurrency for Gemini requests: a window of requests in flight, cut multiplicatively on a 429
and grown back along a cubic curve (AIMD, with TCP CUBIC's growth), as TCP flows share a link.

Users rarely know their quota, and a quota set per task is wrong once several mapped shards share one
project quota. So, unless a fixed concurrency is pinned, the hook learns how many requests to keep in flight:

* it starts with :data:`DEFAULT_INITIAL_WINDOW` requests in flight and, while answers come back fast and
  without 429, adds half a request per answer ("slow start": the window grows 1.5-fold every round trip,
  :data:`SLOW_START_GROWTH`) up to the ceiling (the connection's ``max_concurrency``);
* on a 429 it cuts the window, once per round trip (the answers to requests sent before the cut carry no
  news), to :data:`DEFAULT_DECREASE_FACTOR` of it. The first cut, which ends slow start, starts instead
  from what the quota actually delivered until then (successful answers per round trip; one request
  when other shards had spent the quota first): a quota counted over a sliding minute lets a burst
  through and then refuses everything, so the window alone would overstate it. Successes that arrive
  after that 429, of requests sent before it, still count in;
* after a cut it grows back along a cubic curve of the round trips since the cut, as TCP CUBIC does:
  quickly up to a plateau a little under the level that was refused (:data:`PLATEAU_SHARE`,
  :data:`ROUND_TRIPS_TO_PLATEAU`), slowly from there back to that level
  (:data:`ROUND_TRIPS_TO_REFUSED_LEVEL`), and quickly again once well past it without a 429: the quota
  has room (:data:`ROOM_AGAIN_SHARE`, :data:`GROWTH_PAST_REFUSED_LEVEL`). Growing by a fixed step every
  round trip instead keeps climbing past the quota, and a quota counted over a sliding window lets the
  climb go on until the window is full: 4 shards, each climbing, met a 429 every few seconds. On the
  plateau they hold just under their shares, and a share that frees up (a shard finished) is taken up
  within seconds;
* after the first 429 it also spreads starts evenly over the round trip (``window / latency`` a second),
  so a window of 2.5 sends at 2.5 requests per round trip, not in bursts;
* when the 429 says how long to wait (``RetryInfo`` / ``Retry-After``), no request of the hook starts before
  then: the quota is spent, and every request sent in the meantime would be answered 429 too. That wait
  also counts in the delivered rate: what got through must last until it has passed.

Several hooks (shards in other processes) against one quota each run their own window; like TCP flows
they settle on shares that add up to the quota.

A hook that knows the rate an earlier job found the quota at (see
:mod:`~airflow_provider_gemini_milvus.gemini.learned_rate`) starts near it instead of in slow start
(``start_rate``): it spaces its first starts at :data:`RESUME_SHARE` of that rate, sets the window to that
rate times the first round trip it sees, and from there probes upward slowly towards the rate, then faster
past it (:meth:`AimdWindow.resume_at`); a 429 still cuts it. Once it knows the quota (after its first cut,
or from the start when it started from a rate) it keeps an estimate of the rate the quota allows this hook
(:meth:`AdaptiveConcurrency.learned_rates`): the lowest rate it was cut at (the first cut's: what the quota
let through until the server's wait had passed; a later one's: the window over the round trip), or, when a
hook that started from a rate was never cut, the higher of that rate and what it got through. The lowest,
because a shard whose neighbours finished takes up their room and is refused at more than its share. Not
what it got through on average: the window settles on :data:`PLATEAU_SHARE` of the refused level, so each
job would start a little lower than the one before.

:class:`AimdWindow` is the pure arithmetic; :class:`AdaptiveConcurrency` holds the threads of one hook to it.
"""

from __future__ import annotations

import math
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "DEFAULT_INITIAL_WINDOW",
    "MIN_SUCCESSES_TO_LEARN",
    "RESUME_SHARE",
    "GROWTH_PAST_REFUSED_LEVEL",
    "NOTHING_DELIVERED_ESTIMATE",
    "PLATEAU_SHARE",
    "ROOM_AGAIN_SHARE",
    "ROUND_TRIPS_TO_PLATEAU",
    "ROUND_TRIPS_TO_REFUSED_LEVEL",
    "AdaptiveConcurrency",
    "AimdWindow",
]

#: Requests in flight when a hook starts. A 429 costs what is in flight when the quota runs out, and slow
#: start reaches the ceiling before a minute's quota is spent anyway; a start of 8 instead costs a round
#: trip on every short job.
DEFAULT_INITIAL_WINDOW = 16

#: What each fast answer adds to the window in slow start: the window grows 1.5-fold every round trip. The
#: round trip in which the quota runs out is answered 429 whole, and doubling would have sent twice what
#: got through in the round trip before it.
SLOW_START_GROWTH = 0.5

#: Share of the window kept on a 429.
DEFAULT_DECREASE_FACTOR = 0.8

#: The level the cubic growth flattens out at after a cut: this share of the window that met the 429. Each
#: shard sharing a quota meets a 429 of its own before it cuts, so the plateau lies a little under the
#: level that was refused, and the climb past it is slow at first.
PLATEAU_SHARE = 0.9

#: Round trips from a cut up to the plateau: the way back is quick, to use the quota.
ROUND_TRIPS_TO_PLATEAU = 10.0

#: Round trips from the plateau up to the level that was refused (for windows of one request or more;
#: smaller ones get there sooner): the probe past it is slow, to meet few 429s. Doubling it from 45 to 90
#: lowered the 429s of shards sharing a quota at the same share of the quota used (figures in
#: benchmarks/RESULTS.md, from benchmarks/bench_adaptive_concurrency.py).
ROUND_TRIPS_TO_REFUSED_LEVEL = 90.0

#: A window this far past the level that was refused, without a 429, says the quota has room again
#: (another shard finished). Just past the level, a 429 is still likely: growth stays slow there.
ROOM_AGAIN_SHARE = 1.1

#: From :data:`ROOM_AGAIN_SHARE` of the refused level on, the window grows by at least this share per round
#: trip, so room another shard left is taken up within seconds. At 10% a shard that crept past its level
#: while the others were cut overran the quota before the sliding window filled, and met a run of 429s.
GROWTH_PAST_REFUSED_LEVEL = 0.05

#: What the first cut takes the quota to deliver per round trip when nothing got through before it (other
#: shards spent the quota first): one request, a share to learn from. Zero would leave the shard at the
#: smallest window, to crawl back over a minute while the others take the quota.
NOTHING_DELIVERED_ESTIMATE = 1.0

#: The smallest window: one request every ten round trips. A window below one still lets one request be
#: in flight, but spaces starts further apart than a round trip, so many shards sharing a small quota can
#: each go slower than one request at a time.
MIN_WINDOW = 0.1

#: An answer slower than this many times the fastest answer seen is not "fast": the window does not grow
#: on it (the server, or this machine's CPU, is already the bound).
SLOW_ANSWER_FACTOR = 3.0

#: Share of the rate an earlier job found the quota at that a hook starts from: close under it, so the quota
#: is used from the start, with room for the estimate to be a little high. The window then probes upward.
RESUME_SHARE = 0.95

#: Successful requests a hook must have counted, once it knows the quota, before its rate is worth keeping.
MIN_SUCCESSES_TO_LEARN = 10

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
        self._plateau = self.window
        self._refused_level = self.window
        self._rise_scale = 0.0
        self._probe_scale = 0.0
        self._round_trips_since_cut = 0.0
        self._cuts = 0
        self._slow_start_peak = self.window
        self._resumed = False

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

        In slow start the window grows by :data:`SLOW_START_GROWTH` per answer. Afterwards each answer
        counts ``1 / window`` of a round trip since the cut, and the window moves towards the cubic curve
        :meth:`cubic_target`: the whole way within a round trip (at most one request per answer).
        """
        if self.fastest_answer is None or latency < self.fastest_answer:
            self.fastest_answer = latency
        if latency > SLOW_ANSWER_FACTOR * self.fastest_answer:
            return
        if sent_at is not None and self._last_decrease is not None and sent_at <= self._last_decrease:
            return
        if self.slow_start:
            step = SLOW_START_GROWTH
        else:
            self._round_trips_since_cut += 1.0 / self.window
            # Per answer, the distance to the curve over the answers a round trip brings (at least one).
            step = min(1.0, max(0.0, self.cubic_target() - self.window) / max(self.window, 1.0))
            if self.window >= self._refused_level * ROOM_AGAIN_SHARE:
                step = max(step, GROWTH_PAST_REFUSED_LEVEL * min(self.window, 1.0))
        self.window = min(self.ceiling, self.window + step)

    @property
    def refused_level(self) -> float:
        """The window the cubic curve aims back at: where the quota last refused (or the resumed level)."""
        return self._refused_level

    def resume_at(self, level: float) -> None:
        """
        Start under ``level`` requests in flight, where an earlier job found the quota, not in slow start.

        The window starts at :data:`RESUME_SHARE` of ``level``, as if on the plateau of the cubic curve after
        a cut at ``level``: it probes slowly up to ``level`` over :data:`ROUND_TRIPS_TO_REFUSED_LEVEL` round
        trips, and faster past it, so a quota that was raised is found. Its first 429 does not cut it (the
        quota still counts an earlier job's last requests; the server's wait is kept all the same); the
        next cuts it as any other (from the window, not from a delivered rate).
        """
        level = min(max(float(level), self.floor), self.ceiling)
        self.slow_start = False
        self._cut_from(level)
        self.window = self._plateau = max(self.floor, level * RESUME_SHARE)
        self._probe_scale = (1.0 - RESUME_SHARE) * max(level, 1.0) / ROUND_TRIPS_TO_REFUSED_LEVEL**3
        self._round_trips_since_cut = ROUND_TRIPS_TO_PLATEAU
        self._resumed = True

    def cubic_target(self) -> float:
        """
        The window the cubic curve asks for now: the cut window right after the cut, the plateau
        :data:`ROUND_TRIPS_TO_PLATEAU` round trips later, the level that was refused
        :data:`ROUND_TRIPS_TO_REFUSED_LEVEL` round trips after that.
        """
        offset = self._round_trips_since_cut - ROUND_TRIPS_TO_PLATEAU
        scale = self._rise_scale if offset < 0 else self._probe_scale
        return self._plateau + scale * offset**3

    def on_rate_limited(self, sent_at: float, now: float, delivered: float | None = None) -> bool:
        """
        A request sent at ``sent_at`` was answered 429 at ``now``: cut the window, once per round trip.

        A request sent before the last cut reports on the old window, so it changes nothing.

        :param delivered: successful answers per round trip since the start, if known; the cut that ends
            slow start starts from it when it is smaller than the window.
        :return: whether the window was cut.
        """
        if self._last_decrease is not None and sent_at <= self._last_decrease:
            return False
        if self._resumed and not self._cuts and self._last_decrease is None:
            # The first 429 of a window resumed under the level an earlier job found: the quota is still
            # full of someone else's requests (that job's last ones): wait as told, keep the rate. The
            # next 429, to a request sent after this one, cuts: a quota that was lowered is found.
            self._last_decrease = now
            return False
        ending_slow_start = self.slow_start
        self.slow_start = False
        self._cuts += 1
        self._last_decrease = now
        if ending_slow_start:
            self._slow_start_peak = self.window
            if delivered is not None:
                self._cut_from(min(self.window, delivered))
                return True
        self._cut_from(self.window)
        return True

    def on_late_success(self, sent_at: float, delivered: float) -> None:
        """
        A request sent before the cut that ended slow start got through after it: count it in.

        The first 429 often arrives among the answers to the same round trip, before most of its successes:
        the cut then starts from far less than the quota delivered. While no second cut has happened, a
        larger ``delivered`` (successful answers per round trip, as in :meth:`on_rate_limited`) raises the
        cut to what it would have been, never above the window slow start had reached.
        """
        if self._resumed or self._cuts != 1 or self._last_decrease is None or sent_at > self._last_decrease:
            return
        base = min(self._slow_start_peak, delivered)
        if base > self._refused_level:
            window = self.window
            self._cut_from(base)
            self.window = max(self.window, window)

    def _cut_from(self, base: float) -> None:
        """Set the window to ``base`` cut by the decrease factor and aim the cubic growth back at ``base``."""
        base = max(base, self.floor)
        self.window = max(self.floor, base * self.decrease_factor)
        self._plateau = base * PLATEAU_SHARE
        self._refused_level = base
        # Cubic arcs through the cut window, the plateau and the refused level, as steep as for a window
        # of one request at least.
        self._rise_scale = max(self._plateau - self.window, 0.0) / ROUND_TRIPS_TO_PLATEAU**3
        self._probe_scale = (1.0 - PLATEAU_SHARE) * max(base, 1.0) / ROUND_TRIPS_TO_REFUSED_LEVEL**3
        self._round_trips_since_cut = 0.0


class AdaptiveConcurrency:
    """
    Holds the request threads of one hook to an :class:`AimdWindow` (thread-safe).

    Call :meth:`acquire` before sending and exactly one of :meth:`succeeded`, :meth:`rate_limited` or
    :meth:`released` after the answer; :meth:`begin_call` and :meth:`end_call` around each call, so that
    :meth:`learned_rates` counts the time calls ran, not the time between them.

    :param initial: the window to start with (in slow start).
    :param ceiling: the largest window: the connection's ``max_concurrency``.
    :param start_rate: requests per second an earlier job found the quota at: start just under it instead
        of in slow start (``None``: slow start from ``initial``).
    :param clock: monotonic clock, replaceable in tests.
    """

    def __init__(
        self,
        initial: float = DEFAULT_INITIAL_WINDOW,
        ceiling: float = 32,
        *,
        start_rate: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if start_rate is not None and not (math.isfinite(start_rate) and start_rate > 0):
            raise ValueError(f"start_rate must be a positive number of requests per second, got {start_rate}")
        self.aimd = AimdWindow(initial, ceiling)
        self.start_rate = start_rate
        self._clock = clock
        self._condition = threading.Condition()
        self._in_flight = 0
        self._next_start = 0.0
        self._hold_until = 0.0
        self._smoothed_latency: float | None = None
        self._first_start: float | None = None
        self._successes = 0
        # Until the first answer of a hook started from a rate: starts spaced at that rate, no window.
        self._awaiting_round_trip = start_rate is not None
        if start_rate is not None:
            self.aimd.slow_start = False
        # The rate the quota allows this hook (requests per second), once known: see ``learned_rates``.
        self._quota_rate: float | None = start_rate
        self._cut_by_quota = False
        self._first_cut_span = 0.0
        # What it got through once it knew the quota: from ``_learning_since`` on, while calls ran.
        self._learning_since: float | None = None
        self._learned_successes = 0
        self._learned_tokens = 0.0
        self._calls = 0
        self._call_since = 0.0
        self._call_seconds = 0.0

    @property
    def window(self) -> float:
        return self.aimd.window

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def started_from_rate(self) -> bool:
        """Whether this window started from a known rate (``start_rate``) rather than in slow start."""
        return self.start_rate is not None

    def raise_ceiling(self, ceiling: int) -> None:
        with self._condition:
            self.aimd.raise_ceiling(ceiling)

    def begin_call(self) -> None:
        """A call starts sending its requests through this window."""
        with self._condition:
            if not self._calls:
                self._call_since = self._clock()
            self._calls += 1

    def end_call(self) -> None:
        """A call begun with :meth:`begin_call` has ended (its requests answered or given up)."""
        with self._condition:
            self._calls -= 1
            if not self._calls:
                self._call_seconds += self._running_seconds(self._clock())

    def learned_rates(self) -> tuple[float, float] | None:
        """
        The request and input-token rates (per second) the quota allows this hook, as far as it knows:
        the lowest rate it was cut at, or, for a hook that started from a rate and was never cut, the
        higher of that rate and what it got through while calls ran; tokens at the tokens per request it
        sent.
        ``None`` until it knows the quota (a 429, or a start from a rate) and
        :data:`MIN_SUCCESSES_TO_LEARN` requests have got through since.
        """
        with self._condition:
            if (
                self._learning_since is None
                or self._quota_rate is None
                or self._learned_successes < MIN_SUCCESSES_TO_LEARN
            ):
                return None
            requests = self._quota_rate
            if not self._cut_by_quota:
                seconds = self._call_seconds
                if self._calls:
                    seconds += self._running_seconds(self._clock())
                if seconds > 0:
                    requests = max(requests, self._learned_successes / seconds)
            return requests, requests * self._learned_tokens / self._learned_successes

    def _running_seconds(self, now: float) -> float:
        """Seconds of the running calls' stretch that count for :meth:`learned_rates`."""
        if self._learning_since is None:
            return 0.0
        return max(now - max(self._call_since, self._learning_since), 0.0)

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
                    if self._first_start is None:
                        self._first_start = now
                        if self.start_rate is not None:
                            self._start_learning(now)
                    if self._awaiting_round_trip and self.start_rate is not None:
                        self._next_start = max(now, self._next_start) + 1.0 / (self.start_rate * RESUME_SHARE)
                    elif not self.aimd.slow_start and self._smoothed_latency is not None:
                        self._next_start = max(now, self._next_start) + (
                            self._smoothed_latency / self.aimd.window
                        )
                    return now
                self._condition.wait(min(wait, _MAX_WAIT_SECONDS))
            return self._clock()

    def _wait_before_start(self, now: float) -> float:
        """Seconds until a start is allowed; ``inf`` while the window is full."""
        limit = math.ceil(self.aimd.ceiling) if self._awaiting_round_trip else self.aimd.allowed_in_flight
        if self._in_flight >= limit:
            return math.inf
        return max(self._hold_until - now, self._next_start - now, 0.0)

    def succeeded(self, sent_at: float, tokens: float = 0.0) -> None:
        """The request started at ``sent_at``, carrying ``tokens`` input tokens, got a usable answer."""
        with self._condition:
            latency = self._finish(sent_at)
            self._successes += 1
            if self._learning_since is not None and sent_at >= self._learning_since:
                self._learned_successes += 1
                self._learned_tokens += tokens
            self.aimd.on_success(latency, sent_at)
            delivered = self._delivered_per_round_trip(max(self._hold_until, self._clock()))
            if delivered is not None:
                refused = self.aimd.refused_level
                self.aimd.on_late_success(sent_at, delivered)
                if self.aimd.refused_level != refused:
                    # Only the first cut is raised, and it is the only one so far.
                    self._quota_rate = self._first_cut_rate()
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
            delivered = self._delivered_per_round_trip(resume)
            from_delivered = self.aimd.slow_start and delivered is not None
            if self.aimd.on_rate_limited(sent_at, now, delivered):
                # The level refused, as a rate: a later cut's is the window at the round trip it was paced
                # at; the first cut's what the quota let through until its wait had passed.
                if from_delivered and self._first_start is not None:
                    self._first_cut_span = resume - self._first_start
                    refused_rate = self._first_cut_rate()
                else:
                    refused_rate = self.aimd.refused_level / (self._smoothed_latency or self._round_trip())
                # The lowest level refused: a lowered quota is followed down, and a level refused after
                # other shards finished (this hook had taken up their room) is not taken for its share.
                if self._cut_by_quota and self._quota_rate is not None:
                    refused_rate = min(refused_rate, self._quota_rate)
                self._quota_rate = refused_rate
                self._cut_by_quota = True
                if self._learning_since is None:
                    self._start_learning(resume)
            self._hold_until = resume
            self._condition.notify_all()

    def released(self) -> None:
        """A request ended otherwise (another error, not sent after all): no signal either way."""
        with self._condition:
            self._in_flight -= 1
            self._condition.notify_all()

    def _start_learning(self, since: float) -> None:
        self._learning_since = since
        self._learned_successes = 0
        self._learned_tokens = 0.0
        self._call_seconds = 0.0

    def _first_cut_rate(self) -> float:
        """
        The rate the first cut found the quota at: what got through per second until the server's wait had
        passed, counted over one round trip less (the quota counted from the first request's arrival, and
        the wait from the 429's departure), so that a short quota window is not underestimated.
        """
        round_trip = self._round_trip()
        span = self._first_cut_span
        return self.aimd.refused_level / round_trip * span / max(span - round_trip, round_trip)

    def _round_trip(self) -> float:
        """The round trip the first cut counts in: the fastest answer seen (some answer has come back)."""
        return self.aimd.fastest_answer or self._smoothed_latency or 1.0

    def _delivered_per_round_trip(self, resume: float) -> float | None:
        """
        Successful answers per round trip from the first start until ``resume``, a round trip taken as the
        fastest answer seen; :data:`NOTHING_DELIVERED_ESTIMATE` when nothing got through (other clients had
        spent the quota).

        The server's retry delay counts in: what was delivered before it must last until it has passed. The
        fastest answer, not the smoothed round trip: slow start crowds the client, so its answers come
        slower than those of the smaller window after the cut, and that window is paced at the round trips
        it will see (4 shards cut from the smoothed one sent a third above the quota they had shared).
        """
        round_trip = self.aimd.fastest_answer or self._smoothed_latency
        if round_trip is None or self._first_start is None or resume <= self._first_start:
            return None
        if not self._successes:
            return NOTHING_DELIVERED_ESTIMATE
        return self._successes / (resume - self._first_start) * round_trip

    def _finish(self, sent_at: float) -> float:
        self._in_flight -= 1
        latency = max(self._clock() - sent_at, 0.0)
        if self._smoothed_latency is None:
            self._smoothed_latency = latency
        else:
            self._smoothed_latency += _LATENCY_SMOOTHING * (latency - self._smoothed_latency)
        if self._awaiting_round_trip and self.start_rate is not None:
            # The first round trip of a hook started from a rate: the window that holds that rate.
            self._awaiting_round_trip = False
            self.aimd.resume_at(self.start_rate * latency)
        return latency
