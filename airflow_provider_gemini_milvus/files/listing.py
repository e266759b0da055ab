"""
The files under a location, one at a time: each a :class:`SourceFile` with a stable ``source_id`` (its
URI), its size, its format (by suffix) and, when asked, a streamed SHA-256 of its bytes.

A location is an :class:`~airflow.sdk.ObjectStoragePath` or its URI (``s3://bucket/handbook/``,
``file:///data/docs``, an absolute local path): one file, or a folder read recursively in path order. Only
names and sizes are listed; no file is read until its hash or its text is asked for, so a 10 GB folder
never sits in memory. Files of a type no loader reads are listed too, with the reason they are skipped:
nothing is left out silently.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_gemini_milvus.files.formats import format_of, skip_reason

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow.sdk import ObjectStoragePath

__all__ = ["HASH_BLOCK_BYTES", "SourceFile", "iter_files", "open_location", "source_id_of"]

#: How much of a file is read at a time while it is hashed.
HASH_BLOCK_BYTES = 1 << 20


@dataclass(frozen=True)
class SourceFile:
    """
    One file found under a location.

    :param source_id: the file's URI (``s3://bucket/handbook/a.md``, ``file:///data/a.md``), without any
        connection id: stable across runs and connections, stored in each chunk's metadata.
    :param path: the file, to read it.
    :param size: its size in bytes, from the listing.
    :param format: what its loader reads it as (``text``, ``markdown``, ``html``, ``pdf``, ``docx``,
        ``pptx``), or None when it is skipped.
    :param skip_reason: why the file is not loaded (an unsupported type), or None.
    """

    source_id: str
    path: ObjectStoragePath
    size: int
    format: str | None
    skip_reason: str | None = None

    @property
    def skipped(self) -> bool:
        """Whether no loader reads this file (see :attr:`skip_reason`)."""
        return self.skip_reason is not None

    def content_hash(self) -> str:
        """
        Return the SHA-256 hex digest of the file's bytes, read in blocks of :data:`HASH_BLOCK_BYTES`.

        Compare it with the hash stored for ``source_id`` before loading: an unchanged file is not parsed.
        """
        digest = hashlib.sha256()
        with self.path.open("rb") as handle:
            while block := handle.read(HASH_BLOCK_BYTES):
                digest.update(block)
        return digest.hexdigest()

    def read_bytes(self) -> bytes:
        """Return the file's bytes (one file at a time is read whole, to parse it)."""
        with self.path.open("rb") as handle:
            data: bytes = handle.read()
        return data


def source_id_of(path: ObjectStoragePath) -> str:
    """
    Return the stable URI of ``path``: ``<protocol>://<path>``, without the connection id a URL may carry.

    :param path: a file in object storage or on the local disk.
    """
    protocol = path.protocol or "file"
    if protocol == "local":
        protocol = "file"
    inner = path.path
    if protocol == "file" and not inner.startswith("/"):
        inner = "/" + inner
    return f"{protocol}://{inner}"


def open_location(
    location: str | os.PathLike[str] | ObjectStoragePath, *, conn_id: str | None = None
) -> ObjectStoragePath:
    """
    Return ``location`` as a path whose filesystem is resolved, or raise ``ValueError`` saying why not.

    :param location: a URI (``s3://bucket/prefix/``, ``file:///data``), an absolute local path, or a path.
    :param conn_id: the Airflow connection of the store (same as ``s3://conn_id@bucket/...``).
    """
    from airflow.sdk import ObjectStoragePath

    from airflow_provider_gemini_milvus.staging.storage import as_path, filesystem, is_location

    if isinstance(location, os.PathLike) and not isinstance(location, ObjectStoragePath):
        location = os.fspath(location)
    if isinstance(location, str):
        text = location.strip()
        if not is_location(text):
            raise ValueError(
                "a files location must be a URI (s3://bucket/folder/, file:///data) or an absolute path, "
                f"got {text[:80]!r} (a template that did not render?)"
            )
        location = as_path(text, conn_id=conn_id)
    elif not isinstance(location, ObjectStoragePath):
        raise ValueError(
            f"a files location must be a URI or an ObjectStoragePath, got {type(location).__name__}"
        )
    elif location.protocol in ("", "file", "local"):
        location = as_path(location, conn_id=conn_id)
    filesystem(location)
    return location


def iter_files(
    location: str | os.PathLike[str] | ObjectStoragePath, *, conn_id: str | None = None
) -> Iterator[SourceFile]:
    """
    Yield the files at ``location`` in path order: the file itself, or every file under the folder.

    Hidden files and folders (a name starting with ``.``) are left out. Only the listing (names and sizes)
    is held, never the files' contents.

    :param location: a URI, an absolute local path or an :class:`~airflow.sdk.ObjectStoragePath`.
    :param conn_id: the Airflow connection of the store.
    :raises ValueError: when the location does not exist or no filesystem serves it.
    """
    from airflow_provider_gemini_milvus.staging.storage import filesystem

    root = open_location(location, conn_id=conn_id)
    fs = filesystem(root)
    fs.invalidate_cache(root.path)
    root_path = root.path.rstrip("/")
    try:
        info: dict[str, Any] = fs.info(root_path)
    except FileNotFoundError:
        info = {}
    if info.get("type") == "file":
        yield _source_file(root, root_path, info)
        return
    found: dict[str, dict[str, Any]] = fs.find(root_path, detail=True)
    if not found and not info:
        raise ValueError(f"files location {source_id_of(root)} does not exist")
    for name in sorted(found):
        entry = found[name]
        relative = name[len(root_path) :].lstrip("/") if name.startswith(root_path) else name
        if entry.get("type", "file") != "file" or any(part.startswith(".") for part in relative.split("/")):
            continue
        yield _source_file(root, name, entry)


def _source_file(root: ObjectStoragePath, name: str, entry: dict[str, Any]) -> SourceFile:
    from airflow.sdk import ObjectStoragePath

    protocol = root.protocol or "file"
    uri = (
        f"{protocol}://{name}"
        if protocol != "file"
        else f"file://{'/' if not name.startswith('/') else ''}{name}"
    )
    path = ObjectStoragePath(uri, conn_id=root.conn_id)
    size = int(entry.get("size") or 0)
    file_name = name.rsplit("/", 1)[-1]
    return SourceFile(
        source_id=source_id_of(path),
        path=path,
        size=size,
        format=format_of(file_name),
        skip_reason=skip_reason(file_name),
    )
