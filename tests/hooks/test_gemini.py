"""GeminiHook against the bundled Gemini emulator, through the real google-genai SDK."""

from __future__ import annotations

import gc
import json
import logging
import threading
import traceback

import numpy as np
import pytest

from airflow_provider_gemini_milvus.exceptions import GeminiAPIError, GeminiQuotaExhaustedError
from airflow_provider_gemini_milvus.hooks.gemini import GeminiHook
from airflow_provider_gemini_milvus.testing.gemini_emulator import GeminiEmulator
from airflow_provider_gemini_milvus.testing.pytest_plugin import GeminiConnectionFactory

FAST_RETRIES = {"max_retries": 5, "retry_initial_delay": 0.01, "retry_max_delay": 0.1}


def corpus(count: int) -> list[str]:
    return [
        f"document number {index} about topic {index % 7} and item {index * 13}" for index in range(count)
    ]


@pytest.fixture
def connect(gemini_connection_factory: GeminiConnectionFactory):
    """Point ``gemini_default`` at the emulator with the given extras; return a fresh hook."""

    def _connect(**extra: object) -> GeminiHook:
        gemini_connection_factory(**{**FAST_RETRIES, **extra})
        return GeminiHook()

    return _connect


# -- class attributes and connection ---------------------------------------------------------------


def test_hook_declares_airflow_connection_attributes() -> None:
    assert GeminiHook.conn_type == "gemini"
    assert GeminiHook.default_conn_name == "gemini_default"
    assert GeminiHook.conn_name_attr == "gemini_conn_id"
    assert GeminiHook.hook_name == "Google Gemini"


def test_get_conn_is_cached(connect) -> None:
    hook = connect()
    assert hook.get_conn() is hook.get_conn()


def test_test_connection_succeeds_against_the_emulator(connect) -> None:
    ok, message = connect().test_connection()
    assert ok, message
    assert "gemini-embedding-001" in message


def test_test_connection_with_a_wrong_key_fails_without_leaking_it(
    monkeypatch: pytest.MonkeyPatch, gemini_emulator: GeminiEmulator
) -> None:
    secret = "wrong-key-AIzaSy-do-not-print"
    connection = {"conn_type": "gemini", "password": secret, "extra": {"base_url": gemini_emulator.base_url}}
    monkeypatch.setenv("AIRFLOW_CONN_GEMINI_DEFAULT", json.dumps(connection))
    ok, message = GeminiHook().test_connection()
    assert not ok
    assert "API key not valid" in message
    assert secret not in message


