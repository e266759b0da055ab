"""
The Gemini API without Airflow: the model catalogue, a connection's settings, request planning and answer
checks, the wire, retries, pacing, adaptive concurrency, the worker threads and the Batch API.

:class:`~airflow_provider_gemini_milvus.hooks.gemini.GeminiHook` puts these together for Airflow. This face
imports nothing of Airflow (the shipped emulator imports the model catalogue through it).
"""

from __future__ import annotations

from airflow_provider_gemini_milvus.gemini.models import (
    DEFAULT_MODEL,
    MAX_TEXTS_PER_REQUEST,
    MODELS,
    TASK_TYPES,
    EmbeddingModel,
    cost_usd,
    estimate_tokens,
    resolve_model,
)
from airflow_provider_gemini_milvus.gemini.requests import EmbeddingResult, EmbeddingRunStats, RefusedText
from airflow_provider_gemini_milvus.gemini.retries import BackoffPolicy
from airflow_provider_gemini_milvus.gemini.settings import GeminiConnectionSettings, read_settings

__all__ = [
    "DEFAULT_MODEL",
    "MAX_TEXTS_PER_REQUEST",
    "MODELS",
    "TASK_TYPES",
    "BackoffPolicy",
    "EmbeddingModel",
    "EmbeddingResult",
    "EmbeddingRunStats",
    "GeminiConnectionSettings",
    "RefusedText",
    "cost_usd",
    "estimate_tokens",
    "read_settings",
    "resolve_model",
]
