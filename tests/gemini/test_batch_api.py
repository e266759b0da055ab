"""Batch API embedding jobs through the hook's SDK client, against the emulator's batch routes."""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from airflow_provider_gemini_milvus.exceptions import GeminiAPIError
from airflow_provider_gemini_milvus.gemini.batch_api import (
    aget_batch_job,
    cancel_batch_job,
    find_batch_jobs,
    get_batch_job,
    read_batch_results,
    submit_embedding_batch,
)
from airflow_provider_gemini_milvus.gemini.files_api import delete_file
from airflow_provider_gemini_milvus.gemini.models import estimate_tokens
from airflow_provider_gemini_milvus.hooks.gemini import GeminiHook
from airflow_provider_gemini_milvus.testing.gemini_emulator import GeminiEmulator
from airflow_provider_gemini_milvus.testing.pytest_plugin import GeminiConnectionFactory

TEXTS = ["the cat sat on the mat", "a dog in the park", "stock markets fell today", "rain in Paris"]


@pytest.fixture
def hook(gemini_connection: str) -> GeminiHook:
    return GeminiHook(gemini_conn_id=gemini_connection)


class Collector:
    """``on_result`` that keeps every row by position."""

    def __init__(self) -> None:
        self.rows: dict[int, np.ndarray] = {}

    def __call__(self, positions: Sequence[int], vectors: np.ndarray) -> None:
        for position, vector in zip(positions, vectors, strict=True):
            self.rows[position] = vector

    def matrix(self, positions: Sequence[int]) -> np.ndarray:
        return np.stack([self.rows[position] for position in positions])


def run_job(hook: GeminiHook, texts: list[str], **submit: Any) -> tuple[Collector, Any]:
    name = submit_embedding_batch(
        hook, texts, model="gemini-embedding-001", output_dimensionality=256, **submit
    )
    assert get_batch_job(hook, name).succeeded
    collector = Collector()
    results = read_batch_results(hook, name, len(texts), dim=256, on_result=collector)
    return collector, results


@pytest.mark.parametrize(
    "submit",
    [
        pytest.param({}, id="inlined"),
        pytest.param({"inline_max_bytes": 0}, id="uploaded-file"),
        pytest.param({"titles": ["Pets", "Pets", "Money", None]}, id="inlined-per-text-titles"),
        pytest.param({"titles": ["Pets", "Pets", "Money", None], "inline_max_bytes": 0}, id="file-titles"),
        pytest.param({"titles": ["Same"] * 4}, id="inlined-one-title"),
    ],
)
def test_a_job_gives_the_vectors_of_the_synchronous_path_in_text_order(
    hook: GeminiHook, gemini_emulator: GeminiEmulator, submit: dict[str, Any]
) -> None:
    collector, results = run_job(hook, TEXTS, **submit)

    expected = hook.embed(TEXTS, output_dimensionality=256, titles=submit.get("titles"))
    np.testing.assert_allclose(collector.matrix(range(4)), expected, atol=1e-6)
    assert results.refused == ()
    assert results.reported_tokens == sum(estimate_tokens(text) for text in TEXTS)
    assert gemini_emulator.batches.jobs()[0].source == ("file" if "inline_max_bytes" in submit else "inlined")


def test_requests_the_job_could_not_embed_are_named_by_position(
    hook: GeminiHook, gemini_emulator: GeminiEmulator
) -> None:
    gemini_emulator.refuse_texts("dog", "Text was blocked.")
    collector, results = run_job(hook, TEXTS, inline_max_bytes=0)

    assert [(item.position, item.reason) for item in results.refused] == [(1, "3: Text was blocked.")]
    assert sorted(collector.rows) == [0, 2, 3]


def test_the_state_of_a_slow_job_and_its_cancellation(
    hook: GeminiHook, gemini_emulator: GeminiEmulator
) -> None:
    gemini_emulator.batches.configure(pending_polls=1, running_polls=5)
    name = submit_embedding_batch(hook, TEXTS, model="gemini-embedding-001")

    states = [get_batch_job(hook, name).state for _ in range(2)]
    assert cancel_batch_job(hook, name) is True
    cancelled = get_batch_job(hook, name)

    assert states == ["PENDING", "RUNNING"]
    assert (cancelled.state, cancelled.done, cancelled.error) == (
        "CANCELLED",
        True,
        "1: Batch job was cancelled.",
    )
    assert cancel_batch_job(hook, name) is False  # an ended job stays as it is
    assert gemini_emulator.stats.texts == 0


@pytest.mark.parametrize(("knob", "state"), [("fail_next", "FAILED"), ("expire_next", "EXPIRED")])
def test_a_failed_or_expired_job_carries_its_own_error(
    hook: GeminiHook, gemini_emulator: GeminiEmulator, knob: str, state: str
) -> None:
    getattr(gemini_emulator.batches, knob)()
    name = submit_embedding_batch(hook, TEXTS, model="gemini-embedding-001")

    status = get_batch_job(hook, name)

    assert status.state == state
    assert status.error is not None
    assert ("expired" if state == "EXPIRED" else "internal error") in status.error
    with pytest.raises(GeminiAPIError, match=f"has not succeeded \\(state {state}\\)"):
        read_batch_results(hook, name, 4, dim=3072, on_result=Collector())


