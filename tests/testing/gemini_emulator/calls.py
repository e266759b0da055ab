"""Ways the emulator tests call the emulator: through the real google-genai SDK, or raw HTTP where the SDK
cannot express the case (a missing key, ``?key=``, per-element titles, the exact bytes answered)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from google import genai
from google.genai import errors, types

from airflow_provider_gemini_milvus.testing.gemini_emulator import GeminiEmulator

MODEL = "gemini-embedding-001"
BATCH_PATH = f"/v1beta/models/{MODEL}:batchEmbedContents"


def make_client(emulator: GeminiEmulator, *, api_key: str | None = None, **options: Any) -> genai.Client:
    return genai.Client(
        api_key=api_key or emulator.api_key,
        http_options=types.HttpOptions(base_url=emulator.base_url, **options),
    )


def embed(client: genai.Client, contents: Any, model: str = MODEL, **config: Any) -> list[list[float]]:
    response = client.models.embed_content(
        model=model, contents=contents, config=types.EmbedContentConfig(**config) if config else None
    )
    assert response.embeddings is not None
    return [list(embedding.values or []) for embedding in response.embeddings]


@dataclass(frozen=True)
class RawAnswer:
    status: int
    content_type: str
    text: str

    @property
    def body(self) -> Any:
        return json.loads(self.text)


def raw_request(
    emulator: GeminiEmulator,
    path: str,
    body: dict[str, Any] | None = None,
    *,
    key: str | None = None,
    key_in_query: bool = False,
    method: str = "POST",
) -> RawAnswer:
    """Send one request with urllib (``key`` in the ``x-goog-api-key`` header or the query)."""
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
            return RawAnswer(response.status, response.headers["Content-Type"], response.read().decode())
    except urllib.error.HTTPError as error:
        return RawAnswer(error.code, error.headers["Content-Type"], error.read().decode())


def element(text: str, **fields: Any) -> dict[str, Any]:
    """One ``batchEmbedContents`` request element."""
    return {"model": f"models/{MODEL}", "content": {"parts": [{"text": text}]}, **fields}


def error_detail(exc: errors.APIError, type_suffix: str) -> dict[str, Any] | None:
    """The ``error.details`` entry whose ``@type`` ends with ``type_suffix``."""
    details = exc.details["error"].get("details", [])
    return next((item for item in details if item["@type"].endswith(type_suffix)), None)
