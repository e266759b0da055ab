"""Routes, request parsing and answer bodies, through the real SDK (raw HTTP where the SDK cannot)."""

from __future__ import annotations

from typing import Any

import pytest
from google import genai
from google.genai import errors, types

from airflow_provider_gemini_milvus.gemini.models import MAX_TEXTS_PER_REQUEST, MODELS
from airflow_provider_gemini_milvus.testing.gemini_emulator import GeminiEmulator, emulated_embedding
from tests.testing.gemini_emulator.calls import BATCH_PATH, MODEL, element, embed, raw_request


def test_batch_answers_200_with_one_vector_per_text_in_order(
    gemini_emulator: GeminiEmulator, client: genai.Client
) -> None:
    texts = ["first text", "second text about Milvus", "third text about Airflow"]

    vectors = embed(client, texts, task_type="RETRIEVAL_DOCUMENT")

    assert vectors == [emulated_embedding(text, task_type="RETRIEVAL_DOCUMENT") for text in texts]
    assert gemini_emulator.stats.status_counts == {200: 1}


def test_gemini_embedding_2_merges_strings_but_not_separate_contents(
    gemini_emulator: GeminiEmulator, client: genai.Client
) -> None:
    texts = ["first", "second", "third"]

    merged = embed(client, texts, model="gemini-embedding-2")
    separate = embed(
        client, [types.Content(parts=[types.Part(text=text)]) for text in texts], model="gemini-embedding-2"
    )

    assert len(merged) == 1
    assert len(separate) == 3
    assert separate[1] == emulated_embedding("second", model="gemini-embedding-2")
    stats = gemini_emulator.stats
    assert (stats.texts, stats.embeddings, stats.batch_sizes) == (6, 4, [1, 3])


def test_per_element_fields_are_honoured_in_camel_and_snake_case(gemini_emulator: GeminiEmulator) -> None:
    body = {
        "requests": [
            element("Paris guide", taskType="RETRIEVAL_DOCUMENT", title="Travel"),
            element(
                "Paris guide", task_type="RETRIEVAL_DOCUMENT", title="Cooking", output_dimensionality=256
            ),
        ]
    }

    answer = raw_request(gemini_emulator, BATCH_PATH, body, key=gemini_emulator.api_key)

    assert answer.status == 200
    first, second = (item["values"] for item in answer.body["embeddings"])
    assert first == emulated_embedding("Paris guide", task_type="RETRIEVAL_DOCUMENT", title="Travel")
    assert second == emulated_embedding(
        "Paris guide", task_type="RETRIEVAL_DOCUMENT", title="Cooking", output_dimensionality=256
    )


def test_single_embed_content_route(gemini_emulator: GeminiEmulator) -> None:
    body = {
        "model": f"models/{MODEL}",
        "content": {"parts": [{"text": "hello"}]},
        "output_dimensionality": 128,
    }

    answer = raw_request(
        gemini_emulator, f"/v1/models/{MODEL}:embedContent", body, key=gemini_emulator.api_key
    )

    assert answer.status == 200
    assert answer.body == {"embedding": {"values": emulated_embedding("hello", output_dimensionality=128)}}


def test_models_get_and_list(client: genai.Client) -> None:
    model = client.models.get(model=MODEL)
    listed = [item.name for item in client.models.list(config={"page_size": 2})]

    assert model.name == f"models/{MODEL}"
    assert model.input_token_limit == MODELS[MODEL].max_input_tokens
    assert "embedContent" in (model.supported_actions or [])
    served = sorted(name for name, spec in MODELS.items() if spec.retired_on is None and not spec.vertex_only)
    assert listed == [f"models/{name}" for name in served]


@pytest.mark.parametrize("model", ["text-embedding-004", "embedding-001", "text-embedding-005"])
def test_retired_and_vertex_only_models_answer_404_on_the_gemini_api(
    client: genai.Client, model: str
) -> None:
    from google.genai import errors

    with pytest.raises(errors.ClientError) as excinfo:
        client.models.embed_content(model=model, contents=["a"])
    assert excinfo.value.code == 404


def test_vertex_express_mode(gemini_emulator: GeminiEmulator) -> None:
    vertex = genai.Client(
        vertexai=True,
        api_key=gemini_emulator.api_key,
        http_options=types.HttpOptions(base_url=gemini_emulator.base_url),
    )
    config = types.EmbedContentConfig(task_type="RETRIEVAL_DOCUMENT", title="T", output_dimensionality=256)

    batch = vertex.models.embed_content(model=MODEL, contents=["a", "b"], config=config)
    single = vertex.models.embed_content(model=MODEL, contents="a", config=config)
    predicted = vertex.models.embed_content(model="text-embedding-005", contents=["a", "b"])

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


def test_vertex_auto_truncates_long_input_by_default(gemini_emulator: GeminiEmulator) -> None:
    long_text = "word " * 3000
    path = f"/v1beta1/projects/p/locations/us-central1/publishers/google/models/{MODEL}:embedContent"

    truncated = raw_request(
        gemini_emulator, path, {"content": {"parts": [{"text": long_text}]}}, key=gemini_emulator.api_key
    )
    refused = raw_request(
        gemini_emulator,
        path,
        {"content": {"parts": [{"text": long_text}]}, "embedContentConfig": {"autoTruncate": False}},
        key=gemini_emulator.api_key,
    )

    assert (truncated.status, truncated.body["truncated"], refused.status) == (200, True, 400)


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
    gemini_emulator: GeminiEmulator,
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
    assert gemini_emulator.stats.texts == 0


def test_empty_parts_and_unknown_fields_are_refused(gemini_emulator: GeminiEmulator) -> None:
    path = f"/v1/models/{MODEL}:batchEmbedContents"
    no_parts = {"requests": [{"model": f"models/{MODEL}", "content": {"parts": []}}]}
    unknown = {"requests": [element("a", taskTipe="RETRIEVAL_QUERY")]}

    empty = raw_request(gemini_emulator, path, no_parts, key=gemini_emulator.api_key)
    unknown_field = raw_request(gemini_emulator, path, unknown, key=gemini_emulator.api_key)

    assert empty.status == 400
    assert "requests[0].content.parts" in empty.body["error"]["message"]
    assert unknown_field.status == 400
    assert 'Unknown name "taskTipe"' in unknown_field.body["error"]["message"]