def test_the_async_state_reads_the_connection_without_blocking(
    gemini_connection: str, gemini_emulator: GeminiEmulator
) -> None:
    gemini_emulator.batches.expire_next()
    name = submit_embedding_batch(GeminiHook(gemini_connection), TEXTS, model="gemini-embedding-001")

    async def poll() -> Any:
        return await aget_batch_job(await GeminiHook.from_async_connection(gemini_connection), name)

    status = asyncio.run(poll())

    assert (status.state, status.error) == (
        "EXPIRED",
        "4: Batch job expired: it did not finish within the 24-hour window.",
    )


def test_a_vertex_connection_is_refused_before_anything_is_sent(
    gemini_connection_factory: GeminiConnectionFactory, gemini_emulator: GeminiEmulator
) -> None:
    hook = GeminiHook(gemini_connection_factory(vertexai=True))

    with pytest.raises(ValueError, match="connection 'gemini_default' is set to Vertex AI"):
        submit_embedding_batch(hook, TEXTS, model="gemini-embedding-001")
    assert gemini_emulator.batches.jobs() == []


def test_bad_input_is_refused_naming_the_text_before_anything_is_sent(
    hook: GeminiHook, gemini_emulator: GeminiEmulator
) -> None:
    with pytest.raises(ValueError, match=r"texts\[1\] is empty"):
        submit_embedding_batch(hook, ["fine", "  "], model="gemini-embedding-001")
    assert gemini_emulator.batches.jobs() == []


def test_errors_of_batch_calls_never_carry_the_key(hook: GeminiHook, gemini_emulator: GeminiEmulator) -> None:
    gemini_emulator.configure(echo_api_key_in_errors=True)

    with pytest.raises(GeminiAPIError) as caught:
        get_batch_job(hook, "batches/does-not-exist")

    error = caught.value
    assert error.http_status == 404
    assert error.__cause__ is None
    assert error.__context__ is None
    assert gemini_emulator.api_key not in "".join(traceback.format_exception(error))
    assert "***" in str(error)  # the echoed key was there, and was scrubbed


def test_a_non_numeric_token_count_is_ignored_not_a_bare_value_error(
    hook: GeminiHook, gemini_emulator: GeminiEmulator
) -> None:
    gemini_emulator.batches.spoil_next_results("token_count")

    collector, results = run_job(hook, TEXTS, inline_max_bytes=0)

    assert sorted(collector.rows) == [0, 1, 2, 3]
    assert results.unusable == ()
    assert results.reported_tokens == sum(estimate_tokens(text) for text in TEXTS[1:])


@pytest.mark.parametrize("kind", ["nan", "short", "missing"])
def test_unusable_results_are_reported_by_position_and_the_rest_delivered(
    hook: GeminiHook, gemini_emulator: GeminiEmulator, kind: str
) -> None:
    gemini_emulator.batches.spoil_next_results(kind)

    collector, results = run_job(hook, TEXTS, inline_max_bytes=0)

    spoiled = 3 if kind == "missing" else 0
    assert [item.position for item in results.unusable] == [spoiled]
    assert sorted(collector.rows) == sorted({0, 1, 2, 3} - {spoiled})
    assert results.result_file is not None


def test_every_batch_call_is_retried_on_a_503(hook: GeminiHook, gemini_emulator: GeminiEmulator) -> None:
    for kind in ("upload_start", "create", "get", "download", "delete_file"):
        gemini_emulator.batches.fail_next_calls(1, 503, kind=kind)

    collector, results = run_job(hook, TEXTS, inline_max_bytes=0, display_name="gm-retried")

    assert sorted(collector.rows) == [0, 1, 2, 3]
    assert len(gemini_emulator.batches.jobs()) == 1
    assert results.result_file is not None
    assert delete_file(hook, results.result_file) is True
    assert delete_file(hook, results.result_file) is False  # already gone: nothing to do


def test_a_create_whose_answer_was_lost_is_found_not_sent_again(
    hook: GeminiHook, gemini_emulator: GeminiEmulator
) -> None:
    gemini_emulator.batches.lose_next_answers("create")

    name = submit_embedding_batch(hook, TEXTS, model="gemini-embedding-001", display_name="gm-test-1")

    [job] = gemini_emulator.batches.jobs()
    assert (job.name, job.display_name) == (name, "gm-test-1")
    assert [found.name for found in find_batch_jobs(hook, "gm-test-")] == [name]
    status = get_batch_job(hook, name)
    assert (status.display_name, status.request_count) == ("gm-test-1", 4)


def test_a_create_without_display_name_is_not_sent_twice(
    hook: GeminiHook, gemini_emulator: GeminiEmulator
) -> None:
    gemini_emulator.batches.fail_next_calls(1, 503, kind="create")

    with pytest.raises(GeminiAPIError, match="503"):
        submit_embedding_batch(hook, TEXTS, model="gemini-embedding-001")
    assert gemini_emulator.batches.jobs() == []
