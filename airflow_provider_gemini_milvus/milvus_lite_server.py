"""
The in-process Milvus Lite server behind a ``.db`` file: releasing its file lock, and its quirks.

Milvus Lite runs a server inside the task's process and keeps a lock on its ``.db`` folder while that server
runs, even after the client is closed. Everything here is a no-op for a Milvus server.
"""

from __future__ import annotations

import logging

__all__ = ["lite_has_faiss", "quiet_lite_unimplemented_rpc_errors", "release_lite_server"]


def release_lite_server(path: str) -> None:
    """
    Stop the in-process Milvus Lite server for ``path``, which releases its file lock (no-op if none).

    :param path: the absolute path of the ``.db`` file.
    """
    from milvus_lite.server_manager import server_manager_instance

    server_manager_instance.release_server(path)


def lite_has_faiss() -> bool:
    """True when Milvus Lite can build faiss-backed indexes (``faiss-cpu`` is installed)."""
    try:
        from milvus_lite.index import is_faiss_available
    except ImportError:
        return False
    return bool(is_faiss_available())


class _LiteUnimplementedRpcFilter(logging.Filter):
    """
    Drop gRPC's report of an RPC that Milvus Lite does not implement.

    pymilvus calls ``AllocTimestamp`` while creating a collection and ignores the failure, but the
    in-process Lite server logs it at ERROR with a traceback, which reads like a failed task.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not (isinstance(error, NotImplementedError) and "Method not implemented" in str(error))


def quiet_lite_unimplemented_rpc_errors() -> None:
    """Install :class:`_LiteUnimplementedRpcFilter` on gRPC's server log, once."""
    grpc_server_log = logging.getLogger("grpc._server")
    if not any(isinstance(existing, _LiteUnimplementedRpcFilter) for existing in grpc_server_log.filters):
        grpc_server_log.addFilter(_LiteUnimplementedRpcFilter())
