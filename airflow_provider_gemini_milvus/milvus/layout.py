"""
The collection layout this provider writes: field names and limits, index choices, and the checks that an
existing collection can hold the provider's rows. Pure code: nothing here talks to Milvus.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_gemini_milvus.exceptions import MilvusCollectionMismatchError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

__all__ = [
    "CONTENT_HASH_MAX_LENGTH",
    "FIELD_CONTENT_HASH",
    "FIELD_ID",
    "FIELD_METADATA",
    "FIELD_MODEL",
    "FIELD_TEXT",
    "FIELD_VECTOR",
    "ID_MAX_LENGTH",
    "JSON_MAX_LENGTH",
    "LITE_FAISS_INDEX_TYPES",
    "LITE_INDEX_TYPES",
    "MAX_DIM",
    "METRIC_TYPES",
    "MODEL_MAX_LENGTH",
    "REQUIRED_FIELD_TYPES",
    "TEXT_MAX_LENGTH",
    "NAME_MAX_LENGTH",
    "CollectionInfo",
    "build_index_params",
    "build_schema",
    "check_collection_matches",
    "check_index_choice",
    "check_name",
    "check_new_collection",
    "collection_info",
    "search_hits",
    "type_name",
]

FIELD_ID = "id"
FIELD_VECTOR = "vector"
FIELD_TEXT = "text"
FIELD_CONTENT_HASH = "content_hash"
FIELD_MODEL = "model"
FIELD_METADATA = "metadata"

ID_MAX_LENGTH = 512
"""``max_length`` of the VARCHAR primary key ``id``, in UTF-8 bytes as a Milvus server counts."""
TEXT_MAX_LENGTH = 65535
"""Default (and largest) ``max_length`` of the VARCHAR ``text`` field, in UTF-8 bytes."""
JSON_MAX_LENGTH = 65536
"""Largest value of a JSON field (``metadata``, and the dynamic fields' ``$meta``), in bytes."""
CONTENT_HASH_MAX_LENGTH = 64
MODEL_MAX_LENGTH = 256
MAX_DIM = 32768
"""Largest vector dimension a Milvus server accepts."""
NAME_MAX_LENGTH = 255
"""Longest collection or partition name a Milvus server accepts (``proxy.maxNameLength``)."""
_NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

#: Every field :meth:`MilvusHook.ensure_collection` creates, with the Milvus data type name it must have.
REQUIRED_FIELD_TYPES: Mapping[str, str] = {
    FIELD_ID: "VARCHAR",
    FIELD_VECTOR: "FLOAT_VECTOR",
    FIELD_TEXT: "VARCHAR",
    FIELD_CONTENT_HASH: "VARCHAR",
    FIELD_MODEL: "VARCHAR",
    FIELD_METADATA: "JSON",
}

METRIC_TYPES = frozenset({"COSINE", "L2", "IP"})
"""Metric types Milvus supports for FLOAT_VECTOR fields."""
LITE_INDEX_TYPES = frozenset({"HNSW", "HNSW_SQ", "IVF_FLAT", "IVF_SQ8", "FLAT", "BRUTE_FORCE", "AUTOINDEX"})
"""Vector index types Milvus Lite can build and load again after a restart."""
LITE_FAISS_INDEX_TYPES = frozenset({"HNSW", "HNSW_SQ", "IVF_FLAT", "IVF_SQ8"})
"""Milvus Lite index types that need ``faiss-cpu`` installed."""


@dataclass(frozen=True)
class CollectionInfo:
    """
    What the provider needs to know about an existing collection.

    :param name: collection name.
    :param dim: dimension of the ``vector`` field, or None if the collection has no such FLOAT_VECTOR field.
    :param metric_type: metric of the index on ``vector``, or None if it has no index.
    :param index_type: type of the index on ``vector``, or None if it has no index.
    :param id_max_length: ``max_length`` of the ``id`` field (bytes), or None if it is not a VARCHAR.
    :param text_max_length: ``max_length`` of the ``text`` field (bytes), or None if it is not a VARCHAR.
    :param field_types: every field name mapped to its Milvus data type name, e.g. ``{"id": "VARCHAR"}``.
    :param full_text: whether the collection has full-text search (see :mod:`.full_text`).
    """

    name: str
    dim: int | None
    metric_type: str | None
    index_type: str | None
    id_max_length: int | None
    text_max_length: int | None
    field_types: Mapping[str, str]
    full_text: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dict."""
        data = asdict(self)
        data["field_types"] = dict(self.field_types)
        return data


def check_collection_matches(info: CollectionInfo, *, dim: int, metric_type: str | None = None) -> None:
    """
    Raise :class:`MilvusCollectionMismatchError` if ``info`` cannot hold this provider's rows.

    :param info: the existing collection, from :meth:`MilvusHook.describe`.
    :param dim: the vectors' dimension.
    :param metric_type: the metric the caller expects; None skips the metric check.
    """
    for field, expected in REQUIRED_FIELD_TYPES.items():
        actual = info.field_types.get(field)
        if actual is None:
            raise MilvusCollectionMismatchError(
                f"collection {info.name!r} has no field {field!r} ({expected}); it was not created by this "
                "provider. Use another collection name, or drop and recreate it."
            )
        if actual != expected:
            raise MilvusCollectionMismatchError(
                f"collection {info.name!r} field {field!r} is {actual}, this provider needs {expected}"
            )
    if info.dim != dim:
        raise MilvusCollectionMismatchError(
            f"collection {info.name!r} has dim {info.dim}, the vectors have dim {dim}"
        )
    if metric_type is not None and info.metric_type is not None and info.metric_type != metric_type.upper():
        raise MilvusCollectionMismatchError(
            f"collection {info.name!r} is indexed with metric {info.metric_type}, the task asks for "
            f"{metric_type.upper()}"
        )


def build_schema(
    dim: int, text_max_length: int = TEXT_MAX_LENGTH, text_options: Mapping[str, Any] | None = None
) -> Any:
    """
    Return the ``CollectionSchema`` this provider writes: the fields of :data:`REQUIRED_FIELD_TYPES`.

    VARCHAR primary key ``id`` (512 bytes), FLOAT_VECTOR ``vector`` (``dim``), VARCHAR ``text``
    (``text_max_length``), VARCHAR ``content_hash`` (64), VARCHAR ``model`` (256), JSON ``metadata``, and
    dynamic fields on.

    :param dim: the vector dimension.
    :param text_max_length: ``max_length`` of ``text`` in UTF-8 bytes.
    :param text_options: more ``add_field`` options of ``text`` (the analyzer of a full-text collection,
        from :func:`~.full_text.text_field_options`).
    """
    from pymilvus import DataType, MilvusClient

    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=True)
    schema.add_field(FIELD_ID, DataType.VARCHAR, is_primary=True, max_length=ID_MAX_LENGTH)
    schema.add_field(FIELD_VECTOR, DataType.FLOAT_VECTOR, dim=dim)
    schema.add_field(FIELD_TEXT, DataType.VARCHAR, max_length=text_max_length, **dict(text_options or {}))
    schema.add_field(FIELD_CONTENT_HASH, DataType.VARCHAR, max_length=CONTENT_HASH_MAX_LENGTH)
    schema.add_field(FIELD_MODEL, DataType.VARCHAR, max_length=MODEL_MAX_LENGTH)
    schema.add_field(FIELD_METADATA, DataType.JSON)
    return schema


def check_index_choice(
    metric_type: str, index_type: str, *, lite_uri: str | None = None, lite_faiss: bool = False
) -> tuple[str, str]:
    """
    Validate a metric and index type and return them upper-cased.

    :param metric_type: COSINE, L2 or IP.
    :param index_type: any Milvus index type on a server; on Milvus Lite one of :data:`LITE_INDEX_TYPES`.
    :param lite_uri: the Milvus Lite file, or None for a server.
    :param lite_faiss: whether Milvus Lite can build faiss indexes (``faiss-cpu`` is installed).
    :raises ValueError: for an unknown metric, or an index type Milvus Lite cannot build.
    """
    metric = str(metric_type).upper()
    if metric not in METRIC_TYPES:
        raise ValueError(f"unknown metric_type {metric_type!r}; use one of {sorted(METRIC_TYPES)}")
    index = str(index_type).upper()
    if lite_uri is not None:
        if index not in LITE_INDEX_TYPES:
            raise ValueError(
                f"Milvus Lite ({lite_uri}) cannot build index_type {index_type!r}; use one of "
                f"{sorted(LITE_INDEX_TYPES)}, or a Milvus server"
            )
        if index in LITE_FAISS_INDEX_TYPES and not lite_faiss:
            raise ValueError(f"Milvus Lite needs faiss-cpu installed to build index_type {index}")
    return metric, index


def check_name(name: Any, what: str = "collection") -> str:
    """
    Return ``name`` if a Milvus server accepts it as a collection or partition name, else ``ValueError``.

    A server wants a letter or underscore first, then letters, digits and underscores, at most
    :data:`NAME_MAX_LENGTH` characters. Milvus Lite accepts names such as ``bad-name!``, ``a b`` or ``1abc``
    that a server refuses, so a DAG tested on Lite would fail in production without this check.

    :param name: the name to check.
    :param what: ``collection`` or ``partition``, for the message.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"{what} name must be a non-empty string, got {name!r}")
    if len(name) > NAME_MAX_LENGTH:
        raise ValueError(
            f"{what} name is {len(name)} characters long; Milvus allows at most {NAME_MAX_LENGTH}"
        )
    if not _NAME_PATTERN.fullmatch(name):
        raise ValueError(
            f"{what} name {name!r} is not valid in Milvus: it must start with a letter or an underscore "
            "and hold only letters, digits and underscores"
        )
    return name


