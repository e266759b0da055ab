"""Media parts (images, PDFs, audio, video) for gemini-embedding-2: through the real SDK, the Files API and
raw HTTP; deterministic vectors, the refusals of the real service, and the stats."""

from __future__ import annotations

import base64
import io
import json
import warnings
from typing import Any

import numpy as np
import pytest
from google import genai
from google.genai import errors, types

from airflow_provider_gemini_milvus.testing.gemini_emulator import GeminiEmulator, emulated_embedding
from airflow_provider_gemini_milvus.testing.sample_media import pdf_bytes, png_bytes, wav_bytes
from tests.testing.gemini_emulator.calls import embed, raw_request

MODEL = "gemini-embedding-2"
PATH = f"/v1beta/models/{MODEL}:batchEmbedContents"
JACKET = png_bytes(4, 4, (200, 30, 30), description="a red waterproof hiking jacket")
SHOES = png_bytes(4, 4, (30, 30, 200), description="a pair of blue running shoes")
TENT = png_bytes(4, 4, (30, 160, 30), description="a green camping tent for two people")


def _image(data: bytes, mime_type: str = "image/png") -> types.Part:
    return types.Part.from_bytes(data=data, mime_type=mime_type)


def _inline(data: bytes, mime_type: str = "image/png", *, camel: bool = False) -> dict[str, Any]:
    encoded = base64.b64encode(data).decode()
    if camel:
        return {"inlineData": {"mimeType": mime_type, "data": encoded}}
    return {"inline_data": {"mime_type": mime_type, "data": encoded}}


def _body(*parts: dict[str, Any], model: str = MODEL) -> dict[str, Any]:
    return {"requests": [{"model": f"models/{model}", "content": {"parts": list(parts), "role": "user"}}]}


def _refusal(emulator: GeminiEmulator, body: dict[str, Any], model: str = MODEL) -> tuple[int, str, str]:
    answer = raw_request(emulator, f"/v1beta/models/{model}:batchEmbedContents", body, key=emulator.api_key)
    error = answer.body["error"]
    return answer.status, error["status"], error["message"]


def _upload(client: genai.Client, data: bytes, mime_type: str) -> types.File:
    return client.files.upload(
        file=io.BytesIO(data), config={"mime_type": mime_type, "display_name": "media"}
    )


def test_an_inline_image_embeds_as_emulated_embedding_says(client: genai.Client) -> None:
    document = "title: none | text: our best jacket"

    alone, with_text = embed(
        client,
        [
            types.Content(parts=[_image(JACKET)]),
            types.Content(parts=[types.Part(text=document), _image(JACKET)]),
        ],
        model=MODEL,
    )

    assert alone == emulated_embedding([], model=MODEL, media=("image/png", JACKET))
    assert with_text == emulated_embedding(document, model=MODEL, media=("image/png", JACKET))
    assert alone != with_text
    assert len(alone) == 3072


def test_the_vector_depends_on_the_bytes_and_the_mime_type_not_only_the_description(
    client: genai.Client,
) -> None:
    twin = png_bytes(5, 4, (200, 30, 30), description="a red waterproof hiking jacket")

    first, second, as_jpeg = embed(
        client,
        [
            types.Content(parts=[_image(JACKET)]),
            types.Content(parts=[_image(twin)]),
            types.Content(parts=[_image(JACKET, "image/jpeg")]),
        ],
        model=MODEL,
        output_dimensionality=768,
    )

    assert len({tuple(first), tuple(second), tuple(as_jpeg)}) == 3
    # Same description: still nearer each other than to an unrelated picture.
    shoes = emulated_embedding([], model=MODEL, media=("image/png", SHOES), output_dimensionality=768)
    assert np.dot(first, second) > np.dot(first, shoes)


