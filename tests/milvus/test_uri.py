"""Connection fields to ``MilvusClient`` arguments, and token redaction. Nothing connects."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_provider_gemini_milvus.milvus.uri import build_client_kwargs, redact_token


def test_kwargs_for_a_lite_path_are_absolute_and_dedicated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    kwargs = build_client_kwargs(host="data/milvus.db", extra={"timeout": "7"})
    assert kwargs == {"uri": str(tmp_path / "data" / "milvus.db"), "dedicated": True, "timeout": 7.0}


def test_kwargs_default_to_a_lite_file_in_airflow_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    assert build_client_kwargs(host=None)["uri"] == str(tmp_path / "milvus_lite" / "milvus.db")
    assert build_client_kwargs(host="  ")["uri"] == str(tmp_path / "milvus_lite" / "milvus.db")


def test_kwargs_for_a_server_with_token_and_database() -> None:
    kwargs = build_client_kwargs(
        host="https://in01.zillizcloud.com:19538", password="api-key", schema="prod", extra={"timeout": 30}
    )
    assert kwargs == {
        "uri": "https://in01.zillizcloud.com:19538",
        "token": "api-key",
        "db_name": "prod",
        "timeout": 30.0,
    }


def test_kwargs_join_user_and_password_into_the_token() -> None:
    kwargs = build_client_kwargs(host="http://milvus:19530", login="root", password="Milvus")
    assert kwargs == {"uri": "http://milvus:19530", "token": "root:Milvus"}


def test_kwargs_move_credentials_out_of_the_uri() -> None:
    kwargs = build_client_kwargs(host="https://alice:s3cret@milvus.example.com/db1")
    assert kwargs["uri"] == "https://milvus.example.com/db1"
    assert kwargs["token"] == "alice:s3cret"
    # An explicit password wins over credentials in the URI.
    assert build_client_kwargs(host="http://u:p@h:1", password="tok")["token"] == "tok"


def test_kwargs_for_a_bare_host_use_port_and_secure() -> None:
    assert build_client_kwargs(host="milvus", port=19531) == {"uri": "http://milvus:19531"}
    assert build_client_kwargs(host="milvus", extra={"secure": "true"}) == {
        "uri": "https://milvus",
        "secure": True,
    }


def test_kwargs_refuse_a_user_without_password_and_a_bad_timeout() -> None:
    with pytest.raises(ValueError, match="User is set but Password is empty"):
        build_client_kwargs(host="http://milvus:19530", login="root")
    with pytest.raises(ValueError, match="extra 'timeout' must be a positive number, got 'soon'"):
        build_client_kwargs(host="http://milvus:19530", extra={"timeout": "soon"})
    with pytest.raises(ValueError, match="extra 'secure' must be true or false, got 'treu'"):
        build_client_kwargs(host="milvus", extra={"secure": "treu"})


# --- redaction --------------------------------------------------------------------------------------


def test_the_default_password_milvus_leaves_the_word_milvus_alone() -> None:
    message = (
        "Milvus at http://root:Milvus@milvus:19530 refused token=root:Milvus; "
        '{"password": "Milvus"}; authorization: Basic cm9vdDpNaWx2dXM=; see the Milvus docs'
    )
    assert redact_token(message, "root:Milvus") == (
        "Milvus at http://root:***@milvus:19530 refused token=***; "
        '{"password": "***"}; authorization: Basic ***; see the Milvus docs'
    )
    assert (
        redact_token("Could not open Milvus: Milvus says no", "Milvus")
        == "Could not open Milvus: Milvus says no"
    )


def test_a_distinctive_token_is_redacted_wherever_it_appears() -> None:
    api_key = "db-4f9c2a7e81d3"
    assert (
        redact_token(f"gateway echoed {api_key} (key {api_key})", api_key) == "gateway echoed *** (key ***)"
    )
    assert redact_token("user alice, password s3cret-pw! rejected", "alice:s3cret-pw!") == (
        "user alice, password *** rejected"
    )


def test_redaction_without_a_token_still_hides_credentials_in_uris_and_fields() -> None:
    assert (
        redact_token("at https://bob:hunter2@h/db, api_key=abc123", None)
        == "at https://bob:***@h/db, api_key=***"
    )
