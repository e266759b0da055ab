"""
Asset URIs of Milvus collections: ``milvus://host:port/database/collection``, the same whichever Airflow
connection reaches the server, so a downstream DAG scheduled on the collection runs whatever task wrote it.

A Milvus Lite file has no host: its collections are ``milvus:///abs/path/milvus.db/database/collection``
(the file's absolute path, then the database and the collection), which Airflow normalises to
``milvus:/abs/path/milvus.db/database/collection``. The OpenLineage dataset of a collection
has the same parts: namespace ``milvus://host:port`` (``milvus:///abs/path/milvus.db`` for Lite), name
``database.collection``.

The ``milvus`` scheme is registered in ``provider_info`` (``asset-uris``): :func:`sanitize_uri` is its
handler (Airflow calls it on every ``Asset("milvus://...")``) and :func:`convert_asset_to_openlineage` its
OpenLineage converter. The older form ``milvus://{connection id}/{collection}`` (one path segment, what
:func:`~airflow_provider_gemini_milvus.operators.milvus.milvus_asset` returns) is still accepted.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult, urlsplit, urlunsplit

from airflow_provider_gemini_milvus.milvus.layout import check_name

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Asset
    from openlineage.client.event_v2 import Dataset

__all__ = [
    "COLLECTIONS_ALIAS",
    "DEFAULT_DATABASE",
    "DEFAULT_PORT",
    "MILVUS_SCHEME",
    "CollectionAddress",
    "asset_event_extra",
    "collection_address",
    "convert_asset_to_openlineage",
    "hook_collection_address",
    "milvus_collection_asset",
    "milvus_collection_uri",
    "parse_collection_uri",
    "record_collection_events",
    "sanitize_uri",
    "server_namespace",
]

MILVUS_SCHEME = "milvus"
#: The database a connection without ``schema`` uses.
DEFAULT_DATABASE = "default"
#: pymilvus' port for an address without one (``https`` gets 443).
DEFAULT_PORT = 19530
#: The asset alias ``MilvusInsertOperator`` adds its collection's asset event to, at run time: the
#: collection's URI needs the connection's host, which is read only when the task runs.
COLLECTIONS_ALIAS = "gemini_milvus_collections"
_LITE_SUFFIX = ".db"


@dataclass(frozen=True)
class CollectionAddress:
    """
    Where a collection lives: the server (or Lite file), its database and its name.

    :param namespace: ``milvus://host:port``, or ``milvus:///abs/path/milvus.db`` for Milvus Lite.
    :param database: the database name.
    :param collection: the collection name.
    """

    namespace: str
    database: str
    collection: str

    @property
    def uri(self) -> str:
        """
        The collection's asset URI, ``{namespace}/{database}/{collection}``, as Airflow normalises it: a
        Lite file's has no empty authority (``milvus:/abs/path/milvus.db/default/docs``).
        """
        return urlunsplit(sanitize_uri(urlsplit(f"{self.namespace}/{self.database}/{self.collection}")))

    @property
    def dataset_name(self) -> str:
        """The collection's OpenLineage dataset name: ``database.collection``."""
        return f"{self.database}.{self.collection}"


def server_namespace(uri: str) -> str:
    """
    The namespace of a Milvus server from the address its client connects to (``MilvusHook.uri``, with no
    credentials): ``milvus://host:port``, the host in lower case and the port filled in (19530, 443 for
    ``https``); ``milvus:///abs/path/milvus.db`` for a Milvus Lite file.

    :param uri: ``http(s)://host[:port]``, ``tcp://host:port``, ``unix:/path`` or a ``.db`` path.
    """
    text = uri.strip()
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme == "unix":
        return f"{MILVUS_SCHEME}+unix://{parts.path or parts.netloc}"
    if scheme not in ("http", "https", "tcp", "grpc") and text.endswith(_LITE_SUFFIX):
        return f"{MILVUS_SCHEME}://{os.path.abspath(os.path.expanduser(text))}"
    if "://" not in text:
        parts = urlsplit(f"http://{text}")
    host = (parts.hostname or "localhost").lower()
    port = parts.port or (443 if scheme == "https" else DEFAULT_PORT)
    if ":" in host:  # an IPv6 address keeps its brackets
        host = f"[{host}]"
    return f"{MILVUS_SCHEME}://{host}:{port}"


