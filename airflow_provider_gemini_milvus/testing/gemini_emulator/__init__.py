"""
A local HTTP server that speaks the Gemini embedding REST API, for offline tests and DAG development.

The real ``google-genai`` SDK talks to it through ``HttpOptions(base_url=emulator.base_url)``:

.. code-block:: python

    from google import genai
    from google.genai import types

    with GeminiEmulator() as emulator:
        options = types.HttpOptions(base_url=emulator.base_url)
        client = genai.Client(api_key=emulator.api_key, http_options=options)
        result = client.models.embed_content(model="gemini-embedding-001", contents=["hello", "world"])

What it serves (any version prefix, e.g. ``v1``, ``v1beta``, ``v1beta1``):

* ``POST /{ver}/models/{model}:batchEmbedContents`` and ``:embedContent`` (Gemini Developer API);
* ``GET /{ver}/models/{model}`` and ``GET /{ver}/models`` (``client.models.get`` / ``client.models.list``);
* Vertex AI express mode (``genai.Client(vertexai=True, api_key=...)``):
  ``POST /{ver}/[projects/{p}/locations/{l}/]publishers/google/models/{model}:batchEmbedContents``,
  ``:embedContent`` and ``:predict``, and ``GET`` on the model.
* the Batch API and Files API (``:asyncBatchEmbedContent``, ``batches/{id}``, ``:cancel``, ``batches``, the
  resumable ``upload/{ver}/files``, ``files/{id}`` and ``files/{id}:download``), with jobs that can be made
  slow, failed or expired through :attr:`GeminiEmulator.batches` (see :mod:`.batches`), and files that stay
  ``PROCESSING`` for a while (:attr:`GeminiEmulator.files_processing_polls`).

It enforces the model catalogue in :mod:`airflow_provider_gemini_milvus.gemini.models` (dimensions, input
length, task types, at most 100 texts a call), answers with Google's error envelopes, and can simulate
latency, per-minute and per-day quotas, random and queued faults, texts refused for good
(``refuse_texts``), corrupted answers (NaN, short or missing vectors, HTML, cut JSON), gateways that echo
the API key in errors, and dropped connections. Vectors are deterministic and lexically meaningful:
similar texts are near neighbours, so small retrieval tests work.

For gemini-embedding-2 a ``Content`` may also hold images, PDFs, audio and video (``inline_data`` or a
Files API ``file_data``, ``client.files.upload`` / ``get`` / ``delete``), checked as the real service checks
them (MIME type, base64, 6 images, 6 PDF pages, a 20 MiB body) and embedded from their bytes and the
description they carry (see :mod:`.media`, :mod:`.protocol`, :mod:`.files`);
``emulated_embedding(..., media=(mime_type, data))`` gives the same vector without HTTP.

Modules: :mod:`.vectors` (the deterministic vectors), :mod:`.media` (what media bytes hold: descriptions,
pages, durations, tokens), :mod:`.protocol` (routes, request parsing, answer bodies), :mod:`.batches`
(batch jobs), :mod:`.files` (the Files API), :mod:`.errors` (Google's error envelopes), :mod:`.quotas`,
:mod:`.faults`, :mod:`.stats`, :mod:`.http_server` (the HTTP plumbing) and :mod:`.server`
(:class:`GeminiEmulator`).

Run it from a shell with ``python -m airflow_provider_gemini_milvus.testing.gemini_emulator --port 8765``.
"""

from __future__ import annotations

from airflow_provider_gemini_milvus.testing.gemini_emulator.errors import SUPPORTED_FAULT_STATUSES, ApiError
from airflow_provider_gemini_milvus.testing.gemini_emulator.faults import CORRUPTION_KINDS
from airflow_provider_gemini_milvus.testing.gemini_emulator.protocol import VERTEX_MAX_INSTANCES_PER_REQUEST
from airflow_provider_gemini_milvus.testing.gemini_emulator.server import DEFAULT_API_KEY, GeminiEmulator
from airflow_provider_gemini_milvus.testing.gemini_emulator.stats import EmulatorStats
from airflow_provider_gemini_milvus.testing.gemini_emulator.vectors import (
    QUERY_TASK_TYPES,
    emulated_embedding,
)

__all__ = [
    "CORRUPTION_KINDS",
    "DEFAULT_API_KEY",
    "QUERY_TASK_TYPES",
    "SUPPORTED_FAULT_STATUSES",
    "VERTEX_MAX_INSTANCES_PER_REQUEST",
    "ApiError",
    "EmulatorStats",
    "GeminiEmulator",
    "emulated_embedding",
]
