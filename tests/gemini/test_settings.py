"""Reading a ``gemini`` connection: where the key may be sent. Pure code, no server."""

from __future__ import annotations

import json

import pytest

from airflow_provider_gemini_milvus.gemini.settings import checked_base_url, read_settings


@pytest.mark.parametrize(
    "base_url",
    [
        None,
        "https://gateway.example.com/gemini",
        "HTTPS://gateway.example.com",
        "http://localhost:8765",
        "http://LOCALHOST.:8765",
        "http://127.0.0.1:8765",
        "http://127.3.2.1:8765/v1beta",
        "http://[::1]:8765",
    ],
)
def test_https_anywhere_and_http_to_this_machine_are_accepted(base_url: str | None) -> None:
    assert checked_base_url(base_url, "gemini_default") == base_url


@pytest.mark.parametrize(
    ("base_url", "shown"),
    [
        ("http://example.invalid", "http://example.invalid"),
        ("http://10.1.2.3:8080/gemini", "http://10.1.2.3"),
        ("http://127.0.0.1.example.com", "http://127.0.0.1.example.com"),
        ("http://localhost.example.com", "http://localhost.example.com"),
        ("http://[::ffff:10.0.0.1]", "http://::ffff:10.0.0.1"),
        ("http://user:hunter2@gateway.example.com", "http://gateway.example.com"),
    ],
)
def test_plain_http_elsewhere_is_refused_showing_only_scheme_and_host(base_url: str, shown: str) -> None:
    with pytest.raises(ValueError, match="plain http to a host that is not this machine") as excinfo:
        checked_base_url(base_url, "gemini_default")
    message = str(excinfo.value)
    assert f"connection 'gemini_default': base_url {shown} is plain http" in message
    assert "hunter2" not in message


@pytest.mark.parametrize(
    ("base_url", "got"),
    [("ftp://gateway.example.com", "scheme 'ftp'"), ("gateway.example.com:443", "no scheme")],
)
def test_other_schemes_are_refused(base_url: str, got: str) -> None:
    with pytest.raises(ValueError, match=f"base_url must start with https:// .*got {got}"):
        checked_base_url(base_url, "gemini_default")


def test_settings_refuse_a_plain_http_base_url_and_keep_the_key_out_of_repr() -> None:
    with pytest.raises(ValueError, match="plain http"):
        read_settings("AIza-secret", {"base_url": "http://10.0.0.8"}, "gemini_default")
    settings = read_settings("AIza-secret", {"base_url": "https://gateway.example.com"}, "gemini_default")
    assert settings.api_key == "AIza-secret"
    assert "AIza-secret" not in repr(settings)


def test_secrets_hold_the_api_key_and_every_secret_of_a_service_account_key() -> None:
    body = "MIIEvAIBADANBgkqhkiG9w0BAQEFAASC"
    pem = f"-----BEGIN PRIVATE KEY-----\n{body}\nBKYwggSiAgEAAoIBAQDK\n-----END PRIVATE KEY-----\n"
    info = {"private_key": pem, "private_key_id": "abc123def456", "client_email": "sa@p.iam", "type": "x"}
    settings = read_settings("AIza-key", {"service_account_json": json.dumps(info)}, "gemini_default")

    secrets = settings.secrets
    assert {
        "AIza-key",
        pem,
        json.dumps(pem)[1:-1],
        "abc123def456",
        "MIIEvAIBADANBgkqhkiG9w0BAQEFAASC",
    } <= set(secrets)
    assert "sa@p.iam" not in secrets  # not a secret
    assert list(secrets) == sorted(secrets, key=len, reverse=True)
    assert "AIza-key" not in repr(settings)
    assert "abc123def456" not in repr(settings)
