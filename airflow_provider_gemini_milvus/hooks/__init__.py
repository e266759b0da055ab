"""The provider's hooks: :class:`GeminiHook` (the ``gemini`` connection) and :class:`MilvusHook`."""

from __future__ import annotations

from airflow_provider_gemini_milvus.hooks.gemini import GeminiHook
from airflow_provider_gemini_milvus.hooks.milvus import MilvusHook

__all__ = ["GeminiHook", "MilvusHook"]
