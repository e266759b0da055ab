"""
Hook for Milvus: a Milvus server, Zilliz Cloud, or a local Milvus Lite ``.db`` file.

The collection layout lives in :mod:`~airflow_provider_gemini_milvus.milvus_layout`, the row contract in
:mod:`~airflow_provider_gemini_milvus.milvus_rows` and the connection parsing in
:mod:`~airflow_provider_gemini_milvus.milvus_uri`; this module holds the hook that talks to Milvus.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

from airflow_provider_gemini_milvus.connection_extras import MILVUS_EXTRA_FIELDS, ConnectionExtras
from airflow_provider_gemini_milvus.exceptions import GeminiMilvusProviderError
from airflow_provider_gemini_milvus.milvus_layout import (
    FIELD_CONTENT_HASH,
    FIELD_ID,
    FIELD_METADATA,
    FIELD_MODEL,
    FIELD_TEXT,
    FIELD_VECTOR,
    LITE_FAISS_INDEX_TYPES,
    LITE_INDEX_TYPES,
    MAX_DIM,
    METRIC_TYPES,
    TEXT_MAX_LENGTH,
    CollectionInfo,
    build_schema,
    check_collection_matches,
    type_name,
)
from airflow_provider_gemini_milvus.milvus_lite_server import (
    lite_has_faiss,
    quiet_lite_unimplemented_rpc_errors,
    release_lite_server,
)
from airflow_provider_gemini_milvus.milvus_rows import (
    WRITE_MODES,
    chunked,
    ids_in_filter,
    milvus_string_literal,
)
from airflow_provider_gemini_milvus.milvus_uri import build_client_kwargs, is_lite_uri

if TYPE_CHECKING:
    from types import TracebackType

    from airflow.sdk import Connection
    from pymilvus import MilvusClient

__all__ = ["MilvusHook", "WriteResult"]

ID_QUERY_BATCH = 1000
"""Ids per ``id in [...]`` query or delete."""
LIST_IDS_PAGE = 1000
_STRONG = "Strong"


@dataclass(frozen=True)
class WriteResult:
    """
    Outcome of :meth:`MilvusHook.write_batches`.

    :param collection: collection written to.
    :param mode: ``upsert`` or ``insert``.
    :param written: rows sent and acknowledged.
    :param batches: requests made.
    :param seconds: wall time of the writes and the final flush.
    """

    collection: str
    mode: str
    written: int
    batches: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dict."""
        return asdict(self)


