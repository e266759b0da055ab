"""Running requests on worker threads: every item once, and the first failure stops the rest."""

from __future__ import annotations

import threading

import pytest

from airflow_provider_gemini_milvus.gemini_runner import Cancelled, RunCounters, run_all


@pytest.mark.parametrize("concurrency", [1, 3])
def test_every_item_runs_once(concurrency: int) -> None:
    seen: list[int] = []
    lock = threading.Lock()

    def run(item: int) -> None:
        with lock:
            seen.append(item)

    run_all(run, list(range(20)), concurrency, threading.Event())
    assert sorted(seen) == list(range(20))


def test_one_at_a_time_stops_at_the_first_failure() -> None:
    started: list[int] = []

    def run(item: int) -> None:
        started.append(item)
        if item == 2:
            raise RuntimeError("request 3 failed for good")

    with pytest.raises(RuntimeError, match="request 3 failed for good"):
        run_all(run, list(range(10)), 1, threading.Event())
    assert started == [0, 1, 2]


def test_in_parallel_the_first_failure_is_raised_and_nothing_more_is_sent() -> None:
    cancelled = threading.Event()
    sent: list[int] = []

    def run(item: int) -> None:
        if item == 0:
            raise RuntimeError("request 1 failed for good")
        cancelled.wait(timeout=10)  # every other item is still waiting when request 1 fails
        if cancelled.is_set():
            raise Cancelled(f"request {item + 1} not sent")
        sent.append(item)

    with pytest.raises(RuntimeError, match="request 1 failed for good"):
        run_all(run, list(range(10)), 3, cancelled)
    assert cancelled.is_set()
    assert sent == []


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
