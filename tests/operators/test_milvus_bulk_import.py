"""
MilvusInsertOperator's ``load_method`` on Milvus Lite, which has no bulk import: every load falls back to
batched writes and says so; the arguments are converted from their rendered (string) form. The import
itself is tested against a real server in tests/server/test_bulk_import_operator.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from airflow_provider_gemini_milvus.hooks.milvus import MilvusHook
from airflow_provider_gemini_milvus.loading.bulk_import import (
    DEFAULT_BULK_IMPORT_MIN_ROWS,
    DEFAULT_BULK_IMPORT_TIMEOUT,
    IMPORT_FOLDER,
)
from airflow_provider_gemini_milvus.operators.milvus import MilvusInsertOperator
from airflow_provider_gemini_milvus.staging import write_id_list
from tests.operators.test_milvus import count, manifest, rows, run, stage


def logged(capsys: pytest.CaptureFixture[str]) -> str:
    """What the task logged (Airflow's structured logging writes to the captured stdout)."""
    captured = capsys.readouterr()
    return captured.out + captured.err


def test_load_method_defaults_to_auto_and_is_templated() -> None:
    op = MilvusInsertOperator(task_id="t", collection_name="docs", data=[])
    assert (op.load_method, op.bulk_import_min_rows, op.bulk_import_timeout) == (
        "auto",
        DEFAULT_BULK_IMPORT_MIN_ROWS,
        DEFAULT_BULK_IMPORT_TIMEOUT,
    )
    assert {"load_method", "bulk_import_min_rows"} <= set(MilvusInsertOperator.template_fields)


def test_rendered_strings_are_converted() -> None:
    op = MilvusInsertOperator(
        task_id="t",
        collection_name="docs",
        data=[],
        load_method="bulk_import",
        bulk_import_min_rows="5000",
        bulk_import_timeout="90.5",
    )
    args = op.converted_arguments()
    assert (args.load_method, args.bulk_import_min_rows, args.bulk_import_timeout) == (
        "bulk_import",
        5000,
        90.5,
    )


@pytest.mark.usefixtures("milvus_connection")
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param(
            {"load_method": "upsert"},
            r"load_method must be one of \['auto', 'bulk_import', 'batches'\], got 'upsert'",
            id="method",
        ),
        pytest.param({"load_method": ""}, "load_method must be a non-empty string", id="blank"),
        pytest.param(
            {"bulk_import_min_rows": "10k"},
            "bulk_import_min_rows must be an integer >= 0, got '10k'",
            id="min",
        ),
        pytest.param(
            {"bulk_import_min_rows": -1},
            "bulk_import_min_rows must be an integer >= 0, got -1",
            id="negative",
        ),
        pytest.param(
            {"bulk_import_timeout": "0"}, "bulk_import_timeout must be a number >= 1, got '0'", id="timeout"
        ),
    ],
)
def test_bad_load_arguments_write_nothing(kwargs: dict[str, Any], message: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=message):
        run(data=manifest(stage(tmp_path, [3])), **kwargs)
    assert count() is None


@pytest.mark.usefixtures("milvus_connection")
@pytest.mark.parametrize("load_method", ["bulk_import", "auto"])
def test_lite_falls_back_to_batched_writes_and_says_so(
    load_method: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(data=rows(2, prefix="old"))
    delete_uri = write_id_list(tmp_path, ["old-1"])

    summary = run(
        data=manifest(stage(tmp_path, [3, 2]), delete_uri=delete_uri, deletes=1),
        load_method=load_method,
        bulk_import_min_rows=1,
    )

    assert (summary["load_method"], summary["written"], summary["deleted"]) == ("batches", 5, 1)
    assert "Not bulk importing into docs: Milvus Lite has no bulk import; writing batches instead" in logged(
        capsys
    )
    with MilvusHook() as hook:
        assert sorted(hook.list_ids("docs")) == ["doc-0", "doc-1", "doc-2", "doc-3", "doc-4", "old-0"]
    assert not (tmp_path / IMPORT_FOLDER).exists()


@pytest.mark.usefixtures("milvus_connection")
def test_batches_is_silent_about_bulk_import(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    summary = run(data=manifest(stage(tmp_path, [3])), load_method="batches")
    assert (summary["load_method"], summary["written"]) == ("batches", 3)
    assert "bulk import" not in logged(capsys).lower()


@pytest.mark.usefixtures("milvus_connection")
def test_rows_given_inline_are_written_in_batches(capsys: pytest.CaptureFixture[str]) -> None:
    summary = run(data=rows(4), load_method="bulk_import")
    assert (summary["load_method"], summary["written"]) == ("batches", 4)
    assert "Rows given inline are written in batches: bulk import reads staged parts" in logged(capsys)
    assert count() == 4