def _deleted_count(result: Any, requested: int) -> int:
    """Count from ``delete``: a dict ``{"delete_count": n}`` on a server, a list of keys on Milvus Lite."""
    if isinstance(result, Mapping):
        return int(result.get("delete_count", requested))
    if isinstance(result, Sequence) and not isinstance(result, (str, bytes)):
        return len(result)
    return requested


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class MilvusHook(BaseHook):
    """
    Talk to Milvus through a cached ``pymilvus.MilvusClient`` built from an Airflow connection.

    Connection fields: **host** is the URI (``http(s)://host:port`` for a server or Zilliz Cloud, or a
    local ``*.db`` path for Milvus Lite, whose parent folder is created if missing); **password** is the
    token, or with **login** the password of ``user:password``; **schema** is the database name; extras
    ``timeout`` (seconds, per call) and ``secure`` (TLS). With no host the hook uses a Milvus Lite file at
    ``$AIRFLOW_HOME/milvus_lite/milvus.db``.

    Milvus Lite keeps a lock on its ``.db`` folder while its in-process server runs, even after the client
    is closed. :meth:`close` stops that server, so the next task in the same process, or another process,
    can open the file. Milvus Lite serves one process per file: run tasks that share a ``.db`` one at a
    time (for example with a pool of size 1), and do not close a hook while another hook in the same
    process still uses the same file.

    The hook is also a context manager: ``with MilvusHook() as hook: ...`` closes it on exit.

    .. seealso:: https://milvus.io/docs/quickstart.md

    :param milvus_conn_id: the Airflow connection id.
    """

    conn_name_attr = "milvus_conn_id"
    default_conn_name = "milvus_default"
    conn_type = "milvus"
    hook_name = "Milvus"

    def __init__(self, milvus_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.milvus_conn_id = milvus_conn_id
        self._client: MilvusClient | None = None
        self._loaded: set[str] = set()

    # -- connection --------------------------------------------------------------------------------

    @cached_property
    def _connection(self) -> Connection:
        return self.get_connection(self.milvus_conn_id)

    @cached_property
    def _extras(self) -> ConnectionExtras:
        return ConnectionExtras(
            self.conn_type, MILVUS_EXTRA_FIELDS, self._connection.extra_dejson, conn_id=self.milvus_conn_id
        )

    @cached_property
    def client_kwargs(self) -> dict[str, Any]:
        """``MilvusClient`` keyword arguments built from the connection (holds the token: never log it)."""
        conn = self._connection
        return build_client_kwargs(
            host=conn.host,
            login=conn.login,
            password=conn.password,
            schema=conn.schema,
            port=conn.port,
            extra=self._extras,
            conn_id=self.milvus_conn_id,
        )

    @property
    def lite_lock_wait(self) -> float:
        """Seconds to wait for another process to release a Milvus Lite file (extra ``lite_lock_wait``)."""
        return self._extras.number("lite_lock_wait") or 0.0

    @property
    def uri(self) -> str:
        """The resolved URI (a server address without credentials, or the absolute Milvus Lite path)."""
        return str(self.client_kwargs["uri"])

    @property
    def is_lite(self) -> bool:
        """True when the connection points at a local Milvus Lite ``.db`` file."""
        return is_lite_uri(self.uri)

    @property
    def timeout(self) -> float | None:
        """Per-call timeout in seconds from the connection's ``timeout`` extra, or None."""
        value = self.client_kwargs.get("timeout")
        return None if value is None else float(value)

    def get_conn(self) -> MilvusClient:
        """Return the cached ``MilvusClient``, connecting (or starting Milvus Lite) on first use."""
        if self._client is not None:
            return self._client
        from pymilvus import MilvusClient

        kwargs = dict(self.client_kwargs)
        if self.is_lite:
            os.makedirs(os.path.dirname(self.uri), exist_ok=True)
            quiet_lite_unimplemented_rpc_errors()
        self.log.info("Connecting to Milvus%s at %s", " Lite" if self.is_lite else "", self.uri)
        try:
            self._client = MilvusClient(**kwargs)
        except Exception as err:
            hint = ""
            if self.is_lite:
                release_lite_server(self.uri)
                hint = " Milvus Lite lets one process open a .db file at a time: another process may hold it."
            raise GeminiMilvusProviderError(
                f"Could not open Milvus at {self.uri} (connection {self.milvus_conn_id!r}): "
                f"{self._redact(str(err))}.{hint}"
            ) from err
        return self._client

    def close(self) -> None:
        """Close the client and, for Milvus Lite, stop the in-process server so its file lock is released."""
        client, self._client = self._client, None
        self._loaded.clear()
        if client is None:
            return
        try:
            client.close()
        finally:
            if self.is_lite:
                release_lite_server(self.uri)
                self.log.info("Released Milvus Lite file %s", self.uri)

    def __enter__(self) -> MilvusHook:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def test_connection(self) -> tuple[bool, str]:
        """Connect and list collections; return ``(ok, message)``."""
        try:
            names = self.get_conn().list_collections(timeout=self.timeout)
        except Exception as err:
            return False, f"Could not list collections at {self._safe_uri()}: {self._safe_message(err)}"
        finally:
            self.close()
        return True, f"Connected to Milvus at {self.uri}: {len(names)} collection(s)."

    def _redact(self, text: str) -> str:
        """Remove the token, and the password inside it, from a message."""
        token = str(self.client_kwargs.get("token") or "")
        for secret in (token, token.partition(":")[2]):
            if len(secret) >= 4:
                text = text.replace(secret, "***")
        return text

    def _safe_message(self, err: BaseException) -> str:
        try:
            return self._redact(str(err))
        except Exception:
            return type(err).__name__

    def _safe_uri(self) -> str:
        try:
            return self.uri
        except Exception:
            return f"connection {self.milvus_conn_id!r}"

    # -- collections -------------------------------------------------------------------------------

    def has_collection(self, name: str) -> bool:
        """
        Return True if the collection (or an alias of that name) exists.

        :param name: collection name.
        """
        return bool(self.get_conn().has_collection(name, timeout=self.timeout))

    def describe(self, name: str) -> CollectionInfo | None:
        """
        Describe a collection's vector dimension, metric and field limits, or return None if it is missing.

        :param name: collection name.
        """
        client = self.get_conn()
        if not client.has_collection(name, timeout=self.timeout):
            return None
        description = client.describe_collection(name, timeout=self.timeout)
        fields = {field["name"]: field for field in description.get("fields", [])}
        field_types = {field_name: type_name(field.get("type")) for field_name, field in fields.items()}

        def param(field_name: str, key: str, expected_type: str) -> int | None:
            field = fields.get(field_name)
            if field is None or field_types[field_name] != expected_type:
                return None
            return _int_or_none(field.get("params", {}).get(key))

        metric_type = index_type = None
        if FIELD_VECTOR in fields:
            index_names = client.list_indexes(name, field_name=FIELD_VECTOR, timeout=self.timeout)
            if index_names:
                index = client.describe_index(name, index_names[0], timeout=self.timeout) or {}
                metric_type = str(index["metric_type"]).upper() if index.get("metric_type") else None
                index_type = str(index["index_type"]).upper() if index.get("index_type") else None
        return CollectionInfo(
            name=name,
            dim=param(FIELD_VECTOR, "dim", "FLOAT_VECTOR"),
            metric_type=metric_type,
            index_type=index_type,
            id_max_length=param(FIELD_ID, "max_length", "VARCHAR"),
            text_max_length=param(FIELD_TEXT, "max_length", "VARCHAR"),
            field_types=field_types,
        )

    def check_index_choice(self, metric_type: str, index_type: str) -> tuple[str, str]:
        """
        Validate a metric and index type for this connection and return them upper-cased.

        :param metric_type: COSINE, L2 or IP.
        :param index_type: any Milvus index type on a server; on Milvus Lite one of :data:`LITE_INDEX_TYPES`.
        :raises ValueError: for an unknown metric, or an index type Milvus Lite cannot build.
        """
        metric = str(metric_type).upper()
        if metric not in METRIC_TYPES:
            raise ValueError(f"unknown metric_type {metric_type!r}; use one of {sorted(METRIC_TYPES)}")
        index = str(index_type).upper()
        if self.is_lite:
            if index not in LITE_INDEX_TYPES:
                raise ValueError(
                    f"Milvus Lite ({self.uri}) cannot build index_type {index_type!r}; use one of "
                    f"{sorted(LITE_INDEX_TYPES)}, or a Milvus server"
                )
            if index in LITE_FAISS_INDEX_TYPES and not lite_has_faiss():
                raise ValueError(f"Milvus Lite needs faiss-cpu installed to build index_type {index}")
        return metric, index

    def ensure_collection(
        self,
        name: str,
        dim: int,
        *,
        metric_type: str = "COSINE",
        index_type: str = "AUTOINDEX",
        index_params: Mapping[str, Any] | None = None,
        text_max_length: int = TEXT_MAX_LENGTH,
    ) -> bool:
        """
        Create the collection if it is missing, or check that the existing one fits; make sure it is loaded.

        The schema: VARCHAR primary key ``id`` (512), FLOAT_VECTOR ``vector`` (``dim``), VARCHAR ``text``
        (``text_max_length``), VARCHAR ``content_hash`` (64), VARCHAR ``model`` (256), JSON ``metadata``,
        dynamic fields on; one vector index on ``vector``.

        :param name: collection name.
        :param dim: vector dimension, 1 to 32,768.
        :param metric_type: COSINE, L2 or IP.
        :param index_type: vector index type; on Milvus Lite one of :data:`LITE_INDEX_TYPES`.
        :param index_params: index build parameters, e.g. ``{"M": 16, "efConstruction": 200}`` for HNSW.
        :param text_max_length: ``max_length`` of ``text`` in bytes, 1 to 65,535 (new collections only).
        :raises MilvusCollectionMismatchError: if the existing collection has another dim, metric or fields.
        :raises ValueError: for bad arguments, before anything is created.
        :return: True if the collection was created.
        """
        metric, index = self.check_index_choice(metric_type, index_type)
        if isinstance(dim, bool) or not isinstance(dim, int) or not 1 <= dim <= MAX_DIM:
            raise ValueError(f"dim must be an integer from 1 to {MAX_DIM}, got {dim!r}")
        if not 1 <= text_max_length <= TEXT_MAX_LENGTH:
            raise ValueError(f"text_max_length must be from 1 to {TEXT_MAX_LENGTH}, got {text_max_length}")
        info = self.describe(name)
        if info is not None:
            check_collection_matches(info, dim=dim, metric_type=metric)
            if info.metric_type is None:
                self._create_vector_index(name, metric, index, index_params)
            self.ensure_loaded(name)
            return False
        client = self.get_conn()
        try:
            client.create_collection(
                name,
                schema=build_schema(dim, text_max_length),
                index_params=self._index_params(metric, index, index_params),
                timeout=self.timeout,
            )
        except Exception as err:
            raced = self.describe(name) if "already exists" in str(err) else None
            if raced is None:
                raise
            # Another task created it between describe and create: check it like any existing collection.
            check_collection_matches(raced, dim=dim, metric_type=metric)
            self.ensure_loaded(name)
            return False
        self.log.info(
            "Created collection %s (dim %s, metric %s, index %s) at %s", name, dim, metric, index, self.uri
        )
        self.ensure_loaded(name)
        return True

    def _index_params(self, metric: str, index: str, params: Mapping[str, Any] | None) -> Any:
        index_params = self.get_conn().prepare_index_params()
        index_params.add_index(
            field_name=FIELD_VECTOR, index_type=index, metric_type=metric, params=dict(params or {})
        )
        return index_params

    def _create_vector_index(
        self, name: str, metric: str, index: str, params: Mapping[str, Any] | None
    ) -> None:
        self.log.info("Collection %s has no vector index: creating %s (%s)", name, index, metric)
        self.get_conn().create_index(name, self._index_params(metric, index, params), timeout=self.timeout)

    def ensure_loaded(self, name: str) -> None:
        """
        Load the collection unless it already is (Milvus Lite forgets the load state when it restarts).

        :param name: collection name.
        """
        if name in self._loaded:
            return
        client = self.get_conn()
        state = client.get_load_state(name, timeout=self.timeout).get("state")
        if type_name(state) != "LOADED":
            self.log.info("Loading collection %s", name)
            client.load_collection(name, timeout=self.timeout)
        self._loaded.add(name)

    def has_partition(self, collection: str, partition: str) -> bool:
        """
        Return True if the partition exists.

        :param collection: collection name.
        :param partition: partition name.
        """
        return bool(self.get_conn().has_partition(collection, partition, timeout=self.timeout))

    def ensure_partition(self, collection: str, partition: str) -> bool:
        """
        Create the partition if it is missing; return True if it was created.

        :param collection: collection name.
        :param partition: partition name.
        """
        if self.has_partition(collection, partition):
            return False
        self.get_conn().create_partition(collection, partition, timeout=self.timeout)
        self.log.info("Created partition %s in collection %s", partition, collection)
        return True

    # -- reads -------------------------------------------------------------------------------------

    def _query_by_ids(self, collection: str, ids: Sequence[str], output_fields: list[str]) -> list[dict]:
        """Rows whose id is in ``ids``, :data:`ID_QUERY_BATCH` ids per query, with Strong consistency."""
        self.ensure_loaded(collection)
        client = self.get_conn()
        found: list[dict] = []
        for batch in chunked(list(dict.fromkeys(ids)), ID_QUERY_BATCH):
            found.extend(
                client.query(
                    collection,
                    filter=ids_in_filter(batch),
                    output_fields=output_fields,
                    consistency_level=_STRONG,
                    timeout=self.timeout,
                )
            )
        return found

    def fetch_fingerprints(self, collection: str, ids: Sequence[str]) -> dict[str, tuple[str, str]]:
        """
        Return ``{id: (content_hash, model)}`` for those ids that exist; ``{}`` if the collection is missing.

        Used to re-embed only texts whose hash or model changed.

        :param collection: collection name.
        :param ids: primary keys to look up (any characters, quotes and backslashes included).
        """
        if not ids or not self.has_collection(collection):
            return {}
        rows = self._query_by_ids(collection, ids, [FIELD_ID, FIELD_CONTENT_HASH, FIELD_MODEL])
        return {
            str(row[FIELD_ID]): (str(row.get(FIELD_CONTENT_HASH) or ""), str(row.get(FIELD_MODEL) or ""))
            for row in rows
        }

    def existing_ids(self, collection: str, ids: Sequence[str]) -> set[str]:
        """
        Return the subset of ``ids`` present in the collection (empty if the collection is missing).

        :param collection: collection name.
        :param ids: primary keys to look up.
        """
        if not ids or not self.has_collection(collection):
            return set()
        return {str(row[FIELD_ID]) for row in self._query_by_ids(collection, ids, [FIELD_ID])}

    def list_ids(self, collection: str) -> list[str]:
        """
        Return every primary key in the collection, in ascending order ([] if the collection is missing).

        Pages by primary key like ``query_iterator``, but quotes the cursor with
        :func:`milvus_string_literal`: pymilvus 3.0.2's ``query_iterator`` does not escape it, and fails on
        ids that contain ``"`` or ``\\``.

        :param collection: collection name.
        """
        if not self.has_collection(collection):
            return []
        self.ensure_loaded(collection)
        client = self.get_conn()
        ids: list[str] = []
        last: str | None = None
        while True:
            expression = (
                f'{FIELD_ID} != ""' if last is None else f"{FIELD_ID} > {milvus_string_literal(last)}"
            )
            page = client.query(
                collection,
                filter=expression,
                output_fields=[FIELD_ID],
                limit=LIST_IDS_PAGE,
                iterator="True",
                reduce_stop_for_best="True",
                consistency_level=_STRONG,
                timeout=self.timeout,
            )
            page_ids = [str(row[FIELD_ID]) for row in page]
            ids.extend(page_ids)
            if len(page_ids) < LIST_IDS_PAGE:
                return ids
            last = page_ids[-1]

    def count(self, collection: str) -> int:
        """
        Return the exact number of rows (``count(*)``, which, unlike collection stats, reflects deletes).

        :param collection: collection name.
        """
        self.ensure_loaded(collection)
        result = self.get_conn().query(
            collection, filter="", output_fields=["count(*)"], consistency_level=_STRONG, timeout=self.timeout
        )
        return int(result[0]["count(*)"]) if result else 0

    def search(
        self,
        collection: str,
        vectors: Sequence[Sequence[float]],
        *,
        limit: int = 5,
        output_fields: Sequence[str] = (FIELD_TEXT, FIELD_METADATA),
    ) -> list[list[dict[str, Any]]]:
        """
        Return the nearest rows for each query vector as JSON-safe dicts: ``id``, ``distance`` and the fields.

        :param collection: collection name.
        :param vectors: query vectors, each with the collection's dimension.
        :param limit: hits per query vector.
        :param output_fields: fields to return with each hit.
        """
        self.ensure_loaded(collection)
        fields = list(output_fields)
        results = self.get_conn().search(
            collection,
            data=[list(map(float, vector)) for vector in vectors],
            limit=limit,
            output_fields=fields,
            anns_field=FIELD_VECTOR,
            timeout=self.timeout,
        )
        return [
            [
                {
                    FIELD_ID: hit["id"],
                    "distance": float(hit["distance"]),
                    **{field: (hit.get("entity") or {}).get(field) for field in fields},
                }
                for hit in hits
            ]
            for hits in results
        ]

    # -- writes ------------------------------------------------------------------------------------

    def delete_ids(self, collection: str, ids: Sequence[str]) -> int:
        """
        Delete rows by primary key, :data:`ID_QUERY_BATCH` at a time; return how many were deleted.

        Ids are looked up first, so the count is the same on Milvus Lite (whose ``delete`` returns the
        requested keys, existing or not) and on a server (``{"delete_count": n}``). A missing collection
        deletes nothing.

        :param collection: collection name.
        :param ids: primary keys (any characters, quotes and backslashes included).
        """
        present = self.existing_ids(collection, ids)
        if not present:
            return 0
        client = self.get_conn()
        ordered = [row_id for row_id in dict.fromkeys(ids) if row_id in present]
        deleted = 0
        for batch in chunked(ordered, ID_QUERY_BATCH):
            result = client.delete(collection, filter=ids_in_filter(batch), timeout=self.timeout)
            deleted += _deleted_count(result, len(batch))
        self.log.info("Deleted %s of %s requested ids from %s", deleted, len(ids), collection)
        return deleted

    def write_batches(
        self,
        collection: str,
        batches: Iterable[Sequence[Mapping[str, Any]]],
        *,
        mode: str = "upsert",
        partition_name: str | None = None,
        total_rows: int | None = None,
    ) -> WriteResult:
        """
        Write batches, one request each, then flush once: the hook's one write entry point.

        Rows should come from :func:`~airflow_provider_gemini_milvus.milvus_rows.prepare_rows`, split by
        :func:`~airflow_provider_gemini_milvus.milvus_rows.split_batches`; the collection should exist
        (see :meth:`ensure_collection`). ``upsert`` replaces rows with the same id, so re-runs are
        idempotent; ``insert`` does not deduplicate on a Milvus server and is for fresh collections.
        ``batches`` may be a generator: it is consumed one batch at a time.

        :param collection: collection name.
        :param batches: the rows, already split into requests.
        :param mode: ``upsert`` (default) or ``insert``.
        :param partition_name: partition to write to; None means the default partition.
        :param total_rows: how many rows the batches hold, for progress logs; None if unknown.
        """
        if mode not in WRITE_MODES:
            raise ValueError(f"unknown mode {mode!r}; use one of {list(WRITE_MODES)}")
        started = time.monotonic()
        self.ensure_loaded(collection)
        client = self.get_conn()
        write = client.upsert if mode == "upsert" else client.insert
        written = batch_count = 0
        for batch in batches:
            result = write(collection, list(batch), partition_name=partition_name or "", timeout=self.timeout)
            written += int(result.get(f"{mode}_count", len(batch)))
            batch_count += 1
            elapsed = max(time.monotonic() - started, 1e-9)
            self.log.info(
                "%s %s/%s rows into %s (batch %s, %.0f rows/s)",
                "Upserted" if mode == "upsert" else "Inserted",
                written,
                "?" if total_rows is None else total_rows,
                collection,
                batch_count,
                written / elapsed,
            )
        if batch_count:
            client.flush(collection, timeout=self.timeout)
        seconds = time.monotonic() - started
        self.log.info(
            "Flushed %s after %s rows in %s batch(es), %.2f s", collection, written, batch_count, seconds
        )
        return WriteResult(
            collection=collection, mode=mode, written=written, batches=batch_count, seconds=round(seconds, 3)
        )
