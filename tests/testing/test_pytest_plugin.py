"""The pytest fixtures the provider ships for offline Gemini tests."""

from __future__ import annotations

import json
import os

from google import genai
from google.genai import types

from airflow_provider_gemini_milvus.hooks.gemini import GeminiHook
from airflow_provider_gemini_milvus.testing.gemini_emulator import GeminiEmulator
from airflow_provider_gemini_milvus.testing.pytest_plugin import GeminiConnectionFactory


def test_gemini_emulator_fixture_is_running(gemini_emulator: GeminiEmulator) -> None:
    client = genai.Client(
        api_key=gemini_emulator.api_key, http_options=types.HttpOptions(base_url=gemini_emulator.base_url)
    )

    response = client.models.embed_content(model="gemini-embedding-001", contents="hello")

    assert response.embeddings is not None
    assert gemini_emulator.stats.succeeded_requests == 1


def test_gemini_connection_fixture_sets_the_environment(
    gemini_connection: str, gemini_emulator: GeminiEmulator
) -> None:
    connection = json.loads(os.environ["AIRFLOW_CONN_GEMINI_DEFAULT"])

    assert gemini_connection == "gemini_default"
    assert connection == {
        "conn_type": "gemini",
        "password": gemini_emulator.api_key,
        "extra": {
            "base_url": gemini_emulator.base_url,
            "max_retries": 5,
            "retry_initial_delay": 0.01,
            "retry_max_delay": 0.2,
        },
    }


def test_gemini_connection_factory_merges_extras_over_the_test_defaults(
    gemini_connection_factory: GeminiConnectionFactory, gemini_emulator: GeminiEmulator
) -> None:
    conn_id = gemini_connection_factory(batch_size=50, max_retries=0)

    assert conn_id == "gemini_default"
    assert json.loads(os.environ["AIRFLOW_CONN_GEMINI_DEFAULT"]) == {
        "conn_type": "gemini",
        "password": gemini_emulator.api_key,
        "extra": {
            "base_url": gemini_emulator.base_url,
            "max_retries": 0,
            "retry_initial_delay": 0.01,
            "retry_max_delay": 0.2,
            "batch_size": 50,
        },
    }


def test_gemini_connection_factory_sets_the_connection_a_hook_reads(
    gemini_connection_factory: GeminiConnectionFactory,
) -> None:
    conn_id = gemini_connection_factory("gemini_other")

    connected, message = GeminiHook(gemini_conn_id=conn_id).test_connection()

    assert conn_id == "gemini_other"
    assert connected, message
