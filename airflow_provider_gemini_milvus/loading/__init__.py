"""
The engine of :class:`~airflow_provider_gemini_milvus.operators.milvus.MilvusInsertOperator` (rows or a
staged manifest into a collection, batched writes or bulk import) and of
:class:`~airflow_provider_gemini_milvus.operators.milvus_alias.MilvusPromoteAliasOperator` (checks, the
alias switch, retention of old versions).
"""

from __future__ import annotations

from airflow_provider_gemini_milvus.loading.alias_migration import (
    PromoteArguments,
    embedding_fingerprint,
    promote,
    versioned_collection_name,
)
from airflow_provider_gemini_milvus.loading.insert import InsertArguments, load_manifest, load_rows

__all__ = [
    "InsertArguments",
    "PromoteArguments",
    "embedding_fingerprint",
    "load_manifest",
    "load_rows",
    "promote",
    "versioned_collection_name",
]
