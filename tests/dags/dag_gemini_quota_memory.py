"""One task embeds through GeminiHook against a quota; tests run it twice with dag.test()."""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import dag, task

from airflow_provider_gemini_milvus.hooks.gemini import GeminiHook

#: One text a request: 60 requests, several quota windows at the test's 10 a second.
TEXTS = [f"quota memory text {n}" for n in range(60)]


@dag(
    schedule=None, start_date=pendulum.datetime(2025, 1, 1, tz="UTC"), catchup=False, tags=["test", "gemini"]
)
def gemini_quota_memory() -> None:
    @task
    def embed() -> dict[str, Any]:
        hook = GeminiHook()
        result = hook.embed_with_stats(TEXTS, batch_size=1, output_dimensionality=128)
        window = hook.adaptive_window()
        assert window is not None
        return {"start_rate": window.start_rate, "rate_limited": result.stats.rate_limited}

    embed()


gemini_quota_memory()
