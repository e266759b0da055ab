"""Checks a loader runs on a manifest before it writes anything: every file there, sizes and ids agree."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_provider_gemini_milvus.staging.parts import (
    count_rows,
    describe_part,
    iter_id_list,
    iter_part_ids,
)

if TYPE_CHECKING:
    from airflow_provider_gemini_milvus.staging.manifest import StagedManifest

__all__ = ["DELETE_SET_LIMIT", "check_deletes_disjoint", "verify_manifest"]

#: Up to this many ids to delete are held in a set and each part's ids streamed against it; above it each
#: part's ids are held in turn and the delete list is streamed against every part.
DELETE_SET_LIMIT = 200_000

_GONE = (
    "does not exist: staged files are removed after [gemini_milvus] staging_keep_days days; run the "
    "embedding task again to stage them anew"
)


def verify_manifest(manifest: StagedManifest) -> None:
    """
    Check that every part and the delete list exist and agree with the manifest, and that no id is both
    written and deleted. Reads Parquet footers and id columns only.

    :raises ValueError: naming the part (``manifest parts[2] (uri)``) or the delete list.
    """
    for index, part in enumerate(manifest.parts):
        where = f"manifest parts[{index}] ({part.uri})"
        try:
            info = describe_part(part.uri)
        except FileNotFoundError:
            raise ValueError(f"{where} {_GONE}") from None
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from None
        if info.dim != manifest.dim:
            raise ValueError(f"{where} holds vectors of dim {info.dim}, the manifest says dim {manifest.dim}")
        if info.rows != part.rows:
            raise ValueError(f"{where} holds {info.rows} rows, the manifest says {part.rows}")
    if manifest.delete_ids_uri is not None:
        where = f"manifest delete_ids_uri ({manifest.delete_ids_uri})"
        try:
            held = count_rows(manifest.delete_ids_uri)
        except FileNotFoundError:
            raise ValueError(f"{where} {_GONE}") from None
        if held != manifest.delete_count:
            raise ValueError(
                f"{where} holds {held} ids, the manifest says delete_count {manifest.delete_count}"
            )
    check_deletes_disjoint(manifest)


def check_deletes_disjoint(manifest: StagedManifest) -> None:
    """
    Refuse a manifest that would write an id and then delete it.

    Up to :data:`DELETE_SET_LIMIT` ids to delete are held in a set while the parts' id columns stream past;
    a longer delete list is streamed once per part against that part's ids, so memory stays within one
    part either way.

    :raises ValueError: naming the first such row as ``staged parts[i] rows[j] (id '...')``.
    """
    if not manifest.delete_count or not manifest.rows or manifest.delete_ids_uri is None:
        return
    if manifest.delete_count <= DELETE_SET_LIMIT:
        to_delete: set[str] = set()
        for chunk in iter_id_list(manifest.delete_ids_uri):
            to_delete.update(chunk)
        for index, part in enumerate(manifest.parts):
            offset = 0
            for ids in iter_part_ids(part.uri):
                for position, row_id in enumerate(ids):
                    if row_id in to_delete:
                        _overlap(index, offset + position, row_id)
                offset += len(ids)
        return
    for index, part in enumerate(manifest.parts):
        positions: dict[str, int] = {}
        offset = 0
        for ids in iter_part_ids(part.uri):
            positions.update((row_id, offset + position) for position, row_id in enumerate(ids))
            offset += len(ids)
        for chunk in iter_id_list(manifest.delete_ids_uri):
            for row_id in chunk:
                if row_id in positions:
                    _overlap(index, positions[row_id], row_id)


def _overlap(part_index: int, row_index: int, row_id: str) -> None:
    raise ValueError(
        f"staged parts[{part_index}] rows[{row_index}] (id {row_id!r}) is also in the ids to delete: it "
        "would be written and then deleted"
    )
