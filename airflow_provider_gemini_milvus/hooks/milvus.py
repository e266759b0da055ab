"""
Hook for Milvus: a Milvus server, Zilliz Cloud, or a local Milvus Lite ``.db`` file.

The collection layout lives in :mod:`~airflow_provider_gemini_milvus.milvus.layout`, the row contract in
:mod:`~airflow_provider_gemini_milvus.milvus.rows` and the connection parsing in
:mod:`~airflow_provider_gemini_milvus.milvus.uri`; this module holds the hook that talks to Milvus.
"""

from __future__ import annotations

import time
import uuid
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
from airflow.sdk import BaseHook

from airflow_provider_gemini_milvus.connection_extras import MILVUS_EXTRA_FIELDS, ConnectionExtras
from airflow_provider_gemini_milvus.exceptions import (
    GeminiMilvusProviderError,
    MilvusCollectionMismatchError,
    MilvusFullTextUnsupportedError,
)
from airflow_provider_gemini_milvus.milvus.full_text import (
    DEFAULT_RRF_K,
    FIELD_SPARSE,
    FULL_TEXT_MIN_VERSION,
    add_full_text,
    add_full_text_index,
    bm25_score,
    check_search,
    has_full_text,
    require_full_text,
    server_supports_full_text,
    text_field_options,
)
from airflow_provider_gemini_milvus.milvus.layout import (
    FIELD_CONTENT_HASH,
    FIELD_ID,
    FIELD_METADATA,
    FIELD_MODEL,
    FIELD_TEXT,
    FIELD_VECTOR,
    TEXT_MAX_LENGTH,
    CollectionInfo,
    build_index_params,
    build_schema,
    check_collection_matches,
    check_index_choice,
    check_name,
    check_new_collection,
    collection_info,
    search_hits,
    type_name,
)
from airflow_provider_gemini_milvus.milvus.lite import (
    deleted_count,
    lite_has_faiss,
    open_lite_client,
    release_lite_server,
)
from airflow_provider_gemini_milvus.milvus.rows import (
    ID_QUERY_BATCH,
    VECTOR_QUERY_BATCH,
    WRITE_MODES,
    WriteMode,
    WriteResult,
    chunked,
    ids_after_filter,
    ids_in_filter,
    skip_stored_rows,
)
from airflow_provider_gemini_milvus.milvus.source_rows import SourceRow, source_filter, source_row
from airflow_provider_gemini_milvus.milvus.uri import build_client_kwargs, is_lite_uri, redact_token

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping, Sequence
    from types import TracebackType

    from airflow.sdk import Connection
    from pymilvus import MilvusClient

__all__ = ["MilvusHook", "WriteResult"]

LIST_IDS_PAGE = 1000
_STRONG = "Strong"


