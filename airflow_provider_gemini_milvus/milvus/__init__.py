"""
Milvus knowledge without Airflow: the collection layout (fields, limits, schema, indexes), the row contract
(checks, ``content_hash``, the ``model`` fingerprint, request batches), connection URIs and Milvus Lite.

:class:`~airflow_provider_gemini_milvus.hooks.milvus.MilvusHook` puts these together for Airflow.
"""

from __future__ import annotations

from airflow_provider_gemini_milvus.milvus.layout import (
    FIELD_CONTENT_HASH,
    FIELD_ID,
    FIELD_METADATA,
    FIELD_MODEL,
    FIELD_TEXT,
    FIELD_VECTOR,
    CollectionInfo,
    check_collection_matches,
)
from airflow_provider_gemini_milvus.milvus.rows import (
    WriteResult,
    content_hash,
    model_fingerprint,
    prepare_rows,
)
from airflow_provider_gemini_milvus.milvus.uri import redact_token

__all__ = [
    "FIELD_CONTENT_HASH",
    "FIELD_ID",
    "FIELD_METADATA",
    "FIELD_MODEL",
    "FIELD_TEXT",
    "FIELD_VECTOR",
    "CollectionInfo",
    "WriteResult",
    "check_collection_matches",
    "content_hash",
    "model_fingerprint",
    "prepare_rows",
    "redact_token",
]