def collection_address(uri: str, collection: str, database: str | None = None) -> CollectionAddress:
    """
    The address of ``collection`` on the server at ``uri`` (see :func:`server_namespace`).

    :param uri: the server address, or the Milvus Lite file.
    :param collection: the collection name.
    :param database: the database; None or empty for ``default``.
    """
    return CollectionAddress(server_namespace(uri), database or DEFAULT_DATABASE, collection)


def milvus_collection_uri(uri: str, collection: str, database: str | None = None) -> str:
    """
    The asset URI of a collection: ``milvus://host:port/database/collection``.

    :param uri: the server address as the Milvus connection holds it (``http://milvus:19530``,
        ``https://<cluster>.zillizcloud.com``) or the Milvus Lite file (``/data/milvus.db``).
    :param collection: the collection name.
    :param database: the database; None for ``default``.
    """
    return collection_address(uri, collection, database).uri


def milvus_collection_asset(
    uri: str, collection: str, database: str | None = None, *, extra: dict[str, Any] | None = None
) -> Asset:
    """
    The Airflow Asset of a collection, to schedule a DAG on: ``schedule=[milvus_collection_asset(
    "http://milvus:19530", "docs")]`` runs it after each write of ``docs`` by ``MilvusInsertOperator``,
    through any connection to that server. Nothing is read from a connection: give the address itself.

    :param uri: the server address or the Milvus Lite file (see :func:`milvus_collection_uri`).
    :param collection: the collection name.
    :param database: the database; None for ``default``.
    :param extra: the asset's own ``extra``.
    """
    from airflow.sdk import Asset

    return Asset(uri=milvus_collection_uri(uri, collection, database), extra=extra or {})


def parse_collection_uri(uri: str) -> CollectionAddress | None:
    """
    The address in a collection's asset URI, or None for the connection-id form (``milvus://conn/coll``),
    which does not say which server it is.

    :raises ValueError: when ``uri`` is not a ``milvus://`` collection URI.
    """
    parts = sanitize_uri(urlsplit(uri))
    segments = parts.path.strip("/").split("/")
    if len(segments) == 1:
        return None
    if parts.netloc:
        namespace = f"{MILVUS_SCHEME}://{parts.netloc}"
    else:
        namespace = f"{MILVUS_SCHEME}://{'/' + '/'.join(segments[:-2])}"
    return CollectionAddress(namespace, segments[-2], segments[-1])


def sanitize_uri(parts: SplitResult) -> SplitResult:
    """
    The ``milvus`` scheme's asset URI handler: checks a collection URI and normalises it (host in lower
    case, default port filled in, no query or fragment).

    Accepted: ``milvus://host[:port]/database/collection``, ``milvus:///abs/path/file.db/database/collection``
    (Milvus Lite), and the connection-id form ``milvus://conn_id/collection`` of ``milvus_asset()``.

    :raises ValueError: naming what is missing, for any other URI.
    """
    segments = [segment for segment in parts.path.split("/") if segment]
    form = (
        "milvus://host:port/database/collection, milvus:///path/to/milvus.db/database/collection "
        "or milvus://connection_id/collection"
    )
    if parts.scheme != MILVUS_SCHEME:
        raise ValueError(f"{parts.geturl()!r} is not a milvus:// URI; expected {form}")
    if parts.query or parts.fragment:
        raise ValueError(f"Milvus asset URI {parts.geturl()!r} has a query or fragment; expected {form}")
    if parts.netloc:
        if len(segments) == 1:
            _check_name(segments[0], "collection", parts)
            return parts._replace(path=f"/{segments[0]}")  # the connection-id form, as milvus_asset() writes
        if len(segments) != 2:
            raise ValueError(f"Milvus asset URI {parts.geturl()!r} must be {form}")
        _check_name(segments[0], "database", parts)
        _check_name(segments[1], "collection", parts)
        try:
            port = parts.port
        except ValueError:
            raise ValueError(f"Milvus asset URI {parts.geturl()!r} has a bad port") from None
        host = (parts.hostname or "").lower()
        if not host:
            raise ValueError(f"Milvus asset URI {parts.geturl()!r} has no host")
        if ":" in host:
            host = f"[{host}]"
        return parts._replace(netloc=f"{host}:{port or DEFAULT_PORT}", path="/" + "/".join(segments))
    if len(segments) < 3 or not segments[-3].endswith(_LITE_SUFFIX):
        raise ValueError(
            f"Milvus asset URI {parts.geturl()!r} has no host nor a Lite .db file; expected {form}"
        )
    _check_name(segments[-2], "database", parts)
    _check_name(segments[-1], "collection", parts)
    return parts._replace(path="/" + "/".join(segments))


