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
    folder = (parts[0].uri if parts else str(delete_uri)).rpartition("/")[0]
    return StagedManifest(
        folder=folder,
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
    (tmp_path / "delete_ids.parquet").unlink()
    with pytest.raises(ValueError, match=r"delete_ids_uri .* does not exist"):
        verify_manifest(manifest(parts, delete_uri=uri, deletes=1))


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
    disjoint = write_id_list(tmp_path, ["gone", "other"])
    verify_manifest(manifest(parts, delete_uri=disjoint, deletes=2))


class Listener:
    """A real HTTP server on loopback that counts every request it gets."""

    def __init__(self) -> None:
        import http.server
        import threading

        self.requests: list[str] = []
        seen = self.requests

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_HEAD(self) -> None:  # noqa: N802 - the http.server spelling
                seen.append(f"HEAD {self.path}")
                self.send_response(200)
                self.end_headers()

            def do_GET(self) -> None:  # noqa: N802
                seen.append(f"GET {self.path}")
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"PAR1")

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_manifest_is_followed_only_into_its_own_marked_folder(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from airflow_provider_gemini_milvus.staging import staging_root, task_staging_dir

    root = staging_root(str(tmp_path / "staging"))
    mine = task_staging_dir(root, dag_id="d", run_id="r", task_id="embed", map_index=-1)
    other = task_staging_dir(root, dag_id="d", run_id="r", task_id="other", map_index=-1)
    parts = stage(Path(mine.path), [2])
    foreign = stage(Path(other.path), [3])
    listener = Listener()
    try:
        web = f"{listener.url}/staging/d/r/embed/-1"
        with pytest.raises(ValueError, match=r"manifest folder \(http://.*\) is a web URI"):
            verify_manifest(replace(manifest([StagedPart(f"{web}/part-00000000-0a1b2c3d.parquet", 2)])))
        web_part = StagedPart(f"{listener.url}/part-00000001-0a1b2c3d.parquet", 2)
        with pytest.raises(ValueError, match=r"manifest parts\[1\] \(http://.*\) is a web URI"):
            verify_manifest(replace(manifest([parts[0], web_part]), folder=str(mine)))
        with pytest.raises(ValueError, match=r"delete_ids_uri \(https://.*\) is a web URI"):
            verify_manifest(replace(manifest(parts, delete_uri="https://x/delete_ids.parquet", deletes=1)))
    finally:
        listener.close()
    assert listener.requests == [], "nothing is fetched over http"

    with pytest.raises(ValueError, match=r"manifest parts\[1\] .* is not a part in the manifest's folder"):
        verify_manifest(manifest([parts[0], foreign[0]]))
    sneaky = StagedPart(f"{mine}/../other/-1/{Path(foreign[0].uri).name}", 3)
    with pytest.raises(ValueError, match=r"manifest parts\[0\] .* is not a part in the manifest's folder"):
        verify_manifest(replace(manifest([sneaky]), folder=str(mine)))
    with pytest.raises(ValueError, match=r"manifest folder .* is not a plain staging folder path"):
        verify_manifest(replace(manifest([sneaky]), folder=f"{mine}/../other/-1"))

    # Any Parquet file with an id column is not a delete list: only the folder's own delete_ids.parquet.
    with pytest.raises(
        ValueError, match=r"delete_ids_uri .* is not the delete list of the manifest's folder"
    ):
        verify_manifest(manifest([], delete_uri=parts[0].uri, deletes=2))
    pq.write_table(pa.table({"id": ["x"], "other": [1]}), Path(mine.path) / "delete_ids.parquet")
    with pytest.raises(
        ValueError, match=r"is not an id list the provider wrote: its columns are \['id', 'other'\]"
    ):
        verify_manifest(manifest(parts, delete_uri=f"{mine}/delete_ids.parquet", deletes=1))

    # A folder the provider never staged into (no marker) is not followed, even with well-named files.
    unmarked = tmp_path / "elsewhere"
    unmarked.mkdir()
    copy = unmarked / Path(parts[0].uri).name
    copy.write_bytes(Path(parts[0].uri.removeprefix("file://")).read_bytes())
    write_id_list(unmarked, ["x"])
    (unmarked / ".gemini-milvus-staging").unlink()
    with pytest.raises(ValueError, match=r"manifest folder .* is not a folder the provider staged into"):
        verify_manifest(manifest([StagedPart(f"file://{copy}", 2)]))
    verify_manifest(manifest(parts))


def replace(staged: StagedManifest, **changes: object) -> StagedManifest:
    import dataclasses

    return dataclasses.replace(staged, **changes)  # type: ignore[arg-type]
