"""GeminiEmulator: knobs, the connection it offers, and a gateway that echoes the key."""

from __future__ import annotations

import json

import pytest
from google import genai
from google.genai import errors

from airflow_provider_gemini_milvus.testing.gemini_emulator import GeminiEmulator
from tests.testing.gemini_emulator.calls import embed, make_client


def test_configure_rejects_unknown_knobs(gemini_emulator: GeminiEmulator) -> None:
    with pytest.raises(TypeError):
        gemini_emulator.configure(requests_per_hour=3)
    with pytest.raises(ValueError, match="fault_rate"):
        gemini_emulator.configure(fault_rate=2)


def test_echo_api_key_in_errors_puts_the_received_key_in_error_messages(
    gemini_emulator: GeminiEmulator, client: genai.Client
) -> None:
    gemini_emulator.configure(echo_api_key_in_errors=True)
    gemini_emulator.fail_next(1, status=503)

    with pytest.raises(errors.ServerError) as injected:
        embed(client, ["a"])
    with pytest.raises(errors.ClientError) as wrong_key:
        embed(make_client(gemini_emulator, api_key="wrong-secret-key"), ["a"])

    assert gemini_emulator.api_key in (injected.value.message or "")
    assert "wrong-secret-key" in (wrong_key.value.message or "")
    assert (injected.value.code, wrong_key.value.code) == (503, 400)


def test_echo_api_key_in_errors_is_off_by_default(
    gemini_emulator: GeminiEmulator, client: genai.Client
) -> None:
    gemini_emulator.fail_next(1, status=500)

    with pytest.raises(errors.ServerError) as caught:
        embed(client, ["a"])

    assert gemini_emulator.api_key not in json.dumps(caught.value.details)


def test_connection_json_points_at_the_emulator_with_extras() -> None:
    emulator = GeminiEmulator(api_key="k", port=1234)

    assert json.loads(emulator.connection_json(batch_size=50)) == {
        "conn_type": "gemini",
        "password": "k",
        "extra": {"base_url": "http://127.0.0.1:1234", "batch_size": 50},
    }


def test_host_and_port_cannot_change_while_running(gemini_emulator: GeminiEmulator) -> None:
    with pytest.raises(ValueError, match="running"):
        gemini_emulator.configure(port=1)