def _check_name(name: str, what: str, parts: SplitResult) -> None:
    """The same rule, and message, as the operators' own check of a name a Milvus server refuses."""
    try:
        check_name(name, what)
    except ValueError as err:
        raise ValueError(f"Milvus asset URI {parts.geturl()!r}: {err}") from None


def convert_asset_to_openlineage(asset: Asset, lineage_context: Any = None) -> Dataset | None:
    """
    The OpenLineage dataset of a collection's asset (the ``milvus`` scheme's ``to_openlineage_converter``):
    namespace ``milvus://host:port``, name ``database.collection``; None for the connection-id form.

    :param asset: an Asset with a ``milvus://`` URI.
    :param lineage_context: what the OpenLineage provider passes; not used.
    """
    from openlineage.client.event_v2 import Dataset

    address = parse_collection_uri(asset.uri)
    if address is None:
        return None
    return Dataset(namespace=address.namespace, name=address.dataset_name)


def hook_collection_address(hook: Any, collection: str) -> CollectionAddress:
    """
    The address of ``collection`` on the server a ``MilvusHook`` connects to (its connection is read, once;
    nothing is asked of the server).

    :param hook: a ``MilvusHook`` (its ``uri`` and ``client_kwargs``' ``db_name``).
    :param collection: the collection name.
    """
    return collection_address(hook.uri, collection, hook.client_kwargs.get("db_name"))


#: Embedding figures an asset event carries, from the embedding result the insert loaded (``stats``).
_EMBEDDING_KEYS = (
    "documents",
    "embedded",
    "unchanged",
    "metadata_only",
    "refused",
    "texts",
    "estimated_tokens",
    "estimated_cost_usd",
    "requests",
    "rate_limited",
    "mode",
    "batch_job",
)
_WRITE_KEYS = ("written", "skipped", "deleted", "created", "mode", "load_method", "parts", "dim")


def asset_event_extra(address: CollectionAddress, result: Mapping[str, Any], data: Any) -> dict[str, Any]:
    """
    The ``extra`` of a collection's asset event after a write: where (``collection``, ``database``,
    ``server``), what changed (``written``, ``skipped``, ``deleted``, ``created``, ...) and, when the rows
    came from ``GeminiEmbedOperator``, what that cost (``embedding``: documents, embedded, unchanged, texts,
    tokens, estimated cost, batch job). JSON-safe; never a row, a text or a key.

    :param address: the collection written.
    :param result: ``MilvusInsertOperator``'s result.
    :param data: the rows it loaded: an embedding result (inline or staged) carries ``stats``.
    """
    extra: dict[str, Any] = {
        "server": address.namespace,
        "database": address.database,
        "collection": address.collection,
        **{key: result[key] for key in _WRITE_KEYS if key in result},
    }
    stats = data.get("stats") if isinstance(data, Mapping) else None
    if isinstance(stats, Mapping):
        extra["embedding"] = {key: stats[key] for key in _EMBEDDING_KEYS if key in stats}
        if isinstance(data, Mapping) and data.get("model"):
            extra["embedding"]["model"] = str(data["model"])
    return extra


def record_collection_events(
    outlets: Sequence[Any], outlet_events: Any, address: CollectionAddress, extra: dict[str, Any]
) -> list[str]:
    """
    Record the write in the task's asset events: the collection's asset (:attr:`CollectionAddress.uri`)
    is added, with ``extra``, through each ``AssetAlias`` outlet; a ``milvus://`` Asset outlet (such as
    ``milvus_asset(conn_id, collection)``) gets ``extra`` too. Other outlets are left alone.

    :param outlets: the task's outlets.
    :param outlet_events: the task context's ``outlet_events``.
    :returns: the URIs whose events carry ``extra``.
    """
    from airflow.sdk import Asset, AssetAlias

    recorded = []
    for outlet in outlets:
        if isinstance(outlet, AssetAlias):
            asset = Asset(uri=address.uri)
            outlet_events[outlet].add(asset, extra=extra)
            recorded.append(asset.uri)
        elif isinstance(outlet, Asset) and urlsplit(outlet.uri).scheme == MILVUS_SCHEME:
            outlet_events[outlet].extra.update(extra)
            recorded.append(outlet.uri)
    return recorded
