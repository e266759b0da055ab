"""
Calling the google-genai SDK without leaking the key: one call, retried with the connection's policy, its
failure raised as :class:`~airflow_provider_gemini_milvus.exceptions.GeminiAPIError` with the key scrubbed
and no ``__cause__``. Used by the Batch API and Files API calls, which go through the SDK's own methods.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Protocol, TypeVar

from airflow_provider_gemini_milvus.exceptions import GeminiAPIError
from airflow_provider_gemini_milvus.gemini.attempts import TRANSIENT_TRANSPORT_ERRORS, response_headers
from airflow_provider_gemini_milvus.gemini.requests import scrubbed
from airflow_provider_gemini_milvus.gemini.retries import (
    is_daily_quota,
    is_retryable_status,
    server_retry_delay,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from google import genai

    from airflow_provider_gemini_milvus.gemini.settings import GeminiConnectionSettings
    from airflow_provider_gemini_milvus.utils.logs import TaskLogger

__all__ = [
    "GeminiConnection",
    "api_error",
    "asdk_call",
    "log_retry",
    "retry_wait",
    "sdk_call",
    "sdk_errors",
]

_T = TypeVar("_T")


class GeminiConnection(Protocol):
    """What Batch API and Files API calls need of a connection: its id, settings, SDK client, a logger."""

    gemini_conn_id: str

    @property
    def settings(self) -> GeminiConnectionSettings: ...

    @property
    def log(self) -> TaskLogger: ...

    def get_conn(self) -> genai.Client: ...


def sdk_errors() -> tuple[type[BaseException], ...]:
    from google.genai import errors

    return (errors.APIError, ValueError, KeyError, OSError, *TRANSIENT_TRANSPORT_ERRORS)


def api_error(hook: GeminiConnection, what: str, err: BaseException) -> GeminiAPIError:
    from google.genai import errors

    text = scrubbed(f"{type(err).__name__}: {err}", hook.settings.secrets)
    if isinstance(err, errors.APIError):
        return GeminiAPIError(f"{what} failed: {text}", http_status=err.code, status=err.status)
    return GeminiAPIError(f"{what} failed: {text}")


def retry_wait(hook: GeminiConnection, err: BaseException, attempt: int) -> float | None:
    """
    ``None`` when ``err`` is not worth another attempt; else the seconds to wait before attempt
    ``attempt + 1``: the server's delay, or the connection's backoff (429 except a daily quota, 408, 5xx,
    timeouts, dropped or refused connections).
    """
    from google.genai import errors

    if isinstance(err, errors.APIError):
        if not is_retryable_status(err.code) or (err.code == 429 and is_daily_quota(err.details)):
            return None
        delay = server_retry_delay(err.details, response_headers(err))
        return hook.settings.backoff.delay(attempt) if delay is None else delay
    if isinstance(err, (*TRANSIENT_TRANSPORT_ERRORS, ConnectionError)):
        return hook.settings.backoff.delay(attempt)
    return None


def log_retry(hook: GeminiConnection, failure: GeminiAPIError, attempt: int, wait: float) -> None:
    text = str(failure)  # names the call
    hook.log.warning(
        "%s; retry %d/%d in %.2fs",
        text[:1].upper() + text[1:],
        attempt,
        hook.settings.backoff.max_retries,
        wait,
    )


def sdk_call(hook: GeminiConnection, what: str, call: Callable[[], _T], *, retry: bool = True) -> _T:
    """
    Run one SDK call, retrying transient failures with the connection's retry policy; a failure is raised
    as :class:`GeminiAPIError` outside the ``except`` block, so it has no ``__cause__`` or ``__context__``
    (the SDK's error may hold a gateway's echo of the key). Only for calls that are safe to repeat.
    """
    attempt = 0
    while True:
        attempt += 1
        try:
            return call()
        except sdk_errors() as err:
            failure, wait = api_error(hook, what, err), retry_wait(hook, err, attempt)
        if not retry or wait is None or attempt > hook.settings.backoff.max_retries:
            raise failure
        log_retry(hook, failure, attempt, wait)
        time.sleep(wait)


async def asdk_call(
    hook: GeminiConnection, what: str, call: Callable[[], Awaitable[_T]], *, retry: bool = True
) -> _T:
    """:func:`sdk_call` for the triggerer's event loop."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return await call()
        except sdk_errors() as err:
            failure, wait = api_error(hook, what, err), retry_wait(hook, err, attempt)
        if not retry or wait is None or attempt > hook.settings.backoff.max_retries:
            raise failure
        log_retry(hook, failure, attempt, wait)
        await asyncio.sleep(wait)