def check_new_collection(name: str, dim: Any, text_max_length: Any) -> None:
    """
    Refuse, before anything is created, a collection name, dimension or text length a server would refuse.

    :param name: the collection name (see :func:`check_name`).
    :param dim: the vector dimension, an integer from 1 to :data:`MAX_DIM`.
    :param text_max_length: ``max_length`` of ``text`` in bytes, 1 to :data:`TEXT_MAX_LENGTH`.
    """
    check_name(name)
    if isinstance(dim, bool) or not isinstance(dim, int) or not 1 <= dim <= MAX_DIM:
        raise ValueError(f"dim must be an integer from 1 to {MAX_DIM}, got {dim!r}")
    if not 1 <= text_max_length <= TEXT_MAX_LENGTH:
        raise ValueError(f"text_max_length must be from 1 to {TEXT_MAX_LENGTH}, got {text_max_length}")


def build_index_params(metric_type: str, index_type: str, params: Mapping[str, Any] | None = None) -> Any:
    """
    Return the ``IndexParams`` of the one vector index on ``vector``.

    :param metric_type: COSINE, L2 or IP (checked by :func:`check_index_choice`).
    :param index_type: the index type, e.g. ``AUTOINDEX`` or ``HNSW``.
    :param params: index build parameters, e.g. ``{"M": 16, "efConstruction": 200}`` for HNSW.
    """
    from pymilvus import MilvusClient

    index_params = MilvusClient.prepare_index_params()
    index_params.add_index(
        field_name=FIELD_VECTOR, index_type=index_type, metric_type=metric_type, params=dict(params or {})
    )
    return index_params