def test_the_same_bytes_through_the_files_api_give_the_same_vector(
    gemini_emulator: GeminiEmulator, client: genai.Client
) -> None:
    gemini_emulator.files_processing_polls = 2
    uploaded = _upload(client, TENT, "image/png")
    states = [uploaded.state]
    while uploaded.state != types.FileState.ACTIVE:
        assert uploaded.name is not None
        uploaded = client.files.get(name=uploaded.name)
        states.append(uploaded.state)
    assert uploaded.uri is not None
    assert uploaded.name is not None

    by_file, inline = embed(
        client,
        [
            types.Content(parts=[types.Part.from_uri(file_uri=uploaded.uri, mime_type="image/png")]),
            types.Content(parts=[_image(TENT)]),
        ],
        model=MODEL,
    )
    client.files.delete(name=uploaded.name)

    assert states == [types.FileState.PROCESSING] * 3 + [types.FileState.ACTIVE]
    assert uploaded.uri == f"{gemini_emulator.base_url}/v1beta/{uploaded.name}"
    assert by_file == inline == emulated_embedding([], model=MODEL, media=("image/png", TENT))
    assert gemini_emulator.batches.files.names() == []


def test_a_file_still_processing_cannot_be_embedded(
    gemini_emulator: GeminiEmulator, client: genai.Client
) -> None:
    gemini_emulator.files_processing_polls = 1
    uploaded = _upload(client, TENT, "image/png")
    assert uploaded.uri is not None
    assert uploaded.name is not None

    with pytest.raises(errors.ClientError) as caught:
        embed(
            client,
            [types.Content(parts=[types.Part.from_uri(file_uri=uploaded.uri, mime_type="image/png")])],
            model=MODEL,
        )

    resource_id = uploaded.name.removeprefix("files/")
    assert (caught.value.code, caught.value.status) == (400, "FAILED_PRECONDITION")
    assert (
        caught.value.message == f"The File {resource_id} is not in an ACTIVE state and usage is not allowed."
    )


def test_an_unknown_file_answers_403_to_get_and_to_embed(
    gemini_emulator: GeminiEmulator, client: genai.Client
) -> None:
    message = "You do not have permission to access the File nosuch or it may not exist."

    with pytest.raises(errors.ClientError) as get:
        client.files.get(name="files/nosuch")
    refused = _refusal(
        gemini_emulator,
        _body(
            {
                "file_data": {
                    "mime_type": "image/png",
                    "file_uri": f"{gemini_emulator.base_url}/v1beta/files/nosuch",
                }
            }
        ),
    )

    assert (get.value.code, get.value.message) == (403, message)
    assert refused == (403, "PERMISSION_DENIED", message)


def test_an_image_described_as_the_question_asks_ranks_first(client: genai.Client) -> None:
    query = "task: search result | query: which jacket keeps me dry when hiking?"
    images = [SHOES, JACKET, TENT]

    vectors = embed(client, [types.Content(parts=[_image(image)]) for image in images], model=MODEL)
    (question,) = embed(client, [query], model=MODEL)

    scores = [float(np.dot(question, vector)) for vector in vectors]
    assert max(range(3), key=scores.__getitem__) == 1
    assert scores[1] > 0.2 > max(scores[0], scores[2])


def test_a_pdf_and_a_wav_are_read_for_their_text(client: genai.Client) -> None:
    guide = pdf_bytes(["Care guide for the hiking jacket", "Wash it cold and dry it flat"])
    birds = wav_bytes(1.0, title="birdsong recorded at dawn")

    pdf_vector, wav_vector = embed(
        client,
        [
            types.Content(parts=[types.Part.from_bytes(data=guide, mime_type="application/pdf")]),
            types.Content(parts=[types.Part.from_bytes(data=birds, mime_type="audio/wav")]),
        ],
        model=MODEL,
    )
    (question,) = embed(client, ["task: search result | query: how to wash a jacket"], model=MODEL)

    assert pdf_vector == emulated_embedding([], model=MODEL, media=("application/pdf", guide))
    assert wav_vector == emulated_embedding([], model=MODEL, media=("audio/wav", birds))
    assert np.dot(question, pdf_vector) > np.dot(question, wav_vector)


