"""The emulator's Batch API and Files API surface, driven through the real google-genai SDK."""

from __future__ import annotations

from tests.testing.gemini_emulator.batch_wire import CAPTURED, capture_sdk_batch_calls


def test_the_sdk_still_sends_the_requests_the_batch_routes_were_written_against() -> None:
    recorded, parsed = capture_sdk_batch_calls()

    assert recorded == [{name: value for name, value in call.items() if name != "call"} for call in CAPTURED]
    responses = parsed["get"].dest.inlined_embed_content_responses
    assert [item.response.token_count if item.response else None for item in responses] == [3, None]
    assert responses[1].error.message == "bad"
    assert parsed["get"].error is None  # the operation's error is not mapped for the Gemini API
    assert parsed["upload"].name == "files/f1"
    assert parsed["download"].startswith(b'{"key":"0"')
