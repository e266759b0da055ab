"""When to retry a Gemini request, and how long to wait first."""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass
from typing import Any

from airflow_provider_gemini_milvus.connection_extras import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_RETRY_INITIAL_DELAY,
    DEFAULT_RETRY_MAX_DELAY,
)

__all__ = [
    "MAX_SERVER_DELAY_SECONDS",
    "RETRYABLE_STATUS_CODES",
    "BackoffPolicy",
    "is_daily_quota",
    "is_document_refusal",
    "is_retryable_status",
    "server_retry_delay",
]

#: HTTP statuses worth another attempt: timeouts, quota, and server-side faults.
RETRYABLE_STATUS_CODES = frozenset({408, 429, 500, 502, 503, 504})

#: Never wait longer than this for one retry, whatever the server asks.
MAX_SERVER_DELAY_SECONDS = 300.0

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")
_RETRY_IN_MESSAGE = re.compile(r"retry in (\d+(?:\.\d+)?)\s*s", re.IGNORECASE)


@dataclass(frozen=True)
class BackoffPolicy:
    """
    Exponential backoff with jitter.

    :param max_retries: retries after the first attempt; 0 means a single attempt.
    :param initial_delay: upper bound of the first wait, in seconds.
    :param max_delay: cap of any computed wait, in seconds.
    """

    max_retries: int = DEFAULT_MAX_RETRIES
    initial_delay: float = DEFAULT_RETRY_INITIAL_DELAY
    max_delay: float = DEFAULT_RETRY_MAX_DELAY

    def delay(self, retry_number: int, rng: random.Random | None = None) -> float:
        """Wait before retry ``retry_number`` (1-based): half fixed, half random ("equal jitter")."""
        ceiling = min(self.max_delay, self.initial_delay * 2.0 ** (retry_number - 1))
        return ceiling / 2 + (rng or random).uniform(0, ceiling / 2)


def is_retryable_status(status_code: int | None) -> bool:
    return status_code in RETRYABLE_STATUS_CODES


def is_document_refusal(status_code: int | None, status: str | None, details: Any) -> bool:
    """
    Whether an error refuses what was sent rather than who sent it: a 400 ``INVALID_ARGUMENT`` without a
    ``google.rpc.ErrorInfo`` detail (which marks request-level causes such as ``API_KEY_INVALID``).

    Such a request fails again however often it is sent; split, it shows which texts Gemini refuses.
    """
    if status_code != 400 or status != "INVALID_ARGUMENT":
        return False
    return not any(
        str(entry.get("@type", "")).endswith("google.rpc.ErrorInfo") for entry in _detail_entries(details)
    )


def _error_body(details: Any) -> dict[str, Any]:
    """The ``error`` object of a google-genai ``APIError.details`` (the parsed response body)."""
    if isinstance(details, dict):
        inner = details.get("error", details)
        if isinstance(inner, dict):
            return inner
    return {}


def _detail_entries(details: Any) -> list[dict[str, Any]]:
    entries = _error_body(details).get("details")
    return [entry for entry in entries if isinstance(entry, dict)] if isinstance(entries, list) else []


def server_retry_delay(details: Any, headers: Any = None) -> float | None:
    """
    The wait the server asked for, in seconds, or ``None`` when it gave none.

    Reads ``google.rpc.RetryInfo.retryDelay`` first, then a ``Retry-After`` header (a number of seconds;
    ``nan``, ``inf``, a negative value or a date are no hint), then the "Please retry in 15.6s." sentence
    Gemini puts in quota messages.
    """
    for entry in _detail_entries(details):
        if str(entry.get("@type", "")).endswith("google.rpc.RetryInfo"):
            match = _DURATION.match(str(entry.get("retryDelay", "")))
            if match:
                return min(float(match.group(1)), MAX_SERVER_DELAY_SECONDS)
    retry_after = headers.get("retry-after") if headers is not None else None
    if retry_after:
        try:
            seconds = float(retry_after)
        except ValueError:
            seconds = math.nan  # an HTTP date or garbage: no usable hint
        if math.isfinite(seconds) and seconds >= 0:  # "nan", "inf" and negative values are no hint
            return min(seconds, MAX_SERVER_DELAY_SECONDS)
    match = _RETRY_IN_MESSAGE.search(str(_error_body(details).get("message", "")))
    if match:
        return min(float(match.group(1)), MAX_SERVER_DELAY_SECONDS)
    return None


def is_daily_quota(details: Any) -> bool:
    """Whether a 429 names a per-day quota, which will not refill within the task's lifetime."""
    for entry in _detail_entries(details):
        if str(entry.get("@type", "")).endswith("google.rpc.QuotaFailure"):
            for violation in entry.get("violations") or []:
                if "PerDay" in str(violation.get("quotaId", "")):
                    return True
    return False
