"""
GeminiHook's streaming side against the bundled emulator: vectors handed to ``on_result`` as requests finish,
and texts Gemini refuses for good isolated and skipped with ``on_document_error="skip"``.
"""

from __future__ import annotations

import json
import logging
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


# -- on_document_error="skip" ----------------------------------------------------------------------------

REFUSAL = "The document could not be embedded."


def test_skip_isolates_a_refused_text_and_delivers_the_rest(
    connect: Callable[..., GeminiHook], gemini_emulator: GeminiEmulator
) -> None:
    texts = corpus(8)
    texts[5] = "a text the service refuses"
    gemini_emulator.refuse_texts("refuses", REFUSAL)
    collect = Collector()

    result = connect().embed_with_stats(
        texts,
        output_dimensionality=DIM,
        batch_size=8,
        max_concurrency=1,
        on_result=collect,
        on_document_error="skip",
    )

    assert [(text.position, text.reason) for text in result.refused] == [
        (5, f"400 INVALID_ARGUMENT: {REFUSAL}")
    ]
    assert sorted(collect.positions) == [0, 1, 2, 3, 4, 6, 7]
    # texts[0..7] refused; [0..3] accepted, so [4..7] is split unsent; [4, 5] refused; [4] accepted;
    # [5] refused alone; [6, 7] accepted.
    assert gemini_emulator.stats.batch_sizes == [4, 1, 2]
    stats = result.stats
    assert (stats.requests, stats.split_requests, stats.refused, stats.retries) == (6, 5, 1, 0)
    assert {key: stats.as_dict()[key] for key in ("refused", "split_requests")} == {
        "refused": 1,
        "split_requests": 5,
    }
    accepted = [texts[position] for position in sorted(collect.positions)]
    expected = connect().embed(accepted, output_dimensionality=DIM)
    np.testing.assert_array_equal(np.stack([collect.vectors[p] for p in sorted(collect.positions)]), expected)


def test_skip_finds_every_refused_text_across_requests_in_parallel(
    connect: Callable[..., GeminiHook], gemini_emulator: GeminiEmulator
) -> None:
    texts = corpus(40)
    refused_positions = [0, 7, 8, 9, 21, 39]
    for position in refused_positions:
        texts[position] += " (withdrawn)"
    texts[10:20] = [f"withdrawn note {index}" for index in range(10)]  # a whole request refused
    refused_positions = sorted({*refused_positions, *range(10, 20)})
    gemini_emulator.refuse_texts("withdrawn")
    titles = [f"title {index}" for index in range(40)]
    hook = connect()

    result = hook.embed_with_stats(
        texts,
        titles=titles,
        output_dimensionality=DIM,
        batch_size=10,
        max_concurrency=3,
        on_document_error="skip",
    )

    assert [text.position for text in result.refused] == refused_positions
    assert {text.reason for text in result.refused} == {
        "400 INVALID_ARGUMENT: Request contains an invalid argument."
    }
    assert result.stats.refused == len(refused_positions)
    assert result.stats.requests == 4 + result.stats.split_requests
    accepted = [position for position in range(40) if position not in refused_positions]
    assert sorted(gemini_emulator.stats.embedded_texts) == sorted(texts[position] for position in accepted)
    assert np.isnan(result.vectors[refused_positions]).all()
    expected = hook.embed(
        [texts[position] for position in accepted],
        titles=[titles[position] for position in accepted],
        output_dimensionality=DIM,
    )
    np.testing.assert_array_equal(result.vectors[accepted], expected)


def test_skip_works_through_vertex_ai_too(
    connect: Callable[..., GeminiHook], gemini_emulator: GeminiEmulator
) -> None:
    texts = corpus(6)
    texts[2] = "a text the service refuses"
    gemini_emulator.refuse_texts("refuses", REFUSAL)
    collect = Collector()

    result = connect(vertexai=True).embed_with_stats(
        texts, output_dimensionality=DIM, on_result=collect, on_document_error="skip"
    )

    assert [(text.position, text.reason) for text in result.refused] == [
        (2, f"400 INVALID_ARGUMENT: {REFUSAL}")
    ]
    assert sorted(collect.positions) == [0, 1, 3, 4, 5]
    assert gemini_emulator.stats.texts == 5


def test_fail_stays_the_default_and_raises_on_the_first_refusal_without_splitting(
    connect: Callable[..., GeminiHook], gemini_emulator: GeminiEmulator
) -> None:
    texts = corpus(8)
    texts[5] = "a text the service refuses"
    gemini_emulator.refuse_texts("refuses", REFUSAL)

    with pytest.raises(
        GeminiAPIError, match=r"Gemini refused request 1 \(texts\[0\.\.7\]\): .*400"
    ) as excinfo:
        connect().embed_with_stats(texts, output_dimensionality=DIM)

    assert (excinfo.value.http_status, excinfo.value.status, excinfo.value.attempts) == (
        400,
        "INVALID_ARGUMENT",
        1,
    )
    assert gemini_emulator.stats.requests == 1


def test_skip_still_retries_server_errors_and_raises_when_they_persist(
    connect: Callable[..., GeminiHook], gemini_emulator: GeminiEmulator
) -> None:
    gemini_emulator.fail_next(2, status=503)
    hook = connect()

    result = hook.embed_with_stats(corpus(6), output_dimensionality=DIM, on_document_error="skip")

    assert (result.stats.retries, result.stats.refused, result.stats.split_requests) == (2, 0, 0)
    gemini_emulator.fail_next(10, status=503)
    with pytest.raises(GeminiAPIError, match="after 3 attempts"):
        hook.embed_with_stats(corpus(6), output_dimensionality=DIM, on_document_error="skip")
    assert gemini_emulator.stats.status_counts[503] == 5


def test_skip_does_not_split_a_request_refused_for_its_key(
    monkeypatch: pytest.MonkeyPatch, gemini_emulator: GeminiEmulator
) -> None:
    connection = {
        "conn_type": "gemini",
        "password": "not-the-key",
        "extra": {"base_url": gemini_emulator.base_url},
    }
    monkeypatch.setenv("AIRFLOW_CONN_GEMINI_DEFAULT", json.dumps(connection))

    with pytest.raises(GeminiAPIError, match="API key not valid"):
        GeminiHook().embed_with_stats(corpus(8), output_dimensionality=DIM, on_document_error="skip")

    assert gemini_emulator.stats.requests == 1


def test_a_refusal_reason_never_holds_the_key_and_logs_name_the_text_not_its_content(
    connect: Callable[..., GeminiHook],
    gemini_emulator: GeminiEmulator,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    gemini_emulator.configure(echo_api_key_in_errors=True)
    secret_text = "confidential memo the service refuses"
    gemini_emulator.refuse_texts("refuses", REFUSAL)

    result = connect().embed_with_stats(
        ["fine", secret_text], output_dimensionality=DIM, on_document_error="skip"
    )

    [refused] = result.refused
    assert refused.reason == f"400 INVALID_ARGUMENT: {REFUSAL} (request key: ***)"
    captured = capsys.readouterr()
    logs = caplog.text + captured.out + captured.err
    assert gemini_emulator.api_key not in logs
    assert secret_text not in logs
    assert f"Gemini refused texts[1]; skipped: 400 INVALID_ARGUMENT: {REFUSAL}" in logs
    assert "Skipped 1 texts Gemini refused" in logs
