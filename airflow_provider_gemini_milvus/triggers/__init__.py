"""The provider's triggers: :class:`GeminiBatchJobTrigger` waits for a Gemini batch job."""

from __future__ import annotations

from airflow_provider_gemini_milvus.triggers.gemini_batch import GeminiBatchJobTrigger

__all__ = ["GeminiBatchJobTrigger"]