def test_camel_case_raw_bodies_embed_like_the_sdk_snake_case(gemini_emulator: GeminiEmulator) -> None:
    text = {"text": "title: none | text: tent"}
    camel = raw_request(
        gemini_emulator, PATH, _body(text, _inline(TENT, camel=True)), key=gemini_emulator.api_key
    )
    snake = raw_request(gemini_emulator, PATH, _body(text, _inline(TENT)), key=gemini_emulator.api_key)
    url_safe = _body(
        text,
        {
            "inlineData": {
                "mimeType": "image/png",
                "data": base64.urlsafe_b64encode(TENT).decode().rstrip("="),
            }
        },
    )
    unpadded = raw_request(gemini_emulator, PATH, url_safe, key=gemini_emulator.api_key)

    expected = emulated_embedding("title: none | text: tent", model=MODEL, media=("image/png", TENT))
    assert [answer.status for answer in (camel, snake, unpadded)] == [200, 200, 200]
    assert camel.body["embeddings"][0]["values"] == expected
    assert snake.body == camel.body == unpadded.body


def test_stats_count_media_parts_and_their_tokens(
    gemini_emulator: GeminiEmulator, client: genai.Client
) -> None:
    guide = pdf_bytes(["one", "two", "three"])
    tone = wav_bytes(2.5, title="tone")

    embed(
        client,
        [
            types.Content(
                parts=[types.Part(text="title: none | text: two pictures"), _image(JACKET), _image(SHOES)]
            ),
            types.Content(parts=[types.Part.from_bytes(data=guide, mime_type="application/pdf")]),
            types.Content(parts=[types.Part.from_bytes(data=tone, mime_type="audio/wav")]),
        ],
        model=MODEL,
    )

    stats = gemini_emulator.stats
    assert stats.media_parts == {"image/png": 2, "application/pdf": 1, "audio/wav": 1}
    assert stats.media_tokens == {"image/png": 2 * 258, "application/pdf": 3 * 258, "audio/wav": 3 * 32}
    assert (stats.texts, stats.embeddings, stats.embedded_texts) == (
        1,
        3,
        ["title: none | text: two pictures"],
    )


def test_media_parts_count_against_the_token_quota(
    gemini_emulator: GeminiEmulator, client: genai.Client
) -> None:
    gemini_emulator.configure(tokens_per_minute=300)
    embed(client, [types.Content(parts=[_image(JACKET)])], model=MODEL)  # 258 tokens

    with pytest.raises(errors.ClientError) as caught:
        embed(client, [types.Content(parts=[_image(SHOES)])], model=MODEL)

    assert caught.value.code == 429


@pytest.mark.parametrize(
    ("part", "where", "expected"),
    [
        pytest.param(
            _inline(JACKET, "image/gif"),
            "inline_data.mime_type",
            (400, "INVALID_ARGUMENT", "Unsupported MIME type: image/gif"),
            id="unsupported-mime",
        ),
        pytest.param(
            {"inline_data": {"data": base64.b64encode(JACKET).decode()}},
            "inline_data.mime_type",
            (
                400,
                "INVALID_ARGUMENT",
                (
                    "* BatchEmbedContentsRequest.requests[0].content.parts[0].inline_data.mime_type: "
                    "mime_type is required.\n"
                ),
            ),
            id="missing-mime",
        ),
        pytest.param(
            {"inline_data": {"mime_type": "image/png", "data": "not base64!"}},
            "inline_data.data",
            (
                400,
                "INVALID_ARGUMENT",
                (
                    "Invalid value at 'requests[0].content.parts[0].inline_data.data' (TYPE_BYTES), "
                    'Base64 decoding failed for "not base64!"'
                ),
            ),
            id="bad-base64",
        ),
        pytest.param(
            {"file_data": {"mime_type": "image/png", "file_uri": "gs://bucket/jacket.png"}},
            "file_data.file_uri",
            (400, "INVALID_ARGUMENT", "Invalid or unsupported file uri: gs://bucket/jacket.png"),
            id="not-a-files-api-uri",
        ),
        pytest.param(
            _inline(pdf_bytes([f"page {n}" for n in range(7)]), "application/pdf"),
            "",
            (
                400,
                "INVALID_ARGUMENT",
                (
                    "* BatchEmbedContentsRequest.requests[0].content.parts[0]: The document has 7 pages, "
                    "which exceeds the maximum number of pages allowed (6).\n"
                ),
            ),
            id="seven-page-pdf",
        ),
    ],
)
def test_bad_media_parts_are_refused_as_the_real_service_does(
    gemini_emulator: GeminiEmulator, part: dict[str, Any], where: str, expected: tuple[int, str, str]
) -> None:
    answer = raw_request(gemini_emulator, PATH, _body(part), key=gemini_emulator.api_key)

    error = answer.body["error"]
    assert (answer.status, error["status"], error["message"]) == expected
    if where:
        (violation,) = error["details"][0]["fieldViolations"]
        assert violation["field"] == f"requests[0].content.parts[0].{where}"
    assert gemini_emulator.stats.status_counts == {answer.status: 1}


