"""
Retrieval from a filled collection: search in the dense, full-text and hybrid modes, and the quality of that
search measured on labelled queries (recall@k, MRR, nDCG@k). The engine of the search operators and of the
promote operator's quality gate.
"""

from __future__ import annotations

from airflow_provider_gemini_milvus.retrieval.search import (
    QueryHits,
    QuerySettings,
    SearchArguments,
    search_collection,
    stored_query_settings,
)

__all__ = ["QueryHits", "QuerySettings", "SearchArguments", "search_collection", "stored_query_settings"]
