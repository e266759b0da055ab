"""Per-minute and per-day quotas, counted in sliding windows the way the Gemini API counts them."""

from __future__ import annotations

import collections

from airflow_provider_gemini_milvus.testing.gemini_emulator.errors import quota_error

__all__ = ["QuotaWindows", "SlidingWindow"]


class SlidingWindow:
    """Costs spent within the last ``length`` seconds."""

    def __init__(self) -> None:
        self._events: collections.deque[tuple[float, float]] = collections.deque()

    def _expire(self, now: float, length: float) -> None:
        while self._events and self._events[0][0] <= now - length:
            self._events.popleft()

    def used(self, now: float, length: float) -> float:
        self._expire(now, length)
        return sum(cost for _, cost in self._events)

    def seconds_until_room(self, now: float, length: float, cost: float, allowed: float) -> float:
        """Time until ``cost`` more fits under ``allowed`` (a whole window if it never fits)."""
        excess = self.used(now, length) + cost - allowed
        if cost > allowed:
            return length
        for stamp, spent in self._events:
            excess -= spent
            if excess <= 1e-9:
                return max(0.001, stamp + length - now)
        return length

    def add(self, now: float, cost: float) -> None:
        self._events.append((now, cost))

    def clear(self) -> None:
        self._events.clear()


class QuotaWindows:
    """What the quotas have counted: calls and input tokens per minute, calls per day."""

    def __init__(self) -> None:
        self._requests = SlidingWindow()
        self._tokens = SlidingWindow()
        self._days = SlidingWindow()

    def spend(
        self,
        model: str,
        *,
        now: float,
        request_cost: float,
        token_cost: float,
        window_seconds: float,
        requests_per_minute: float | None,
        tokens_per_minute: float | None,
        requests_per_day: int | None,
    ) -> None:
        """
        Raise the 429 of the first full quota; otherwise count the call (refused calls are not counted).

        :param model: the model called (quotas are per model; named in the error).
        :param now: a ``time.monotonic()`` reading.
        :param request_cost: what the call costs against the request quotas (1, or its number of texts).
        :param token_cost: its input tokens.
        :param window_seconds: length of a quota "minute"; limits scale with it, a "day" is 1440 of them.
        :param requests_per_minute: calls allowed per minute, or ``None``.
        :param tokens_per_minute: input tokens allowed per minute, or ``None``.
        :param requests_per_day: calls allowed per day, or ``None``.
        """
        day_seconds = window_seconds * 1440
        if (
            requests_per_day is not None
            and self._days.used(now, day_seconds) + request_cost > requests_per_day
        ):
            raise quota_error(
                model=model,
                metric="embed_content_requests",
                quota_id="EmbedContentRequestsPerDayPerProjectPerModel",
                limit=requests_per_day,
                retry_delay=None,
            )
        per_minute_quotas = (
            (
                requests_per_minute,
                self._requests,
                request_cost,
                "embed_content_requests",
                "EmbedContentRequestsPerMinutePerProjectPerModel",
            ),
            (
                tokens_per_minute,
                self._tokens,
                token_cost,
                "embed_content_input_token_count",
                "EmbedContentInputTokensPerMinutePerProjectPerModel",
            ),
        )
        for limit, window, cost, metric, quota_id in per_minute_quotas:
            if limit is None:
                continue
            allowed = limit * (window_seconds / 60.0)
            if window.used(now, window_seconds) + cost > allowed:
                raise quota_error(
                    model=model,
                    metric=metric,
                    quota_id=quota_id,
                    limit=limit,
                    retry_delay=window.seconds_until_room(now, window_seconds, cost, allowed),
                )
        self._days.add(now, request_cost)
        self._requests.add(now, request_cost)
        self._tokens.add(now, token_cost)

    def clear(self) -> None:
        """Forget everything counted."""
        self._requests.clear()
        self._tokens.clear()
        self._days.clear()
