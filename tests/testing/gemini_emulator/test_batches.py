"""The emulator's Batch API surface, driven through the real google-genai SDK."""

from __future__ import annotations

import io
import json
import warnings
from typing import Any

import pytest
from google import genai
from google.genai import errors, types

from airflow_provider_gemini_milvus.testing.gemini_emulator import GeminiEmulator
from tests.testing.gemini_emulator.batch_wire import CAPTURED, capture_sdk_batch_calls
from tests.testing.gemini_emulator.calls import MODEL, embed, raw_request


def test_the_sdk_still_sends_the_requests_the_batch_routes_were_written_against() -> None:
    recorded, parsed = capture_sdk_batch_calls()

    assert recorded == [{name: value for name, value in call.items() if name != "call"} for call in CAPTURED]
    responses = parsed["get"].dest.inlined_embed_content_responses
    assert [item.response.token_count if item.response else None for item in responses] == [3, None]
    assert responses[1].error.message == "bad"
    assert parsed["get"].error is None  # the operation's error is not mapped for the Gemini API
    assert parsed["upload"].name == "files/f1"
    assert parsed["download"].startswith(b'{"key":"0"')


def _create_inlined(client: genai.Client, texts: list[str], **config: Any) -> types.BatchJob:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # create_embeddings is marked experimental
        return client.batches.create_embeddings(
            model=MODEL,
            src=types.EmbeddingsBatchJobSource(
                inlined_requests=types.EmbedContentBatch(
                    contents=texts, config=types.EmbedContentConfig(**config) if config else None
                )
            ),
        )


def _create_from_file(client: genai.Client, lines: list[dict[str, Any]]) -> types.BatchJob:
    data = "".join(json.dumps(line) + "\n" for line in lines).encode()
    uploaded = client.files.upload(file=io.BytesIO(data), config={"mime_type": "application/jsonl"})
    assert uploaded.name is not None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return client.batches.create_embeddings(model=MODEL, src={"file_name": uploaded.name})


def _inlined_values(job: types.BatchJob) -> list[list[float] | None]:
    assert job.dest is not None
    assert job.dest.inlined_embed_content_responses is not None
    return [
        list(item.response.embedding.values or []) if item.response and item.response.embedding else None
        for item in job.dest.inlined_embed_content_responses
    ]


def test_an_inlined_job_answers_the_vectors_of_the_synchronous_route(
    gemini_emulator: GeminiEmulator, client: genai.Client
) -> None:
    config: dict[str, Any] = {
        "task_type": "RETRIEVAL_DOCUMENT",
        "output_dimensionality": 256,
        "title": "Guide",
    }
    created = _create_inlined(client, ["alpha beta", "gamma delta"], **config)
    assert created.state == types.JobState.JOB_STATE_PENDING
    assert not created.done
    gemini_emulator.reset_stats()

    finished = client.batches.get(name=created.name or "")

    assert finished.state == types.JobState.JOB_STATE_SUCCEEDED
    assert finished.done
    assert _inlined_values(finished) == embed(client, ["alpha beta", "gamma delta"], **config)
    stats = gemini_emulator.stats
    assert (stats.texts, stats.embedded_texts, stats.succeeded_requests) == (
        2 * 2,  # the batch job, then the synchronous call it is compared with
        ["alpha beta", "gamma delta"] * 2,
        2,
    )


def test_a_file_job_writes_keyed_result_lines_to_a_generated_file(
    gemini_emulator: GeminiEmulator, client: genai.Client
) -> None:
    lines = [
        {"key": "b", "request": {"content": {"parts": [{"text": "second"}]}, "output_dimensionality": 128}},
        {"key": "a", "request": {"content": {"parts": [{"text": "first"}]}, "outputDimensionality": 128}},
    ]
    job = client.batches.get(name=_create_from_file(client, lines).name or "")

    assert job.state == types.JobState.JOB_STATE_SUCCEEDED
    assert job.dest is not None
    assert job.dest.file_name is not None
    results = [json.loads(line) for line in client.files.download(file=job.dest.file_name).splitlines()]
    assert [result["key"] for result in results] == ["b", "a"]
    assert [result["response"]["embedding"]["values"] for result in results] == embed(
        client, ["second", "first"], output_dimensionality=128
    )
    assert results[0]["response"]["tokenCount"] == "2"
    assert gemini_emulator.batches.jobs()[0].source == "file"


