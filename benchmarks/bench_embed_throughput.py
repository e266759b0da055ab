"""
Throughput of GeminiHook against the hand-rolled loop pymilvus-model users write, side by side.

The emulator runs in its own process with a simulated network latency, like a remote API, and each
configuration is timed in interleaved rounds, so the printed ratios compare like with like on a noisy
machine. Absolute times are printed only as context. A second part runs the same work against a
quota it exceeds, paced and unpaced, and counts the 429 answers.

Run: ``make bench`` (or ``.venv/bin/python benchmarks/bench_embed_throughput.py``).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING

from google import genai
from google.genai import types

from airflow_provider_gemini_milvus.hooks.gemini import GeminiHook
from airflow_provider_gemini_milvus.testing.gemini_emulator import GeminiEmulator

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

TEXTS = [f"document {index}: notes on topic {index % 50} with detail {index * 7}" for index in range(2000)]
API_KEY = "bench-key"
LATENCY_SECONDS = 0.05
ROUNDS = 3
QUOTA_RPM = 1200


@contextmanager
def emulator_process(latency_seconds: float) -> Iterator[str]:
    """Start the emulator CLI in another process; yield its base URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "airflow_provider_gemini_milvus.testing.gemini_emulator"]
    process = subprocess.Popen(
        [*command, "--port", str(port), "--latency", str(latency_seconds), "--api-key", API_KEY],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_listening(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def wait_until_listening(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"the emulator did not start on port {port}")


def sequential_sdk_loop(base_url: str) -> Callable[[], None]:
    """What a pymilvus-model user must write by hand: chunks of 100, one request after another."""
    client = genai.Client(api_key=API_KEY, http_options=types.HttpOptions(base_url=base_url))
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
    """The same work against a quota it exceeds threefold, paced and unpaced."""
    texts = TEXTS[:1000]
    results = {}
    for label, extra in (("unpaced", {}), ("paced", {"requests_per_minute": QUOTA_RPM})):
        emulator.configure(latency_seconds=0.0, requests_per_minute=QUOTA_RPM, quota_window_seconds=3.0)
        emulator.reset_stats()
        time.sleep(3.1)  # an empty quota window for each contender
        os.environ["AIRFLOW_CONN_GEMINI_DEFAULT"] = connection_json(
            emulator.base_url, max_retries=50, **extra
        )
        hook = GeminiHook()
        started = time.perf_counter()
        hook.embed(texts, batch_size=5, output_dimensionality=128, max_concurrency=8)
        stats = emulator.stats
        results[label] = (time.perf_counter() - started, stats.status_counts.get(429, 0), stats.texts)
    (unpaced_s, unpaced_429, unpaced_texts), (paced_s, paced_429, paced_texts) = results.values()
    print(
        f"\nQuota of {QUOTA_RPM} requests/min over a 3 s window (60 requests), "
        f"200 requests of 5 texts, 8 in flight:"
    )
    print(f"  429 answers          unpaced {unpaced_429:4d}   paced {paced_429:4d}")
    print(f"  texts embedded       unpaced {unpaced_texts:4d}   paced {paced_texts:4d}")
    print(f"  wall time            paced is {paced_s / unpaced_s:.2f}x the unpaced run's")


def connection_json(base_url: str, **extra: object) -> str:
    settings = {"base_url": base_url, "retry_initial_delay": 0.05, "retry_max_delay": 1.0, **extra}
    return json.dumps({"conn_type": "gemini", "password": API_KEY, "extra": settings})


def main() -> None:
    logging.basicConfig(level=logging.WARNING, force=True)
    for noisy in ("httpx", "httpx2", "airflow", "airflow_provider_gemini_milvus"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    with emulator_process(LATENCY_SECONDS) as base_url:
        os.environ["AIRFLOW_CONN_GEMINI_DEFAULT"] = connection_json(base_url)
        seconds = median_seconds(
            {
                "sequential SDK loop": sequential_sdk_loop(base_url),
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
    with GeminiEmulator(api_key=API_KEY) as emulator:
        quota_comparison(emulator)


if __name__ == "__main__":
    main()
