"""
Where staged data lives: the staging root, one folder per task instance, atomic writes, cleaning.

Every path is an Airflow :class:`~airflow.sdk.ObjectStoragePath`, and every read, write and listing goes
through the filesystem Airflow attaches to it (``path.fs``), so ``file://``, ``s3://``, ``gs://`` and any
other fsspec URL behave alike. Airflow resolves a scheme through the provider that registers it:

- ``file://`` (and a plain absolute path) is built in.
- ``s3://conn_id@bucket/prefix`` needs ``apache-airflow-providers-amazon[s3fs]``; the connection gives the
  credentials and, in its extra, ``endpoint_url`` for an S3-compatible store. ``gs://`` needs the Google
  provider, ``abfs://`` the Microsoft Azure one.
- When no provider registers the scheme, a URL *without* a connection id falls back to fsspec's own
  implementation of it (for ``s3://`` the ``s3fs`` package, configured from the environment:
  ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL``, ...), attached once per process
  with :func:`airflow.sdk.io.attach`. A filesystem attached beforehand with ``attach(protocol, conn_id,
  fs=...)`` is always used as it is.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import os
import re
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import ObjectStoragePath

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping

    from fsspec import AbstractFileSystem

__all__ = [
    "CONFIG_SECTION",
    "DEFAULT_KEEP_DAYS",
    "ACTIVE_RUN_STATES",
    "KEEP_DAYS_OPTION",
    "MARKER_FILE",
    "MIN_KEEP_DAYS",
    "STAGING_URI_OPTION",
    "as_path",
    "atomic_local_file",
    "clean_staging",
    "configured_keep_days",
    "decode_segment",
    "default_staging_uri",
    "filesystem",
    "is_location",
    "is_marked",
    "list_entries",
    "mark_task_folder",
    "staging_root",
    "task_staging_dir",
]

log = logging.getLogger(__name__)

CONFIG_SECTION = "gemini_milvus"
STAGING_URI_OPTION = "staging_uri"
KEEP_DAYS_OPTION = "staging_keep_days"
DEFAULT_KEEP_DAYS = 7.0

#: Prefix of the temporary files of an atomic local write; listings never count them as data.
TEMP_PREFIX = ".tmp-"
#: The file the provider writes into every task instance folder it stages into: cleaning removes only
#: folders that hold it, and a loader follows a manifest only into a folder that holds it.
MARKER_FILE = ".gemini-milvus-staging"
MARKER_TEXT = "written by airflow-provider-gemini-milvus: this folder is removed when it is old\n"
#: The shortest ``staging_keep_days`` accepted: one hour. A load may run well after its embedding task.
MIN_KEEP_DAYS = 1 / 24
#: DAG run states in which a run's staged files may still be read.
ACTIVE_RUN_STATES = frozenset({"queued", "running"})

_LOCAL_PROTOCOLS = frozenset({"", "file", "local"})
_SAFE_CHARACTER = re.compile(r"[A-Za-z0-9._-]")
_ESCAPE = "~"
_ESCAPED_SEGMENT = re.compile(r"(?:[A-Za-z0-9._-]|~[0-9A-F]{2})+")
_SEGMENT_MAX_LENGTH = 100
_SEGMENT_KEPT = 60


def default_staging_uri() -> str:
    """The staging root when nothing is configured: ``file://{AIRFLOW_HOME}/gemini_milvus/staging``."""
    home = os.environ.get("AIRFLOW_HOME") or "~/airflow"
    return Path(os.path.expandvars(home)).expanduser().resolve().joinpath("gemini_milvus", "staging").as_uri()


def _configured(option: str) -> str:
    from airflow.sdk import conf

    value = conf.get(CONFIG_SECTION, option, fallback="")
    return "" if value is None else str(value).strip()


def is_location(text: str) -> bool:
    """
    Whether a rendered string names a location: a URI (``s3://...``, ``file:///...``) or an absolute path,
    and not a template that did not render (``{{ ... }}``).
    """
    return "{{" not in text and ("://" in text or text.startswith("/"))


