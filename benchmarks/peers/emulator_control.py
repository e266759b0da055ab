"""
The one Gemini emulator every peer talks to, in a process of its own, steered over its stdin.

It is ``python -m airflow_provider_gemini_milvus.testing.gemini_emulator`` plus what that CLI does not
offer a benchmark in another process: reading and resetting the stats, and changing the latency. It prints
its base URL on the first line, then answers one JSON line per command line:

- ``reset``: zero the stats;
- ``stats``: the texts embedded and the embed requests received since the last reset, and the peak number
  of requests served at once;
- ``latency <seconds>``: the delay added to every request from now on;
- ``stop`` (or end of input): stop serving and exit.

Run by ``run_peers.py`` with the project's ``.venv``.
"""

from __future__ import annotations

import argparse
import json
import sys

from airflow_provider_gemini_milvus.testing.gemini_emulator import GeminiEmulator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--latency", type=float, default=0.3, help="seconds added to every request")
    args = parser.parse_args()
    with GeminiEmulator(api_key=args.api_key, latency_seconds=args.latency) as emulator:
        print(json.dumps({"base_url": emulator.base_url}), flush=True)
        for line in sys.stdin:
            command, _, argument = line.strip().partition(" ")
            if command == "reset":
                emulator.reset_stats()
                answer: dict[str, object] = {"ok": True}
            elif command == "stats":
                stats = emulator.stats
                answer = {
                    "texts": stats.texts,
                    "requests": stats.requests,
                    "max_in_flight": stats.max_in_flight,
                }
            elif command == "latency":
                emulator.configure(latency_seconds=float(argument))
                answer = {"ok": True}
            elif command == "stop":
                break
            else:
                answer = {"error": f"unknown command {command!r}"}
            print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
