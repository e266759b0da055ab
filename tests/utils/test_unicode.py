"""Lone surrogates are found wherever they hide, and named by their path."""

from __future__ import annotations

import pytest

from airflow_provider_gemini_milvus.utils.unicode import check_utf8_encodable


def test_valid_utf8_passes() -> None:
    check_utf8_encodable({"a": ["é", "漢字", 3, None], "b": "🙂"}, "documents[0]")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("ab\ud800", r"^documents\[0\] holds a lone surrogate \(U\+D800 at character 2\)"),
        ({"tags": ["x", "\udc80"]}, r"^documents\[0\]\['tags'\]\[1\] holds"),
        ({"k\ud800": 1}, r"^documents\[0\] key holds"),
        ([("ok", "\ud800")], r"^documents\[0\]\[0\]\[1\] holds"),
    ],
)
def test_lone_surrogates_are_named_by_path(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_utf8_encodable(value, "documents[0]")
