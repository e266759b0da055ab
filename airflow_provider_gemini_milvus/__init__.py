"""Apache Airflow provider for Google Gemini embeddings loaded into Milvus."""

from __future__ import annotations

from typing import Any

from airflow_provider_gemini_milvus.version import __version__

__all__ = ["__version__", "get_provider_info"]


def get_provider_info() -> dict[str, Any]:
    """Return provider metadata for Airflow (the ``apache_airflow_provider`` entry point)."""
    from airflow_provider_gemini_milvus.provider_info import get_provider_info as _provider_info

    return _provider_info()
