"""The provider's operators: embed with Gemini, load into Milvus, promote an alias, search, measure search."""

from __future__ import annotations

from airflow_provider_gemini_milvus.operators.gemini import GeminiEmbedOperator
from airflow_provider_gemini_milvus.operators.milvus import MilvusInsertOperator, milvus_asset
from airflow_provider_gemini_milvus.operators.milvus_alias import MilvusPromoteAliasOperator
from airflow_provider_gemini_milvus.operators.milvus_search import MilvusSearchOperator
from airflow_provider_gemini_milvus.operators.milvus_search_evaluation import MilvusSearchEvaluationOperator

__all__ = [
    "GeminiEmbedOperator",
    "MilvusInsertOperator",
    "MilvusPromoteAliasOperator",
    "MilvusSearchEvaluationOperator",
    "MilvusSearchOperator",
    "milvus_asset",
]
