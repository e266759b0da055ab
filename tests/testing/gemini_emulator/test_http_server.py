"""The HTTP plumbing never logs an API key or a payload."""

from __future__ import annotations

import logging

import pytest

from airflow_provider_gemini_milvus.testing.gemini_emulator import GeminiEmulator
from tests.testing.gemini_emulator.calls import MODEL, element, raw_request


def test_key_never_reaches_the_log(gemini_emulator: GeminiEmulator, caplog: pytest.LogCaptureFixture) -> None:
    gemini_emulator.configure(api_key="very-secret-key")
    caplog.set_level(logging.DEBUG, logger="airflow_provider_gemini_milvus")
    path = f"/v1/models/{MODEL}:batchEmbedContents"

    raw_request(
        gemini_emulator,
        path,
        {"requests": [element("secret text")]},
        key="very-secret-key",
        key_in_query=True,
    )
    raw_request(gemini_emulator, path, {"requests": [element("x")]}, key="another-secret", key_in_query=True)

    assert caplog.records
    assert "very-secret-key" not in caplog.text
    assert "another-secret" not in caplog.text
    assert "secret text" not in caplog.text
