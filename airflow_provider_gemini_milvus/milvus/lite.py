"""
The in-process Milvus Lite server behind a ``.db`` file: its package, file lock, load state and quirks.

Milvus Lite runs a server inside the task's process and keeps a lock on its ``.db`` folder while that server
runs, even after the client is closed. It serves one process per file, and it forgets which collections
were loaded when the file is reopened. Nothing here is used for a Milvus server.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_gemini_milvus.exceptions import GeminiMilvusProviderError
from airflow_provider_gemini_milvus.milvus.layout import type_name

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_gemini_milvus.utils.logs import TaskLogger

__all__ = [
    "LITE_INSTALL_COMMAND",
    "deleted_count",
    "lite_file_locked",
    "lite_has_faiss",
    "load_released_collections",
    "open_lite_client",
    "open_waiting_for_lock",
    "quiet_lite_noise",
    "release_lite_server",
    "require_milvus_lite",
]

LITE_INSTALL_COMMAND = 'pip install "pymilvus[milvus-lite]"'
_LOCK_FILE = "LOCK"
_FIRST_LOCK_RETRY_SECONDS = 0.5
#: Where pymilvus logs a failed ``MilvusClient`` connection.
_PYMILVUS_CONNECT_LOGGER = "pymilvus.milvus_client._utils"
_LONGEST_LOCK_RETRY_SECONDS = 5.0


def open_lite_client(
    client_kwargs: Mapping[str, Any], conn_id: str, *, max_wait: float, log: TaskLogger
) -> tuple[Any, list[str]]:
    """
    Open a Milvus Lite file the way a task needs it; return the ``MilvusClient`` and the collections loaded.

    Checks that Milvus Lite is installed, creates the parent folder, quiets Lite's misleading tracebacks,
    waits for another process's lock (:func:`open_waiting_for_lock`), then loads what Lite released on
    reopening the file (:func:`load_released_collections`).

    :param client_kwargs: the ``MilvusClient`` arguments; ``uri`` is the absolute path of the ``.db`` file.
    :param conn_id: the connection id, for messages.
    :param max_wait: seconds to wait for another process's lock.
    :param log: where to log.
    """
    from pymilvus import MilvusClient

    path = str(client_kwargs["uri"])
    require_milvus_lite(path, conn_id)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    quiet_lite_noise()
    client = open_waiting_for_lock(lambda: MilvusClient(**client_kwargs), path, max_wait, log)
    try:
        return client, load_released_collections(client, client_kwargs.get("timeout"), log)
    except BaseException:
        client.close()
        release_lite_server(path)
        raise


def require_milvus_lite(path: str, conn_id: str) -> None:
    """
    Raise a clear error naming the package to install when Milvus Lite is not importable.

    :param path: the ``.db`` file the connection points at.
    :param conn_id: the connection id, for the message.
    """
    try:
        import milvus_lite.server_manager  # noqa: F401
    except ImportError:
        raise GeminiMilvusProviderError(
            f"Milvus connection {conn_id!r} points at the Milvus Lite file {path} (an empty URI means a "
            f"Milvus Lite file under $AIRFLOW_HOME), but Milvus Lite is not installed. Install it with: "
            f"{LITE_INSTALL_COMMAND}, or set the connection's URI to a Milvus server."
        ) from None


def release_lite_server(path: str) -> None:
    """
    Stop the in-process Milvus Lite server for ``path``, which releases its file lock (no-op if none).

    :param path: the absolute path of the ``.db`` file.
    """
    from milvus_lite.server_manager import server_manager_instance

    server_manager_instance.release_server(path)


def lite_file_locked(path: str) -> bool:
    """
    True when a process holds the lock of the Milvus Lite file at ``path`` (Milvus Lite's ``flock``).

    Call it only when this process has no server open on ``path``: a lock held by this process counts too.

    :param path: the absolute path of the ``.db`` file (a folder).
    """
    import fcntl

    try:
        descriptor = os.open(os.path.join(path, _LOCK_FILE), os.O_RDWR)
    except OSError:  # no lock file yet: nobody has opened the file
        return False
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(descriptor)  # closing the descriptor drops a lock this probe took
    return False


def open_waiting_for_lock(open_client: Callable[[], Any], path: str, max_wait: float, log: TaskLogger) -> Any:
    """
    Open a Milvus Lite file, waiting with bounded backoff while another process holds it.

    Two tasks writing the same file at once (LocalExecutor, ``airflow standalone``) would otherwise fail one
    of them with ``DataDirLockedError``. Lite tasks are short, so waiting a minute usually lets the second
    one run. Each wait is logged; when ``max_wait`` runs out the lock error is raised.

    :param open_client: makes the client (``MilvusClient(...)``); called again after each wait.
    :param path: the absolute path of the ``.db`` file.
    :param max_wait: seconds to wait in total for the lock (the connection extra ``lite_lock_wait``).
    :param log: where to log the waits.
    :raises GeminiMilvusProviderError: when the file stays locked for ``max_wait`` seconds.
    :raises Exception: whatever ``open_client`` raised when the file is not locked.
    """
    started = time.monotonic()
    delay = _FIRST_LOCK_RETRY_SECONDS
    while True:
        try:
            with _quiet_connect_errors_while_locked(path):
                return open_client()
        except Exception:
            release_lite_server(path)
            if not lite_file_locked(path):
                raise
        waited = time.monotonic() - started
        if waited >= max_wait:
            raise GeminiMilvusProviderError(
                f"Milvus Lite file {path} is locked by another process (DataDirLockedError), which did not "
                f"release it within {max_wait:g} s. Milvus Lite lets one process open a .db file at a time: "
                "run the tasks that share it one at a time (for example in a pool of size 1), raise the "
                "connection extra lite_lock_wait, or use a Milvus server."
            ) from None
        pause = min(delay, max_wait - waited)
        log.warning(
            "Milvus Lite file %s is locked by another process; retrying in %.1f s (waited %.1f of %g s)",
            path,
            pause,
            waited,
            max_wait,
        )
        time.sleep(pause)
        delay = min(delay * 2, _LONGEST_LOCK_RETRY_SECONDS)


@contextlib.contextmanager
def _quiet_connect_errors_while_locked(path: str) -> Iterator[None]:
    """
    Drop pymilvus' "Failed to create new connection" ERROR (pymilvus 2.6 logs one per attempt) while another
    process holds the file: the wait is logged as a warning instead, and a real failure is still raised.
    """

    def keep(record: logging.LogRecord) -> bool:
        return not (str(record.msg).startswith("Failed to create new connection") and lite_file_locked(path))

    logger = logging.getLogger(_PYMILVUS_CONNECT_LOGGER)
    logger.addFilter(keep)
    try:
        yield
    finally:
        logger.removeFilter(keep)


def load_released_collections(client: Any, timeout: float | None, log: TaskLogger) -> list[str]:
    """
    Load every collection Milvus Lite reopened as released; return the names of the collections now loaded.

    A Milvus server keeps a loaded collection loaded; Milvus Lite forgets the load state whenever the file
    is reopened, so a raw-client ``search`` or ``query`` in the next task would fail with "call load()".
    A collection that cannot be loaded (for example a faiss index without ``faiss-cpu``) is logged and left
    released.

    :param client: a ``MilvusClient`` on the Lite file.
    :param timeout: seconds per call, or None.
    :param log: where to log.
    """
    loaded: list[str] = []
    reloaded = 0
    for name in client.list_collections(timeout=timeout):
        state = type_name(client.get_load_state(name, timeout=timeout).get("state"))
        if state != "LOADED":
            try:
                client.load_collection(name, timeout=timeout)
            except Exception as err:
                log.warning("Could not load Milvus Lite collection %s: %s", name, type(err).__name__)
                continue
            reloaded += 1
        loaded.append(name)
    if reloaded:
        log.info("Loaded %s collection(s) Milvus Lite had released when the file was reopened", reloaded)
    return loaded


def deleted_count(result: Any, requested: int) -> int:
    """
    The count ``delete`` reports: ``{"delete_count": n}`` on a server, the list of requested keys on Lite.

    :param result: what ``MilvusClient.delete`` returned.
    :param requested: how many ids were sent.
    """
    if isinstance(result, Mapping):
        return int(result.get("delete_count", requested))
    if isinstance(result, Sequence) and not isinstance(result, (str, bytes)):
        return len(result)
    return requested


def lite_has_faiss() -> bool:
    """True when Milvus Lite can build faiss-backed indexes (``faiss-cpu`` is installed)."""
    try:
        from milvus_lite.index import is_faiss_available
    except ImportError:
        return False
    return bool(is_faiss_available())


class _LiteNoiseFilter(logging.Filter):
    """
    Drop two ERROR tracebacks of Milvus Lite that read like a failed task but are not.

    pymilvus calls ``AllocTimestamp`` while creating a collection and ignores the failure, but the
    in-process Lite server logs it with a traceback; and Milvus Lite logs ``DataDirLockedError`` with a
    traceback each time a file is locked, which :func:`open_waiting_for_lock` reports itself.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, NotImplementedError) and "Method not implemented" in str(error):
            return False
        return type(error).__name__ != "DataDirLockedError"


def quiet_lite_noise() -> None:
    """Install :class:`_LiteNoiseFilter` on gRPC's server log and Milvus Lite's server manager log, once."""
    for name in ("grpc._server", "milvus_lite.server_manager"):
        logger = logging.getLogger(name)
        if not any(isinstance(existing, _LiteNoiseFilter) for existing in logger.filters):
            logger.addFilter(_LiteNoiseFilter())
