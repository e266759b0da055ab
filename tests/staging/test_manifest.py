"""StagedManifest: the small XCom form round-trips, and a wrong one is refused naming the field."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider_gemini_milvus.staging import MANIFEST_FORMAT, StagedManifest, StagedPart, is_manifest
from airflow_provider_gemini_milvus.staging.manifest import SKIPPED_SHOWN


def manifest(**changes: Any) -> StagedManifest:
    fields: dict[str, Any] = {
        "parts": [StagedPart("file:///s/part-00000000-0a1b2c3d.parquet", 3), StagedPart("s3://b/p2", 2)],
        "rows": 5,
        "dim": 768,
        "model": "gemini-embedding-001/768/RETRIEVAL_DOCUMENT",
        "task_type": "RETRIEVAL_DOCUMENT",
        "delete_ids_uri": "file:///s/delete_ids.parquet",
        "delete_count": 4,
        "stats": {"requests": 2, "seconds": 0.5},
        "skipped_documents": [{"index": 7, "id": "doc-7", "reason": "400 INVALID_ARGUMENT"}],
        "skipped_count": 1,
        "folder": "file:///s",
    }
    fields.update(changes)
    return StagedManifest(**fields)


def test_round_trip_through_json() -> None:
    original = manifest()
    data = json.loads(json.dumps(original.to_xcom(), allow_nan=False))
    assert data["format"] == MANIFEST_FORMAT
    assert is_manifest(data)
    assert StagedManifest.from_xcom(data) == original


def test_only_the_first_skipped_documents_are_listed_and_long_reasons_are_cut() -> None:
    skipped = [{"index": i, "id": f"d{i}", "reason": "x" * 1000} for i in range(SKIPPED_SHOWN + 5)]
    data = manifest(skipped_documents=skipped, skipped_count=SKIPPED_SHOWN + 5).to_xcom()
    assert len(data["skipped_documents"]) == SKIPPED_SHOWN
    assert data["skipped_count"] == SKIPPED_SHOWN + 5
    assert len(data["skipped_documents"][0]["reason"]) == 300


def test_a_manifest_that_is_not_json_is_refused_when_made() -> None:
    with pytest.raises(ValueError, match="not JSON-serialisable"):
        manifest(stats={"when": object()}).to_xcom()


def test_inline_results_are_not_manifests() -> None:
    assert not is_manifest({"rows": [], "delete_ids": []})
    assert not is_manifest([{"format": MANIFEST_FORMAT}])
    assert not is_manifest({"format": "gemini-milvus-staged/2"})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format": "gemini-milvus-staged/2"}, r"manifest\['format'\] is 'gemini-milvus-staged/2'; .* reads"),
        ({"dim": None}, r"manifest\['dim'\] must be an integer >= 0, got None"),
        ({"dim": 0}, r"manifest\['dim'\] must be from 1 to 32768, got 0"),
        ({"rows": 6}, r"manifest\['rows'\] is 6 but its parts hold 5 rows"),
        ({"rows": True}, r"manifest\['rows'\] must be an integer"),
        ({"parts": "file:///s/p1"}, r"manifest\['parts'\] must be a list, got str"),
        ({"parts": [{"uri": "u", "rows": 5}, "p2"]}, r"manifest\['parts'\]\[1\] must be a dict"),
        ({"parts": [{"uri": "", "rows": 5}]}, r"\['parts'\]\[0\]\['uri'\] must be a non-empty string"),
        ({"parts": [{"uri": "u", "rows": -5}]}, r"\['parts'\]\[0\]\['rows'\] must be an integer >= 0"),
        ({"model": 3}, r"manifest\['model'\] must be a string, got int"),
        ({"delete_ids_uri": None}, r"manifest\['delete_count'\] is 4 but it has no 'delete_ids_uri'"),
        ({"delete_ids_uri": ""}, r"manifest\['delete_ids_uri'\] must be a URI or None"),
        ({"stats": [1]}, r"manifest\['stats'\] must be a dict"),
        ({"skipped_documents": ["doc-7"]}, r"manifest\['skipped_documents'\] must be a list of dicts"),
        ({"skipped_count": 0}, r"manifest\['skipped_count'\] is 0 but it lists 1 skipped documents"),
        (
            {"folder": None},
            r"the manifest names no 'folder' \(the producing task instance's staging folder\)",
        ),
    ],
)
def test_a_wrong_manifest_is_refused_naming_the_field(change: dict[str, Any], message: str) -> None:
    data = {**manifest().to_xcom(), **change}
    with pytest.raises(ValueError, match=message):
        StagedManifest.from_xcom(data)


def test_a_manifest_missing_a_field_is_refused_naming_it() -> None:
    data = manifest().to_xcom()
    del data["task_type"]
    with pytest.raises(ValueError, match="the manifest has no 'task_type'"):
        StagedManifest.from_xcom(data)


def test_a_manifest_must_be_a_dict() -> None:
    with pytest.raises(ValueError, match="a staged manifest must be a dict, got list"):
        StagedManifest.from_xcom([])