def search_hits(
    results: Iterable[Iterable[Mapping[str, Any]]],
    fields: Sequence[str],
    score: Callable[[Any], float] = float,
) -> list[list[dict[str, Any]]]:
    """
    Turn ``MilvusClient.search`` results into JSON-safe dicts: ``id``, ``distance`` and the ``fields``.

    :param results: one list of hits per query.
    :param fields: the output fields asked for; a field a hit lacks is None.
    :param score: turns a hit's ``distance`` into the number returned (e.g. :func:`~.full_text.bm25_score`).
    """
    return [
        [
            {
                FIELD_ID: hit["id"],
                "distance": score(hit["distance"]),
                **{field: (hit.get("entity") or {}).get(field) for field in fields},
            }
            for hit in hits
        ]
        for hits in results
    ]


def type_name(value: Any) -> str:
    """The upper-case name of a pymilvus enum (``DataType.VARCHAR`` -> ``VARCHAR``) or of a plain value."""
    name = getattr(value, "name", None)
    return str(name if name is not None else value).upper()


def collection_info(
    name: str,
    description: Mapping[str, Any],
    vector_index: Mapping[str, Any] | None,
    *,
    full_text: bool = False,
) -> CollectionInfo:
    """
    Build a :class:`CollectionInfo` from what pymilvus returns.

    :param name: the collection name.
    :param description: the result of ``MilvusClient.describe_collection``.
    :param vector_index: the result of ``MilvusClient.describe_index`` for the index on ``vector``, or None
        when the collection has no such index.
    :param full_text: whether it has full-text search (:func:`~.full_text.has_full_text`).
    """
    fields = {field["name"]: field for field in description.get("fields", [])}
    field_types = {field_name: type_name(field.get("type")) for field_name, field in fields.items()}

    def param(field_name: str, key: str, expected_type: str) -> int | None:
        field = fields.get(field_name)
        if field is None or field_types[field_name] != expected_type:
            return None
        return _int_or_none(field.get("params", {}).get(key))

    def upper_or_none(key: str) -> str | None:
        value = (vector_index or {}).get(key)
        return str(value).upper() if value else None

    return CollectionInfo(
        name=name,
        dim=param(FIELD_VECTOR, "dim", "FLOAT_VECTOR"),
        metric_type=upper_or_none("metric_type"),
        index_type=upper_or_none("index_type"),
        id_max_length=param(FIELD_ID, "max_length", "VARCHAR"),
        text_max_length=param(FIELD_TEXT, "max_length", "VARCHAR"),
        field_types=field_types,
        full_text=full_text,
    )


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
