"""
Retrieval from a filled collection: search in the dense, full-text and hybrid modes, and the quality of that
search measured on labelled queries (recall@k, MRR, nDCG@k). The engine of the search operators and of the
promote operator's quality gate.
"""

from __future__ import annotations

from airflow_provider_gemini_milvus.retrieval.evaluation import (
    QUALITY_METRICS,
    SEARCH_MODES,
    QualityVerdict,
    compare_scores,
    evaluate_search,
)
from airflow_provider_gemini_milvus.retrieval.labelled import (
    LabelledQuery,
    dump_labelled_queries,
    labelled_queries,
)
from airflow_provider_gemini_milvus.retrieval.metrics import (
    RetrievalScores,
    format_scores_table,
    score_rankings,
)
from airflow_provider_gemini_milvus.retrieval.quality import QualityGate, evaluate_collection
from airflow_provider_gemini_milvus.retrieval.search import (
    QueryHits,
    QuerySettings,
    SearchArguments,
    search_collection,
    stored_query_settings,
)

__all__ = [
    "QUALITY_METRICS",
    "SEARCH_MODES",
    "LabelledQuery",
    "QualityGate",
    "QualityVerdict",
    "QueryHits",
    "QuerySettings",
    "RetrievalScores",
    "SearchArguments",
    "compare_scores",
    "dump_labelled_queries",
    "evaluate_collection",
    "evaluate_search",
    "format_scores_table",
    "labelled_queries",
    "score_rankings",
    "search_collection",
    "stored_query_settings",
]