def test_a_slow_job_is_pending_then_running_for_the_polls_it_was_given(
    gemini_emulator: GeminiEmulator, client: genai.Client
) -> None:
    gemini_emulator.batches.configure(pending_polls=1, running_polls=2)
    name = _create_inlined(client, ["slow"]).name or ""

    states = [client.batches.get(name=name).state for _ in range(5)]

    assert [state.name if state else None for state in states] == [
        "JOB_STATE_PENDING",
        "JOB_STATE_RUNNING",
        "JOB_STATE_RUNNING",
        "JOB_STATE_SUCCEEDED",
        "JOB_STATE_SUCCEEDED",
    ]
    assert gemini_emulator.batches.jobs()[0].polls == 4


@pytest.mark.parametrize(
    ("knob", "state", "code"), [("fail_next", "FAILED", 13), ("expire_next", "EXPIRED", 4)]
)
def test_failed_and_expired_jobs_embed_nothing_and_carry_an_error(
    gemini_emulator: GeminiEmulator, client: genai.Client, knob: str, state: str, code: int
) -> None:
    getattr(gemini_emulator.batches, knob)()
    job = _create_inlined(client, ["doomed"])

    finished = client.batches.get(name=job.name or "")
    operation = raw_request(
        gemini_emulator, f"/v1beta/{job.name}", key=gemini_emulator.api_key, method="GET"
    ).body

    assert finished.state == types.JobState(f"JOB_STATE_{state}")
    assert finished.dest is None
    assert operation["done"] is True
    assert operation["error"]["code"] == code
    assert gemini_emulator.stats.texts == 0
    assert client.batches.get(name=_create_inlined(client, ["fine"]).name or "").state == (
        types.JobState.JOB_STATE_SUCCEEDED
    )


def test_cancel_ends_a_running_job_and_is_refused_once_it_has_ended(
    gemini_emulator: GeminiEmulator, client: genai.Client
) -> None:
    gemini_emulator.batches.configure(running_polls=10)
    name = _create_inlined(client, ["to cancel"]).name or ""
    assert client.batches.get(name=name).state == types.JobState.JOB_STATE_RUNNING

    client.batches.cancel(name=name)

    assert client.batches.get(name=name).state == types.JobState.JOB_STATE_CANCELLED
    with pytest.raises(errors.ClientError) as refused:
        client.batches.cancel(name=name)
    assert refused.value.code == 400
    assert refused.value.status == "FAILED_PRECONDITION"
    assert gemini_emulator.stats.texts == 0


def test_refused_texts_fail_their_own_request_and_the_job_still_succeeds(
    gemini_emulator: GeminiEmulator, client: genai.Client
) -> None:
    gemini_emulator.refuse_texts("forbidden", "Text was blocked.")
    job = client.batches.get(
        name=_create_inlined(client, ["fine", "forbidden words", "also fine"]).name or ""
    )

    assert job.state == types.JobState.JOB_STATE_SUCCEEDED
    values = _inlined_values(job)
    assert values[1] is None
    assert values[0] is not None
    assert values[2] is not None
    assert job.dest is not None
    assert job.dest.inlined_embed_content_responses is not None
    error = job.dest.inlined_embed_content_responses[1].error
    assert error is not None
    assert (error.code, error.message) == (3, "Text was blocked.")
    assert gemini_emulator.stats.embedded_texts == ["fine", "also fine"]