def test_a_six_page_pdf_and_six_images_are_taken_seven_are_not(gemini_emulator: GeminiEmulator) -> None:
    six_pages = _inline(pdf_bytes([f"page {n}" for n in range(6)]), "application/pdf")
    images = [_inline(png_bytes(2, 2, (n, n, n))) for n in range(7)]

    taken = raw_request(gemini_emulator, PATH, _body(six_pages, *images[:6]), key=gemini_emulator.api_key)
    refused = _refusal(gemini_emulator, _body({"text": "seven"}, *images))

    assert taken.status == 200
    assert refused == (
        400,
        "INVALID_ARGUMENT",
        (
            "* BatchEmbedContentsRequest.requests[0].content: The number of images in a content (7 so far) "
            "exceeds the maximum allowed (6).\n"
        ),
    )


def test_media_sent_to_a_text_model_is_refused_through_the_sdk(client: genai.Client) -> None:
    with pytest.raises(errors.ClientError) as caught:
        embed(client, [types.Content(parts=[_image(JACKET)])], model="gemini-embedding-001")

    assert caught.value.code == 400
    assert caught.value.message == (
        "* BatchEmbedContentsRequest.requests[0].content.parts[0]: "
        "models/gemini-embedding-001 only supports text content.\n"
    )


def test_a_request_body_over_20_mib_is_refused_before_anything(
    gemini_emulator: GeminiEmulator, client: genai.Client
) -> None:
    limit = 20 * 1024 * 1024
    big = b"\x00" * (limit * 3 // 4 + 1024)  # base64 makes it just over the limit

    with pytest.raises(errors.ClientError) as caught:
        embed(client, [types.Content(parts=[_image(big)])], model=MODEL)
    just_under = _body(_inline(b"\x00" * 3))
    padding = limit - len(json.dumps(just_under).encode())
    just_under["requests"][0]["content"]["parts"].append({"text": "x" * (padding - len(', {"text": ""}'))})
    under = raw_request(gemini_emulator, PATH, just_under, key="wrong key")

    assert caught.value.code == 400
    assert caught.value.message == "Request payload size exceeds the limit: 20971520 bytes."
    assert len(json.dumps(just_under).encode()) == limit
    assert under.status == 400
    assert under.body["error"]["message"] == "API key not valid. Please pass a valid API key."


def test_a_batch_job_embeds_media_as_the_synchronous_route_does(
    gemini_emulator: GeminiEmulator, client: genai.Client
) -> None:
    contents = [types.Content(parts=[_image(JACKET)]), types.Content(parts=[_image(b"\x00", "image/gif")])]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # create_embeddings is marked experimental
        job = client.batches.create_embeddings(
            model=MODEL, src={"inlined_requests": types.EmbedContentBatch(contents=contents)}
        )
    assert job.name is not None

    done = client.batches.get(name=job.name)

    assert done.dest is not None
    assert done.dest.inlined_embed_content_responses is not None
    first, second = done.dest.inlined_embed_content_responses
    assert first.response is not None
    assert first.response.embedding is not None
    assert first.response.embedding.values == emulated_embedding([], model=MODEL, media=("image/png", JACKET))
    assert second.error is not None
    assert second.error.message == "Unsupported MIME type: image/gif"
    assert gemini_emulator.stats.media_parts == {"image/png": 1}
