"""Google's error envelopes for keys and injected faults, as the SDK reads them."""

from __future__ import annotations

import json

import pytest
from google import genai
from google.genai import errors

from airflow_provider_gemini_milvus.testing.gemini_emulator import GeminiEmulator, emulated_embedding
from tests.testing.gemini_emulator.calls import MODEL, element, embed, error_detail, make_client, raw_request


def test_wrong_key_is_400_api_key_invalid_and_no_key_is_echoed(gemini_emulator: GeminiEmulator) -> None:
    wrong = make_client(gemini_emulator, api_key="wrong-secret-key")

    with pytest.raises(errors.ClientError) as caught:
        embed(wrong, ["text"])

    assert caught.value.code == 400
    assert caught.value.message == "API key not valid. Please pass a valid API key."
    info = error_detail(caught.value, "ErrorInfo")
    assert info is not None
    assert info["reason"] == "API_KEY_INVALID"
    assert "wrong-secret-key" not in json.dumps(caught.value.details)
    assert gemini_emulator.api_key not in json.dumps(caught.value.details)


def test_missing_key_is_403_and_query_key_works(gemini_emulator: GeminiEmulator) -> None:
    path = f"/v1/models/{MODEL}:batchEmbedContents"
    body = {"requests": [element("hello")]}

    missing = raw_request(gemini_emulator, path, body)
    in_query = raw_request(gemini_emulator, path, body, key=gemini_emulator.api_key, key_in_query=True)

    assert missing.status == 403
    assert missing.body["error"]["status"] == "PERMISSION_DENIED"
    assert "unregistered callers" in missing.body["error"]["message"]
    assert in_query.status == 200
    assert in_query.body["embeddings"][0]["values"] == emulated_embedding("hello")
    assert gemini_emulator.api_key not in in_query.text


def test_vertex_missing_key_is_401(gemini_emulator: GeminiEmulator) -> None:
    path = f"/v1beta1/publishers/google/models/{MODEL}:embedContent"

    answer = raw_request(gemini_emulator, path, {"content": {"parts": [{"text": "hello"}]}})

    assert (answer.status, answer.body["error"]["status"]) == (401, "UNAUTHENTICATED")


def test_injected_429_with_a_retry_delay_carries_quota_failure_and_retry_info(
    client: genai.Client, gemini_emulator: GeminiEmulator
) -> None:
    gemini_emulator.fail_next(1, status=429, retry_delay=1.25)

    with pytest.raises(errors.ClientError) as caught:
        embed(client, ["a"])

    failure = error_detail(caught.value, "QuotaFailure")
    retry = error_detail(caught.value, "RetryInfo")
    assert failure is not None
    assert failure["violations"][0]["quotaDimensions"] == {"model": MODEL, "location": "global"}
    assert retry == {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1.25s"}
    assert "Please retry in 1.25s." in (caught.value.message or "")
