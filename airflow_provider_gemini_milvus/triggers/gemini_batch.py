"""
:class:`GeminiBatchJobTrigger`: waits in the triggerer for a Gemini embedding batch job to end.

The trigger carries the connection id and the job name, never the API key: its serialised kwargs are stored
in Airflow's metadata database. The key is read from the connection when the trigger runs.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_gemini_milvus.exceptions import GeminiAPIError
from airflow_provider_gemini_milvus.gemini.batch_api import acancel_batch_job, aget_batch_job
from airflow_provider_gemini_milvus.gemini.retries import is_retryable_status
from airflow_provider_gemini_milvus.hooks.gemini import GeminiHook

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


__all__ = [
    "DEFAULT_MAX_POLL_INTERVAL",
    "DEFAULT_POLL_INTERVAL",
    "MAX_POLL_ERRORS",
    "GeminiBatchJobTrigger",
]

#: First wait between two looks at the job (seconds); each wait is ``backoff`` times the last.
DEFAULT_POLL_INTERVAL = 30.0
#: Longest wait between two looks (seconds): a job takes minutes to 24 hours.
DEFAULT_MAX_POLL_INTERVAL = 600.0
DEFAULT_BACKOFF = 1.5
#: Transient failures (429, 5xx, dropped connections) in a row before the trigger gives up.
MAX_POLL_ERRORS = 10


class GeminiBatchJobTrigger(BaseTrigger):
    """
    Poll a Gemini embedding batch job with backoff until it ends, then fire one event.

    The event's payload is ``{"status", "job_name", "state", "error", "message"}``: ``status`` is
    ``success`` (the job ``SUCCEEDED``), ``failed`` (``FAILED``, ``CANCELLED`` or ``EXPIRED``, with the job's
    own ``error``), ``timeout`` (still running after ``timeout`` seconds) or ``error`` (the job could not be
    read). When a user kills the deferred task, the job is cancelled (``on_kill``).

    :param gemini_conn_id: the ``gemini`` connection the job was submitted with.
    :param job_name: ``batches/...``.
    :param poll_interval: first wait between two looks at the job, in seconds.
    :param max_poll_interval: longest wait between two looks.
    :param backoff: factor by which each wait grows.
    :param timeout: give up after this many seconds of waiting (``None``: wait until the job ends; the
        service expires a job after 24 hours); counted from when the trigger is built, unless ``deadline``
        is given.
    :param deadline: give up at this time (epoch seconds). Carried in the serialised kwargs, so a trigger
        rebuilt after a triggerer restart keeps the same deadline; built from ``timeout`` when not given.
    """

    def __init__(
        self,
        *,
        gemini_conn_id: str,
        job_name: str,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        max_poll_interval: float = DEFAULT_MAX_POLL_INTERVAL,
        backoff: float = DEFAULT_BACKOFF,
        timeout: float | None = None,
        deadline: float | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # BaseTrigger.__init__(**kwargs) is untyped
        if poll_interval <= 0 or max_poll_interval < poll_interval:
            raise ValueError(
                f"poll_interval must be positive and at most max_poll_interval, got {poll_interval} and "
                f"{max_poll_interval}"
            )
        if backoff < 1:
            raise ValueError(f"backoff must be at least 1, got {backoff}")
        self.gemini_conn_id = gemini_conn_id
        self.job_name = job_name
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval
        self.backoff = backoff
        self.timeout = timeout
        if deadline is None and timeout is not None:
            deadline = time.time() + timeout
        self.deadline = deadline

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """The class path and the kwargs that rebuild this trigger: ids and poll settings, no secret."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "gemini_conn_id": self.gemini_conn_id,
                "job_name": self.job_name,
                "poll_interval": self.poll_interval,
                "max_poll_interval": self.max_poll_interval,
                "backoff": self.backoff,
                "timeout": self.timeout,
                "deadline": self.deadline,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        hook = await GeminiHook.from_async_connection(self.gemini_conn_id)
        try:
            yield await self._wait_for_end(hook)
        finally:
            await hook.get_conn().aio.aclose()

    async def _wait_for_end(self, hook: GeminiHook) -> TriggerEvent:
        wait = self.poll_interval
        errors_in_a_row = 0
        while True:
            try:
                status = await aget_batch_job(hook, self.job_name)
            except GeminiAPIError as err:
                errors_in_a_row += 1
                transient = err.http_status is None or is_retryable_status(err.http_status)
                if not transient or errors_in_a_row >= MAX_POLL_ERRORS:
                    return self._event("error", None, message=str(err))
                self.log.warning(
                    "Could not read batch job %s (%d in a row): %s", self.job_name, errors_in_a_row, err
                )
            else:
                errors_in_a_row = 0
                if status.done:
                    return self._event(
                        "success" if status.succeeded else "failed", status.state, error=status.error
                    )
                self.log.info(
                    "Gemini batch job %s is %s; next look in %.0fs", self.job_name, status.state, wait
                )
            pause = wait
            if self.deadline is not None:
                remaining = self.deadline - time.time()
                if remaining <= 0:
                    return self._event("timeout", None, message="still running at its batch_timeout")
                pause = min(wait, remaining)
            await asyncio.sleep(pause)
            wait = min(wait * self.backoff, self.max_poll_interval)

    async def on_kill(self) -> None:
        """The user killed the deferred task: cancel the job, so it stops costing."""
        hook = await GeminiHook.from_async_connection(self.gemini_conn_id)
        try:
            await acancel_batch_job(hook, self.job_name)
        finally:
            await hook.get_conn().aio.aclose()

    def _event(
        self, status: str, state: str | None, *, error: str | None = None, message: str | None = None
    ) -> TriggerEvent:
        text = message or (
            f"Gemini batch job {self.job_name} ended {state}" + (f": {error}" if error else "")
        )
        return TriggerEvent(
            {"status": status, "job_name": self.job_name, "state": state, "error": error, "message": text}
        )
