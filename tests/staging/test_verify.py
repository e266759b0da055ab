"""verify_manifest: every staged file is checked against the manifest before a loader writes anything."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from airflow_provider_gemini_milvus.staging import (
    PartWriter,
    StagedManifest,
    StagedPart,
    verify_manifest,
    write_id_list,
)
from airflow_provider_gemini_milvus.staging import verify as verify_module


def stage(folder: Path, counts: list[int], dim: int = 4) -> list[StagedPart]:
    writer = PartWriter(folder, dim)
    parts, start = [], 0
    for count in counts:
        rows = [{"id": f"d{start + i}", "vector": np.ones(dim), "text": "t"} for i in range(count)]
        parts.append(writer.write(rows))
        start += count
    return parts


def manifest(parts: list[StagedPart], *, dim: int = 4, delete_uri: str | None = None, deletes: int = 0):
    return StagedManifest(
        parts=parts,
        rows=sum(part.rows for part in parts),
        dim=dim,
        model="m",
        task_type="RD",
        delete_ids_uri=delete_uri,
        delete_count=deletes,
    )


def test_a_consistent_manifest_passes(tmp_path: Path) -> None:
    parts = stage(tmp_path, [3, 2])
    verify_manifest(manifest(parts, delete_uri=write_id_list(tmp_path, ["x", "y"]), deletes=2))


def test_a_missing_part_is_named_with_the_cleanup_hint(tmp_path: Path) -> None:
    parts = stage(tmp_path, [3, 2])
    Path(parts[1].uri.removeprefix("file://")).unlink()
    with pytest.raises(
        ValueError, match=r"manifest parts\[1\] \(file://.*\) does not exist: .*staging_keep_days"
    ):
        verify_manifest(manifest(parts))


def test_dim_and_row_count_must_match_the_parts(tmp_path: Path) -> None:
    parts = stage(tmp_path, [3])
    with pytest.raises(
        ValueError, match=r"manifest parts\[0\] .* holds vectors of dim 4, the manifest says dim 8"
    ):
        verify_manifest(manifest(parts, dim=8))
    wrong_rows = [StagedPart(parts[0].uri, 5)]
    with pytest.raises(ValueError, match=r"manifest parts\[0\] .* holds 3 rows, the manifest says 5"):
        verify_manifest(manifest(wrong_rows))


def test_the_delete_list_must_exist_and_hold_delete_count_ids(tmp_path: Path) -> None:
    parts = stage(tmp_path, [1])
    uri = write_id_list(tmp_path, ["x"])
    with pytest.raises(ValueError, match=r"delete_ids_uri .* holds 1 ids, the manifest says delete_count 3"):
        verify_manifest(manifest(parts, delete_uri=uri, deletes=3))
    with pytest.raises(ValueError, match=r"delete_ids_uri .* does not exist"):
        verify_manifest(manifest(parts, delete_uri=(tmp_path / "gone.parquet").as_uri(), deletes=1))


@pytest.mark.parametrize("delete_set_limit", [1_000, 1], ids=["ids-to-delete-in-a-set", "part-ids-in-a-set"])
def test_an_id_both_written_and_deleted_is_refused_by_part_and_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, delete_set_limit: int
) -> None:
    monkeypatch.setattr(verify_module, "DELETE_SET_LIMIT", delete_set_limit)
    parts = stage(tmp_path, [3, 4])
    uri = write_id_list(tmp_path, ["gone", "d5"])
    with pytest.raises(
        ValueError, match=r"staged parts\[1\] rows\[2\] \(id 'd5'\) is also in the ids to delete"
    ):
        verify_manifest(manifest(parts, delete_uri=uri, deletes=2))
    disjoint = write_id_list(tmp_path, ["gone", "other"], name="disjoint")
    verify_manifest(manifest(parts, delete_uri=disjoint, deletes=2))
