"""One embedding request on the wire, through the real google-genai client against the emulator."""

from __future__ import annotations

import types as builtin_types

import numpy as np
import pytest
from google import genai
from google.genai import errors, types

from airflow_provider_gemini_milvus.gemini.requests import (
    PlannedRequest,
    UnusableResponse,
    checked_rows,
    validated_request,
)
from airflow_provider_gemini_milvus.gemini.wire import decode_embeddings, send_embed_request
from airflow_provider_gemini_milvus.testing.gemini_emulator import GeminiEmulator, emulated_embedding

TEXTS = ["the tower is tall", "the river is long", "a bridge crosses the river"]


@pytest.fixture
def client(gemini_emulator: GeminiEmulator) -> genai.Client:
    return genai.Client(
        api_key=gemini_emulator.api_key, http_options=types.HttpOptions(base_url=gemini_emulator.base_url)
    )


def batch_of(texts: list[str], titles: list[str | None] | None = None) -> PlannedRequest:
    return PlannedRequest(index=0, start=0, texts=texts, titles=titles, tokens=len(texts))


def through_models_only(client: genai.Client) -> object:
    """The same real client, seen without its request method: what an SDK lacking it offers."""
    return builtin_types.SimpleNamespace(models=client.models)


# -- decoding -------------------------------------------------------------------------------------------


def test_an_answer_decodes_to_its_values_and_skips_the_rest() -> None:
    body = '{"embeddings": [{"values": [0.5, -1, 2e-3], "other": {"x": 1}}, {"values": []}], "meta": 1}'
    embeddings = decode_embeddings(body)
    assert embeddings is not None
    assert [embedding.values for embedding in embeddings] == [[0.5, -1.0, 0.002], []]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("<html>sk-SECRET</html>", r"invalid JSON: JSON is malformed: invalid character \(byte 0\)"),
        ('{"embeddings": [{"values": [1.0, ', r"invalid JSON: Input data was truncated"),
        ('{"embeddings": [{"values": "sk-SECRET"}]}', r"wrong shape: .* at `\$\.embeddings\[0\]\.values`"),
        (
            '{"embeddings": [{"values": [1.0, null]}]}',
            r"wrong shape: .* at `\$\.embeddings\[0\]\.values\[1\]`",
        ),
    ],
)
def test_a_body_that_is_not_an_embedding_answer_is_unusable_and_never_quoted(body: str, problem: str) -> None:
    with pytest.raises(UnusableResponse, match=problem) as excinfo:
        decode_embeddings(body)
    assert "SECRET" not in str(excinfo.value)
    assert excinfo.value.__cause__ is None
    assert excinfo.value.__context__ is None


def test_missing_or_null_values_reach_the_answer_checks_as_none() -> None:
    embeddings = decode_embeddings('{"embeddings": [{"values": null}, {}]}')
    with pytest.raises(UnusableResponse, match=r"no values for texts\[0\]"):
        checked_rows(embeddings, batch_of(["a", "b"]), 3)


def test_nan_and_infinity_written_as_proto_json_strings_are_refused_by_name() -> None:
    embeddings = decode_embeddings(
        '{"embeddings": [{"values": [1.0, 2.0]}, {"values": ["NaN", "Infinity"]}]}'
    )
    with pytest.raises(UnusableResponse, match=r"NaN or infinity in the vector for texts\[1\]"):
        checked_rows(embeddings, batch_of(["a", "b"]), 2)


# -- sending --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "task_type", "dimensions", "titles"),
    [
        ("gemini-embedding-001", "RETRIEVAL_DOCUMENT", 768, None),
        ("gemini-embedding-001", "RETRIEVAL_DOCUMENT", 256, ["Paris", None, "Rivers"]),
        ("gemini-embedding-001", "RETRIEVAL_DOCUMENT", 256, ["Same", "Same", "Same"]),
        ("gemini-embedding-001", "RETRIEVAL_QUERY", None, None),
        ("gemini-embedding-2", "RETRIEVAL_DOCUMENT", 768, None),
        ("gemini-embedding-2", "RETRIEVAL_QUERY", 256, None),
    ],
)
def test_the_gemini_api_path_answers_as_models_embed_content_does(
    client: genai.Client,
    gemini_emulator: GeminiEmulator,
    model: str,
    task_type: str,
    dimensions: int | None,
    titles: list[str | None] | None,
) -> None:
    request = validated_request(model, task_type, dimensions)
    batch = batch_of(TEXTS, titles)

    direct = send_embed_request(client, batch, request, vertexai=False)
    through_models = send_embed_request(through_models_only(client), batch, request, vertexai=False)  # type: ignore[arg-type]

    rows = checked_rows(direct, batch, request.dim)
    np.testing.assert_array_equal(rows, checked_rows(through_models, batch, request.dim))
    expected_task = task_type if request.model.supports_task_type else None
    for row, text, title in zip(rows, TEXTS, titles or [None] * 3, strict=True):
        expected = np.asarray(
            emulated_embedding(
                text, model=model, task_type=expected_task, title=title, output_dimensionality=dimensions
            )
        )
        np.testing.assert_allclose(row, expected / np.linalg.norm(expected), atol=1e-6)
    assert gemini_emulator.stats.requests == 2


def test_an_error_answer_raises_the_sdks_api_error(
    client: genai.Client, gemini_emulator: GeminiEmulator
) -> None:
    gemini_emulator.fail_next(1, status=429, retry_delay=2.0)
    with pytest.raises(errors.APIError) as excinfo:
        send_embed_request(
            client,
            batch_of(TEXTS),
            validated_request("gemini-embedding-001", "CLUSTERING", 128),
            vertexai=False,
        )
    assert excinfo.value.code == 429
    assert excinfo.value.details["error"]["details"]
