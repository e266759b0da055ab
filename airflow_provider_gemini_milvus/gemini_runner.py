"""
Running one embedding call's requests on worker threads: counters, a progress log, first-failure cancel.

:class:`~airflow_provider_gemini_milvus.hooks.gemini.GeminiHook` gives :func:`run_all` one function per
request; nothing here knows about Gemini.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = ["Cancelled", "ProgressLog", "RunCounters", "run_all"]

PROGRESS_LOG_INTERVAL_SECONDS = 10.0

Item = TypeVar("Item")


class RunCounters:
    """Requests, retries and 429s of one call, counted by its worker threads."""

    def __init__(self) -> None:
        self.requests = 0
        self.retries = 0
        self.rate_limited = 0
        self._lock = threading.Lock()

    def add(self, *, requests: int = 0, retries: int = 0, rate_limited: int = 0) -> None:
        with self._lock:
            self.requests += requests
            self.retries += retries
            self.rate_limited += rate_limited


class ProgressLog:
    """Logs texts done / total, rate and ETA at most every few seconds (never the texts)."""

    def __init__(self, log: Any, total: int, interval: float = PROGRESS_LOG_INTERVAL_SECONDS) -> None:
        self.log = log
        self.total = total
        self.interval = interval
        self.done = 0
        self.started = time.monotonic()
        self._last_logged = self.started
        self._lock = threading.Lock()

    def advance(self, count: int) -> None:
        with self._lock:
            self.done += count
            now = time.monotonic()
            if now - self._last_logged < self.interval or self.done >= self.total:
                return
            self._last_logged = now
            elapsed = max(now - self.started, 1e-9)
            rate = self.done / elapsed
            eta = (self.total - self.done) / rate if rate else float("inf")
            self.log.info(
                "Embedded %d/%d texts (%.0f%%, %.1f texts/s, ETA %.0fs)",
                self.done,
                self.total,
                100 * self.done / self.total,
                rate,
                eta,
            )


class Cancelled(Exception):
    """Raised in a worker when another item has already failed for good."""


def run_all(
    run: Callable[[Item], None], items: Sequence[Item], concurrency: int, cancelled: threading.Event
) -> None:
    """
    Run ``run`` on every item with up to ``concurrency`` threads; on the first failure, stop the rest.

    The failure is raised as it is; ``cancelled`` is set so that running workers can stop before sending,
    and items not started are never run.
    """
    if concurrency == 1 or len(items) == 1:
        for item in items:
            run(item)
        return
    with ThreadPoolExecutor(max_workers=min(concurrency, len(items)), thread_name_prefix="gemini") as pool:
        futures: list[Future[None]] = [pool.submit(run, item) for item in items]
        done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        failure = next((future.exception() for future in done if future.exception() is not None), None)
        if failure is not None:
            cancelled.set()
            for future in pending:
                future.cancel()
            raise failure