def as_path(location: str | ObjectStoragePath, *, conn_id: str | None = None) -> ObjectStoragePath:
    """
    Return ``location`` as an :class:`ObjectStoragePath`; local paths become absolute ``file://`` URLs.

    :param location: a URL (``s3://bucket/prefix``, ``s3://conn_id@bucket/prefix``, ``file:///data``), a
        local path, or a path object.
    :param conn_id: the Airflow connection for the store; overrides one given in the URL.
    """
    try:
        path = ObjectStoragePath(location, conn_id=conn_id)
    except ValueError:  # upath knows no such scheme; the message repeats the URL, which may hold a secret
        scheme, separator, _ = str(location).partition("://")
        raise ValueError(
            f"no filesystem for {scheme + separator if separator else 'this location'}: install the "
            "Airflow provider or the fsspec package that serves it"
        ) from None
    if path.protocol in _LOCAL_PROTOCOLS:
        local = Path(path.path).expanduser().resolve()
        # Not ``local.as_uri()``: it percent-encodes the ``:`` and ``+`` of run ids; upath keeps them so.
        path = ObjectStoragePath(f"file://{local.as_posix()}", conn_id=path.conn_id)
    return path


def staging_root(
    override: str | ObjectStoragePath | None = None, *, conn_id: str | None = None
) -> ObjectStoragePath:
    """
    Return the staging root: ``override``, else ``[gemini_milvus] staging_uri``, else the local default.

    The Airflow setting can be given as ``AIRFLOW__GEMINI_MILVUS__STAGING_URI``. The filesystem is resolved
    here (see the module docstring), so a missing provider or package fails before any work is done.

    :param override: a staging URL or path for this operator; None or ``""`` means the configured one.
    :param conn_id: the Airflow connection of the store (same as ``s3://conn_id@bucket/...``).
    :raises ValueError: when no filesystem can serve the URL's scheme.
    """
    location = override if override not in (None, "") else _configured(STAGING_URI_OPTION)
    path = as_path(location or default_staging_uri(), conn_id=conn_id)
    filesystem(path)
    return path


def configured_keep_days() -> float | None:
    """
    Return ``[gemini_milvus] staging_keep_days`` (default 7), or None when it is empty (never clean).

    :raises ValueError: when the setting is not a number of days of at least :data:`MIN_KEEP_DAYS` (one hour).
    """
    raw = _configured(KEEP_DAYS_OPTION) if _has_option(KEEP_DAYS_OPTION) else str(DEFAULT_KEEP_DAYS)
    if not raw:
        return None
    try:
        days = float(raw)
    except ValueError:
        days = math.nan
    if not math.isfinite(days) or days < MIN_KEEP_DAYS:
        raise ValueError(
            f"[{CONFIG_SECTION}] {KEEP_DAYS_OPTION} must be a number of days of at least {MIN_KEEP_DAYS:.4f} "
            f"(one hour: a load may run long after its embedding task; empty: never clean), got {raw!r}"
        )
    return days


def _has_option(option: str) -> bool:
    from airflow.sdk import conf

    return bool(conf.has_option(CONFIG_SECTION, option))


def filesystem(path: ObjectStoragePath) -> AbstractFileSystem:
    """
    Return the fsspec filesystem Airflow attaches to ``path``, falling back to fsspec's own (see above).

    :raises ValueError: when neither Airflow nor fsspec can serve the scheme, or when a connection id is
        given for a scheme no installed provider registers.
    """
    try:
        return path.fs
    except ValueError:
        from airflow.sdk.io import attach, has_fs

        protocol = path.protocol
        if has_fs(protocol):
            raise
        if path.conn_id is not None:
            raise ValueError(
                f"{protocol}:// with connection {path.conn_id!r}: no installed Airflow provider registers "
                f"the {protocol!r} scheme (for s3:// install apache-airflow-providers-amazon[s3fs], for "
                "gs:// apache-airflow-providers-google); without a connection id fsspec's own "
                "implementation is used, configured from the environment"
            ) from None
    import fsspec

    try:
        fs = fsspec.filesystem(protocol)
    except (ImportError, ValueError) as err:
        raise ValueError(
            f"no filesystem for {protocol}://: install the Airflow provider that registers it (for s3:// "
            f"apache-airflow-providers-amazon[s3fs]) or the fsspec package for it ({err})"
        ) from None
    log.info("No Airflow provider registers %s://; using fsspec's %s", protocol, type(fs).__name__)
    # ``path.fs`` above already cached a store for the scheme, without a filesystem: give it this one.
    attach(protocol=protocol).fs = fs
    return path.fs


