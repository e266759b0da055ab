"""
The Gemini emulator, driven through the real google-genai SDK (raw HTTP only where the SDK cannot express
the case, such as a missing key, ``?key=`` or per-element titles).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any

import httpx2
import numpy as np
import pytest
from google import genai
from google.genai import errors, types

from airflow_provider_gemini_milvus.gemini_models import MAX_TEXTS_PER_REQUEST, MODELS, estimate_tokens
from airflow_provider_gemini_milvus.testing.gemini_emulator import (
    GeminiEmulator,
    emulated_embedding,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

MODEL = "gemini-embedding-001"
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def emulator() -> Iterator[GeminiEmulator]:
    with GeminiEmulator() as running:
        yield running


def make_client(emulator: GeminiEmulator, *, api_key: str | None = None, **options: Any) -> genai.Client:
    return genai.Client(
        api_key=api_key or emulator.api_key,
        http_options=types.HttpOptions(base_url=emulator.base_url, **options),
    )


@pytest.fixture
def client(emulator: GeminiEmulator) -> genai.Client:
    return make_client(emulator)


def embed(client: genai.Client, contents: Any, model: str = MODEL, **config: Any) -> list[list[float]]:
    response = client.models.embed_content(
        model=model, contents=contents, config=types.EmbedContentConfig(**config) if config else None
    )
    assert response.embeddings is not None
    return [list(embedding.values or []) for embedding in response.embeddings]


def raw_request(
    emulator: GeminiEmulator,
    path: str,
    body: dict[str, Any] | None = None,
    *,
    key: str | None = None,
    key_in_query: bool = False,
    method: str = "POST",
) -> tuple[int, dict[str, Any], str]:
    """Send one request with urllib; return the status, the parsed body and the raw body."""
    url = f"{emulator.base_url}{path}"
    headers = {"Content-Type": "application/json"}
    if key is not None and key_in_query:
        url += f"?key={key}"
    elif key is not None:
        headers["x-goog-api-key"] = key
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            text = response.read().decode()
            return response.status, json.loads(text), text
    except urllib.error.HTTPError as error:
        text = error.read().decode()
        return error.code, json.loads(text), text


def element(text: str, **fields: Any) -> dict[str, Any]:
    return {"model": f"models/{MODEL}", "content": {"parts": [{"text": text}]}, **fields}


def error_detail(exc: errors.APIError, type_suffix: str) -> dict[str, Any] | None:
    details = exc.details["error"].get("details", [])
    return next((item for item in details if item["@type"].endswith(type_suffix)), None)


def cosine(a: list[float], b: list[float]) -> float:
    va, vb = np.asarray(a), np.asarray(b)
    return float(va @ vb / (np.linalg.norm(va) * np.linalg.norm(vb)))


# --- success paths -------------------------------------------------------------------------------------


def test_batch_answers_200_with_one_vector_per_text_in_order(
    emulator: GeminiEmulator, client: genai.Client
) -> None:
    texts = ["first text", "second text about Milvus", "third text about Airflow"]

    vectors = embed(client, texts, task_type="RETRIEVAL_DOCUMENT")

    assert vectors == [emulated_embedding(text, task_type="RETRIEVAL_DOCUMENT") for text in texts]
    assert emulator.stats.status_counts == {200: 1}


def test_full_dimension_is_unit_length_and_001_truncation_is_a_raw_prefix(client: genai.Client) -> None:
    [full] = embed(client, ["a text about vector databases"])
    [short] = embed(client, ["a text about vector databases"], output_dimensionality=768)

    assert len(full) == 3072
    assert np.linalg.norm(full) == pytest.approx(1.0, abs=1e-5)
    assert len(short) == 768
    assert short == pytest.approx(full[:768], abs=1e-8)
    assert abs(np.linalg.norm(short) - 1.0) > 0.01


def test_gemini_embedding_2_renormalises_truncated_vectors(client: genai.Client) -> None:
    [short] = embed(
        client, "a text about vector databases", model="gemini-embedding-2", output_dimensionality=768
    )

    assert len(short) == 768
    assert np.linalg.norm(short) == pytest.approx(1.0, abs=1e-5)


def test_vectors_are_deterministic_and_similar_texts_are_neighbours(client: genai.Client) -> None:
    texts = ["The cat sat on the mat.", "A cat was sitting on a mat.", "Stock markets fell sharply today."]
    first = embed(client, texts)
    again = embed(client, texts)

    assert first == again
    assert cosine(first[0], first[1]) > 0.5 > cosine(first[0], first[2])


def test_task_type_changes_the_vector_but_keeps_it_close(client: genai.Client) -> None:
    [query] = embed(client, "vector search in Milvus", task_type="RETRIEVAL_QUERY")
    [document] = embed(client, "vector search in Milvus", task_type="RETRIEVAL_DOCUMENT")

    assert query != document
    assert cosine(query, document) > 0.8


def test_retrieval_finds_the_answers(client: genai.Client) -> None:
    documents = [
        "Artificial intelligence was founded as an academic discipline in 1956.",
        "Alan Turing was the first person to conduct substantial research in AI.",
        "Born in Maida Vale, London, Turing was raised in southern England.",
        "Milvus is an open-source vector database built for similarity search.",
        "Apache Airflow schedules and monitors workflows written as Python DAGs.",
        "The Eiffel Tower in Paris was completed in 1889 for the World's Fair.",
        "Photosynthesis converts sunlight, water and carbon dioxide into glucose.",
        "Python is a programming language created by Guido van Rossum in 1991.",
        "Neil Armstrong walked on the Moon during the Apollo 11 landing in 1969.",
    ]
    questions = {"When was artificial intelligence founded": 0, "Where was Alan Turing born?": 2}
    document_matrix = np.asarray(
        embed(client, documents, task_type="RETRIEVAL_DOCUMENT", output_dimensionality=768)
    )
    document_matrix /= np.linalg.norm(document_matrix, axis=1, keepdims=True)
    query_matrix = np.asarray(
        embed(client, list(questions), task_type="RETRIEVAL_QUERY", output_dimensionality=768)
    )
    query_matrix /= np.linalg.norm(query_matrix, axis=1, keepdims=True)

    top_hits = (query_matrix @ document_matrix.T).argmax(axis=1).tolist()

    assert top_hits == list(questions.values())


def test_gemini_embedding_2_merges_strings_but_not_separate_contents(
    emulator: GeminiEmulator, client: genai.Client
) -> None:
    texts = ["first", "second", "third"]

    merged = embed(client, texts, model="gemini-embedding-2")
    separate = embed(
        client, [types.Content(parts=[types.Part(text=text)]) for text in texts], model="gemini-embedding-2"
    )

    assert len(merged) == 1
    assert len(separate) == 3
    assert separate[1] == emulated_embedding("second", model="gemini-embedding-2")
    stats = emulator.stats
    assert (stats.texts, stats.embeddings, stats.batch_sizes) == (6, 4, [1, 3])


def test_per_element_fields_are_honoured_in_camel_and_snake_case(emulator: GeminiEmulator) -> None:
    body = {
        "requests": [
            element("Paris guide", taskType="RETRIEVAL_DOCUMENT", title="Travel"),
            element(
                "Paris guide", task_type="RETRIEVAL_DOCUMENT", title="Cooking", output_dimensionality=256
            ),
        ]
    }

    status, payload, _ = raw_request(
        emulator, f"/v1beta/models/{MODEL}:batchEmbedContents", body, key="emulator-key"
    )

    assert status == 200
    first, second = (item["values"] for item in payload["embeddings"])
    assert first == emulated_embedding("Paris guide", task_type="RETRIEVAL_DOCUMENT", title="Travel")
    assert second == emulated_embedding(
        "Paris guide", task_type="RETRIEVAL_DOCUMENT", title="Cooking", output_dimensionality=256
    )


def test_single_embed_content_route(emulator: GeminiEmulator) -> None:
    body = {
        "model": f"models/{MODEL}",
        "content": {"parts": [{"text": "hello"}]},
        "output_dimensionality": 128,
    }

    status, payload, _ = raw_request(emulator, f"/v1/models/{MODEL}:embedContent", body, key="emulator-key")

    assert status == 200
    assert payload == {"embedding": {"values": emulated_embedding("hello", output_dimensionality=128)}}


def test_models_get_and_list(client: genai.Client) -> None:
    model = client.models.get(model=MODEL)
    listed = [item.name for item in client.models.list(config={"page_size": 2})]

    assert model.name == f"models/{MODEL}"
    assert model.input_token_limit == MODELS[MODEL].max_input_tokens
    assert "embedContent" in (model.supported_actions or [])
    assert listed == [f"models/{name}" for name in sorted(MODELS)]


def test_vertex_express_mode(emulator: GeminiEmulator) -> None:
    vertex = genai.Client(
        vertexai=True, api_key=emulator.api_key, http_options=types.HttpOptions(base_url=emulator.base_url)
    )
    config = types.EmbedContentConfig(task_type="RETRIEVAL_DOCUMENT", title="T", output_dimensionality=256)

    batch = vertex.models.embed_content(model=MODEL, contents=["a", "b"], config=config)
    single = vertex.models.embed_content(model=MODEL, contents="a", config=config)
    predicted = vertex.models.embed_content(model="text-embedding-004", contents=["a", "b"])

    expected = emulated_embedding("a", task_type="RETRIEVAL_DOCUMENT", title="T", output_dimensionality=256)
    assert batch.embeddings is not None
    assert single.embeddings is not None
    assert predicted.embeddings is not None
    assert [len(item.values or []) for item in batch.embeddings] == [256, 256]
    assert batch.embeddings[0].values == expected
    assert single.embeddings[0].values == expected
    assert single.embeddings[0].statistics is not None
    assert single.embeddings[0].statistics.token_count == 1
    assert [len(item.values or []) for item in predicted.embeddings] == [768, 768]


def test_vertex_auto_truncates_long_input_by_default(emulator: GeminiEmulator) -> None:
    long_text = "word " * 3000
    path = f"/v1beta1/projects/p/locations/us-central1/publishers/google/models/{MODEL}:embedContent"

    status, payload, _ = raw_request(
        emulator, path, {"content": {"parts": [{"text": long_text}]}}, key="emulator-key"
    )
    refused, _, _ = raw_request(
        emulator,
        path,
        {"content": {"parts": [{"text": long_text}]}, "embedContentConfig": {"autoTruncate": False}},
        key="emulator-key",
    )

    assert (status, payload["truncated"], refused) == (200, True, 400)


# --- validation errors ---------------------------------------------------------------------------------


def test_more_than_100_texts_is_the_real_400(client: genai.Client) -> None:
    with pytest.raises(errors.ClientError) as caught:
        embed(client, ["text"] * (MAX_TEXTS_PER_REQUEST + 1))

    assert caught.value.code == 400
    assert caught.value.status == "INVALID_ARGUMENT"
    assert (
        caught.value.message
        == "* BatchEmbedContentsRequest.requests: at most 100 requests can be in one batch\n"
    )


def test_unknown_model_is_404(client: genai.Client) -> None:
    with pytest.raises(errors.ClientError) as caught:
        embed(client, ["text"], model="no-such-model")

    assert caught.value.code == 404
    assert caught.value.status == "NOT_FOUND"
    assert caught.value.message == (
        "models/no-such-model is not found for API version v1, or is not supported for embedContent. "
        "Call ListModels to see the list of available models and their supported methods."
    )


@pytest.mark.parametrize(
    ("contents", "config", "expected"),
    [
        pytest.param(
            ["a", "b"], {"task_type": "NOT_A_TASK"}, ["requests[0].task_type", "NOT_A_TASK"], id="task-type"
        ),
        pytest.param(["a", ""], {}, ["requests[1].content"], id="empty-text"),
        pytest.param(["a", "x" * (4 * 2048 + 1)], {}, ["requests[1]", "2048"], id="too-long"),
        pytest.param(
            ["a"], {"output_dimensionality": 64}, ["requests[0].output_dimensionality", "128"], id="dim"
        ),
    ],
)
def test_invalid_requests_are_400_naming_the_element(
    emulator: GeminiEmulator,
    client: genai.Client,
    contents: list[str],
    config: dict[str, Any],
    expected: list[str],
) -> None:
    with pytest.raises(errors.ClientError) as caught:
        embed(client, contents, **config)

    assert caught.value.code == 400
    assert caught.value.status == "INVALID_ARGUMENT"
    for fragment in expected:
        assert fragment in (caught.value.message or "")
    assert emulator.stats.texts == 0


def test_empty_parts_and_unknown_fields_are_refused(emulator: GeminiEmulator) -> None:
    path = f"/v1/models/{MODEL}:batchEmbedContents"
    no_parts = {"requests": [{"model": f"models/{MODEL}", "content": {"parts": []}}]}
    unknown = {"requests": [element("a", taskTipe="RETRIEVAL_QUERY")]}

    empty_status, empty_body, _ = raw_request(emulator, path, no_parts, key="emulator-key")
    unknown_status, unknown_body, _ = raw_request(emulator, path, unknown, key="emulator-key")

    assert empty_status == 400
    assert "requests[0].content.parts" in empty_body["error"]["message"]
    assert unknown_status == 400
    assert 'Unknown name "taskTipe"' in unknown_body["error"]["message"]


# --- authentication ------------------------------------------------------------------------------------


def test_wrong_key_is_400_api_key_invalid_and_no_key_is_echoed(emulator: GeminiEmulator) -> None:
    wrong = make_client(emulator, api_key="wrong-secret-key")

    with pytest.raises(errors.ClientError) as caught:
        embed(wrong, ["text"])

    assert caught.value.code == 400
    assert caught.value.message == "API key not valid. Please pass a valid API key."
    info = error_detail(caught.value, "ErrorInfo")
    assert info is not None
    assert info["reason"] == "API_KEY_INVALID"
    assert "wrong-secret-key" not in json.dumps(caught.value.details)
    assert emulator.api_key not in json.dumps(caught.value.details)


def test_missing_key_is_403_and_query_key_works(emulator: GeminiEmulator) -> None:
    path = f"/v1/models/{MODEL}:batchEmbedContents"
    body = {"requests": [element("hello")]}

    missing_status, missing_body, _ = raw_request(emulator, path, body)
    query_status, query_body, query_text = raw_request(
        emulator, path, body, key=emulator.api_key, key_in_query=True
    )

    assert missing_status == 403
    assert missing_body["error"]["status"] == "PERMISSION_DENIED"
    assert "unregistered callers" in missing_body["error"]["message"]
    assert query_status == 200
    assert query_body["embeddings"][0]["values"] == emulated_embedding("hello")
    assert emulator.api_key not in query_text


def test_key_never_reaches_the_log(emulator: GeminiEmulator, caplog: pytest.LogCaptureFixture) -> None:
    emulator.configure(api_key="very-secret-key")
    caplog.set_level(logging.DEBUG, logger="airflow_provider_gemini_milvus")
    path = f"/v1/models/{MODEL}:batchEmbedContents"

    raw_request(
        emulator, path, {"requests": [element("secret text")]}, key="very-secret-key", key_in_query=True
    )
    raw_request(emulator, path, {"requests": [element("x")]}, key="another-secret", key_in_query=True)

    assert caplog.records
    assert "very-secret-key" not in caplog.text
    assert "another-secret" not in caplog.text
    assert "secret text" not in caplog.text


# --- quotas --------------------------------------------------------------------------------------------


def test_requests_per_minute_quota_is_429_with_retry_info(
    emulator: GeminiEmulator, client: genai.Client
) -> None:
    emulator.configure(requests_per_minute=24, quota_window_seconds=5.0)  # two calls per 5 s window
    embed(client, ["a"])
    embed(client, ["b"])

    with pytest.raises(errors.ClientError) as caught:
        embed(client, ["c"])

    assert caught.value.code == 429
    assert caught.value.status == "RESOURCE_EXHAUSTED"
    failure = error_detail(caught.value, "QuotaFailure")
    assert failure is not None
    assert failure["violations"][0]["quotaId"] == "EmbedContentRequestsPerMinutePerProjectPerModel"
    retry = error_detail(caught.value, "RetryInfo")
    assert retry is not None
    assert 0 < float(retry["retryDelay"].removesuffix("s")) <= 5.0
    assert "Please retry in" in (caught.value.message or "")
    emulator.configure(
        requests_per_minute=36
    )  # room for exactly one more call: the refused one did not count
    assert embed(client, ["c"])
    assert emulator.stats.status_counts == {200: 3, 429: 1}


def test_quota_window_slides(emulator: GeminiEmulator, client: genai.Client) -> None:
    emulator.configure(requests_per_minute=120, quota_window_seconds=0.5)  # one call per 0.5 s
    embed(client, ["a"])
    with pytest.raises(errors.ClientError) as caught:
        embed(client, ["b"])
    retry = error_detail(caught.value, "RetryInfo")
    assert retry is not None

    time.sleep(float(retry["retryDelay"].removesuffix("s")))

    assert embed(client, ["b"])


def test_tokens_per_minute_quota(emulator: GeminiEmulator, client: genai.Client) -> None:
    emulator.configure(tokens_per_minute=60, quota_window_seconds=10.0)  # ten tokens per 10 s window
    embed(client, ["x" * 40])  # ten tokens

    with pytest.raises(errors.ClientError) as caught:
        embed(client, ["y"])

    failure = error_detail(caught.value, "QuotaFailure")
    assert failure is not None
    assert failure["violations"][0]["quotaId"] == "EmbedContentInputTokensPerMinutePerProjectPerModel"
    assert error_detail(caught.value, "RetryInfo") is not None


def test_request_quota_can_count_texts(emulator: GeminiEmulator, client: genai.Client) -> None:
    emulator.configure(
        requests_per_minute=180, quota_window_seconds=1.0, quota_counts_texts=True
    )  # 3 a second
    embed(client, ["a", "b"])

    with pytest.raises(errors.ClientError) as caught:
        embed(client, ["c", "d"])

    assert caught.value.code == 429
    assert embed(client, ["c"])


def test_per_day_quota_has_no_retry_info(emulator: GeminiEmulator, client: genai.Client) -> None:
    emulator.configure(requests_per_day=1)
    embed(client, ["a"])

    with pytest.raises(errors.ClientError) as caught:
        embed(client, ["b"])

    assert caught.value.code == 429
    failure = error_detail(caught.value, "QuotaFailure")
    assert failure is not None
    assert failure["violations"][0]["quotaId"] == "EmbedContentRequestsPerDayPerProjectPerModel"
    assert error_detail(caught.value, "RetryInfo") is None


# --- faults --------------------------------------------------------------------------------------------


def test_fail_next_answers_queued_faults_then_recovers(
    emulator: GeminiEmulator, client: genai.Client
) -> None:
    emulator.fail_next(1, status=429, retry_delay=0.5)
    emulator.fail_next(1, status=500)
    emulator.fail_next(1, status=503)

    with pytest.raises(errors.ClientError) as too_many:
        embed(client, ["a"])
    with pytest.raises(errors.ServerError) as internal:
        embed(client, ["a"])
    with pytest.raises(errors.ServerError) as overloaded:
        embed(client, ["a"])

    emulator.fail_next(1, status=429)
    with pytest.raises(errors.ClientError) as bare:
        embed(client, ["a"])
    assert bare.value.status == "RESOURCE_EXHAUSTED"
    assert "details" not in bare.value.details["error"]
    retry = error_detail(too_many.value, "RetryInfo")
    assert retry is not None
    assert retry["retryDelay"] == "0.5s"
    assert (internal.value.code, internal.value.status) == (500, "INTERNAL")
    assert (overloaded.value.code, overloaded.value.message) == (
        503,
        "The model is overloaded. Please try again later.",
    )
    assert embed(client, ["a"]) == [emulated_embedding("a")]
    assert emulator.stats.requests == 5
    assert emulator.stats.embedded_texts == ["a"]


def test_sdk_retries_ride_out_queued_faults(emulator: GeminiEmulator) -> None:
    retrying = make_client(
        emulator,
        retry_options=types.HttpRetryOptions(attempts=4, initial_delay=0.01, max_delay=0.02, jitter=0),
    )
    emulator.fail_next(2, status=504)

    assert embed(retrying, ["a"]) == [emulated_embedding("a")]
    assert emulator.stats.status_counts == {504: 2, 200: 1}


def test_drop_next_closes_the_connection(emulator: GeminiEmulator, client: genai.Client) -> None:
    emulator.drop_next(1)

    with pytest.raises(httpx2.TransportError):
        embed(client, ["a"])

    assert embed(client, ["a"]) == [emulated_embedding("a")]
    stats = emulator.stats
    assert (stats.requests, stats.dropped, stats.succeeded_requests) == (2, 1, 1)


def test_fault_rate_is_seeded(emulator: GeminiEmulator, client: genai.Client) -> None:
    def outcomes() -> list[int]:
        emulator.configure(fault_rate=0.5, fault_statuses=(500, 503), seed=7)
        codes = []
        for _ in range(12):
            try:
                embed(client, ["a"])
                codes.append(200)
            except errors.APIError as error:
                codes.append(error.code)
        return codes

    first, second = outcomes(), outcomes()

    assert first == second
    assert 200 in first
    assert {500, 503} & set(first)


# --- counters ------------------------------------------------------------------------------------------


def test_counters(emulator: GeminiEmulator, client: genai.Client) -> None:
    embed(client, ["one", "two"], task_type="RETRIEVAL_DOCUMENT", output_dimensionality=768)
    embed(client, ["three"], task_type="RETRIEVAL_QUERY")
    with pytest.raises(errors.ClientError):
        embed(client, ["four"], task_type="BAD")

    stats = emulator.stats
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
    emulator.reset_stats()
    assert emulator.stats.requests == 0


def test_max_in_flight_under_concurrency(emulator: GeminiEmulator) -> None:
    emulator.configure(latency_seconds=0.3)
    barrier = threading.Barrier(4)
    failures: list[BaseException] = []

    def worker() -> None:
        try:
            local_client = make_client(emulator)
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
    assert emulator.stats.max_in_flight == 4


def test_async_client_calls_are_served_concurrently(emulator: GeminiEmulator) -> None:
    emulator.configure(latency_seconds=0.2)
    async_client = make_client(emulator).aio

    async def embed_all() -> list[types.EmbedContentResponse]:
        calls = [async_client.models.embed_content(model=MODEL, contents=f"text {i}") for i in range(6)]
        return await asyncio.gather(*calls)

    responses = asyncio.run(embed_all())

    assert len(responses) == 6
    assert emulator.stats.max_in_flight == 6
    assert sorted(emulator.stats.embedded_texts) == [f"text {i}" for i in range(6)]


def test_configure_rejects_unknown_knobs(emulator: GeminiEmulator) -> None:
    with pytest.raises(TypeError):
        emulator.configure(requests_per_hour=3)
    with pytest.raises(ValueError, match="fault_rate"):
        emulator.configure(fault_rate=2)


# --- command line --------------------------------------------------------------------------------------


def test_cli_serves_the_same_vectors_and_exits_cleanly() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_gemini_milvus.testing.gemini_emulator", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
    )
    try:
        assert process.stdout is not None
        first_line = process.stdout.readline()
        connection_line = process.stdout.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+)", first_line)
        assert match, first_line
        connection = json.loads(connection_line.split("=", 1)[1].strip().strip("'"))
        assert connection == {
            "conn_type": "gemini",
            "password": "emulator-key",
            "extra": {"base_url": match[1]},
        }
        cli_client = genai.Client(api_key="emulator-key", http_options=types.HttpOptions(base_url=match[1]))

        assert embed(cli_client, ["same in every process"]) == [emulated_embedding("same in every process")]
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
    assert process.returncode == 0


# --- corrupted answers ---------------------------------------------------------------------------------


def raw_embed(emulator: GeminiEmulator, path: str, body: dict[str, Any]) -> tuple[int, str, str]:
    """Send one embed call with urllib; return the status, the content type and the raw body text."""
    request = urllib.request.Request(
        f"{emulator.base_url}{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "x-goog-api-key": emulator.api_key},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, response.headers["Content-Type"], response.read().decode()


BATCH_PATH = f"/v1beta/models/{MODEL}:batchEmbedContents"
TWO_TEXTS = {"requests": [element("first", output_dimensionality=128), element("second")]}


@pytest.mark.parametrize(
    ("kind", "token"), [pytest.param("nan", "NaN", id="nan"), pytest.param("inf", "Infinity", id="inf")]
)
def test_corrupt_next_writes_a_non_finite_token_into_the_first_embedding(
    emulator: GeminiEmulator, kind: str, token: str
) -> None:
    emulator.corrupt_next(kind=kind)

    status, content_type, text = raw_embed(emulator, BATCH_PATH, TWO_TEXTS)

    assert (status, content_type) == (200, "application/json; charset=UTF-8")
    assert text.count(token) == 1
    first, second = (item["values"] for item in json.loads(text)["embeddings"])
    expected = emulated_embedding("first", output_dimensionality=128)
    spoiled = [index for index, value in enumerate(first) if not np.isfinite(value)]
    assert spoiled == [64]
    assert first[:64] + first[65:] == expected[:64] + expected[65:]
    assert second == emulated_embedding("second")


@pytest.mark.parametrize(
    ("kind", "expected_values"),
    [
        pytest.param("zero", [0.0] * 128, id="zero"),
        pytest.param("short", emulated_embedding("first", output_dimensionality=128)[:-1], id="short"),
        pytest.param("null", None, id="null"),
    ],
)
def test_corrupt_next_spoils_the_values_of_one_embedding(
    emulator: GeminiEmulator, kind: str, expected_values: list[float] | None
) -> None:
    emulator.corrupt_next(kind=kind)

    _, _, text = raw_embed(emulator, BATCH_PATH, TWO_TEXTS)

    first, second = json.loads(text)["embeddings"]
    assert first == {"values": expected_values}
    assert second == {"values": emulated_embedding("second")}


def test_corrupt_next_missing_leaves_values_out(emulator: GeminiEmulator) -> None:
    emulator.corrupt_next(kind="missing")

    _, _, text = raw_embed(emulator, BATCH_PATH, TWO_TEXTS)

    assert json.loads(text)["embeddings"][0] == {}


def test_corrupt_next_html_is_a_200_html_page(emulator: GeminiEmulator) -> None:
    emulator.corrupt_next(kind="html")

    status, content_type, text = raw_embed(emulator, BATCH_PATH, TWO_TEXTS)

    assert (status, content_type) == (200, "text/html; charset=UTF-8")
    assert text.startswith("<!DOCTYPE html>")


def test_corrupt_next_truncated_is_the_first_half_of_the_json(emulator: GeminiEmulator) -> None:
    emulator.corrupt_next(kind="truncated")

    _, _, spoiled = raw_embed(emulator, BATCH_PATH, TWO_TEXTS)
    _, _, whole = raw_embed(emulator, BATCH_PATH, TWO_TEXTS)

    assert spoiled == whole[: len(whole) // 2]
    with pytest.raises(json.JSONDecodeError):
        json.loads(spoiled)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        pytest.param(f"/v1beta/models/{MODEL}:embedContent", element("first"), id="gemini-embedContent"),
        pytest.param(
            f"/v1beta1/publishers/google/models/{MODEL}:batchEmbedContents",
            {"requests": [{"content": {"parts": [{"text": "first"}]}}]},
            id="vertex-batchEmbedContents",
        ),
        pytest.param(
            "/v1beta1/publishers/google/models/text-embedding-004:predict",
            {"instances": [{"content": "first"}]},
            id="vertex-predict",
        ),
    ],
)
def test_corrupt_next_covers_every_embed_route(
    emulator: GeminiEmulator, path: str, body: dict[str, Any]
) -> None:
    emulator.corrupt_next(kind="null")

    _, _, text = raw_embed(emulator, path, body)

    assert '"values":null' in text


def test_corruptions_spoil_only_successful_answers_then_stop(
    emulator: GeminiEmulator, client: genai.Client
) -> None:
    emulator.corrupt_next(2, kind="zero")
    emulator.fail_next(1, status=503)

    with pytest.raises(errors.ServerError):
        embed(client, ["a"])
    spoiled = [embed(client, ["a"]), embed(client, ["a"])]
    healthy = embed(client, ["a"])

    assert spoiled == [[[0.0] * 3072]] * 2
    assert healthy == [emulated_embedding("a")]
    stats = emulator.stats
    assert (stats.corrupted, stats.succeeded_requests, stats.status_counts) == (2, 3, {503: 1, 200: 3})


def test_sdk_reads_a_nan_corruption_as_a_nan_value(emulator: GeminiEmulator, client: genai.Client) -> None:
    emulator.corrupt_next(kind="nan")

    [values] = embed(client, ["a"], output_dimensionality=128)

    assert np.isnan(values[64])


def test_clear_faults_forgets_corruptions(emulator: GeminiEmulator, client: genai.Client) -> None:
    emulator.corrupt_next(3, kind="html")

    emulator.clear_faults()

    assert embed(client, ["a"]) == [emulated_embedding("a")]
    assert emulator.stats.corrupted == 0


def test_corrupt_next_rejects_an_unknown_kind(emulator: GeminiEmulator) -> None:
    with pytest.raises(ValueError, match="'garbled'"):
        emulator.corrupt_next(kind="garbled")


# --- a gateway that echoes the key ---------------------------------------------------------------------


def test_echo_api_key_in_errors_puts_the_received_key_in_error_messages(
    emulator: GeminiEmulator, client: genai.Client
) -> None:
    emulator.configure(echo_api_key_in_errors=True)
    emulator.fail_next(1, status=503)

    with pytest.raises(errors.ServerError) as injected:
        embed(client, ["a"])
    with pytest.raises(errors.ClientError) as wrong_key:
        embed(make_client(emulator, api_key="wrong-secret-key"), ["a"])

    assert emulator.api_key in (injected.value.message or "")
    assert "wrong-secret-key" in (wrong_key.value.message or "")
    assert (injected.value.code, wrong_key.value.code) == (503, 400)


def test_echo_api_key_in_errors_is_off_by_default(emulator: GeminiEmulator, client: genai.Client) -> None:
    emulator.fail_next(1, status=500)

    with pytest.raises(errors.ServerError) as caught:
        embed(client, ["a"])

    assert emulator.api_key not in json.dumps(caught.value.details)
