"""
The engine of :class:`~airflow_provider_gemini_milvus.operators.gemini.GeminiEmbedOperator`: the documents
read and checked, the incremental plan, the cost estimate, the synchronous and batch runs, and their rows.

It returns decisions and results; the operator converts its arguments, defers and keeps the job's name.
"""

from __future__ import annotations

from airflow_provider_gemini_milvus.embedding.cost import RunCostEstimate, estimate_run_cost
from airflow_provider_gemini_milvus.embedding.inputs import Document, EmbedArguments
from airflow_provider_gemini_milvus.embedding.plan import EmbedPlan, EmbedTask, plan_run
from airflow_provider_gemini_milvus.embedding.sources import DocumentSource, open_document_source

__all__ = [
    "Document",
    "DocumentSource",
    "EmbedArguments",
    "EmbedPlan",
    "EmbedTask",
    "RunCostEstimate",
    "estimate_run_cost",
    "open_document_source",
    "plan_run",
]
