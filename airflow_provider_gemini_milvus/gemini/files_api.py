"""
The Files API: media too large to go inline are uploaded, referenced by their URI, and deleted once their
request is done; a batch job's request and result files are deleted the same way.
"""

from __future__ import annotations

import io
import time
from typing import TYPE_CHECKING, Any

from airflow_provider_gemini_milvus.exceptions import GeminiAPIError
from airflow_provider_gemini_milvus.gemini.sdk_calls import sdk_call

if TYPE_CHECKING:
    from airflow_provider_gemini_milvus.gemini.media import MediaPart
    from airflow_provider_gemini_milvus.gemini.sdk_calls import GeminiConnection

__all__ = ["FILE_ACTIVE_TIMEOUT_SECONDS", "FILE_POLL_SECONDS", "delete_file", "upload_media"]

#: How long an uploaded file may stay ``PROCESSING`` (videos are processed) before the request fails.
FILE_ACTIVE_TIMEOUT_SECONDS = 600.0
#: Seconds between two looks at a file being processed.
FILE_POLL_SECONDS = 2.0


def upload_media(hook: GeminiConnection, part: MediaPart) -> tuple[str, str]:
    """
    Upload one media item and wait until the service can use it; return its name (``files/...``) and URI.

    The caller deletes it with :func:`delete_file` once its request is done (the service deletes files
    after 48 hours anyway).

    :raises GeminiAPIError: the upload failed, or the file ended ``FAILED`` or stayed ``PROCESSING``; the
        message names ``part.where``, never the key.
    """
    from google.genai import types

    client = hook.get_conn()
    data = part.data()
    config = types.UploadFileConfig(
        mime_type=part.facts.mime_type, display_name=f"gm-media-{part.facts.sha256[:16]}"
    )
    uploaded: Any = sdk_call(
        hook, f"uploading {part.where}", lambda: client.files.upload(file=io.BytesIO(data), config=config)
    )
    hook.log.info("Uploaded %s (%d bytes) to the Files API as %s", part.where, len(data), uploaded.name)
    deadline = time.monotonic() + FILE_ACTIVE_TIMEOUT_SECONDS
    while _state(uploaded) == "PROCESSING":
        if time.monotonic() > deadline:
            delete_file(hook, uploaded.name)
            raise GeminiAPIError(
                f"{part.where} was still being processed by the Files API after "
                f"{FILE_ACTIVE_TIMEOUT_SECONDS:g} s"
            )
        time.sleep(FILE_POLL_SECONDS)
        uploaded = _looked_up(hook, str(uploaded.name))
    if _state(uploaded) != "ACTIVE" or not uploaded.uri:
        delete_file(hook, uploaded.name)
        raise GeminiAPIError(f"the Files API could not process {part.where} (state {_state(uploaded)})")
    return str(uploaded.name), str(uploaded.uri)


def delete_file(hook: GeminiConnection, file_name: str) -> bool:
    """
    Delete a file from the Files API (uploaded media, a batch job's request or result file); return whether
    it was there. Best effort: a failure
    is logged, never raised (the service deletes files after 48 hours anyway).
    """
    client = hook.get_conn()
    try:
        sdk_call(hook, f"deleting file {file_name}", lambda: client.files.delete(name=file_name))
    except GeminiAPIError as err:
        if err.http_status != 404:
            hook.log.warning("Could not delete %s from the Files API: %s", file_name, err)
        return False
    hook.log.info("Deleted %s from the Files API", file_name)
    return True


def _looked_up(hook: GeminiConnection, name: str) -> Any:
    client = hook.get_conn()
    return sdk_call(hook, f"looking up {name}", lambda: client.files.get(name=name))


def _state(file: Any) -> str:
    state = getattr(file, "state", None)
    text = str(getattr(state, "value", state) or "ACTIVE")
    return text.removeprefix("STATE_")
