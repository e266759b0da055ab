"""
What watches a run: OpenLineage facets and asset URIs of the collections, and Airflow metrics (StatsD or
OpenTelemetry, as the deployment is configured) of what each task embedded, spent and wrote.
"""

from __future__ import annotations

from airflow_provider_gemini_milvus.observability.assets import milvus_collection_asset, milvus_collection_uri
from airflow_provider_gemini_milvus.observability.metrics import (
    METRIC_PREFIX,
    Metric,
    embed_metrics,
    evaluation_metrics,
    insert_metrics,
    promote_metrics,
    record_metrics,
    search_metrics,
)

__all__ = [
    "METRIC_PREFIX",
    "Metric",
    "embed_metrics",
    "evaluation_metrics",
    "insert_metrics",
    "milvus_collection_asset",
    "milvus_collection_uri",
    "promote_metrics",
    "record_metrics",
    "search_metrics",
]
