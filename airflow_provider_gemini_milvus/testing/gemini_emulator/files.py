"""
The Files API the emulator's batch jobs read their input from and write their results to.

Written against the SDK's captured requests (``tests/testing/gemini_emulator/batch_wire.py``):

* ``POST /upload/{ver}/files`` (``X-Goog-Upload-Protocol: resumable``, ``X-Goog-Upload-Command: start``)
  answers with an ``x-goog-upload-url`` header: an upload session, a capability (the SDK sends no key there);
* the bytes are posted to the session URL in chunks (``upload``, then ``upload, finalize``) at
  ``X-Goog-Upload-Offset``; the last answer carries ``x-goog-upload-status: final`` and ``{"file"}``;
* ``GET /{ver}/files/{id}:download?alt=media`` returns a generated file (a job's results); an uploaded file
  cannot be downloaded, as on the real service;
* ``GET /{ver}/files/{id}`` (``client.files.get(name="files/x")``) answers the ``File`` resource; its
  ``state`` is ``PROCESSING`` for the first :attr:`FileStore.processing_polls` gets of a file uploaded
  while that knob was set (and in the upload's own answer), ``ACTIVE`` from then on; 403
  ``PERMISSION_DENIED`` ("You do not have permission to access the File {id} or it may not exist.") when
  there is none, as the real service answers an unknown file;
* ``DELETE /{ver}/files/{id}`` (``client.files.delete(name="files/x")``) deletes an uploaded or generated
  file, answering ``{}``; 404 when there is none.

A file's ``uri`` is ``{base_url}/v1beta/files/{id}``; an embed request's ``file_data.file_uri`` is resolved
by :meth:`FileStore.resolve` (any URI whose path ends in ``files/{id}``, or ``files/{id}`` itself).
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow_provider_gemini_milvus.testing.gemini_emulator.errors import ApiError, invalid_argument
from airflow_provider_gemini_milvus.testing.gemini_emulator.protocol import Reply

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

__all__ = ["UPLOAD_SESSION_PREFIX", "FileStore", "StoredFile", "timestamp", "unknown_file_error"]

#: Path prefix of upload session URLs.
UPLOAD_SESSION_PREFIX = "/upload-sessions/"
_FILE_URI_RE = re.compile(r"(?:^|/)files/(?P<id>[A-Za-z0-9_-]+)$")


def unknown_file_error(resource_id: str) -> ApiError:
    """The real service's answer for a file that does not exist or belongs to another project."""
    return ApiError(403, f"You do not have permission to access the File {resource_id} or it may not exist.")


