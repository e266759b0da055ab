"""Checking media before anything is paid: type, size, pages, duration, read from the bytes."""

from __future__ import annotations

import base64
import hashlib
import io
import sys

import pytest

from airflow_provider_gemini_milvus.gemini.media import (
    MAX_AUDIO_SECONDS,
    MAX_PDF_PAGES,
    MediaPart,
    inspect_media,
    media_tokens,
    sniff_mime_type,
)
from airflow_provider_gemini_milvus.gemini.models import MODELS
from airflow_provider_gemini_milvus.gemini.requests import (
    content_parts,
    mixed_cost_usd,
    plan_requests,
    validated_inputs,
    validated_request,
)
from airflow_provider_gemini_milvus.testing.sample_media import pdf_bytes, png_bytes, wav_bytes

PNG = png_bytes(8, 8, (200, 30, 30), description="a red jacket")


def inspect(data: bytes, mime_type: str | None = None) -> object:
    return inspect_media(io.BytesIO(data), mime_type=mime_type, where="documents[0] field 'media'")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (PNG, "image/png"),
        (b"\xff\xd8\xff\xe0" + b"\0" * 20, "image/jpeg"),
        (pdf_bytes(["one"]), "application/pdf"),
        (wav_bytes(0.5), "audio/wav"),
        (b"ID3\x04" + b"\0" * 20, "audio/mpeg"),
        (b"\0\0\0\x18ftypisom" + b"\0" * 12, "video/mp4"),
        (b"\0\0\0\x14ftypqt  " + b"\0" * 12, "video/quicktime"),
        (b"plain text, not media", None),
    ],
)
def test_the_bytes_tell_the_type(data: bytes, expected: str | None) -> None:
    assert sniff_mime_type(data[:64]) == expected


def test_an_image_is_hashed_over_its_bytes_and_counts_258_tokens() -> None:
    facts = inspect(PNG)

    assert (facts.mime_type, facts.size_bytes, facts.tokens) == ("image/png", len(PNG), 258)
    assert facts.sha256 == hashlib.sha256(PNG).hexdigest()
    assert facts.inline


def test_a_pdf_counts_its_pages_and_a_recording_its_seconds() -> None:
    pdf = inspect(pdf_bytes(["one", "two", "three"]))
    wav = inspect(wav_bytes(2.0), "audio/x-wav")

    assert (pdf.pages, pdf.tokens) == (3, 3 * 258)
    assert (wav.mime_type, round(wav.seconds, 2), wav.tokens) == ("audio/wav", 2.0, 64)


def test_each_bad_media_is_refused_by_name() -> None:
    cases = {
        "is a PDF of 7 pages": pdf_bytes(["page"] * (MAX_PDF_PAGES + 1)),
        f"is {MAX_AUDIO_SECONDS + 1:.1f} s of audio": wav_bytes(MAX_AUDIO_SECONDS + 1),
        "could not be told from its bytes": b"plain text",
        "is empty": b"",
    }
    for message, data in cases.items():
        with pytest.raises(ValueError, match=r"documents\[0\] field 'media'") as refused:
            inspect(data)
        assert message in str(refused.value)


def test_a_given_type_must_be_embeddable_and_agree_with_the_bytes() -> None:
    with pytest.raises(ValueError, match="mime_type 'image/gif' is not one gemini-embedding-2 embeds"):
        inspect(PNG, "image/gif")
    with pytest.raises(ValueError, match="mime_type is 'image/jpeg' but its bytes are image/png"):
        inspect(PNG, "image/jpeg")


def test_without_the_media_extra_a_pdf_is_refused_with_the_install_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "pypdf", None)  # as if the extra were not installed

    with pytest.raises(
        ValueError, match=r"needs pypdf; pip install 'airflow-provider-gemini-milvus\[media\]'"
    ):
        inspect(pdf_bytes(["one"]))


def test_a_part_goes_inline_as_base64_or_by_its_upload_and_checks_its_bytes() -> None:
    facts = inspect(PNG)
    part = MediaPart(facts, lambda: PNG, where="documents[0] media")

    assert content_parts("title: none | text: red", part) == [
        {"text": "title: none | text: red"},
        {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(PNG).decode()}},
    ]
    assert content_parts("", part.uploaded("https://files/abc")) == [
        {"fileData": {"mimeType": "image/png", "fileUri": "https://files/abc"}}
    ]
    changed = MediaPart(facts, lambda: PNG + b"!", where="documents[0] media")
    with pytest.raises(ValueError, match="documents\\[0\\] media changed while the run was reading it"):
        changed.wire()


def test_media_need_a_model_that_embeds_them() -> None:
    part = MediaPart(inspect(PNG), lambda: PNG, where="documents[2] field 'media'")

    with pytest.raises(
        ValueError, match=r"documents\[2\] field 'media' is image/png, but gemini-embedding-001"
    ):
        validated_inputs(
            ["a"], None, validated_request("gemini-embedding-001", "RETRIEVAL_DOCUMENT", None), [part]
        )
    texts, _, media = validated_inputs(
        ["", "words"], None, validated_request("gemini-embedding-2", "RETRIEVAL_DOCUMENT", None), [part, None]
    )
    assert texts == ["", "title: none | text: words"]  # a media item alone goes without a text part
    assert media == [part, None]


def test_requests_keep_inline_media_under_the_request_size_and_count_media_tokens() -> None:
    big = inspect(b"\x89PNG\r\n\x1a\n" + b"\0" * (9 * 1024 * 1024))
    parts = [MediaPart(big, lambda: b"", where=f"documents[{i}]") for i in range(3)]

    requests = plan_requests(["", "", ""], None, 100, None, parts)

    assert [len(request.texts) for request in requests] == [1, 1, 1]  # two would pass 14 MB
    assert requests[0].media_tokens() == {"image": 258, "audio": 0, "video": 0}


def test_media_tokens_are_priced_at_their_own_rates() -> None:
    model = MODELS["gemini-embedding-2"]
    prices = dict(model.media_usd_per_million_tokens)

    cost = mixed_cost_usd(
        1_000_258, {"image": 258, "audio": 0, "video": 0}, model.usd_per_million_tokens, prices
    )

    assert cost == pytest.approx(1_000_000 * 0.20 / 1e6 + 258 * 0.45 / 1e6)
    assert model.usd_per_million("video", batch=True) == 6.0
    assert media_tokens("video/mp4", seconds=10) == 2630
    assert not MODELS["gemini-embedding-001"].embeds_media