class MilvusHook(BaseHook):
    """
    Talk to Milvus through a cached ``pymilvus.MilvusClient`` built from an Airflow connection.

    Connection fields: **host** is the URI (``http(s)://host:port`` for a server or Zilliz Cloud, or a
    local ``*.db`` path for Milvus Lite, whose parent folder is created if missing); **password** is the
    token, or with **login** the password of ``user:password``; **schema** is the database name; extras
    ``timeout`` (seconds, per call) and ``secure`` (TLS). With no host the hook uses a Milvus Lite file at
    ``$AIRFLOW_HOME/milvus_lite/milvus.db``.

    Milvus Lite serves one process per file and keeps it locked while its in-process server runs:
    :meth:`get_conn` waits up to ``lite_lock_wait`` seconds (extra, default 60) for another process to
    release it, and :meth:`close` (or leaving ``with MilvusHook() as hook:``) stops the server. Do not close
    a hook while another hook in the same process uses the same file. Lite forgets load states when a file
    is reopened: :meth:`get_conn` loads the collections again, so the raw client searches as on a server.

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
        self._full_text: set[str] = set()
        # pymilvus (2.6) shares one connection between clients of the same URI and user in a process, and
        # ``close()`` of one would cut off the others: each hook's client gets a connection of its own.
        self._connection_alias = f"gemini-milvus-{uuid.uuid4().hex}"

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
        """Return the cached ``MilvusClient``, connecting (or opening Milvus Lite, see above) on first use."""
        if self._client is not None:
            return self._client
        from pymilvus import MilvusClient

        self.log.info("Connecting to Milvus%s at %s", " Lite" if self.is_lite else "", self.uri)
        client_kwargs = {**self.client_kwargs, "alias": self._connection_alias}
        try:
            if self.is_lite:
                client, loaded = open_lite_client(
                    client_kwargs, self.milvus_conn_id, max_wait=self.lite_lock_wait, log=self.log
                )
                self._loaded.update(loaded)
            else:
                client = MilvusClient(**client_kwargs)
        except GeminiMilvusProviderError:
            raise
        except Exception as err:
            # ``from None``: pymilvus' error may hold the token; its redacted message is kept here.
            raise GeminiMilvusProviderError(
                f"Could not open Milvus at {self.uri} (connection {self.milvus_conn_id!r}): "
                f"{self.safe_message(err)}"
            ) from None
        self._client = client
        return client

    def close(self) -> None:
        """Close the client and, for Milvus Lite, stop the in-process server so its file lock is released."""
        client, self._client = self._client, None
        self._loaded.clear()
        self._full_text.clear()
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
        """Connect and list collections; return ``(ok, message)``. A client the hook had stays open."""
        opened_here = self._client is None
        try:
            names = self.get_conn().list_collections(timeout=self.timeout)
        except Exception as err:
            return False, f"Could not list collections at {self._safe_uri()}: {self.safe_message(err)}"
        finally:
            if opened_here:
                self.close()
        return True, f"Connected to Milvus at {self.uri}: {len(names)} collection(s)."

    def safe_message(self, err: BaseException) -> str:
        """
        The error's message with the connection's token redacted where it stands (see :func:`redact_token`):
        what any caller may put in a log line or an exception raised without a cause.

        :param err: an error raised by the client of this hook.
        """
        try:
            token = self.client_kwargs.get("token")
        except Exception:  # the connection itself is unusable: no token was read
            token = None
        return redact_token(str(err), token)

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
        :raises ValueError: for a name a Milvus server would refuse (Milvus Lite accepts it).
        """
        return bool(self.get_conn().has_collection(check_name(name), timeout=self.timeout))

    def describe(self, name: str) -> CollectionInfo | None:
        """
        Describe a collection's vector dimension, metric and field limits, or return None if it is missing.

        :param name: collection name.
        :raises ValueError: for a name a Milvus server would refuse (Milvus Lite accepts it).
        """
        check_name(name)
        client = self.get_conn()
        if not client.has_collection(name, timeout=self.timeout):
            return None
        description = client.describe_collection(name, timeout=self.timeout)
        vector_index = None
        if any(field["name"] == FIELD_VECTOR for field in description.get("fields", [])):
            index_names = client.list_indexes(name, field_name=FIELD_VECTOR, timeout=self.timeout)
            if index_names:
                vector_index = client.describe_index(name, index_names[0], timeout=self.timeout)
        return collection_info(name, description, vector_index, full_text=has_full_text(description))

    def collection_has_full_text(self, name: str) -> bool:
        """
        Whether the collection (or alias) exists and has full-text search; one ``describe_collection`` the
        first time, remembered by this hook (as the load state is) once it is True.

        :param name: collection name, or an alias.
        """
        if name in self._full_text:
            return True
        client = self.get_conn()
        if not client.has_collection(name, timeout=self.timeout):
            return False
        found = has_full_text(client.describe_collection(name, timeout=self.timeout))
        if found:
            self._full_text.add(name)
        return found

    def server_version(self) -> str:
        """The version the server reports: ``v2.5.4`` for a server, ``milvus_lite-3.2.2`` for Milvus Lite."""
        return str(self.get_conn().get_server_version(timeout=self.timeout))

    def check_full_text_support(self) -> None:
        """
        Refuse a server too old for full-text search before anything is created on it.

        :raises MilvusFullTextUnsupportedError: naming the server, its version and the version needed.
        """
        version = self.server_version()
        if server_supports_full_text(version) is False:
            needed = ".".join(map(str, FULL_TEXT_MIN_VERSION[:2]))
            raise MilvusFullTextUnsupportedError(
                f"full-text search needs Milvus {needed} or later (BM25 functions); the server at {self.uri} "
                f"runs {version}. Upgrade the server, or create the collection without full_text."
            )

    def check_index_choice(self, metric_type: str, index_type: str) -> tuple[str, str]:
        """
        Validate a metric and index type for this connection and return them upper-cased.

        :param metric_type: COSINE, L2 or IP.
        :param index_type: any Milvus index type on a server; on Milvus Lite one of :data:`LITE_INDEX_TYPES`.
        :raises ValueError: for an unknown metric, or an index type Milvus Lite cannot build.
        """
        lite_uri = self.uri if self.is_lite else None
        return check_index_choice(
            metric_type, index_type, lite_uri=lite_uri, lite_faiss=bool(lite_uri) and lite_has_faiss()
        )

    def ensure_collection(
        self,
        name: str,
        dim: int,
        *,
        metric_type: str = "COSINE",
        index_type: str = "AUTOINDEX",
        index_params: Mapping[str, Any] | None = None,
        text_max_length: int = TEXT_MAX_LENGTH,
        full_text: bool = False,
        analyzer: Mapping[str, Any] | None = None,
    ) -> bool:
        """
        Create the collection if it is missing (see :func:`~.milvus.layout.build_schema`), or check that the
        existing one fits; make sure it is loaded.

        With ``full_text`` a new collection also gets full-text search (an analyzer on ``text``, a sparse
        field and a BM25 function: see :mod:`~.milvus.full_text`), and an existing one must have it.

        :param name: collection name.
        :param dim: vector dimension, 1 to 32,768.
        :param metric_type: COSINE, L2 or IP.
        :param index_type: vector index type; on Milvus Lite one of :data:`LITE_INDEX_TYPES`.
        :param index_params: index build parameters, e.g. ``{"M": 16, "efConstruction": 200}`` for HNSW.
        :param text_max_length: ``max_length`` of ``text`` in bytes, 1 to 65,535 (new collections only).
        :param full_text: give a new collection full-text search; require it of an existing one.
        :param analyzer: the Milvus analyzer of ``text`` for a new full-text collection; None for
            :data:`~.milvus.full_text.DEFAULT_ANALYZER`.
        :raises MilvusCollectionMismatchError: if the existing collection has another dim, metric or fields,
            or lacks the full-text search asked for.
        :raises MilvusFullTextUnsupportedError: full-text search on a server older than Milvus 2.5.
        :raises ValueError: for bad arguments, before anything is created.
        :return: True if the collection was created.
        """
        check_new_collection(name, dim, text_max_length)
        metric, index = self.check_index_choice(metric_type, index_type)
        info = self.describe(name)
        if info is not None:
            self._check_existing(info, dim=dim, metric=metric, full_text=full_text)
            if info.metric_type is None:
                self._create_vector_index(name, metric, index, index_params)
            self.ensure_loaded(name)
            return False
        if full_text:
            self.check_full_text_support()
        schema = build_schema(dim, text_max_length, text_field_options(full_text, analyzer))
        indexes = build_index_params(metric, index, index_params)
        if full_text:
            add_full_text(schema)
            add_full_text_index(indexes)
        client = self.get_conn()
        try:
            client.create_collection(name, schema=schema, index_params=indexes, timeout=self.timeout)
        except Exception as err:
            raced = self.describe(name) if "already exists" in str(err) else None
            if raced is None:
                if full_text and analyzer is not None:
                    raise MilvusCollectionMismatchError(
                        f"Milvus refused to create collection {name!r} with full_text_analyzer {analyzer!r}: "
                        f"{self.safe_message(err)}"
                    ) from None
                raise
            # Another task created it between describe and create: check it like any existing collection.
            self._check_existing(raced, dim=dim, metric=metric, full_text=full_text)
            self.ensure_loaded(name)
            return False
        self.log.info(
            "Created collection %s (dim %s, metric %s, index %s%s) at %s",
            name,
            dim,
            metric,
            index,
            ", full-text search" if full_text else "",
            self.uri,
        )
        self.ensure_loaded(name)
        return True

    @staticmethod
    def _check_existing(info: CollectionInfo, *, dim: int, metric: str, full_text: bool) -> None:
        check_collection_matches(info, dim=dim, metric_type=metric)
        if full_text:
            require_full_text(info.full_text, info.name, "full_text=True")

    def _create_vector_index(
        self, name: str, metric: str, index: str, params: Mapping[str, Any] | None
    ) -> None:
        self.log.info("Collection %s has no vector index: creating %s (%s)", name, index, metric)
        self.get_conn().create_index(name, build_index_params(metric, index, params), timeout=self.timeout)

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
        check_name(partition, "partition")
        if self.has_partition(collection, partition):
            return False
        self.get_conn().create_partition(collection, partition, timeout=self.timeout)
        self.log.info("Created partition %s in collection %s", partition, collection)
        return True

    # -- reads -------------------------------------------------------------------------------------

    def fetch_fingerprints(self, collection: str, ids: Sequence[str]) -> dict[str, tuple[str, str]]:
        """
        Return ``{id: (content_hash, model)}`` for those ids that exist; ``{}`` if the collection is missing.

        Two ways to read them, chosen by size: up to half the collection's rows, ``id in [...]`` queries of
        :data:`ID_QUERY_BATCH` ids each (a few cheap lookups for a small change set); beyond that, one scan
        of the whole collection in primary-key pages (:meth:`iter_fingerprints`), which reads every row
        once instead of parsing hundreds of long filter expressions. Strong consistency either way.

        :param collection: collection name.
        :param ids: primary keys to look up (any characters, quotes and backslashes included).
        """
        if not ids or not self.has_collection(collection):
            return {}
        self.ensure_loaded(collection)
        unique = list(dict.fromkeys(ids))
        if len(unique) > ID_QUERY_BATCH and len(unique) * 2 > self.count(collection):
            wanted = set(unique)
            return {
                row_id: fingerprint
                for row_id, fingerprint in self.iter_fingerprints(collection)
                if row_id in wanted
            }
        client = self.get_conn()
        fingerprints: dict[str, tuple[str, str]] = {}
        for batch in chunked(unique, ID_QUERY_BATCH):
            rows = client.query(
                collection,
                filter=ids_in_filter(batch),
                output_fields=[FIELD_ID, FIELD_CONTENT_HASH, FIELD_MODEL],
                consistency_level=_STRONG,
                timeout=self.timeout,
            )
            fingerprints.update(_fingerprint(row) for row in rows)
        return fingerprints

    def fetch_vectors(self, collection: str, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """
        Return ``{id: vector}`` (float32, as stored) of the ids that exist; ``{}`` without the collection.

        ``id in [...]`` queries of :data:`~airflow_provider_gemini_milvus.milvus.rows.VECTOR_QUERY_BATCH` ids
        each, with Strong consistency: how a row whose metadata alone changed keeps its vector.

        :param collection: collection name.
        :param ids: primary keys to read (any characters, quotes and backslashes included).
        """
        if not ids or not self.has_collection(collection):
            return {}
        self.ensure_loaded(collection)
        client = self.get_conn()
        vectors: dict[str, np.ndarray] = {}
        for batch in chunked(list(dict.fromkeys(ids)), VECTOR_QUERY_BATCH):
            rows = client.query(
                collection,
                filter=ids_in_filter(batch),
                output_fields=[FIELD_ID, FIELD_VECTOR],
                consistency_level=_STRONG,
                timeout=self.timeout,
            )
            for row in rows:
                vectors[str(row[FIELD_ID])] = np.asarray(row[FIELD_VECTOR], dtype=np.float32)
        return vectors

    def existing_ids(self, collection: str, ids: Sequence[str]) -> set[str]:
        """
        Return the subset of ``ids`` present in the collection (empty if the collection is missing).

        :param collection: collection name.
        :param ids: primary keys to look up.
        """
        return set(self.fetch_fingerprints(collection, ids))

    def list_ids(self, collection: str) -> list[str]:
        """
        Return every primary key in the collection, in ascending order ([] if the collection is missing).

        :param collection: collection name.
        """
        return [str(row[FIELD_ID]) for page in self._scan(collection, [FIELD_ID]) for row in page]

    def iter_fingerprints(self, collection: str) -> Iterator[tuple[str, tuple[str, str]]]:
        """
        Yield ``(id, (content_hash, model))`` for every row, in ascending id order, a page at a time.

        :param collection: collection name; nothing is yielded if it is missing.
        """
        for page in self._scan(collection, [FIELD_ID, FIELD_CONTENT_HASH, FIELD_MODEL]):
            yield from (_fingerprint(row) for row in page)

    def iter_source_rows(self, collection: str, *, prefix: str | None = None) -> Iterator[SourceRow]:
        """
        Yield the rows that carry a ``source_id`` in their metadata (chunks of files or of source documents),
        a page at a time: each row's id, ``source_id``, ``source_hash``, ``chunk_count`` and ``model``.

        :param collection: collection name; nothing is yielded if it is missing.
        :param prefix: only the sources whose ``source_id`` starts with it (a listed folder's URI).
        """
        where = source_filter(prefix)
        for page in self._scan(collection, [FIELD_ID, FIELD_MODEL, FIELD_METADATA], where=where):
            for row in page:
                source = source_row(row)
                if source is not None and (prefix is None or source.source_id.startswith(prefix)):
                    yield source

    def _scan(
        self, collection: str, output_fields: list[str], *, where: str = ""
    ) -> Iterator[list[dict[str, Any]]]:
        """
        Pages of at most :data:`LIST_IDS_PAGE` rows by ascending primary key, until an empty page, like
        ``query_iterator``, but with the cursor quoted by :func:`milvus_string_literal`: pymilvus 3.0.2's
        ``query_iterator`` does not escape it, and fails on ids that contain ``"`` or ``\\``.
        """
        if not self.has_collection(collection):
            return
        self.ensure_loaded(collection)
        client = self.get_conn()
        # pymilvus sends an ``iterator`` query with the collection's default consistency (Bounded), whatever
        # ``consistency_level`` says: on a server the pages could miss the last writes and deletes. One
        # Strong query first waits until the server has applied them, so every page sees them.
        client.query(
            collection,
            filter=ids_after_filter(None),
            output_fields=[FIELD_ID],
            limit=1,
            consistency_level=_STRONG,
            timeout=self.timeout,
        )
        last: str | None = None
        while True:
            page = client.query(
                collection,
                filter=f"({ids_after_filter(last)}) and ({where})" if where else ids_after_filter(last),
                output_fields=output_fields,
                limit=LIST_IDS_PAGE,
                iterator="True",
                reduce_stop_for_best="True",
                consistency_level=_STRONG,
                timeout=self.timeout,
            )
            # With ``reduce_stop_for_best`` a server returns only the ids it can prove come first when a
            # segment runs out, so a short page is not the end (Lite, with one segment, never shows it).
            if not page:
                return
            yield page
            last = str(page[-1][FIELD_ID])

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
        vectors: Sequence[Sequence[float]] | None = None,
        *,
        texts: Sequence[str] | None = None,
        mode: str = "dense",
        limit: int = 5,
        output_fields: Sequence[str] = (FIELD_TEXT, FIELD_METADATA),
        filter: str = "",
        fusion: str = "rrf",
        rrf_k: int = DEFAULT_RRF_K,
        weights: Sequence[float] = (0.5, 0.5),
    ) -> list[list[dict[str, Any]]]:
        """
        Return the best rows for each query as JSON-safe dicts: ``id``, ``distance`` and the fields.

        ``MilvusHook().search("docs", [vector], limit=3, filter='metadata["lang"] == "en"')`` returns
        ``[[{"id": ..., "distance": ..., "text": ..., "metadata": {...}}, ...]]``, best first.

        Modes (see :mod:`~.milvus.full_text`): ``dense`` compares query vectors with ``vector``;
        ``full_text`` scores the query texts with BM25 against ``text`` (nothing to embed); ``hybrid`` runs
        both and fuses the two rankings, by reciprocal rank (``fusion="rrf"``) or by weights
        (``fusion="weighted"``). The last two need a collection created with full-text search.

        ``distance`` is Milvus' score: the cosine or inner-product similarity (for L2, the distance), the
        BM25 score, or the fused score.

        :param collection: collection name, or an alias.
        :param vectors: query vectors, each with the collection's dimension (``dense`` and ``hybrid``).
        :param texts: query texts (``full_text`` and ``hybrid``, aligned with ``vectors``).
        :param mode: ``dense``, ``full_text`` or ``hybrid``.
        :param limit: hits per query.
        :param output_fields: fields to return with each hit.
        :param filter: a Milvus boolean expression the hits must match; empty means all rows.
        :param fusion: how ``hybrid`` fuses: ``rrf`` or ``weighted``.
        :param rrf_k: the RRF constant: a row ranked ``r`` on one side adds ``1 / (rrf_k + r)``.
        :param weights: ``weighted`` fusion's (dense, full-text) weights.
        :raises ValueError: for a bad mode, fusion, limit or weights, or missing queries.
        :raises MilvusCollectionMismatchError: ``full_text`` or ``hybrid`` on a collection without it.
        """
        plan = check_search(
            mode=mode, vectors=vectors, texts=texts, limit=limit, fusion=fusion, rrf_k=rrf_k, weights=weights
        )
        if not plan.queries:
            return []
        if plan.mode != "dense":
            require_full_text(self.collection_has_full_text(collection), collection, f"{plan.mode} search")
        self.ensure_loaded(collection)
        client = self.get_conn()
        fields = list(output_fields)
        dense = [list(map(float, vector)) for vector in vectors or ()]
        if plan.mode == "dense":
            results = client.search(
                collection,
                data=dense,
                filter=filter,
                limit=limit,
                output_fields=fields,
                anns_field=FIELD_VECTOR,
                timeout=self.timeout,
            )
            return search_hits(results, fields)
        if plan.mode == "full_text":
            results = client.search(
                collection,
                data=list(texts or ()),
                filter=filter,
                limit=limit,
                output_fields=fields,
                anns_field=FIELD_SPARSE,
                search_params={"metric_type": "BM25"},
                timeout=self.timeout,
            )
            return search_hits(results, fields, score=bm25_score)
        from pymilvus import AnnSearchRequest

        expr = filter or None
        requests = [
            AnnSearchRequest(data=dense, anns_field=FIELD_VECTOR, param={}, limit=plan.candidates, expr=expr),
            AnnSearchRequest(
                data=list(texts or ()),
                anns_field=FIELD_SPARSE,
                param={"metric_type": "BM25"},
                limit=plan.candidates,
                expr=expr,
            ),
        ]
        results = client.hybrid_search(
            collection, requests, plan.ranker(), limit=limit, output_fields=fields, timeout=self.timeout
        )
        return search_hits(results, fields)

    # -- writes ------------------------------------------------------------------------------------

    def delete_ids(self, collection: str, ids: Sequence[str]) -> int:
        """
        Delete rows by primary key, :data:`ID_QUERY_BATCH` at a time; return how many were deleted.

        Ids are looked up first, so the count is the same on Milvus Lite and on a server. A missing
        collection deletes nothing.

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
            deleted += deleted_count(result, len(batch))
        self.log.info("Deleted %s of %s requested ids from %s", deleted, len(ids), collection)
        return deleted

    def write_batches(
        self,
        collection: str,
        batches: Iterable[Sequence[Mapping[str, Any]]],
        *,
        mode: WriteMode = "upsert",
        partition_name: str | None = None,
        total_rows: int | None = None,
        flush: bool = True,
    ) -> WriteResult:
        """
        Write batches, one request each, then flush once (:meth:`flush`): the hook's one write entry point.

        Rows should come from :func:`~airflow_provider_gemini_milvus.milvus.rows.prepare_rows`, split by
        :func:`~airflow_provider_gemini_milvus.milvus.rows.split_batches`, into an existing collection.
        ``upsert`` replaces rows with the same id (re-runs are idempotent; ``batches`` may be a generator).
        ``insert`` never replaces a row: ids stored with the same ``content_hash`` and ``model`` are skipped,
        so a retry completes a load that failed midway (:func:`~.milvus.rows.skip_stored_rows`).

        :param collection: collection name.
        :param batches: the rows, already split into requests.
        :param mode: ``upsert`` (default) or ``insert``.
        :param partition_name: partition to write to; None means the default partition.
        :param total_rows: how many rows the batches hold, for progress logs; None if unknown.
        :param flush: False leaves the flush to the caller (:meth:`flush` after the deletes that follow).
        :raises ValueError: for an unknown mode or collection name, or (``insert``) ids stored with other
            content.
        """
        if mode not in WRITE_MODES:
            raise ValueError(f"unknown mode {mode!r}; use one of {list(WRITE_MODES)}")
        check_name(collection)
        started = time.monotonic()
        if mode == "insert" or not self.is_lite:
            # Insert reads the stored fingerprints first. Milvus Lite upserts into a released collection
            # (which :meth:`flush` leaves it in) without loading it, which would build its index now.
            self.ensure_loaded(collection)
        skipped = 0
        if mode == "insert":
            batches = [list(batch) for batch in batches]
            stored = self.fetch_fingerprints(
                collection, [row[FIELD_ID] for batch in batches for row in batch]
            )
            batches, skipped = skip_stored_rows(batches, stored, collection)
            self.log.info("Skipping %s rows already stored with the same content in %s", skipped, collection)
        client = self.get_conn()
        write = client.upsert if mode == "upsert" else client.insert
        written = batch_count = 0
        for batch in batches:
            result = write(collection, list(batch), partition_name=partition_name or "", timeout=self.timeout)
            written += int(result.get(f"{mode}_count", len(batch)))
            batch_count += 1
            self.log.info(
                "%s %s/%s rows into %s (batch %s, %.0f rows/s)",
                "Upserted" if mode == "upsert" else "Inserted",
                written + skipped,
                "?" if total_rows is None else total_rows,
                collection,
                batch_count,
                written / max(time.monotonic() - started, 1e-9),
            )
        if batch_count and flush:
            self.flush(collection)
        seconds = time.monotonic() - started
        self.log.info(
            "%s %s after %s rows in %s batch(es), %.2f s",
            "Flushed" if flush else "Wrote",
            collection,
            written,
            batch_count,
            seconds,
        )
        return WriteResult(collection, mode, written, batch_count, round(seconds, 3), skipped)

    def flush(self, collection: str) -> None:
        """
        Seal what was written to ``collection`` into stored segments.

        On Milvus Lite the collection is released first. Lite builds the vector index of the segments a
        flush seals in a background thread when the collection is loaded, and :meth:`close` must wait for
        that thread before it can release the file (seconds per 10,000 rows for HNSW, the ``AUTOINDEX`` of
        Lite with faiss). Released, the flush seals the rows and builds nothing: the index is built when the
        collection is next loaded, which every reopening of a Lite file needs anyway (:meth:`get_conn` loads
        the collections again, as a raw client must) and which this hook does by itself if it reads the
        collection again. On a server the index is built by the server after the flush, as before.

        :param collection: collection name.
        """
        client = self.get_conn()
        if self.is_lite:
            client.release_collection(collection, timeout=self.timeout)
            self._loaded.discard(collection)
        client.flush(collection, timeout=self.timeout)


def _fingerprint(row: Mapping[str, Any]) -> tuple[str, tuple[str, str]]:
    return str(row[FIELD_ID]), (str(row.get(FIELD_CONTENT_HASH) or ""), str(row.get(FIELD_MODEL) or ""))
