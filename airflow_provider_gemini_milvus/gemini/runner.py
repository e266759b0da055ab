"""
Running one embedding call's requests on worker threads: counters, a progress log, first-failure cancel,
and results handed back to the calling thread as they finish.

:class:`~airflow_provider_gemini_milvus.hooks.gemini.GeminiHook` gives :func:`run_all` one function per
request; nothing here knows about Gemini.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = ["Cancelled", "ProgressLog", "RunCounters", "run_all"]

PROGRESS_LOG_INTERVAL_SECONDS = 10.0

# What a worker tells the calling thread: a result to deliver, or that its item finished or failed.
_RESULT = "result"
_FINISHED = "finished"
_FAILED = "failed"

Item = TypeVar("Item")
Result = TypeVar("Result")


class RunCounters:
    """Requests, retries, 429s and requests for split batches of one call, counted by its worker threads."""

    def __init__(self) -> None:
        self.requests = 0
        self.retries = 0
        self.rate_limited = 0
        self.split_requests = 0
        self._lock = threading.Lock()

    def add(
        self, *, requests: int = 0, retries: int = 0, rate_limited: int = 0, split_requests: int = 0
    ) -> None:
        with self._lock:
            self.requests += requests
            self.retries += retries
            self.rate_limited += rate_limited
            self.split_requests += split_requests


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
    run: Callable[[Item, Callable[[Result], None]], None],
    items: Sequence[Item],
    concurrency: int,
    cancelled: threading.Event,
    deliver: Callable[[Result], None],
) -> None:
    """
    Run ``run(item, emit)`` on every item on up to ``concurrency`` threads; pass what it emits to ``deliver``.

    ``deliver`` is called in the calling thread, one result at a time and never concurrently, as results
    arrive (a worker's results in the order it emitted them). At most ``2 * concurrency`` items are handed to
    the pool at once, so results wait only while ``deliver`` is busy: memory holds the items in flight, not
    every result.

    On the first failure ``cancelled`` is set, so that running workers can stop before sending, and items not
    started are never run. Results emitted before or while the running items finish are still delivered;
    then the failure is raised as it is. A failure of ``deliver`` itself ends delivery at once.
    """
    if concurrency == 1 or len(items) == 1:
        for item in items:
            run(item, deliver)
        return
    workers = min(concurrency, len(items))
    messages: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()

    def work(item: Item) -> None:
        try:
            run(item, lambda result: messages.put((_RESULT, result)))
        except BaseException as err:  # handed to the calling thread, which raises it
            messages.put((_FAILED, err))
        else:
            messages.put((_FINISHED, None))

    waiting = iter(items)
    in_flight = 0
    failure: BaseException | None = None
    delivering = True
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gemini") as pool:
        try:
            for item in itertools.islice(waiting, 2 * workers):
                pool.submit(work, item)
                in_flight += 1
            while in_flight:
                kind, value = messages.get()
                if kind == _RESULT:
                    if delivering:
                        try:
                            deliver(value)
                        except BaseException as err:
                            failure, delivering = failure or err, False
                            cancelled.set()
                    continue
                in_flight -= 1
                if kind == _FAILED and failure is None:
                    failure = value
                    cancelled.set()
                if failure is None:
                    for item in itertools.islice(waiting, 1):
                        pool.submit(work, item)
                        in_flight += 1
        except BaseException:  # the caller was interrupted (e.g. the task was killed): stop the workers
            cancelled.set()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    if failure is not None:
        raise failure