def test_missing_api_key_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_GEMINI_DEFAULT", '{"conn_type": "gemini"}')
    with pytest.raises(ValueError, match="has no API key"):
        GeminiHook().get_conn()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"max_concurrency": "many"}, "'max_concurrency' must be an integer"),
        ({"max_concurrency": 0}, "'max_concurrency' must be an integer >= 1"),
        ({"timeout": -1}, "'timeout' must be a positive number"),
        ({"requests_per_minute": 1.5}, "'requests_per_minute' must be an integer"),
        ({"vertexai": "perhaps"}, "'vertexai' must be true or false"),
        ({"service_account_json": "{not json"}, "'service_account_json' is not valid JSON"),
    ],
)
def test_bad_connection_extras_name_the_field(connect, extra: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _ = connect(**extra).settings


def test_extras_accept_the_ui_prefixed_form(connect) -> None:
    settings = connect(**{"extra__gemini__max_concurrency": "3", "tokens_per_minute": "1000"}).settings
    assert settings.max_concurrency == 3
    assert settings.tokens_per_minute == 1000


# -- embedding ----------------------------------------------------------------------------------------


def test_250_texts_go_out_in_requests_of_at_most_100_and_come_back_in_order(
    connect, gemini_emulator: GeminiEmulator
) -> None:
    texts = corpus(250)
    hook = connect()

    vectors = hook.embed(texts, output_dimensionality=768)

    assert vectors.shape == (250, 768)
    assert vectors.dtype == np.float32
    assert sorted(gemini_emulator.stats.batch_sizes, reverse=True) == [100, 100, 50]
    reversed_vectors = hook.embed(texts[::-1], output_dimensionality=768)
    np.testing.assert_allclose(reversed_vectors[::-1], vectors, atol=1e-6)


def test_rows_are_unit_length_at_768_although_gemini_truncations_are_not(connect) -> None:
    hook = connect()
    vectors = hook.embed(corpus(5), output_dimensionality=768)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    raw = hook.get_conn().models.embed_content(
        model="gemini-embedding-001", contents=corpus(1), config={"output_dimensionality": 768}
    )
    assert abs(np.linalg.norm(raw.embeddings[0].values) - 1.0) > 1e-3


def test_default_dimension_is_the_models_full_length(connect) -> None:
    assert connect().embed(["hello world"]).shape == (1, 3072)


def test_documents_and_queries_use_their_own_task_types(connect, gemini_emulator: GeminiEmulator) -> None:
    hook = connect()
    documents = hook.encode_documents(corpus(3), output_dimensionality=768)
    assert gemini_emulator.stats.task_types == {"RETRIEVAL_DOCUMENT": 3}
    gemini_emulator.reset_stats()
    queries = hook.encode_queries(corpus(3), output_dimensionality=768)
    assert gemini_emulator.stats.task_types == {"RETRIEVAL_QUERY": 3}
    assert not np.allclose(documents, queries)


def test_every_task_type_is_accepted(connect, gemini_emulator: GeminiEmulator) -> None:
    from airflow_provider_gemini_milvus.gemini.models import TASK_TYPES

    hook = connect()
    for task_type in TASK_TYPES:
        hook.embed(["a short text"], task_type=task_type, output_dimensionality=128)
    assert set(gemini_emulator.stats.task_types) == set(TASK_TYPES)


def test_a_different_title_per_text_reaches_each_request(connect) -> None:
    hook = connect()
    texts = ["the tower is tall", "the river is long"]
    together = hook.encode_documents(texts, titles=["Paris landmarks", "Rivers"], output_dimensionality=256)
    first = hook.encode_documents(texts[:1], titles=["Paris landmarks"], output_dimensionality=256)
    second = hook.encode_documents(texts[1:], titles=["Rivers"], output_dimensionality=256)
    untitled = hook.encode_documents(texts, output_dimensionality=256)
    np.testing.assert_allclose(together, np.vstack([first, second]), atol=1e-6)
    assert not np.allclose(together, untitled)


def test_gemini_embedding_2_returns_one_vector_per_text(connect) -> None:
    vectors = connect().embed(corpus(5), model="gemini-embedding-2", output_dimensionality=768)
    assert vectors.shape == (5, 768)


def test_model_name_may_carry_the_models_prefix(connect) -> None:
    vectors = connect().embed(
        ["x marks the spot"], model="models/gemini-embedding-2", output_dimensionality=768
    )
    assert vectors.shape == (1, 768)


def test_max_concurrency_bounds_requests_in_flight(connect, gemini_emulator: GeminiEmulator) -> None:
    gemini_emulator.configure(latency_seconds=0.05)
    connect().embed(corpus(120), batch_size=10, max_concurrency=3, output_dimensionality=128)
    assert 2 <= gemini_emulator.stats.max_in_flight <= 3


def test_concurrency_defaults_to_the_connection(connect, gemini_emulator: GeminiEmulator) -> None:
    gemini_emulator.configure(latency_seconds=0.05)
    connect(max_concurrency=2).embed(corpus(60), batch_size=10, output_dimensionality=128)
    assert gemini_emulator.stats.max_in_flight == 2


# -- failures and retries -------------------------------------------------------------------------------


def test_429_and_5xx_are_retried_and_nothing_is_lost(connect, gemini_emulator: GeminiEmulator) -> None:
    hook = connect()
    texts = corpus(250)
    expected = hook.embed(texts, output_dimensionality=768)
    gemini_emulator.reset_stats()
    gemini_emulator.fail_next(2, status=429, retry_delay=0.05)
    gemini_emulator.fail_next(1, status=500)
    gemini_emulator.fail_next(1, status=503)

    result = hook.embed_with_stats(texts, output_dimensionality=768)

    np.testing.assert_allclose(result.vectors, expected, atol=1e-6)
    assert result.stats.retries == 4
    assert result.stats.rate_limited == 2
    assert result.stats.requests == 7
    assert gemini_emulator.stats.texts == 250


def test_a_dropped_connection_is_retried(connect, gemini_emulator: GeminiEmulator) -> None:
    hook = connect()
    gemini_emulator.drop_next(1)
    result = hook.embed_with_stats(corpus(3), output_dimensionality=128)
    assert result.vectors.shape == (3, 128)
    assert result.stats.retries == 1


def test_random_server_faults_are_absorbed(connect, gemini_emulator: GeminiEmulator) -> None:
    gemini_emulator.configure(fault_rate=0.3)
    hook = connect(max_retries=10)
    result = hook.embed_with_stats(corpus(300), batch_size=20, output_dimensionality=128)
    assert result.vectors.shape == (300, 128)
    assert gemini_emulator.stats.texts == 300
    assert result.stats.retries > 0


def test_gives_up_after_a_bounded_number_of_attempts(connect, gemini_emulator: GeminiEmulator) -> None:
    gemini_emulator.fail_next(10, status=503)
    with pytest.raises(GeminiAPIError, match="after 3 attempts") as excinfo:
        connect(max_retries=2).embed(corpus(3))
    assert excinfo.value.attempts == 3
    assert excinfo.value.http_status == 503
    assert gemini_emulator.stats.requests == 3


def test_client_errors_are_not_retried(connect, gemini_emulator: GeminiEmulator) -> None:
    with pytest.raises(GeminiAPIError, match="404") as excinfo:
        connect().embed(["hello"], model="gemini-embedding-999")
    assert excinfo.value.attempts == 1
    assert gemini_emulator.stats.requests == 1


def test_an_exhausted_daily_quota_stops_at_once(connect, gemini_emulator: GeminiEmulator) -> None:
    gemini_emulator.configure(requests_per_day=1)
    hook = connect()
    hook.embed(["first"])
    with pytest.raises(GeminiQuotaExhaustedError, match="429"):
        hook.embed(["second"])
    assert gemini_emulator.stats.requests == 2


# The three pacing tests run in real time. The emulator measures its per-minute quotas over a 1-second
# window (quota_window_seconds), so a quota of 3600 a minute allows 60 requests in any second; 90 requests
# then need one and a half windows, about 1.5 s when paced.


def test_pacing_to_the_quota_avoids_429s(connect, gemini_emulator: GeminiEmulator) -> None:
    gemini_emulator.configure(requests_per_minute=3600, quota_window_seconds=1.0)
    hook = connect(requests_per_minute=3600, max_concurrency=8)

    # The pacer's 3% headroom is about 30 ms a second here. A garbage-collector pause stalls the client and
    # the emulator alike (one process), and the requests held up arrive together: a 429 that measures the
    # collector, not the pacer. So no collection runs while it is measured.
    gc.collect()
    gc.disable()
    try:
        result = hook.embed_with_stats(corpus(90), batch_size=1, output_dimensionality=128)
    finally:
        gc.enable()

    assert result.vectors.shape == (90, 128)
    assert gemini_emulator.stats.status_counts.get(429, 0) == 0
    assert result.stats.rate_limited == 0


def test_without_pacing_the_same_quota_answers_429_but_nothing_is_lost(
    connect, gemini_emulator: GeminiEmulator
) -> None:
    gemini_emulator.configure(requests_per_minute=3600, quota_window_seconds=1.0)
    hook = connect(max_concurrency=8, max_retries=20)

    vectors = hook.embed(corpus(90), batch_size=1, output_dimensionality=128)

    assert vectors.shape == (90, 128)
    assert gemini_emulator.stats.status_counts[429] > 0
    assert gemini_emulator.stats.texts == 90


def test_token_pacing_avoids_429s(connect, gemini_emulator: GeminiEmulator) -> None:
    # About 12 tokens a text. The hook paces to 1300 tokens a second; the emulator allows twice that per
    # 1-second window, so a loaded machine that bunches a few starts together still stays under it, while
    # the 3000 tokens of an unpaced burst would not.
    gemini_emulator.configure(tokens_per_minute=156_000, quota_window_seconds=1.0)
    hook = connect(tokens_per_minute=78_000, max_concurrency=8)

    vectors = hook.embed(corpus(250), batch_size=1, output_dimensionality=128)

    assert vectors.shape == (250, 128)
    assert gemini_emulator.stats.status_counts.get(429, 0) == 0


# -- answers from the server that are wrong ---------------------------------------------------------------

UNUSABLE_ANSWERS = {
    # The emulator writes NaN and Infinity as bare literals, which JSON has not.
    "nan": r"not an embedding response \(invalid JSON: JSON is malformed: invalid character",
    "inf": r"not an embedding response \(invalid JSON: JSON is malformed: invalid character",
    "zero": r"all-zero vector for texts\[0\]",
    "short": r"127 values for texts\[0\]; expected 128",
    "null": r"no values for texts\[0\]",
    "missing": r"no values for texts\[0\]",
    "html": r"not an embedding response \(invalid JSON: JSON is malformed: invalid character \(byte 0\)\)",
    "truncated": r"not an embedding response \(invalid JSON: ",
}


@pytest.mark.parametrize("kind", sorted(UNUSABLE_ANSWERS))
def test_an_unusable_answer_is_a_failed_request_that_is_retried(
    connect, gemini_emulator: GeminiEmulator, kind: str
) -> None:
    hook = connect()
    texts = corpus(250)
    expected = hook.embed(texts, output_dimensionality=128)
    gemini_emulator.corrupt_next(1, kind=kind)

    result = hook.embed_with_stats(texts, output_dimensionality=128)

    assert gemini_emulator.stats.corrupted == 1
    assert result.stats.retries == 1
    assert result.stats.requests == 4
    assert np.isfinite(result.vectors).all()
    np.testing.assert_allclose(result.vectors, expected, atol=1e-6)


@pytest.mark.parametrize(("kind", "reason"), sorted(UNUSABLE_ANSWERS.items()))
def test_unusable_answers_past_the_retry_budget_raise_an_error_naming_the_request(
    connect, gemini_emulator: GeminiEmulator, kind: str, reason: str
) -> None:
    gemini_emulator.corrupt_next(10, kind=kind)
    with pytest.raises(GeminiAPIError, match=reason) as excinfo:
        connect(max_retries=2).embed(corpus(150), output_dimensionality=128, max_concurrency=1)
    error = excinfo.value
    assert str(error).startswith("gave up on request 1 (texts[0..99]) after 3 attempts: Gemini answered")
    assert error.attempts == 3
    assert error.http_status == 200
    assert error.__cause__ is None
    assert error.__context__ is None
    assert gemini_emulator.stats.corrupted == 3


@pytest.mark.parametrize("kind", ["nan", "short", "truncated"])
def test_unusable_answers_on_the_vertex_routes_are_retried_too(
    connect, gemini_emulator: GeminiEmulator, kind: str
) -> None:
    hook = connect(vertexai=True)
    gemini_emulator.corrupt_next(1, kind=kind)
    result = hook.embed_with_stats(corpus(3), output_dimensionality=256)
    assert gemini_emulator.stats.corrupted == 1
    assert result.stats.retries == 1
    assert np.isfinite(result.vectors).all()
    np.testing.assert_allclose(np.linalg.norm(result.vectors, axis=1), 1.0, atol=1e-5)


def test_concurrent_calls_on_one_hook_each_get_their_own_stats(connect) -> None:
    hook = connect()
    results = {}

    def embed(count: int) -> None:
        results[count] = hook.embed_with_stats(corpus(count), batch_size=10, output_dimensionality=128)

    threads = [threading.Thread(target=embed, args=(count,)) for count in (30, 50, 70)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert {count: result.stats.requests for count, result in results.items()} == {30: 3, 50: 5, 70: 7}
    assert {count: result.stats.texts for count, result in results.items()} == {30: 30, 50: 50, 70: 70}
    assert {count: len(result.vectors) for count, result in results.items()} == {30: 30, 50: 50, 70: 70}
    assert not hasattr(hook, "last_run")


# -- validation: every bad input fails before anything is sent -----------------------------------------


@pytest.mark.parametrize(
    ("texts", "kwargs", "message"),
    [
        ([], {}, "texts is empty"),
        ("just one string", {}, "texts must be a list of strings, got str"),
        (["fine", 42], {}, r"texts\[1\] is not a string"),
        (["fine", "also fine", "   "], {}, r"texts\[2\] is empty"),
        (
            ["fine", "x" * 9000],
            {},
            r"texts\[1\] is about 2250 tokens; gemini-embedding-001 accepts at most 2048",
        ),
        (["fine"], {"task_type": "RETRIEVAL_DOCUMENTS"}, "unknown task_type 'RETRIEVAL_DOCUMENTS'"),
        (["fine"], {"output_dimensionality": 4096}, "output_dimensionality=4096 is out of range"),
        (["fine"], {"output_dimensionality": 64}, "output_dimensionality=64 is out of range"),
        (["fine"], {"model": "embedding-001"}, "retired by Google on 2025-08-14"),
        (["fine"], {"model": "text-embedding-004"}, "retired by Google on 2026-01-14"),
        (["fine"], {"model": "text-embedding-005"}, "served by Vertex AI only"),
        (["fine"], {"model": "text-davinci-003"}, "unknown embedding model 'text-davinci-003'"),
        (["a", "b"], {"titles": ["only one"]}, "got 1 titles for 2 texts"),
        (["a", "b"], {"titles": ["t", 7]}, r"titles\[1\] is not a string"),
        (["a"], {"titles": ["t"], "task_type": "RETRIEVAL_QUERY"}, "titles are only accepted with task_type"),
        (["a"], {"batch_size": 101}, "batch_size must be between 1 and 100"),
        (["a"], {"batch_size": 0}, "batch_size must be between 1 and 100"),
        (["a"], {"max_concurrency": 0}, "max_concurrency must be a positive integer"),
        (["fine", "broken \ud800 half"], {}, r"texts\[1\] holds a lone surrogate \(U\+D800 at character 7\)"),
        (["a", "b"], {"titles": ["t", "\udfff"]}, r"titles\[1\] holds a lone surrogate"),
        (["a"], {"titles": ["x" * 9000]}, r"titles\[0\] is about 2250 tokens; gemini-embedding-001 accepts"),
        (
            ["fine"],
            {"model": None},
            "model must be a model name such as 'gemini-embedding-001', got NoneType",
        ),
    ],
)
def test_bad_input_is_refused_before_any_request(
    connect, gemini_emulator: GeminiEmulator, texts: object, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        connect().embed(texts, **kwargs)  # type: ignore[arg-type]
    assert gemini_emulator.stats.requests == 0


def test_encode_queries_refuses_titles(connect) -> None:
    with pytest.raises(ValueError, match="titles apply to documents only"):
        connect().encode_queries(["q"], titles=["t"])


def test_a_text_over_the_token_quota_is_refused_before_sending(
    connect, gemini_emulator: GeminiEmulator
) -> None:
    with pytest.raises(ValueError, match="more than the connection's tokens_per_minute=10"):
        connect(tokens_per_minute=10).embed(["short", "a" * 100])
    assert gemini_emulator.stats.requests == 0


# -- parity with pymilvus-model's GeminiEmbeddingFunction ---------------------------------------------


@pytest.mark.parametrize(
    ("model", "output_dimensionality", "expected"),
    [
        ("gemini-embedding-001", None, 3072),
        ("gemini-embedding-001", 768, 768),
        ("gemini-embedding-001", 1536, 1536),
        ("models/gemini-embedding-001", None, 3072),
        ("gemini-embedding-2", None, 3072),
        ("gemini-embedding-2-preview", None, 3072),
        ("models/gemini-embedding-2", 768, 768),
        ("text-embedding-005", None, 768),
        ("text-multilingual-embedding-002", 256, 256),
        ("gemini-embedding-003", None, 3072),
    ],
)
def test_dim_knows_every_current_model(model: str, output_dimensionality: int | None, expected: int) -> None:
    assert GeminiHook().dim(model, output_dimensionality) == expected


# -- secrets --------------------------------------------------------------------------------------------


def test_the_key_never_reaches_logs_or_exception_text(
    monkeypatch: pytest.MonkeyPatch,
    gemini_emulator: GeminiEmulator,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    key = gemini_emulator.api_key
    monkeypatch.setenv("AIRFLOW_CONN_GEMINI_DEFAULT", gemini_emulator.connection_json(**FAST_RETRIES))
    hook = GeminiHook()
    hook.embed(corpus(150), output_dimensionality=128)
    gemini_emulator.fail_next(10, status=503)
    with pytest.raises(GeminiAPIError) as excinfo:
        hook.embed(corpus(3))

    captured = capsys.readouterr()
    assert key not in str(excinfo.value)
    assert key not in repr(hook.settings)
    assert key not in caplog.text
    assert key not in captured.out + captured.err


def _full_traceback(error: BaseException) -> str:
    return "".join(traceback.format_exception(error))


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        pytest.param({"model": "gemini-embedding-999"}, "Gemini refused request 1", id="refused"),
        pytest.param({"fail": 503}, "gave up on request 1 .* after 3 attempts", id="retries-exhausted"),
        pytest.param({"fail": 429}, "gave up on request 1 .* after 3 attempts", id="rate-limited"),
    ],
)
def test_a_gateway_echoing_the_key_never_puts_it_in_an_exception_or_log(
    connect,
    gemini_emulator: GeminiEmulator,
    caplog: pytest.LogCaptureFixture,
    fault: dict[str, object],
    expected: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    key = gemini_emulator.api_key
    gemini_emulator.configure(echo_api_key_in_errors=True)
    if "fail" in fault:
        gemini_emulator.fail_next(10, status=fault["fail"])  # type: ignore[arg-type]
    with pytest.raises(GeminiAPIError, match=expected) as excinfo:
        connect(max_retries=2).embed(corpus(3), model=str(fault.get("model", "gemini-embedding-001")))

    error = excinfo.value
    assert "(request key: ***)" in str(error)  # the echo arrived, scrubbed
    assert error.__cause__ is None
    assert error.__context__ is None
    assert key not in _full_traceback(error)
    assert key not in caplog.text


def test_test_connection_with_a_key_echoing_gateway_does_not_leak_it(
    monkeypatch: pytest.MonkeyPatch, gemini_emulator: GeminiEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "wrong-key-AIzaSy-echoed-back"
    gemini_emulator.configure(echo_api_key_in_errors=True)
    connection = {"conn_type": "gemini", "password": secret, "extra": {"base_url": gemini_emulator.base_url}}
    monkeypatch.setenv("AIRFLOW_CONN_GEMINI_DEFAULT", json.dumps(connection))

    ok, message = GeminiHook().test_connection()

    assert not ok
    assert "(request key: ***)" in message
    assert secret not in message
    assert secret not in caplog.text


@pytest.mark.parametrize(
    "base_url",
    [
        "http://example.invalid",
        "http://10.1.2.3:8080/gemini",
        "http://user:hunter2@gateway.example.com",
    ],
)
def test_plain_http_to_another_host_is_refused_before_a_client_is_built(connect, base_url: str) -> None:
    hook = connect(base_url=base_url)
    with pytest.raises(ValueError, match="plain http to a host that is not this machine") as excinfo:
        hook.embed(["hello"])
    assert "hunter2" not in _full_traceback(excinfo.value)
    ok, message = hook.test_connection()
    assert not ok
    assert "use https://" in message
    assert "_client" not in vars(hook)


def test_an_https_gateway_is_accepted_without_a_request(connect) -> None:
    hook = connect(base_url="https://gateway.example.com/gemini")
    assert hook.get_conn() is not None
    assert hook.settings.base_url == "https://gateway.example.com/gemini"


# -- Vertex AI --------------------------------------------------------------------------------------------


def test_vertex_express_mode_embeds_through_the_emulator(connect, gemini_emulator: GeminiEmulator) -> None:
    hook = connect(vertexai=True)
    vectors = hook.embed(corpus(3), output_dimensionality=256)
    assert hook.get_conn().vertexai
    assert vectors.shape == (3, 256)
    assert gemini_emulator.stats.texts == 3


def test_vertex_with_a_service_account_builds_credentials_without_calling_google(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    service_account = {
        "type": "service_account",
        "project_id": "my-project",
        "private_key_id": "1",
        "private_key": pem,
        "client_email": "embedder@my-project.iam.gserviceaccount.com",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    connection = {
        "conn_type": "gemini",
        "extra": {
            "vertexai": True,
            "location": "europe-west4",
            "service_account_json": json.dumps(service_account),
        },
    }
    monkeypatch.setenv("AIRFLOW_CONN_GEMINI_DEFAULT", json.dumps(connection))

    hook = GeminiHook()
    client = hook.get_conn()

    assert client.vertexai
    assert client._api_client.project == "my-project"
    assert client._api_client.location == "europe-west4"
    assert pem not in repr(hook.settings)


def _service_account_key(token_uri: str) -> dict[str, str]:
    """A real (throwaway) RSA service-account key whose token endpoint is ``token_uri``."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return {
        "type": "service_account",
        "project_id": "scrub-test",
        "private_key_id": "0123456789abcdef0123456789abcdef01234567",
        "private_key": pem,
        "client_email": "scrub@scrub-test.iam.gserviceaccount.com",
        "token_uri": token_uri,
    }


class _EchoingTokenEndpoint:
    """A token endpoint on loopback that refuses every grant and echoes the given text in its answer."""

    def __init__(self) -> None:
        import http.server

        self.echo = ""
        endpoint = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = json.dumps({"error": "invalid_grant", "error_description": endpoint.echo}).encode()
                self.send_response(400)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/token"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_service_account_key_echoed_back_is_scrubbed_like_the_api_key(
    monkeypatch: pytest.MonkeyPatch, gemini_emulator: GeminiEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    endpoint = _EchoingTokenEndpoint()
    try:
        key = _service_account_key(endpoint.url)
        # A token endpoint (or a gateway before it) that echoes the key: whole, and its id.
        endpoint.echo = f"bad grant for {key['private_key_id']} with key {key['private_key']}"
        connection = {
            "conn_type": "gemini",
            "extra": {
                "vertexai": True,
                "location": "us-central1",
                "base_url": gemini_emulator.base_url,
                "service_account_json": json.dumps(key),
            },
        }
        monkeypatch.setenv("AIRFLOW_CONN_GEMINI_DEFAULT", json.dumps(connection))
        ok, message = GeminiHook().test_connection()
    finally:
        endpoint.close()

    assert not ok
    assert "invalid_grant" in message  # the echo arrived
    body_lines = [line for line in key["private_key"].splitlines() if "PRIVATE KEY" not in line]
    for secret in [key["private_key_id"], *body_lines]:
        assert secret not in message
        assert secret not in caplog.text
