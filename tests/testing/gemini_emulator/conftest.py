"""An SDK client of the plugin's ``gemini_emulator`` fixture."""

from __future__ import annotations

import pytest
from google import genai

from airflow_provider_gemini_milvus.testing.gemini_emulator import GeminiEmulator
from tests.testing.gemini_emulator.calls import make_client


@pytest.fixture
def client(gemini_emulator: GeminiEmulator) -> genai.Client:
    return make_client(gemini_emulator)
