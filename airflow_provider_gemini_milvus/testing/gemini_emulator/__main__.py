"""
Run the emulator from a shell:
``python -m airflow_provider_gemini_milvus.testing.gemini_emulator --port 8765``.

It prints the address it serves and the ``AIRFLOW_CONN_GEMINI_DEFAULT`` value pointing at it, and stops
cleanly on SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from typing import TYPE_CHECKING

from airflow_provider_gemini_milvus.testing.gemini_emulator.server import DEFAULT_API_KEY, GeminiEmulator

if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import FrameType

__all__ = ["main"]


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_gemini_milvus.testing.gemini_emulator",
        description="Serve a local Gemini embedding API for offline tests.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="TCP port (default 8765; 0 = any free port)")
    parser.add_argument("--api-key", default=DEFAULT_API_KEY, help="the API key to accept")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every request")
    parser.add_argument("--rpm", type=float, default=None, help="embed calls allowed per minute")
    parser.add_argument("--tpm", type=float, default=None, help="input tokens allowed per minute")
    parser.add_argument("--rpd", type=int, default=None, help="embed calls allowed per day")
    parser.add_argument("--fault-rate", type=float, default=0.0, help="share of calls failing at random")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random faults")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """
    Run the emulator until SIGINT or SIGTERM.

    :param argv: command-line arguments (``sys.argv[1:]`` when ``None``).
    """
    args = _parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    emulator = GeminiEmulator(
        api_key=args.api_key,
        host=args.host,
        port=args.port,
        latency_seconds=args.latency,
        requests_per_minute=args.rpm,
        tokens_per_minute=args.tpm,
        requests_per_day=args.rpd,
        fault_rate=args.fault_rate,
        seed=args.seed,
    )
    stop_requested = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop_requested.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    emulator.start()
    print(f"Gemini emulator serving at {emulator.base_url}", flush=True)
    print(f"export AIRFLOW_CONN_GEMINI_DEFAULT='{emulator.connection_json()}'", flush=True)
    try:
        while not stop_requested.wait(0.5):
            pass
    finally:
        emulator.stop()
    print("Gemini emulator stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
