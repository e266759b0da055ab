"""
Throughput of GeminiHook against the hand-rolled loop pymilvus-model users write, side by side.

Everything runs in one process against the bundled emulator with a simulated network latency, and
each configuration is timed in interleaved rounds, so the printed ratios compare like with like on a
noisy machine. Absolute times are printed only as context.

Run: ``make bench`` (or ``.venv/bin/python benchmarks/bench_embed_throughput.py``).
"""

from __future__ import annotations

import json
import os
import statistics
import time
from typing import TYPE_CHECKING

from google import genai
from google.genai import types

from airflow_provider_gemini_milvus.hooks.gemini import GeminiHook
from airflow_provider_gemini_milvus.testing.gemini_emulator import GeminiEmulator

if TYPE_CHECKING:
    from collections.abc import Callable

TEXTS = [f"document {index}: notes on topic {index % 50} with detail {index * 7}" for index in range(2000)]
LATENCY_SECONDS = 0.05
ROUNDS = 3


def sequential_sdk_loop(emulator: GeminiEmulator) -> Callable[[], None]:
    """What a pymilvus-model user must write by hand: chunks of 100, one request after another."""
    client = genai.Client(
        api_key=emulator.api_key, http_options=types.HttpOptions(base_url=emulator.base_url)
    )
    config = types.EmbedContentConfig(task_type="RETRIEVAL_DOCUMENT", output_dimensionality=768)

    def run() -> None:
        for start in range(0, len(TEXTS), 100):
            client.models.embed_content(
                model="gemini-embedding-001", contents=TEXTS[start : start + 100], config=config
            )

    return run


def hook_run(max_concurrency: int) -> Callable[[], None]:
    hook = GeminiHook()

    def run() -> None:
        hook.embed(TEXTS, output_dimensionality=768, max_concurrency=max_concurrency)

    return run


def median_seconds(runs: dict[str, Callable[[], None]]) -> dict[str, float]:
    timings: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(ROUNDS):
        for name, run in runs.items():
            started = time.perf_counter()
            run()
            timings[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in timings.items()}


def quota_comparison(emulator: GeminiEmulator) -> None:
    """The same work against a per-minute quota, paced and unpaced."""
    texts = TEXTS[:300]
    results = {}
    for label, extra in (("unpaced", {}), ("paced", {"requests_per_minute": 1200})):
        emulator.configure(latency_seconds=0.0, requests_per_minute=1200, quota_window_seconds=3.0)
        emulator.reset_stats()
        time.sleep(3.1)  # an empty quota window for each contender
        os.environ["AIRFLOW_CONN_GEMINI_DEFAULT"] = connection_json(emulator, max_retries=30, **extra)
        hook = GeminiHook()
        started = time.perf_counter()
        hook.embed(texts, batch_size=5, output_dimensionality=128, max_concurrency=8)
        results[label] = (time.perf_counter() - started, emulator.stats.status_counts.get(429, 0))
    (unpaced_s, unpaced_429), (paced_s, paced_429) = results["unpaced"], results["paced"]
    print("\nQuota of 1200 requests/min, 60 requests of 5 texts, 8 in flight:")
    print(f"  429 answers       unpaced {unpaced_429:4d}   paced {paced_429:4d}")
    print(f"  time paced / unpaced: {paced_s / unpaced_s:.2f}x  (both finish all 300 texts)")


def connection_json(emulator: GeminiEmulator, **extra: object) -> str:
    settings = {"base_url": emulator.base_url, "retry_initial_delay": 0.05, "retry_max_delay": 1.0, **extra}
    return json.dumps({"conn_type": "gemini", "password": emulator.api_key, "extra": settings})


def main() -> None:
    with GeminiEmulator(latency_seconds=LATENCY_SECONDS) as emulator:
        os.environ["AIRFLOW_CONN_GEMINI_DEFAULT"] = connection_json(emulator)
        seconds = median_seconds(
            {
                "sequential SDK loop": sequential_sdk_loop(emulator),
                "GeminiHook, 1 in flight": hook_run(1),
                "GeminiHook, 8 in flight": hook_run(8),
            }
        )
        baseline = seconds["sequential SDK loop"]
        print(
            f"{len(TEXTS)} texts, 768 dims, {LATENCY_SECONDS * 1000:.0f} ms simulated latency, "
            f"median of {ROUNDS} rounds:"
        )
        for name, value in seconds.items():
            print(f"  {name:26s} {baseline / value:5.2f}x the sequential loop's throughput ({value:.2f}s)")
        print(
            "  (pymilvus-model's GeminiEmbeddingFunction itself sends all texts in one request: "
            "above 100 texts the API answers 400.)"
        )
        quota_comparison(emulator)


if __name__ == "__main__":
    main()
