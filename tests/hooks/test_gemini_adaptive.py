"""GeminiHook's adaptive concurrency against the emulator: counts of requests and 429s, never times."""

from __future__ import annotations

import pytest

from airflow_provider_gemini_milvus.gemini.concurrency import DEFAULT_INITIAL_WINDOW
from airflow_provider_gemini_milvus.hooks.gemini import GeminiHook
from airflow_provider_gemini_milvus.testing.gemini_emulator import GeminiEmulator
from airflow_provider_gemini_milvus.testing.pytest_plugin import GeminiConnectionFactory

# Quotas are counted over a 1-second window (quota_window_seconds): 600 a minute allows 10 requests in any
# second. 120 one-text requests then take about twelve windows.
QUOTA = {"requests_per_minute": 600, "quota_window_seconds": 1.0}
REQUESTS = 120
#: Well above this machine's jitter, so answers still count as fast (within 3x the fastest) under load.
SLOW_SERVER = 0.2
RETRIES = {"max_retries": 50, "retry_initial_delay": 0.01, "retry_max_delay": 0.2}


def corpus(count: int) -> list[str]:
    return [f"text {index} on subject {index % 5}" for index in range(count)]


@pytest.fixture
def connect(gemini_connection_factory: GeminiConnectionFactory):
    def _connect(**extra: object) -> GeminiHook:
        gemini_connection_factory(**{**RETRIES, **extra})
        return GeminiHook()

    return _connect


def rate_limited_run(emulator: GeminiEmulator, hook: GeminiHook) -> int:
    emulator.reset_quotas()
    emulator.reset_stats()
    result = hook.embed_with_stats(corpus(REQUESTS), batch_size=1, output_dimensionality=128)
    assert result.vectors.shape == (REQUESTS, 128)
    assert emulator.stats.texts == REQUESTS
    assert result.stats.rate_limited == emulator.stats.status_counts.get(429, 0)
    return result.stats.rate_limited


def test_without_a_configured_quota_the_adaptive_window_meets_far_fewer_429s(
    connect, gemini_emulator: GeminiEmulator
) -> None:
    gemini_emulator.configure(latency_seconds=0.05, **QUOTA)
    fixed = rate_limited_run(gemini_emulator, connect(adaptive_concurrency=False, max_concurrency=8))
    adaptive = rate_limited_run(gemini_emulator, connect())

    assert fixed > 0
    assert adaptive * 2 < fixed, (adaptive, fixed)


def test_a_fixed_concurrency_can_be_pinned(connect, gemini_emulator: GeminiEmulator) -> None:
    gemini_emulator.configure(latency_seconds=0.05)
    hook = connect(adaptive_concurrency=False, max_concurrency=3)
    hook.embed(corpus(120), batch_size=10, output_dimensionality=128)
    assert gemini_emulator.stats.max_in_flight == 3


def test_the_window_grows_past_its_start_while_answers_come_back_without_429(
    connect, gemini_emulator: GeminiEmulator
) -> None:
    gemini_emulator.configure(latency_seconds=SLOW_SERVER)
    hook = connect()
    hook.embed(corpus(600), batch_size=5, output_dimensionality=128)
    assert gemini_emulator.stats.max_in_flight > DEFAULT_INITIAL_WINDOW
    assert hook.adaptive_window().window > DEFAULT_INITIAL_WINDOW


def test_a_429_shrinks_the_window_that_later_calls_on_the_hook_share(
    connect, gemini_emulator: GeminiEmulator
) -> None:
    hook = connect(max_concurrency=16)
    hook.embed(corpus(50), batch_size=5, output_dimensionality=128)
    before = hook.adaptive_window().window
    gemini_emulator.fail_next(1, status=429, retry_delay=0.01)
    result = hook.embed_with_stats(corpus(5), batch_size=5, output_dimensionality=128)
    assert result.stats.rate_limited == 1
    assert hook.adaptive_window().window < before


def test_a_call_may_ask_for_more_in_flight_than_the_connection(
    connect, gemini_emulator: GeminiEmulator
) -> None:
    gemini_emulator.configure(latency_seconds=SLOW_SERVER)
    hook = connect(max_concurrency=4)
    hook.embed(corpus(300), batch_size=5, max_concurrency=12, output_dimensionality=128)
    assert 4 < gemini_emulator.stats.max_in_flight <= 12