def test_a_request_the_synchronous_route_would_refuse_fails_alone(client: genai.Client) -> None:
    lines: list[dict[str, Any]] = [
        {"key": "0", "request": {"content": {"parts": [{"text": "ok"}]}}},
        {"key": "1", "request": {"content": {"parts": [{"text": "ok"}]}, "outputDimensionality": 5}},
        {"key": "2"},
    ]
    job = client.batches.get(name=_create_from_file(client, lines).name or "")

    assert job.dest is not None
    assert job.dest.file_name is not None
    results = [json.loads(line) for line in client.files.download(file=job.dest.file_name).splitlines()]
    assert "response" in results[0]
    assert results[1]["error"]["code"] == 3
    assert "output_dimensionality" in results[1]["error"]["message"]
    assert results[2]["error"]["code"] == 3


def test_list_pages_newest_first_without_results(client: genai.Client) -> None:
    names = [_create_inlined(client, [f"text {i}"]).name for i in range(3)]
    for name in names:
        client.batches.get(name=name or "")

    listed = list(client.batches.list(config={"page_size": 2}))

    assert [job.name for job in listed] == names[::-1]
    assert all(job.dest is None for job in listed)


def test_batch_routes_need_the_key(gemini_emulator: GeminiEmulator) -> None:
    assert raw_request(gemini_emulator, "/v1/batches", method="GET").status == 403


def test_fail_next_calls_fails_any_batch_route_then_recovers(
    gemini_emulator: GeminiEmulator, client: genai.Client
) -> None:
    name = _create_inlined(client, ["flaky"]).name or ""
    gemini_emulator.batches.fail_next_calls(2, status=429)

    with pytest.raises(errors.ClientError) as first:
        client.batches.get(name=name)
    with pytest.raises(errors.ClientError):
        client.batches.list()
    finished = client.batches.get(name=name)

    assert first.value.code == 429
    assert finished.state == types.JobState.JOB_STATE_SUCCEEDED
    with pytest.raises(ValueError, match="status must be one of"):
        gemini_emulator.batches.fail_next_calls(1, status=418)


def test_a_lost_create_answer_still_creates_the_job(
    gemini_emulator: GeminiEmulator, client: genai.Client
) -> None:
    gemini_emulator.batches.lose_next_answers("create")

    with pytest.raises(Exception, match="disconnected|closed|Connection"):
        _create_inlined(client, ["a", "b"])

    [job] = gemini_emulator.batches.jobs()
    assert job.texts == ("a", "b")
    assert client.batches.get(name=job.name).name == job.name  # the next call is answered


def test_faults_can_target_one_route(gemini_emulator: GeminiEmulator, client: genai.Client) -> None:
    gemini_emulator.batches.fail_next_calls(1, 503, kind="get")
    job = _create_inlined(client, ["a"])  # not a get: not failed

    with pytest.raises(errors.ServerError):
        client.batches.get(name=str(job.name))
    assert client.batches.get(name=str(job.name)).state is not None
    with pytest.raises(ValueError, match="kind must be one of the batch routes"):
        gemini_emulator.batches.fail_next_calls(1, 503, kind="nope")


@pytest.mark.parametrize(("kind", "spoiled"), [("nan", 0), ("short", 0), ("missing", 1)])
def test_spoiled_results(
    gemini_emulator: GeminiEmulator, client: genai.Client, kind: str, spoiled: int
) -> None:
    gemini_emulator.batches.spoil_next_results(kind)

    job = client.batches.get(name=str(_create_inlined(client, ["a", "b"]).name))

    responses = job.dest.inlined_embed_content_responses if job.dest else None
    assert responses is not None
    values = [
        item.response.embedding.values if item.response and item.response.embedding else None
        for item in responses
    ]
    if kind == "missing":
        assert len(values) == 1
    elif kind == "nan":
        assert any(value != value for value in values[spoiled] or [])
    else:
        assert len(values[0] or []) == len(values[1] or []) - 1


def test_a_forgotten_job_is_not_found(gemini_emulator: GeminiEmulator, client: genai.Client) -> None:
    job = _create_inlined(client, ["a"])

    gemini_emulator.batches.forget(str(job.name))

    with pytest.raises(errors.ClientError, match="404"):
        client.batches.get(name=str(job.name))
