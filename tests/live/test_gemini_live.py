"""Against the real Gemini API: skipped unless GEMINI_API_KEY is set (it costs a fraction of a cent)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from airflow_provider_gemini_milvus.hooks.gemini import GeminiHook

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(not os.environ.get("GEMINI_API_KEY"), reason="GEMINI_API_KEY is not set"),
]

DOCUMENTS = [
    "Artificial intelligence was founded as an academic discipline in 1956.",
    "Alan Turing was the first person to conduct substantial research in AI.",
    "Born in Maida Vale, London, Turing was raised in southern England.",
]
QUESTIONS = ["When was artificial intelligence founded", "Where was Alan Turing born?"]


@pytest.fixture
def live_hook(monkeypatch: pytest.MonkeyPatch) -> GeminiHook:
    connection = {"conn_type": "gemini", "password": os.environ["GEMINI_API_KEY"]}
    monkeypatch.setenv("AIRFLOW_CONN_GEMINI_DEFAULT", json.dumps(connection))
    return GeminiHook()


def test_connection(live_hook: GeminiHook) -> None:
    ok, message = live_hook.test_connection()
    assert ok, message


def test_seed_questions_find_their_documents(live_hook: GeminiHook) -> None:
    documents = live_hook.encode_documents(DOCUMENTS, output_dimensionality=768)
    queries = live_hook.encode_queries(QUESTIONS, output_dimensionality=768)
    assert documents.shape == (3, 768)
    np.testing.assert_allclose(np.linalg.norm(documents, axis=1), 1.0, atol=1e-5)
    assert list((queries @ documents.T).argmax(axis=1)) == [0, 2]
