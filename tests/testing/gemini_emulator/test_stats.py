"""The counters of what the emulator served."""

from __future__ import annotations

import asyncio
import threading

import pytest
from google import genai
from google.genai import errors, types

from airflow_provider_gemini_milvus.gemini.models import estimate_tokens
from airflow_provider_gemini_milvus.testing.gemini_emulator import GeminiEmulator
from tests.testing.gemini_emulator.calls import MODEL, embed, make_client


def test_counters(gemini_emulator: GeminiEmulator, client: genai.Client) -> None:
    embed(client, ["one", "two"], task_type="RETRIEVAL_DOCUMENT", output_dimensionality=768)
    embed(client, ["three"], task_type="RETRIEVAL_QUERY")
    with pytest.raises(errors.ClientError):
        embed(client, ["four"], task_type="BAD")

    stats = gemini_emulator.stats
    assert stats.requests == 3
    assert stats.succeeded_requests == 2
    assert stats.texts == 3
    assert stats.batch_sizes == [2, 1]
    assert stats.task_types == {"RETRIEVAL_DOCUMENT": 2, "RETRIEVAL_QUERY": 1}
    assert stats.dims == {768: 2, 3072: 1}
    assert stats.models == {MODEL: 3}
    assert stats.status_counts == {200: 2, 400: 1}
    assert stats.embedded_texts == ["one", "two", "three"]
    assert stats.tokens == sum(estimate_tokens(text) for text in ["one", "two", "three"])
    gemini_emulator.reset_stats()
    assert gemini_emulator.stats.requests == 0


def test_max_in_flight_under_concurrency(gemini_emulator: GeminiEmulator) -> None:
    gemini_emulator.configure(latency_seconds=0.3)
    barrier = threading.Barrier(4)
    failures: list[BaseException] = []

    def worker() -> None:
        try:
            local_client = make_client(gemini_emulator)
            barrier.wait()
            embed(local_client, ["concurrent"])
        except BaseException as exc:  # collected and asserted below
            failures.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert not failures
    assert gemini_emulator.stats.max_in_flight == 4


def test_async_client_calls_are_served_concurrently(gemini_emulator: GeminiEmulator) -> None:
    gemini_emulator.configure(latency_seconds=0.2)
    async_client = make_client(gemini_emulator).aio

    async def embed_all() -> list[types.EmbedContentResponse]:
        calls = [async_client.models.embed_content(model=MODEL, contents=f"text {i}") for i in range(6)]
        return await asyncio.gather(*calls)

    responses = asyncio.run(embed_all())

    assert len(responses) == 6
    assert gemini_emulator.stats.max_in_flight == 6
    assert sorted(gemini_emulator.stats.embedded_texts) == [f"text {i}" for i in range(6)]


def test_stats_are_a_snapshot_later_calls_do_not_change(
    gemini_emulator: GeminiEmulator, client: genai.Client
) -> None:
    embed(client, ["one"])
    before = gemini_emulator.stats

    embed(client, ["two"])

    assert (before.requests, before.embedded_texts, before.status_counts) == (1, ["one"], {200: 1})
    assert gemini_emulator.stats.embedded_texts == ["one", "two"]
