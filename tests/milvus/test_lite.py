"""Milvus Lite's file lock and package, with real Milvus Lite files and a real second process."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from airflow_provider_gemini_milvus.exceptions import GeminiMilvusProviderError
from airflow_provider_gemini_milvus.hooks.milvus import MilvusHook
from airflow_provider_gemini_milvus.milvus.lite import deleted_count, lite_file_locked

HoldFile = Callable[..., object]


def test_the_lock_probe_sees_another_process(milvus_db_path: Path, lite_file_holder: HoldFile) -> None:
    assert not lite_file_locked(str(milvus_db_path))  # never opened
    lite_file_holder(milvus_db_path)
    assert lite_file_locked(str(milvus_db_path))


def test_a_task_waits_for_another_process_to_release_the_file(
    milvus_db_path: Path,
    lite_file_holder: HoldFile,
    lite_lock_wait: Callable[[float], None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    lite_lock_wait(60)  # a bound, not a duration: the hook opens the file as soon as it is free
    lite_file_holder(milvus_db_path, release_after=2.0)
    caplog.set_level(logging.INFO)
    with MilvusHook() as hook:
        assert hook.test_connection()[0]
    # Milvus Lite's own ERROR traceback for a locked file is replaced by the hook's warning.
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


def test_a_file_held_for_longer_than_lite_lock_wait_gives_the_lock_error(
    milvus_db_path: Path, lite_file_holder: HoldFile, lite_lock_wait: Callable[[float], None]
) -> None:
    lite_lock_wait(1)
    lite_file_holder(milvus_db_path)
    with pytest.raises(
        GeminiMilvusProviderError,
        match=r"locked by another process \(DataDirLockedError\), which did not release it within 1 s",
    ):
        MilvusHook().get_conn()
    assert MilvusHook().test_connection()[1].startswith(f"Could not list collections at {milvus_db_path}: ")


def test_without_milvus_lite_the_error_names_the_package_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "milvus.db"
    monkeypatch.setenv("AIRFLOW_CONN_MILVUS_LITE", json.dumps({"conn_type": "milvus", "host": str(path)}))
    # An import of a package mapped to None in sys.modules fails, as it does when it is not installed.
    monkeypatch.setitem(sys.modules, "milvus_lite", None)
    monkeypatch.setitem(sys.modules, "milvus_lite.server_manager", None)
    ok, message = MilvusHook(milvus_conn_id="milvus_lite").test_connection()
    assert not ok
    assert 'Install it with: pip install "pymilvus[milvus-lite]"' in message
    assert "No module named" not in message
    with pytest.raises(GeminiMilvusProviderError, match=r"points at the Milvus Lite file .* not installed"):
        MilvusHook(milvus_conn_id="milvus_lite").get_conn()


def test_deleted_count_reads_a_server_dict_and_a_lite_key_list() -> None:
    assert deleted_count({"delete_count": 2}, 5) == 2
    assert deleted_count(["a", "b", "c"], 5) == 3
    assert deleted_count(None, 5) == 5
