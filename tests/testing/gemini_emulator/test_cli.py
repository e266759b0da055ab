"""``python -m airflow_provider_gemini_milvus.testing.gemini_emulator``."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

from google import genai
from google.genai import types

from airflow_provider_gemini_milvus.testing.gemini_emulator import DEFAULT_API_KEY, emulated_embedding
from tests.testing.gemini_emulator.calls import embed

REPO_ROOT = Path(__file__).resolve().parents[3]


def test_cli_serves_the_same_vectors_and_exits_cleanly_on_sigterm() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_gemini_milvus.testing.gemini_emulator", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
    )
    try:
        assert process.stdout is not None
        first_line = process.stdout.readline()
        connection_line = process.stdout.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+)", first_line)
        assert match, first_line
        connection = json.loads(connection_line.split("=", 1)[1].strip().strip("'"))
        assert connection == {
            "conn_type": "gemini",
            "password": DEFAULT_API_KEY,
            "extra": {"base_url": match[1]},
        }
        cli_client = genai.Client(api_key=DEFAULT_API_KEY, http_options=types.HttpOptions(base_url=match[1]))

        assert embed(cli_client, ["same in every process"]) == [emulated_embedding("same in every process")]
    finally:
        process.send_signal(signal.SIGTERM)
        _, errors_printed = process.communicate(timeout=10)
    assert process.returncode == 0
    assert "Warning" not in errors_printed
