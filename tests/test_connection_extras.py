"""One declaration per connection extra: the form, the default and the reader agree."""

from __future__ import annotations

import json
import logging

import pytest

from airflow_provider_gemini_milvus.connection_extras import (
    GEMINI_EXTRA_FIELDS,
    MILVUS_EXTRA_FIELDS,
    ConnectionExtras,
    ExtraField,
)
from airflow_provider_gemini_milvus.hooks.gemini import GeminiHook
from airflow_provider_gemini_milvus.hooks.milvus import MilvusHook
from airflow_provider_gemini_milvus.provider_info import get_provider_info
from airflow_provider_gemini_milvus.utils.converters import parse_bool


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        ("True", True),
        ("false", False),
        (" FALSE ", False),
        ("1", True),
        ("0", False),
        ("yes", True),
        ("off", False),
        (1, True),
        (0, False),
        ("treu", None),
        ("", None),
        (2, None),
        (None, None),
        ("False ", False),
    ],
)
def test_parse_bool_accepts_only_clear_booleans(value: object, expected: bool | None) -> None:
    assert parse_bool(value) is expected


def _forms() -> dict[str, dict[str, object]]:
    return {
        conn_type["connection-type"]: conn_type["conn-fields"]
        for conn_type in get_provider_info()["connection-types"]
    }


@pytest.mark.parametrize(
    ("conn_type", "fields"), [("gemini", GEMINI_EXTRA_FIELDS), ("milvus", MILVUS_EXTRA_FIELDS)]
)
def test_every_declared_extra_is_in_its_form_with_its_default(
    conn_type: str, fields: tuple[ExtraField, ...]
) -> None:
    form = _forms()[conn_type]
    assert list(form) == [field.name for field in fields]
    for field in fields:
        assert form[field.name]["schema"].get("default") == field.default, field.name


def test_retry_delays_are_in_the_gemini_form() -> None:
    assert {"retry_initial_delay", "retry_max_delay", "max_retries"} <= set(_forms()["gemini"])


def _every_gemini_extra() -> dict[str, object]:
    return {
        "base_url": "http://127.0.0.1:1",
        "api_version": "v1beta",
        "timeout": "12.5",
        "max_concurrency": "3",
        "adaptive_concurrency": "false",
        "remember_quota": "no",
        "requests_per_minute": 100,
        "tokens_per_minute": "5000",
        "max_retries": "0",
        "retry_initial_delay": 0.5,
        "retry_max_delay": "9",
        "vertexai": "False",
        "project": "p",
        "location": "europe-west4",
        "service_account_json": json.dumps({"type": "service_account"}),
    }


def test_the_gemini_hook_reads_every_declared_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    extra = _every_gemini_extra()
    assert set(extra) == {field.name for field in GEMINI_EXTRA_FIELDS}
    monkeypatch.setenv(
        "AIRFLOW_CONN_GEMINI_DEFAULT", json.dumps({"conn_type": "gemini", "password": "k", "extra": extra})
    )
    settings = GeminiHook().settings
    assert (settings.base_url, settings.api_version) == ("http://127.0.0.1:1", "v1beta")
    assert (settings.timeout, settings.max_concurrency, settings.adaptive_concurrency) == (12.5, 3, False)
    assert settings.remember_quota is False
    assert (settings.requests_per_minute, settings.tokens_per_minute) == (100, 5000)
    assert (settings.backoff.max_retries, settings.backoff.initial_delay, settings.backoff.max_delay) == (
        0,
        0.5,
        9.0,
    )
    assert (settings.vertexai, settings.project, settings.location) == (False, "p", "europe-west4")
    assert settings.service_account_info == {"type": "service_account"}


def test_the_milvus_hook_reads_every_declared_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    extra = {"timeout": "7", "secure": "TRUE", "lite_lock_wait": "5"}
    assert set(extra) == {field.name for field in MILVUS_EXTRA_FIELDS}
    monkeypatch.setenv(
        "AIRFLOW_CONN_MILVUS_DEFAULT", json.dumps({"conn_type": "milvus", "host": "milvus", "extra": extra})
    )
    hook = MilvusHook()
    assert hook.client_kwargs == {"uri": "https://milvus", "secure": True, "timeout": 7.0}
    assert hook.lite_lock_wait == 5.0


def test_both_hooks_accept_the_ui_prefixed_form_and_refuse_treu_alike() -> None:
    for conn_type, fields in (("gemini", GEMINI_EXTRA_FIELDS), ("milvus", MILVUS_EXTRA_FIELDS)):
        name = "vertexai" if conn_type == "gemini" else "secure"
        assert ConnectionExtras(conn_type, fields, {f"extra__{conn_type}__{name}": "true"}).boolean(name)
        with pytest.raises(ValueError, match=f"extra '{name}' must be true or false, got 'treu'"):
            ConnectionExtras(conn_type, fields, {name: "treu"}, conn_id="c").boolean(name)


def test_defaults_apply_when_absent_or_empty() -> None:
    extras = ConnectionExtras("gemini", GEMINI_EXTRA_FIELDS, {"timeout": "", "max_concurrency": None})
    assert extras.number("timeout") == 60.0
    assert extras.integer("max_concurrency") == 32
    assert extras.boolean("adaptive_concurrency") is True
    assert extras.boolean("vertexai") is False
    assert extras.string("base_url") is None


def test_a_secret_value_is_never_echoed() -> None:
    secret = '{"private_key": "-----BEGIN PRIVATE KEY-----abc'
    extras = ConnectionExtras("gemini", GEMINI_EXTRA_FIELDS, {"service_account_json": secret}, conn_id="g")
    with pytest.raises(ValueError, match="'service_account_json' is not valid JSON") as caught:
        extras.json_object("service_account_json")
    assert "PRIVATE KEY" not in str(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def test_reading_an_undeclared_extra_is_a_programming_error() -> None:
    extras = ConnectionExtras("milvus", MILVUS_EXTRA_FIELDS, {})
    with pytest.raises(KeyError):
        extras.string("retry_delay")
    with pytest.raises(TypeError, match="declared as boolean"):
        extras.string("secure")


def test_unknown_extras_are_named_in_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        ConnectionExtras("gemini", GEMINI_EXTRA_FIELDS, {"max_concurency": 4321, "timeout": 5}, conn_id="g")
    (message,) = [record.getMessage() for record in caplog.records]
    assert "connection 'g' ignores unknown extra(s) 'max_concurency'" in message
    assert "4321" not in message
