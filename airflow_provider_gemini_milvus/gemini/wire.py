"""
One embedding request on the wire: sent through the google-genai client (its transport, authentication,
base URL, timeout and errors), and its answer decoded straight into vectors.

The SDK's ``models.embed_content`` builds pydantic objects for the request, decodes each answer with the
standard ``json`` module and builds a pydantic object per vector: about 21 of the 23 ms of client CPU that
a 100-vector answer of 768 dimensions costs. With 2 cores and a few dozen requests in flight that CPU, not
the network, bounds throughput. On the Gemini API the hook therefore sends the same ``batchEmbedContents``
body through the client's own request method (the one ``models.embed_content`` calls) and decodes the
answer with msgspec into plain lists of floats: about 3 ms. Vertex AI, whose endpoint and answer differ by
model, and an SDK without that request method, go through ``models.embed_content``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from airflow_provider_gemini_milvus.gemini.requests import UnusableResponse, per_request_bodies

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from google import genai

    from airflow_provider_gemini_milvus.gemini.requests import EmbedRequest, PlannedRequest

__all__ = ["decode_embeddings", "send_embed_request"]


class _Embedding(msgspec.Struct):
    """One vector of an answer; ``values`` is missing or ``null`` only in a broken answer."""

    values: list[float] | None = None


class _EmbedAnswer(msgspec.Struct):
    embeddings: list[_Embedding] | None = None


#: Not strict: proto3's JSON writes a NaN or infinite float as the string "NaN" or "Infinity"; these decode
#: to floats (as pydantic's do) and are then refused by name in ``checked_rows``.
_DECODER = msgspec.json.Decoder(_EmbedAnswer, strict=False)


def decode_embeddings(body: str | bytes) -> list[_Embedding] | None:
    """
    The ``embeddings`` of a ``batchEmbedContents`` answer, each with its ``values`` (fields the hook does
    not read are skipped without being built).

    :raises UnusableResponse: the body is not JSON, or not of that shape (e.g. ``"values": "abc"``). The
        message says where it failed (msgspec names positions, paths and types, never a value of this
        schema), never what the body holds: it may echo the key.
    """
    try:
        return _DECODER.decode(body).embeddings
    except msgspec.ValidationError as err:
        problem = f"wrong shape: {err}"
    except msgspec.DecodeError as err:
        problem = f"invalid JSON: {err}"
    raise UnusableResponse(f"Gemini answered 200 with a body that is not an embedding response ({problem})")


def send_embed_request(
    client: genai.Client, batch: PlannedRequest, request: EmbedRequest, *, vertexai: bool
) -> Sequence[Any] | None:
    """
    Send ``batch`` once; return the answer's embeddings (objects with a ``values`` list), unchecked.

    :raises google.genai.errors.APIError: Gemini answered with an error, as ``models.embed_content`` raises.
    :raises UnusableResponse: Gemini answered 200 with a body that is not an embedding response.
    """
    send = None if vertexai else _raw_request(client)
    if send is None:
        embeddings: Sequence[Any] | None = _send_through_models(
            client, batch, request, vertexai=vertexai
        ).embeddings
        return embeddings
    body = {"requests": per_request_bodies(batch, request, vertexai=False)}
    response = send("post", f"models/{request.model.name}:batchEmbedContents", body)
    return decode_embeddings(response.body or "{}")


def _raw_request(client: genai.Client) -> Callable[..., Any] | None:
    """The client's request method (``request(method, path, body)``), if this SDK has it."""
    send = getattr(getattr(client, "_api_client", None), "request", None)
    return send if callable(send) else None


def _send_through_models(
    client: genai.Client, batch: PlannedRequest, request: EmbedRequest, *, vertexai: bool
) -> Any:
    """Send ``batch`` with ``models.embed_content``, which builds and decodes with pydantic."""
    from google.genai import types

    config = types.EmbedContentConfig(
        task_type=request.task_type if request.model.supports_task_type else None,
        output_dimensionality=request.output_dimensionality,
    )
    titles = batch.titles
    if titles is not None and len(set(titles)) == 1:
        config.title = titles[0]
    elif titles is not None:
        config.http_options = types.HttpOptions(
            extra_body={"requests": per_request_bodies(batch, request, vertexai=vertexai)}
        )
    return client.models.embed_content(
        model=request.model.name, contents=_contents(batch.texts, request), config=config
    )


def _contents(texts: list[str], request: EmbedRequest) -> list[Any]:
    """
    What to pass the SDK as ``contents``: one vector must come back per text.

    For gemini-embedding-2 the SDK merges a list of strings into one ``Content`` (one vector for the
    whole list), so each text gets its own ``Content``. Other models take plain strings, which the SDK
    turns into requests about twice as fast as ``Content`` objects.
    """
    if not request.model.one_content_per_text:
        return list(texts)
    from google.genai import types

    return [types.Content(parts=[types.Part(text=text)]) for text in texts]