def timestamp() -> str:
    """Now, as the API writes times (RFC 3339, UTC, microseconds)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class StoredFile:
    """
    One file: uploaded by a client, or generated (a batch job's results).

    :param name: ``files/...``.
    :param display_name: the uploader's display name, if any.
    :param mime_type: its MIME type.
    :param data: its bytes.
    :param generated: made by the service (only those download).
    :param created: when it was stored.
    :param processing_polls: ``get`` calls still to answer ``PROCESSING`` (it cannot be used meanwhile).
    """

    name: str
    display_name: str | None
    mime_type: str
    data: bytes
    generated: bool
    created: str
    processing_polls: int = 0

    @property
    def state(self) -> str:
        return "PROCESSING" if self.processing_polls > 0 else "ACTIVE"

    def resource(self, base_url: str, version: str = "v1beta") -> dict[str, Any]:
        """The ``File`` resource the API answers."""
        return {
            "name": self.name,
            **({"displayName": self.display_name} if self.display_name else {}),
            "mimeType": self.mime_type,
            "sizeBytes": str(len(self.data)),
            "createTime": self.created,
            "updateTime": self.created,
            "sha256Hash": hashlib.sha256(self.data).hexdigest(),
            "uri": f"{base_url}/{version}/{self.name}",
            "state": self.state,
            "source": "GENERATED" if self.generated else "UPLOADED",
        }


@dataclass
class _UploadSession:
    display_name: str | None
    mime_type: str
    size: int
    received: bytearray = field(default_factory=bytearray)


class FileStore:
    """
    The files and open upload sessions of one emulator (thread-safe).

    :param ids: numbers for new file names (shared with the batch jobs, so every name is unique).
    :param base_url: the emulator's address (for upload URLs and file URIs).
    """

    def __init__(self, ids: Iterator[int], base_url: Callable[[], str]) -> None:
        self._ids = ids
        self._base_url = base_url
        self._lock = threading.Lock()
        self._files: dict[str, StoredFile] = {}
        self._sessions: dict[str, _UploadSession] = {}
        #: ``get`` calls a file uploaded from now on answers ``PROCESSING`` before it is ``ACTIVE``.
        self.processing_polls = 0

    def get(self, name: str) -> StoredFile | None:
        """The file named ``files/...``, or ``None``."""
        with self._lock:
            return self._files.get(name)

    def names(self) -> list[str]:
        """The names of the files held now (uploaded and generated), in the order they were stored."""
        with self._lock:
            return list(self._files)

    def get_resource(self, resource_id: str) -> Reply:
        """``GET files/{resource_id}``: the ``File`` resource; each call is a poll of a processing file."""
        with self._lock:
            file = self._files.get(f"files/{resource_id}")
            if file is None:
                raise unknown_file_error(resource_id)
            resource = file.resource(self._base_url())
            if file.processing_polls > 0:
                file.processing_polls -= 1
        return Reply(200, resource)

    def resolve(self, uri: str) -> tuple[str, bytes]:
        """
        The ``(mime type, bytes)`` of the file an embed request's ``file_uri`` names, or the service's error:
        400 for a URI that names no file of the Files API, 403 for an unknown file, 400
        ``FAILED_PRECONDITION`` for a file still ``PROCESSING``.
        """
        match = _FILE_URI_RE.search(uri.split("?", 1)[0])
        if match is None:
            raise invalid_argument(f"Invalid or unsupported file uri: {uri}")
        resource_id = match["id"]
        with self._lock:
            file = self._files.get(f"files/{resource_id}")
        if file is None:
            raise unknown_file_error(resource_id)
        if file.processing_polls > 0:
            raise ApiError(
                400,
                f"The File {resource_id} is not in an ACTIVE state and usage is not allowed.",
                status="FAILED_PRECONDITION",
            )
        return file.mime_type, file.data

    def delete(self, resource_id: str) -> Reply:
        """Delete the file ``files/{resource_id}``."""
        with self._lock:
            if self._files.pop(f"files/{resource_id}", None) is None:
                raise ApiError(404, f"File files/{resource_id} was not found.")
        return Reply(200, {})

    def add_generated(self, name: str, mime_type: str, data: bytes, created: str) -> None:
        """Store a file the service generated (a job's results) under ``name``."""
        with self._lock:
            self._files[name] = StoredFile(name, None, mime_type, data, generated=True, created=created)

    def start_upload(self, headers: dict[str, str], body: dict[str, Any]) -> Reply:
        """Open an upload session; the answer's ``x-goog-upload-url`` is where the bytes go."""
        if (
            headers.get("x-goog-upload-protocol") != "resumable"
            or headers.get("x-goog-upload-command") != "start"
        ):
            raise invalid_argument("Expected a resumable upload start (X-Goog-Upload-Command: start).")
        file = body.get("file")
        if not isinstance(file, dict):
            file = {}
        size = (
            file.get("size_bytes")
            or file.get("sizeBytes")
            or headers.get("x-goog-upload-header-content-length")
        )
        try:
            size_bytes = int(str(size))
        except (TypeError, ValueError):
            raise invalid_argument("The upload's size_bytes is missing.", "file.size_bytes") from None
        with self._lock:
            session_id = hashlib.blake2b(
                f"{time.monotonic_ns()}{len(self._sessions)}".encode(), digest_size=8
            ).hexdigest()
            self._sessions[session_id] = _UploadSession(
                display_name=file.get("display_name") or file.get("displayName"),
                mime_type=str(file.get("mime_type") or file.get("mimeType") or "application/octet-stream"),
                size=size_bytes,
            )
        upload_url = f"{self._base_url()}{UPLOAD_SESSION_PREFIX}{session_id}"
        return Reply(200, {}, headers=(("x-goog-upload-url", upload_url), ("x-goog-upload-status", "active")))

    def receive_upload(self, session_id: str, headers: dict[str, str], body: bytes) -> Reply:
        """Take one chunk of an upload at its offset; ``finalize`` stores the file and answers it."""
        command = {part.strip() for part in headers.get("x-goog-upload-command", "").split(",")}
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                raise ApiError(404, "The upload session was not found.")
            if int(headers.get("x-goog-upload-offset") or -1) != len(session.received):
                raise invalid_argument(f"Upload offset must be {len(session.received)}.")
            session.received.extend(body)
            if "finalize" not in command:
                return Reply(200, {}, headers=(("x-goog-upload-status", "active"),))
            del self._sessions[session_id]
            if len(session.received) != session.size:
                raise invalid_argument(
                    f"The upload has {len(session.received)} bytes; {session.size} were announced."
                )
            name = f"files/upload{next(self._ids):04d}"
            file = StoredFile(
                name,
                session.display_name,
                session.mime_type,
                bytes(session.received),
                False,
                timestamp(),
                processing_polls=self.processing_polls,
            )
            self._files[name] = file
        return Reply(
            200, {"file": file.resource(self._base_url())}, headers=(("x-goog-upload-status", "final"),)
        )

    def download(self, resource_id: str) -> Reply:
        """The bytes of the generated file ``files/{resource_id}``."""
        file = self.get(f"files/{resource_id}")
        if file is None:
            raise ApiError(404, f"File files/{resource_id} was not found.")
        if not file.generated:
            raise invalid_argument("Only generated files can be downloaded; uploaded files cannot.")
        return Reply(200, {}, raw=file.data.decode(), content_type="application/octet-stream")
