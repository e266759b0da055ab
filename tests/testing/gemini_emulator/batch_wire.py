"""
What the google-genai SDK really sends for the Batch API and the Files API, captured from the installed SDK.

:func:`capture_sdk_batch_calls` points a real ``genai.Client`` at a throwaway loopback server that records
every request and answers with the smallest body the SDK accepts. :data:`CAPTURED` is what it recorded
with google-genai 3.6.1 (``batches.py`` ``_create_embeddings``, ``get``, ``cancel``, ``_list``; ``files.py``
``upload``, ``download``; ``_api_client.py`` ``_upload_fd``); the emulator's batch routes
(:mod:`airflow_provider_gemini_milvus.testing.gemini_emulator.batches`) were written against it, and a test
re-captures it so an SDK upgrade that changes the wire shows up as a failing test.

What the SDK parses from the answers (``batches._BatchJob_from_mldev``): ``name`` and
``metadata.{displayName, state, createTime, endTime, updateTime, model, output}``; the operation's own
``error`` is *not* mapped for the Gemini API (``BatchJob.error`` stays ``None``). ``metadata.output``
``.inlinedResponses.inlinedResponses[]`` holding ``response.embedding`` becomes
``job.dest.inlined_embed_content_responses`` (``InlinedEmbedContentResponse{response{embedding,
token_count}, error: JobError{code, message, details: list[str]}}``), ``metadata.output.responsesFile``
becomes ``job.dest.file_name``. ``list`` reads ``{"operations": [...], "nextPageToken"}``.

The upload is a two-step resumable handshake: the start call must answer with an ``x-goog-upload-url``
header, which the SDK uses as it is (``files.upload`` passes no ``base_url`` down to ``_upload_fd``, so the
URL must name a reachable host); each chunk of up to 8 MiB
is posted there *without the API key*, with ``X-Goog-Upload-Command: upload`` (``upload, finalize`` on the
last) and ``X-Goog-Upload-Offset``; the answer must carry ``x-goog-upload-status`` (``active`` for more,
``final`` with ``{"file": {...}}`` at the end).
"""

from __future__ import annotations

import io
import json
import threading
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from google import genai
from google.genai import types

#: Headers worth recording: the protocol ones, not the host, length or SDK version.
RECORDED_HEADERS = ("content-type", "x-goog-upload-protocol", "x-goog-upload-command", "x-goog-upload-offset")
#: Where the capture server tells the SDK to send the bytes of an upload.
UPLOAD_SESSION_PATH = "/upload-session/1"

_OPERATION: dict[str, Any] = {
    "name": "batches/abc123",
    "metadata": {
        "model": "models/gemini-embedding-001",
        "name": "batches/abc123",
        "state": "BATCH_STATE_SUCCEEDED",
        "output": {
            "inlinedResponses": {
                "inlinedResponses": [
                    {"response": {"embedding": {"values": [0.6, 0.8]}, "tokenCount": "3"}},
                    {"error": {"code": 3, "message": "bad"}},
                ]
            }
        },
    },
    "done": True,
}

#: The requests the SDK sent, in call order: method, path, the key header's presence, recorded headers,
#: and the JSON body (``None`` when empty; the upload's raw bytes as text).
CAPTURED: list[dict[str, Any]] = [
    {
        "call": "batches.create_embeddings (inlined)",
        "method": "POST",
        "path": "/v1/models/gemini-embedding-001:asyncBatchEmbedContent",
        "api_key_header": True,
        "headers": {"content-type": "application/json"},
        "body": {
            "batch": {
                "inputConfig": {
                    "requests": {
                        "requests": [
                            {
                                "request": {
                                    "content": {"parts": [{"text": "a"}], "role": "user"},
                                    "taskType": "RETRIEVAL_DOCUMENT",
                                    "title": "T",
                                    "outputDimensionality": 256,
                                }
                            },
                            {
                                "request": {
                                    "content": {"parts": [{"text": "b"}], "role": "user"},
                                    "taskType": "RETRIEVAL_DOCUMENT",
                                    "title": "T",
                                    "outputDimensionality": 256,
                                }
                            },
                        ]
                    }
                },
                "displayName": "x",
            }
        },
    },
    {
        "call": "batches.create_embeddings (file)",
        "method": "POST",
        "path": "/v1/models/gemini-embedding-001:asyncBatchEmbedContent",
        "api_key_header": True,
        "headers": {"content-type": "application/json"},
        "body": {"batch": {"inputConfig": {"file_name": "files/f1"}}},
    },
    {
        "call": "batches.get",
        "method": "GET",
        "path": "/v1/batches/abc123",
        "api_key_header": True,
        "headers": {"content-type": "application/json"},
        "body": None,
    },
    {
        "call": "batches.list",
        "method": "GET",
        "path": "/v1/batches?pageSize=5",
        "api_key_header": True,
        "headers": {"content-type": "application/json"},
        "body": None,
    },
    {
        "call": "batches.cancel",
        "method": "POST",
        "path": "/v1/batches/abc123:cancel",
        "api_key_header": True,
        "headers": {"content-type": "application/json"},
        "body": None,
    },
    {
        "call": "files.upload (start)",
        "method": "POST",
        "path": "/upload/v1/files",
        "api_key_header": True,
        "headers": {
            "content-type": "application/json",
            "x-goog-upload-protocol": "resumable",
            "x-goog-upload-command": "start",
        },
        "body": {"file": {"display_name": "in", "mime_type": "application/jsonl", "size_bytes": 12}},
    },
    {
        "call": "files.upload (bytes)",
        "method": "POST",
        "path": UPLOAD_SESSION_PATH,
        "api_key_header": False,
        "headers": {
            "content-type": "application/json",
            "x-goog-upload-protocol": "resumable",
            "x-goog-upload-command": "upload, finalize",
            "x-goog-upload-offset": "0",
        },
        "body": '{"key":"0"}\n',
    },
    {
        "call": "files.download",
        "method": "GET",
        "path": "/v1/files/f1:download?alt=media",
        "api_key_header": True,
        "headers": {"content-type": "application/json"},
        "body": None,
    },
]


