"""
GeminiHook's streaming side against the bundled emulator: vectors handed to ``on_result`` as requests finish,
and texts Gemini refuses for good isolated and skipped with ``on_document_error="skip"``.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from airflow_provider_gemini_milvus.exceptions import GeminiAPIError, GeminiQuotaExhaustedError
from airflow_provider_gemini_milvus.hooks.gemini import GeminiHook

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from airflow_provider_gemini_milvus.testing.gemini_emulator import GeminiEmulator
    from airflow_provider_gemini_milvus.testing.pytest_plugin import GeminiConnectionFactory

DIM = 128


def corpus(count: int) -> list[str]:
    return [
        f"streamed document {index} on subject {index % 5} with detail {index * 7}" for index in range(count)
    ]


@pytest.fixture
def connect(gemini_connection_factory: GeminiConnectionFactory) -> Callable[..., GeminiHook]:
    """Point ``gemini_default`` at the emulator with the given extras (fast retries); return a fresh hook."""

    def _connect(**extra: Any) -> GeminiHook:
        gemini_connection_factory(
            **{"max_retries": 2, "retry_initial_delay": 0.01, "retry_max_delay": 0.05, **extra}
        )
        return GeminiHook()

    return _connect


class Collector:
    """An ``on_result`` callback recording what it gets, in which thread, and whether calls overlapped."""

    def __init__(self) -> None:
        self.positions: list[int] = []
        self.vectors: dict[int, np.ndarray] = {}
        self.calls = 0
        self.threads: set[threading.Thread] = set()
        self.overlapping_calls = 0
        self._busy = threading.Lock()

    def __call__(self, positions: Sequence[int], vectors: np.ndarray) -> None:
        if not self._busy.acquire(blocking=False):
            self.overlapping_calls += 1
            return
        try:
            self.calls += 1
            self.threads.add(threading.current_thread())
            assert vectors.shape == (len(positions), DIM)
            assert vectors.dtype == np.float32
            self.positions.extend(positions)
            for position, row in zip(positions, vectors, strict=True):
                self.vectors[position] = row.copy()
        finally:
            self._busy.release()


# -- on_result -----------------------------------------------------------------------------------------


def test_on_result_gets_each_position_once_in_the_calling_thread_with_embeds_vectors(
    connect: Callable[..., GeminiHook], gemini_emulator: GeminiEmulator
) -> None:
    texts = corpus(53)
    hook = connect()
    collect = Collector()

    result = hook.embed_with_stats(
        texts, output_dimensionality=DIM, batch_size=5, max_concurrency=4, on_result=collect
    )

    assert sorted(collect.positions) == list(range(53))
    assert collect.calls == 11  # one call per finished request
    assert collect.threads == {threading.current_thread()}
    assert collect.overlapping_calls == 0
    assert result.vectors.shape == (0, DIM)
    assert result.stats.texts == 53
    assert result.stats.requests == 11
    expected = hook.embed(texts, output_dimensionality=DIM, batch_size=5, max_concurrency=4)
    np.testing.assert_array_equal(np.stack([collect.vectors[position] for position in range(53)]), expected)


def test_without_on_result_embed_with_stats_still_returns_every_vector(
    connect: Callable[..., GeminiHook],
) -> None:
    result = connect().embed_with_stats(corpus(12), output_dimensionality=DIM, batch_size=5)

    assert result.vectors.shape == (12, DIM)
    assert result.refused == ()
    assert result.stats.as_dict()["refused"] == 0


def test_retries_exhausted_midway_deliver_every_finished_request_before_raising(
    connect: Callable[..., GeminiHook], gemini_emulator: GeminiEmulator
) -> None:
    hook = connect()
    delivered: list[int] = []

    def collect_then_break_the_server(positions: Sequence[int], vectors: np.ndarray) -> None:
        delivered.extend(positions)
        if len(delivered) == 10:  # after the second request: every later attempt answers 503
            gemini_emulator.fail_next(100, status=503)

    with pytest.raises(GeminiAPIError, match=r"gave up on request 3 \(texts\[10\.\.14\]\) after 3 attempts"):
        hook.embed_with_stats(
            corpus(30),
            output_dimensionality=DIM,
            batch_size=5,
            max_concurrency=1,
            on_result=collect_then_break_the_server,
        )

    assert delivered == list(range(10))
    assert gemini_emulator.stats.texts == 10


def test_a_quota_exhausted_midway_delivers_every_finished_request_before_raising(
    connect: Callable[..., GeminiHook], gemini_emulator: GeminiEmulator
) -> None:
    gemini_emulator.configure(requests_per_day=3)
    delivered: list[int] = []

    with pytest.raises(GeminiQuotaExhaustedError):
        connect().embed_with_stats(
            corpus(30),
            output_dimensionality=DIM,
            batch_size=5,
            max_concurrency=1,
            on_result=lambda positions, _: delivered.extend(positions),
        )

    assert delivered == list(range(15))


def test_in_parallel_every_text_the_server_embedded_before_a_failure_is_delivered(
    connect: Callable[..., GeminiHook], gemini_emulator: GeminiEmulator
) -> None:
    texts = corpus(60)
    gemini_emulator.configure(requests_per_day=5)
    collect = Collector()

    with pytest.raises(GeminiQuotaExhaustedError):
        connect().embed_with_stats(
            texts, output_dimensionality=DIM, batch_size=4, max_concurrency=3, on_result=collect
        )

    embedded = gemini_emulator.stats.embedded_texts
    assert len(embedded) == 20
    assert sorted(texts[position] for position in collect.positions) == sorted(embedded)
    assert collect.overlapping_calls == 0


def test_an_error_raised_by_on_result_stops_the_call_and_is_raised_as_it_is(
    connect: Callable[..., GeminiHook], gemini_emulator: GeminiEmulator
) -> None:
    calls: list[int] = []

    def fail_on_the_second_request(positions: Sequence[int], vectors: np.ndarray) -> None:
        calls.append(positions[0])
        if len(calls) == 2:
            raise OSError("staging disk full")

    with pytest.raises(OSError, match="staging disk full"):
        connect().embed_with_stats(
            corpus(50),
            output_dimensionality=DIM,
            batch_size=5,
            max_concurrency=2,
            on_result=fail_on_the_second_request,
        )

    assert len(calls) == 2
    assert gemini_emulator.stats.succeeded_requests < 10


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"on_document_error": "ignore"}, "on_document_error must be one of 'fail', 'skip', got 'ignore'"),
        ({"on_document_error": None}, "on_document_error must be one of 'fail', 'skip', got None"),
        ({"on_result": "write_part"}, "on_result must be callable, got str"),
    ],
)
def test_bad_streaming_arguments_are_refused_before_any_request(
    connect: Callable[..., GeminiHook],
    gemini_emulator: GeminiEmulator,
    kwargs: dict[str, object],
    message: str,
) -> None:
    with pytest.raises(ValueError, match=message):
        connect().embed_with_stats(corpus(3), **kwargs)  # type: ignore[arg-type]
    assert gemini_emulator.stats.requests == 0