def is_local(fs: AbstractFileSystem) -> bool:
    """True for the local filesystem, where a rename is atomic."""
    protocols = (fs.protocol,) if isinstance(fs.protocol, str) else tuple(fs.protocol)
    return "file" in protocols


@contextlib.contextmanager
def atomic_local_file(target: ObjectStoragePath) -> Iterator[str]:
    """
    Yield a local file name to write; when the block ends without error its content becomes ``target``.

    On a local filesystem the file is a hidden temporary name beside ``target``, renamed over it in one
    step; on an object store it is a temporary file uploaded with one ``put`` (an object appears whole or
    not at all). A failure, or a crash, never leaves a half-written ``target``.

    :param target: the file to create or replace.
    """
    fs = filesystem(target)
    if is_local(fs):
        directory, name = os.path.split(target.path)
        os.makedirs(directory, exist_ok=True)
        temporary = os.path.join(directory, f"{TEMP_PREFIX}{uuid.uuid4().hex[:8]}-{name}")
        try:
            yield temporary
            os.replace(temporary, target.path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.remove(temporary)
        return
    handle, temporary = tempfile.mkstemp(prefix="gemini-milvus-staging-", suffix=f"-{target.name}")
    os.close(handle)
    try:
        yield temporary
        fs.put_file(temporary, target.path)
    finally:
        os.remove(temporary)


def list_entries(directory: ObjectStoragePath) -> list[dict[str, Any]]:
    """
    Return the fsspec ``ls`` entries (dicts with ``name``, ``type``, ...) of a folder; a missing one is empty.

    Temporary files of unfinished writes are left out. Listings are read fresh, not from fsspec's cache,
    so files another process wrote are seen.
    """
    fs = filesystem(directory)
    fs.invalidate_cache(directory.path)
    try:
        entries = fs.ls(directory.path, detail=True)
    except FileNotFoundError:
        return []
    own = directory.path.rstrip("/")
    return [
        entry
        for entry in entries
        if entry["name"].rstrip("/") != own and not _base_name(entry["name"]).startswith(TEMP_PREFIX)
    ]


def _base_name(name: str) -> str:
    return name.rstrip("/").rsplit("/", 1)[-1]


def _safe_segment(value: Any, what: str) -> str:
    """
    One path segment, made from ``value`` by a reversible escape (see :func:`decode_segment`).

    Letters, digits, ``_``, ``-`` and ``.`` (not leading) stay as they are; every other character becomes
    ``~`` and the two hex digits of each of its UTF-8 bytes (``:`` is ``~3A``, ``~`` itself ``~7E``). Since
    decoding undoes it, two different values never share a segment, and a value that needed no escape can
    never equal the escaped form of another (that one holds a ``~``, which is always escaped). A segment
    longer than 100 characters keeps its first 60 and ``~~`` and 128 bits of a SHA-256 of the value:
    ``~~`` never occurs in an escaped value.
    """
    text = str(value)
    if not text:
        raise ValueError(f"{what} is empty")
    escaped = "".join(
        character
        if _SAFE_CHARACTER.fullmatch(character)
        else "".join(f"{_ESCAPE}{byte:02X}" for byte in character.encode("utf-8", "surrogatepass"))
        for character in text
    )
    if escaped.startswith("."):
        escaped = f"{_ESCAPE}2E{escaped[1:]}"
    if len(escaped) <= _SEGMENT_MAX_LENGTH:
        return escaped
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"{escaped[:_SEGMENT_KEPT]}{_ESCAPE}{_ESCAPE}{digest}"


def decode_segment(segment: str) -> str | None:
    """
    The value a segment of :func:`task_staging_dir` was made from, or None when it was shortened (or is not
    such a segment at all).
    """
    if f"{_ESCAPE}{_ESCAPE}" in segment or not _ESCAPED_SEGMENT.fullmatch(segment):
        return None
    raw = bytearray()
    position = 0
    while position < len(segment):
        if segment[position] == _ESCAPE:
            raw.append(int(segment[position + 1 : position + 3], 16))
            position += 3
        else:
            raw.extend(segment[position].encode("ascii"))
            position += 1
    try:
        return raw.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return None


def task_staging_dir(
    root: str | ObjectStoragePath, *, dag_id: str, run_id: str, task_id: str, map_index: int
) -> ObjectStoragePath:
    """
    Return ``root/dag_id/run_id/task_id/map_index``: the same folder for every try of a task instance.

    Each id is escaped reversibly (``manual__2025-01-01T00:00:00+00:00`` becomes
    ``manual__2025-01-01T00~3A00~3A00~2B00~3A00``; see :func:`decode_segment`), so two different task
    instances never share a folder, whatever their ids.

    :param root: the staging root (see :func:`staging_root`).
    :param dag_id: the DAG id.
    :param run_id: the DAG run id.
    :param task_id: the task id.
    :param map_index: the map index (-1 for a task that is not mapped).
    """
    base = root if isinstance(root, ObjectStoragePath) else as_path(root)
    return (
        base
        / _safe_segment(dag_id, "dag_id")
        / _safe_segment(run_id, "run_id")
        / _safe_segment(task_id, "task_id")
        / str(int(map_index))
    )


def mark_task_folder(folder: ObjectStoragePath) -> None:
    """
    Write the provider's marker (:data:`MARKER_FILE`) into a task instance folder, unless it is there.

    Everything that writes into a task instance folder calls it first: cleaning removes only marked folders
    (so nothing of the user's beside them), and a loader follows a manifest only into a marked one.
    """
    marker = folder / MARKER_FILE
    fs = filesystem(marker)
    if fs.exists(marker.path):
        return
    with atomic_local_file(marker) as local_file, open(local_file, "w", encoding="utf-8") as handle:
        handle.write(MARKER_TEXT)


def is_marked(folder: ObjectStoragePath) -> bool:
    """True when ``folder`` holds the provider's marker (see :func:`mark_task_folder`)."""
    marker = folder / MARKER_FILE
    fs = filesystem(marker)
    fs.invalidate_cache(folder.path)
    return bool(fs.exists(marker.path))


def _modified(entry: Mapping[str, Any]) -> datetime | None:
    """The modification time an fsspec ``info`` entry reports, whatever the filesystem calls it."""
    for key in ("mtime", "LastModified", "last_modified", "updated", "mtime_ns"):
        value = entry.get(key)
        if value is None:
            continue
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=UTC)
        if isinstance(value, (int, float)):
            seconds = value / 1e9 if key == "mtime_ns" else value
            return datetime.fromtimestamp(seconds, tz=UTC)
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
                return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def _newest(fs: AbstractFileSystem, folder: ObjectStoragePath) -> datetime | None:
    """The newest modification time of anything in ``folder`` (itself included where it has one)."""
    fs.invalidate_cache(folder.path)
    found = fs.find(folder.path, withdirs=True, detail=True)
    times = [time for time in map(_modified, found.values()) if time is not None]
    with contextlib.suppress(FileNotFoundError):
        own = _modified(fs.info(folder.path))
        if own is not None:
            times.append(own)
    return max(times, default=None)