class _Recorder(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _CaptureServer

    def do_GET(self) -> None:
        self._record("GET")

    def do_POST(self) -> None:
        self._record("POST")

    def _record(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        body: Any = None
        if raw:
            body = raw.decode() if self.path == UPLOAD_SESSION_PATH else json.loads(raw)
        self.server.recorded.append(
            {
                "method": method,
                "path": self.path,
                "api_key_header": "x-goog-api-key" in headers,
                "headers": {name: headers[name] for name in RECORDED_HEADERS if name in headers},
                "body": body,
            }
        )
        answer, extra_headers = self._answer()
        payload = json.dumps(answer).encode() if isinstance(answer, dict) else answer
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        for name, value in extra_headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _answer(self) -> tuple[dict[str, Any] | bytes, dict[str, str]]:
        if self.path.startswith("/upload/"):
            port = self.server.server_address[1]
            return {}, {"x-goog-upload-url": f"http://127.0.0.1:{port}{UPLOAD_SESSION_PATH}"}
        if self.path == UPLOAD_SESSION_PATH:
            file = {"name": "files/f1", "mimeType": "application/jsonl", "sizeBytes": "12", "state": "ACTIVE"}
            return {"file": file}, {"x-goog-upload-status": "final"}
        if ":download" in self.path:
            return b'{"key":"0","response":{"embedding":{"values":[1]}}}\n', {}
        if self.path.startswith("/v1/batches?"):
            return {"operations": [_OPERATION]}, {}
        if self.path.endswith(":cancel"):
            return {}, {}
        return _OPERATION, {}

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


class _CaptureServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Recorder)
        self.recorded: list[dict[str, Any]] = []


def capture_sdk_batch_calls() -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """
    Make every Batch and Files API call once through a real client; return what was sent and what the SDK
    made of the answers (``{call: parsed value}``).
    """
    server = _CaptureServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        client = genai.Client(
            api_key="capture-key",
            http_options=types.HttpOptions(base_url=f"http://127.0.0.1:{server.server_address[1]}"),
        )
        inlined = types.EmbedContentBatch(
            contents=["a", "b"],
            config=types.EmbedContentConfig(
                task_type="RETRIEVAL_DOCUMENT", output_dimensionality=256, title="T"
            ),
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # create_embeddings is marked experimental
            created = client.batches.create_embeddings(
                model="gemini-embedding-001",
                src=types.EmbeddingsBatchJobSource(inlined_requests=inlined),
                config=types.CreateEmbeddingsBatchJobConfig(display_name="x"),
            )
            client.batches.create_embeddings(model="gemini-embedding-001", src={"file_name": "files/f1"})
        parsed: dict[str, Any] = {"create": created}
        parsed["get"] = client.batches.get(name="batches/abc123")
        parsed["list"] = list(client.batches.list(config={"page_size": 5}))
        client.batches.cancel(name="batches/abc123")
        parsed["upload"] = client.files.upload(
            file=io.BytesIO(b'{"key":"0"}\n'), config={"mime_type": "application/jsonl", "display_name": "in"}
        )
        parsed["download"] = client.files.download(file="files/f1")
        return server.recorded, parsed
    finally:
        server.shutdown()
        server.server_close()
