"""
The collection layout this provider writes: field names and limits, index choices, and the checks that an
existing collection can hold the provider's rows. Pure code: nothing here talks to Milvus.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_gemini_milvus.exceptions import MilvusCollectionMismatchError

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "CONTENT_HASH_MAX_LENGTH",
    "FIELD_CONTENT_HASH",
    "FIELD_ID",
    "FIELD_METADATA",
    "FIELD_MODEL",
    "FIELD_TEXT",
    "FIELD_VECTOR",
    "ID_MAX_LENGTH",
    "LITE_FAISS_INDEX_TYPES",
    "LITE_INDEX_TYPES",
    "MAX_DIM",
    "METRIC_TYPES",
    "MODEL_MAX_LENGTH",
    "REQUIRED_FIELD_TYPES",
    "TEXT_MAX_LENGTH",
    "CollectionInfo",
    "build_schema",
    "check_collection_matches",
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
CONTENT_HASH_MAX_LENGTH = 64
MODEL_MAX_LENGTH = 256
MAX_DIM = 32768
"""Largest vector dimension a Milvus server accepts."""

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
    """

    name: str
    dim: int | None
    metric_type: str | None
    index_type: str | None
    id_max_length: int | None
    text_max_length: int | None
    field_types: Mapping[str, str]

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


def build_schema(dim: int, text_max_length: int = TEXT_MAX_LENGTH) -> Any:
    """
    Return the ``CollectionSchema`` this provider writes: the fields of :data:`REQUIRED_FIELD_TYPES`.

    :param dim: the vector dimension.
    :param text_max_length: ``max_length`` of ``text`` in UTF-8 bytes.
    """
    from pymilvus import DataType, MilvusClient

    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=True)
    schema.add_field(FIELD_ID, DataType.VARCHAR, is_primary=True, max_length=ID_MAX_LENGTH)
    schema.add_field(FIELD_VECTOR, DataType.FLOAT_VECTOR, dim=dim)
    schema.add_field(FIELD_TEXT, DataType.VARCHAR, max_length=text_max_length)
    schema.add_field(FIELD_CONTENT_HASH, DataType.VARCHAR, max_length=CONTENT_HASH_MAX_LENGTH)
    schema.add_field(FIELD_MODEL, DataType.VARCHAR, max_length=MODEL_MAX_LENGTH)
    schema.add_field(FIELD_METADATA, DataType.JSON)
    return schema


def type_name(value: Any) -> str:
    """The upper-case name of a pymilvus enum (``DataType.VARCHAR`` -> ``VARCHAR``) or of a plain value."""
    name = getattr(value, "name", None)
    return str(name if name is not None else value).upper()


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