def _subfolders(directory: ObjectStoragePath) -> list[ObjectStoragePath]:
    return [
        directory / _base_name(entry["name"])
        for entry in list_entries(directory)
        if entry["type"] == "directory"
    ]


def clean_staging(
    root: str | ObjectStoragePath,
    *,
    keep_days: float,
    now: datetime | None = None,
    exclude: Iterable[str | ObjectStoragePath] = (),
    run_state: Callable[[str, str], str | None] | None = None,
) -> int:
    """
    Remove the task instance folders the provider staged (``root/dag_id/run_id/task_id/map_index``, holding
    :data:`MARKER_FILE`) of the DAG runs whose staged files are all older than ``keep_days``.

    Nothing else under ``root`` is touched: a folder without the marker is never removed, whatever its age
    (``root`` may be a shared folder). A run is judged as a whole: while any of its task folders holds a
    file modified within ``keep_days``, none is removed. A run ``run_state`` reports as queued or running
    is kept too, whatever its age (its load may not have run yet); where the state is unknown (``None``, or
    an id too long to be read back from its folder name) the age alone decides. Emptied folders above a
    removed one go too.

    :param root: the staging root.
    :param keep_days: age in days (fractions allowed, at least :data:`MIN_KEEP_DAYS`) beyond which a run's
        staged folders are removed.
    :param now: the time to measure ages from; default the current UTC time.
    :param exclude: folders never removed, nor any folder of the run holding one of them.
    :param run_state: ``(dag_id, run_id) -> state`` (e.g. ``"running"``, ``"success"``) or None if unknown.
    :return: how many runs' folders were removed.
    """
    if not math.isfinite(keep_days) or keep_days < MIN_KEEP_DAYS:
        raise ValueError(
            f"keep_days must be a number of days of at least {MIN_KEEP_DAYS:.4f} (one hour), "
            f"got {keep_days!r}"
        )
    base = root if isinstance(root, ObjectStoragePath) else as_path(root)
    fs = filesystem(base)
    cutoff = (now or datetime.now(UTC)) - timedelta(days=keep_days)
    if cutoff.tzinfo is None:
        cutoff = cutoff.replace(tzinfo=UTC)
    protected = [
        str(item if isinstance(item, ObjectStoragePath) else as_path(item)).rstrip("/") for item in exclude
    ]
    removed = 0
    for dag_folder in _subfolders(base):
        for run_folder in _subfolders(dag_folder):
            run = str(run_folder).rstrip("/")
            if any(item == run or item.startswith(run + "/") for item in protected):
                continue
            staged = [
                task_folder
                for task_id_folder in _subfolders(run_folder)
                for task_folder in _subfolders(task_id_folder)
                if is_marked(task_folder)
            ]
            if not staged:
                continue  # not the provider's: never touched
            times = [time for time in (_newest(fs, folder) for folder in staged) if time is not None]
            if len(times) < len(staged) or max(times) >= cutoff:
                continue
            state = _state(run_state, dag_folder.name, run_folder.name)
            if state in ACTIVE_RUN_STATES:
                log.info("Keeping staged folders of %s: the DAG run is %s", run_folder, state)
                continue
            for task_folder in staged:
                fs.rm(task_folder.path, recursive=True)
            task_id_folders = list(dict.fromkeys(task_folder.parent for task_folder in staged))
            for folder in [*task_id_folders, run_folder, dag_folder]:  # the deepest first
                _remove_if_empty(fs, folder)
            removed += 1
            log.info(
                "Removed %d staged task folders of %s (newest file %s)",
                len(staged),
                run_folder,
                max(times).isoformat(),
            )
    return removed


def _state(
    run_state: Callable[[str, str], str | None] | None, dag_segment: str, run_segment: str
) -> str | None:
    if run_state is None:
        return None
    dag_id, run_id = decode_segment(dag_segment), decode_segment(run_segment)
    if dag_id is None or run_id is None:
        return None
    state = run_state(dag_id, run_id)
    return None if state is None else str(state).lower()


def _remove_if_empty(fs: AbstractFileSystem, folder: ObjectStoragePath) -> None:
    """Remove ``folder`` when nothing is left in it (object stores have no empty folders to remove)."""
    fs.invalidate_cache(folder.path)
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        if fs.ls(folder.path):
            return
    with contextlib.suppress(OSError, NotImplementedError):
        fs.rmdir(folder.path)
