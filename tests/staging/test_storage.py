"""Staging locations: the root from Airflow config, per-task folders, cleaning, an S3-compatible store."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from airflow.sdk import ObjectStoragePath

from airflow_provider_gemini_milvus.staging import (
    PartWriter,
    StagedManifest,
    clean_staging,
    configured_keep_days,
    default_staging_uri,
    iter_id_list,
    iter_part_rows,
    staged_fingerprints,
    staged_parts,
    staging_root,
    task_staging_dir,
    verify_manifest,
    write_id_list,
)
from airflow_provider_gemini_milvus.staging.storage import decode_segment

DAY = 24 * 3600


def test_default_root_is_under_airflow_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW__GEMINI_MILVUS__STAGING_URI", raising=False)
    expected = Path(os.environ["AIRFLOW_HOME"]).resolve() / "gemini_milvus" / "staging"
    assert default_staging_uri() == expected.as_uri()
    assert str(staging_root()) == expected.as_uri()


def test_root_comes_from_the_airflow_setting_and_an_override_wins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AIRFLOW__GEMINI_MILVUS__STAGING_URI", str(tmp_path / "configured"))
    assert str(staging_root()) == (tmp_path / "configured").as_uri()
    assert str(staging_root("")) == (tmp_path / "configured").as_uri()
    override = ObjectStoragePath((tmp_path / "mine").as_uri())
    assert staging_root(override) == override
    assert str(staging_root(str(tmp_path / "a" / ".." / "b"))) == (tmp_path / "b").as_uri()


def test_a_scheme_nothing_serves_is_refused_up_front() -> None:
    with pytest.raises(ValueError, match=r"no filesystem for nosuchfs://: install the Airflow provider"):
        staging_root("nosuchfs://bucket/staging")


def test_a_connection_id_needs_the_provider_of_the_scheme() -> None:
    from airflow.sdk.io import has_fs

    if has_fs("s3"):
        pytest.skip("an installed provider registers s3://, so connection ids work")
    with pytest.raises(ValueError, match=r"no installed Airflow provider registers the 's3' scheme .*amazon"):
        staging_root("s3://bucket/staging", conn_id="aws_staging")


def test_keep_days_default_setting_and_refusals(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW__GEMINI_MILVUS__STAGING_KEEP_DAYS", raising=False)
    assert configured_keep_days() == 7.0
    monkeypatch.setenv("AIRFLOW__GEMINI_MILVUS__STAGING_KEEP_DAYS", "1.5")
    assert configured_keep_days() == 1.5
    monkeypatch.setenv("AIRFLOW__GEMINI_MILVUS__STAGING_KEEP_DAYS", "")
    assert configured_keep_days() is None
    for bad in ("-1", "seven", "nan"):
        monkeypatch.setenv("AIRFLOW__GEMINI_MILVUS__STAGING_KEEP_DAYS", bad)
        with pytest.raises(ValueError, match=r"\[gemini_milvus\] staging_keep_days must be a number of days"):
            configured_keep_days()


def test_task_folder_is_the_same_for_every_try_and_path_safe(tmp_path: Path) -> None:
    root = staging_root(str(tmp_path))
    run_id = "manual__2026-11-30T05:00:00+00:00"
    folder = task_staging_dir(root, dag_id="ingest", run_id=run_id, task_id="embed", map_index=-1)
    assert folder == task_staging_dir(root, dag_id="ingest", run_id=run_id, task_id="embed", map_index=-1)
    dag, run, task, index = str(folder).rsplit("/", 4)[1:]
    assert (dag, task, index) == ("ingest", "embed", "-1")
    assert run == "manual__2026-11-30T05~3A00~3A00~2B00~3A00"
    # Two ids that differ only in unsafe characters never share a folder.
    other = task_staging_dir(
        root, dag_id="ingest", run_id=run_id.replace(":", "+"), task_id="embed", map_index=-1
    )
    assert other != folder
    odd = task_staging_dir(root, dag_id="../up", run_id="x" * 300, task_id=".hidden", map_index=3)
    segments = str(odd).removeprefix(str(root) + "/").split("/")
    assert all(segment and not segment.startswith(".") and len(segment) <= 100 for segment in segments)
    assert len(segments) == 4
    with pytest.raises(ValueError, match="run_id is empty"):
        task_staging_dir(root, dag_id="d", run_id="", task_id="t", map_index=0)


def test_no_two_task_instances_share_a_folder(tmp_path: Path) -> None:
    root = staging_root(str(tmp_path))
    run_id = "manual__2025-01-01T00:00:00+00:00"
    folder = task_staging_dir(root, dag_id="ingest", run_id=run_id, task_id="embed", map_index=-1)
    # The segment the first run got is itself a valid run id: a run triggered with it gets its own folder.
    segment = folder.parent.parent.name
    lookalike = task_staging_dir(root, dag_id="ingest", run_id=segment, task_id="embed", map_index=-1)
    assert lookalike != folder
    ids = [
        run_id,
        segment,
        "manual__2025-01-01T00_00_00_00_00",
        "a~3A",
        "a:",
        "a~",
        ".a",
        "~2Ea",
        "_a",
        "x" * 101,
        "x" * 100,
        "x" * 60 + "~~" + "0" * 32,
        "\u00e9t\u00e9",
        "\ud800",
    ]
    folders = {str(task_staging_dir(root, dag_id="d", run_id=i, task_id="t", map_index=0)) for i in ids}
    assert len(folders) == len(ids)
    for value in ids:
        folder = task_staging_dir(root, dag_id="d", run_id=value, task_id="t", map_index=0)
        decoded = decode_segment(folder.parent.parent.name)
        assert decoded == (None if len(value) > 100 else value), "shortened segments cannot be decoded"


def age(path: Path, days: float) -> None:
    """Set the modification time of ``path`` and everything in it ``days`` into the past."""
    stamp = time.time() - days * DAY
    for folder, _, files in os.walk(path):
        for name in files:
            os.utime(Path(folder) / name, (stamp, stamp))
        os.utime(folder, (stamp, stamp))


def staged_folder(root: ObjectStoragePath, dag_id: str, run_id: str, task_id: str = "embed") -> Path:
    """A task instance folder as the provider leaves it: a part (and so its marker) written by PartWriter."""
    folder = task_staging_dir(root, dag_id=dag_id, run_id=run_id, task_id=task_id, map_index=-1)
    PartWriter(folder, 4).write([{"id": "d0", "vector": np.ones(4), "text": "t"}])
    return Path(folder.path)


def test_clean_removes_only_staged_runs_whose_newest_file_is_old(tmp_path: Path) -> None:
    root = staging_root(str(tmp_path))
    runs = {name: staged_folder(root, "dag_a", name) for name in ("old", "mixed", "new", "current")}
    staged_folder(root, "dag_b", "old")
    age(tmp_path / "dag_a" / "old", 10)
    age(tmp_path / "dag_b" / "old", 8)
    age(tmp_path / "dag_a" / "current", 30)
    age(tmp_path / "dag_a" / "mixed", 10)
    (runs["mixed"] / "part-00000001-0a1b2c3d.parquet").write_bytes(b"written by a try that still runs")
    age(tmp_path / "dag_a" / "new", 6)

    removed = clean_staging(
        root,
        keep_days=7,
        exclude=[task_staging_dir(root, dag_id="dag_a", run_id="current", task_id="embed", map_index=-1)],
    )

    assert removed == 2
    assert sorted(path.name for path in (tmp_path / "dag_a").iterdir()) == ["current", "mixed", "new"]
    assert not (tmp_path / "dag_b").exists(), "emptied folders above a removed one go too"
    assert clean_staging(root, keep_days=5.5) == 2  # "new" (6 days) and "current", no longer excluded
    assert clean_staging(root, keep_days=1 / 24, now=datetime.now(UTC) + timedelta(hours=2)) == 1
    assert clean_staging(staging_root(str(tmp_path / "missing")), keep_days=1) == 0
    assert list(tmp_path.iterdir()) == []


def test_clean_never_touches_what_the_provider_did_not_write(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    ledger = shared / "finance" / "2024" / "ledger.csv"
    documents = shared / "corpus" / "v1" / "docs.jsonl"
    deep = shared / "a" / "b" / "c" / "d" / "notes.txt"  # as deep as a task folder, without the marker
    for path in (ledger, documents, deep):
        path.parent.mkdir(parents=True)
        path.write_text("the user's\n", encoding="utf-8")
    root = staging_root(str(shared))
    staged = staged_folder(root, "ingest", "scheduled__2025")
    (staged.parent.parent / "user-notes.txt").write_text("beside the provider's folders", encoding="utf-8")
    age(shared, 30)

    assert clean_staging(root, keep_days=7) == 1

    assert ledger.read_text(encoding="utf-8") == documents.read_text(encoding="utf-8") == "the user's\n"
    assert deep.exists()
    assert not staged.exists()
    assert (staged.parent.parent / "user-notes.txt").exists(), "a run folder holding a user's file stays"


def test_clean_keeps_a_run_that_is_still_running_whatever_its_age(tmp_path: Path) -> None:
    root = staging_root(str(tmp_path))
    running = staged_folder(root, "ingest", "manual__2025-01-01T00:00:00+00:00")
    done = staged_folder(root, "ingest", "manual__2025-01-02T00:00:00+00:00")
    age(tmp_path, 30)
    asked: list[tuple[str, str]] = []

    def state(dag_id: str, run_id: str) -> str | None:
        asked.append((dag_id, run_id))
        return "running" if run_id.startswith("manual__2025-01-01") else "success"

    assert clean_staging(root, keep_days=7, run_state=state) == 1
    assert running.exists()
    assert not done.exists()
    assert sorted(asked) == [
        ("ingest", "manual__2025-01-01T00:00:00+00:00"),
        ("ingest", "manual__2025-01-02T00:00:00+00:00"),
    ], "the ids are read back from the folder names"


def test_keep_days_below_an_hour_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for bad in ("0", "1e-9", "0.04"):
        monkeypatch.setenv("AIRFLOW__GEMINI_MILVUS__STAGING_KEEP_DAYS", bad)
        with pytest.raises(
            ValueError,
            match=r"\[gemini_milvus\] staging_keep_days must be a number of days of at least 0.0417",
        ):
            configured_keep_days()
    monkeypatch.setenv("AIRFLOW__GEMINI_MILVUS__STAGING_KEEP_DAYS", "0.0417")
    assert configured_keep_days() == 0.0417
    for days in (0, 1e-9, -1):
        with pytest.raises(
            ValueError, match=r"keep_days must be a number of days of at least 0.0417 \(one hour"
        ):
            clean_staging(staging_root(str(tmp_path)), keep_days=days)


def test_staging_through_an_s3_compatible_store(s3_bucket: str) -> None:
    root = staging_root(f"{s3_bucket}/staging")
    assert str(root) == f"{s3_bucket}/staging"
    folder = task_staging_dir(root, dag_id="ingest", run_id="scheduled__2026", task_id="embed", map_index=-1)
    vectors = np.random.default_rng(3).standard_normal((5, 4)).astype(np.float32)
    rows = [
        {"id": f"d{i}", "vector": vectors[i], "text": f"t{i}", "content_hash": f"h{i}", "model": "m/4/RD"}
        for i in range(5)
    ]
    writer = PartWriter(folder, 4)
    parts = [writer.write(rows[:3]), writer.write(rows[3:])]
    assert all(
        part.uri.startswith(f"{s3_bucket}/staging/ingest/scheduled__2026/embed/-1/part-") for part in parts
    )
    assert staged_parts(folder) == parts
    assert PartWriter(folder, 4).write(rows[:1]).uri.split("/")[-1].startswith("part-00000002-")
    read = [row for part in parts for chunk in iter_part_rows(part.uri) for row in chunk]
    assert np.array_equal(np.asarray([row["vector"] for row in read], dtype=np.float32), vectors)
    assert staged_fingerprints(folder)["d4"] == ("h4", "m/4/RD")
    delete_uri = write_id_list(folder, ["gone-1", "gone-2"])
    assert [ids for ids in iter_id_list(delete_uri)] == [["gone-1", "gone-2"]]
    verify_manifest(
        StagedManifest(
            folder=str(folder),
            parts=parts,
            rows=5,
            dim=4,
            model="m/4/RD",
            task_type="RD",
            delete_ids_uri=delete_uri,
            delete_count=2,
        )
    )
    assert clean_staging(root, keep_days=7) == 0
    assert clean_staging(root, keep_days=7, now=datetime.now(UTC) + timedelta(days=8)) == 1
    assert staged_parts(folder) == []


def test_a_local_path_with_run_id_characters_round_trips(tmp_path: Path) -> None:
    from airflow_provider_gemini_milvus.staging.storage import as_path

    run_folder = tmp_path / "manual__2026-01-01T00:00:00+00:00"
    path = as_path(str(run_folder / "chunks.jsonl"))
    assert path.path == str(run_folder / "chunks.jsonl"), "no %3A or %2B in the path"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{}\n")
    assert as_path(str(path)).read_text() == "{}\n"
    assert (run_folder / "chunks.jsonl").exists()
