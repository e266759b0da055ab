"""The emulator's Files API: resumable uploads in chunks, and downloads of generated files only."""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request
from typing import Any

from google import genai

from airflow_provider_gemini_milvus.testing.gemini_emulator import GeminiEmulator
from tests.testing.gemini_emulator.calls import raw_request


def _start_upload(emulator: GeminiEmulator, size: int) -> str:
    start = urllib.request.Request(
        f"{emulator.base_url}/upload/v1/files",
        data=json.dumps({"file": {"size_bytes": size, "display_name": "plan"}}).encode(),
        headers={
            "x-goog-api-key": emulator.api_key,
            "X-Goog-Upload-Protocol": "resumable",
            "X-Goog-Upload-Command": "start",
        },
        method="POST",
    )
    with urllib.request.urlopen(start, timeout=10) as response:
        return str(response.headers["x-goog-upload-url"])


def _send(upload_url: str, chunk: bytes, command: str, offset: int) -> tuple[int, str | None, dict[str, Any]]:
    """Post one chunk to the session URL, without the key; the status, upload status and body."""
    request = urllib.request.Request(
        upload_url,
        data=chunk,
        headers={"X-Goog-Upload-Command": command, "X-Goog-Upload-Offset": str(offset)},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers["x-goog-upload-status"], json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, None, json.loads(error.read())


def test_an_upload_in_chunks_needs_no_key_at_the_session_and_cannot_be_downloaded(
    gemini_emulator: GeminiEmulator,
) -> None:
    upload_url = _start_upload(gemini_emulator, 6)

    first = _send(upload_url, b"abc", "upload", 0)
    last = _send(upload_url, b"def", "upload, finalize", 3)

    assert first[:2] == (200, "active")
    assert last[:2] == (200, "final")
    file = last[2]["file"]
    assert (file["sizeBytes"], file["source"], file["displayName"]) == ("6", "UPLOADED", "plan")
    stored = gemini_emulator.batches.files.get(file["name"])
    assert stored is not None
    assert stored.data == b"abcdef"
    download = raw_request(
        gemini_emulator, f"/v1/{file['name']}:download", key=gemini_emulator.api_key, method="GET"
    )
    assert download.status == 400  # only generated files download


def test_a_chunk_at_the_wrong_offset_is_refused_and_the_upload_goes_on(
    gemini_emulator: GeminiEmulator,
) -> None:
    upload_url = _start_upload(gemini_emulator, 6)
    _send(upload_url, b"abc", "upload", 0)

    wrong = _send(upload_url, b"def", "upload, finalize", 0)
    right = _send(upload_url, b"def", "upload, finalize", 3)

    assert wrong[0] == 400
    assert "offset must be 3" in wrong[2]["error"]["message"]
    assert right[:2] == (200, "final")


def test_an_upload_shorter_than_announced_is_refused_and_stores_nothing(
    gemini_emulator: GeminiEmulator,
) -> None:
    upload_url = _start_upload(gemini_emulator, 10)

    status, _, body = _send(upload_url, b"abc", "upload, finalize", 0)

    assert status == 400
    assert "3 bytes; 10 were announced" in body["error"]["message"]
    assert _send(upload_url, b"abc", "upload, finalize", 0)[0] == 404  # the session is gone


def test_the_sdk_uploads_a_file_the_store_then_holds(
    gemini_emulator: GeminiEmulator, client: genai.Client
) -> None:
    data = b'{"key": "a"}\n' * 1000

    uploaded = client.files.upload(file=io.BytesIO(data), config={"mime_type": "application/jsonl"})

    assert uploaded.name is not None
    stored = gemini_emulator.batches.files.get(uploaded.name)
    assert stored is not None
    assert (stored.data, stored.mime_type, stored.generated) == (data, "application/jsonl", False)


def test_a_download_of_an_unknown_file_is_not_found(gemini_emulator: GeminiEmulator) -> None:
    answer = raw_request(
        gemini_emulator, "/v1/files/upload9999:download", key=gemini_emulator.api_key, method="GET"
    )

    assert answer.status == 404


def test_the_sdk_deletes_a_file_and_the_store_counts_what_it_holds(
    gemini_emulator: GeminiEmulator, client: genai.Client
) -> None:
    uploaded = client.files.upload(file=io.BytesIO(b"{}\n"), config={"mime_type": "application/jsonl"})
    assert gemini_emulator.batches.files.names() == [uploaded.name]

    client.files.delete(name=str(uploaded.name))

    assert gemini_emulator.batches.files.names() == []
    again = raw_request(
        gemini_emulator, f"/v1beta/{uploaded.name}", key=gemini_emulator.api_key, method="DELETE"
    )
    assert again.status == 404
