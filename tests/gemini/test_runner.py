"""Running requests on worker threads: every item once, results delivered in the calling thread, and the
first failure stops the rest after what finished is delivered."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import pytest

from airflow_provider_gemini_milvus.gemini.runner import Cancelled, RunCounters, run_all

if TYPE_CHECKING:
    from collections.abc import Callable


@pytest.mark.parametrize("concurrency", [1, 3])
def test_every_item_runs_once_and_each_result_is_delivered_once(concurrency: int) -> None:
    seen: list[int] = []
    delivered: list[int] = []
    lock = threading.Lock()

    def run(item: int, emit: Callable[[int], None]) -> None:
        with lock:
            seen.append(item)
        emit(item * 10)
        emit(item * 10 + 1)

    run_all(run, list(range(20)), concurrency, threading.Event(), delivered.append)
    assert sorted(seen) == list(range(20))
    assert sorted(delivered) == sorted(
        [item * 10 for item in range(20)] + [item * 10 + 1 for item in range(20)]
    )


def test_results_are_delivered_in_the_calling_thread_never_concurrently() -> None:
    caller = threading.current_thread()
    delivering = threading.Lock()
    delivered_in: set[threading.Thread] = set()
    overlaps = 0

    def run(item: int, emit: Callable[[int], None]) -> None:
        for offset in range(5):
            emit(item + offset)

    def deliver(_: int) -> None:
        nonlocal overlaps
        if not delivering.acquire(blocking=False):
            overlaps += 1
            return
        try:
            delivered_in.add(threading.current_thread())
        finally:
            delivering.release()

    run_all(run, list(range(40)), 4, threading.Event(), deliver)
    assert delivered_in == {caller}
    assert overlaps == 0


def test_one_at_a_time_stops_at_the_first_failure_after_delivering_what_finished() -> None:
    started: list[int] = []
    delivered: list[int] = []

    def run(item: int, emit: Callable[[int], None]) -> None:
        started.append(item)
        if item == 2:
            raise RuntimeError("request 3 failed for good")
        emit(item)

    with pytest.raises(RuntimeError, match="request 3 failed for good"):
        run_all(run, list(range(10)), 1, threading.Event(), delivered.append)
    assert started == [0, 1, 2]
    assert delivered == [0, 1]


def test_in_parallel_the_first_failure_is_raised_and_nothing_more_is_sent() -> None:
    cancelled = threading.Event()
    sent: list[int] = []

    def run(item: int, emit: Callable[[int], None]) -> None:
        if item == 0:
            raise RuntimeError("request 1 failed for good")
        cancelled.wait(timeout=10)  # every other item is still waiting when request 1 fails
        if cancelled.is_set():
            raise Cancelled(f"request {item + 1} not sent")
        sent.append(item)

    with pytest.raises(RuntimeError, match="request 1 failed for good"):
        run_all(run, list(range(10)), 3, cancelled, lambda _: None)
    assert cancelled.is_set()
    assert sent == []


def test_in_parallel_results_finished_before_and_during_a_failure_are_delivered_first() -> None:
    cancelled = threading.Event()
    delivered: list[int] = []
    first_delivered = threading.Event()

    def run(item: int, emit: Callable[[int], None]) -> None:
        if item == 0:
            emit(0)
        elif item == 1:
            first_delivered.wait(timeout=10)
            raise RuntimeError("request 2 failed for good")
        else:
            cancelled.wait(timeout=10)  # in flight when request 2 fails; finishes what it had sent
            emit(item)

    def deliver(result: int) -> None:
        delivered.append(result)
        first_delivered.set()

    with pytest.raises(RuntimeError, match="request 2 failed for good"):
        run_all(run, list(range(3)), 3, cancelled, deliver)
    assert sorted(delivered) == [0, 2]


def test_a_failing_delivery_stops_delivery_and_the_run() -> None:
    cancelled = threading.Event()
    delivered: list[int] = []
    started: list[int] = []

    def run(item: int, emit: Callable[[int], None]) -> None:
        started.append(item)
        if cancelled.is_set():
            raise Cancelled(f"request {item + 1} not sent")
        emit(item)

    def deliver(result: int) -> None:
        if result == 1:
            raise OSError("disk full")
        delivered.append(result)

    with pytest.raises(OSError, match="disk full"):
        run_all(run, list(range(100)), 2, cancelled, deliver)
    assert cancelled.is_set()
    assert 1 not in delivered
    assert len(started) < 100


def test_counters_add_up_across_threads() -> None:
    counters = RunCounters()

    def work() -> None:
        for _ in range(1000):
            counters.add(requests=1, retries=1)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (counters.requests, counters.retries, counters.rate_limited) == (4000, 4000, 0)
