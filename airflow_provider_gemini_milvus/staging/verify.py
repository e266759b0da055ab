"""Checks a loader runs on a manifest before it writes anything: every file there, sizes and ids agree."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_provider_gemini_milvus.staging.parts import (
    DELETE_LIST_NAME,
    ID_SCHEMA,
    PART_NAME,
    count_rows,
    describe_part,
    id_list_schema,
    iter_id_list,
    iter_part_ids,
)
from airflow_provider_gemini_milvus.staging.storage import as_path, is_marked

if TYPE_CHECKING:
    from airflow_provider_gemini_milvus.staging.manifest import StagedManifest

__all__ = ["DELETE_SET_LIMIT", "check_deletes_disjoint", "check_locations", "verify_manifest"]

#: Schemes a manifest may never point at: staged files are never fetched from a web server.
_REFUSED_SCHEMES = ("http://", "https://")

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
    check_locations(manifest)
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
            schema = id_list_schema(manifest.delete_ids_uri)
            held = count_rows(manifest.delete_ids_uri)
        except FileNotFoundError:
            raise ValueError(f"{where} {_GONE}") from None
        if not schema.equals(ID_SCHEMA):
            raise ValueError(f"{where} is not an id list the provider wrote: its columns are {schema.names}")
        if held != manifest.delete_count:
            raise ValueError(
                f"{where} holds {held} ids, the manifest says delete_count {manifest.delete_count}"
            )
    check_deletes_disjoint(manifest)


def check_locations(manifest: StagedManifest) -> None:
    """
    Refuse a manifest that points anywhere but into the producing task instance's staging folder.

    Checked on the URIs alone, before any file is opened: no ``http://`` or ``https://`` URI (nothing is
    fetched from a web server), a folder without ``.`` or ``..`` segments, every part a
    ``part-<n>-<hex>.parquet`` directly in it, the delete list its ``delete_ids.parquet``. Then the folder
    must hold the provider's marker (:data:`~.storage.MARKER_FILE`): a folder the provider staged into.

    :raises ValueError: naming the part or the delete list.
    """
    folder = manifest.folder
    if folder is None:
        raise ValueError("the manifest names no 'folder' (the producing task instance's staging folder)")
    folder = folder.rstrip("/")
    uris = [("manifest folder", folder)]
    uris += [(f"manifest parts[{index}]", part.uri) for index, part in enumerate(manifest.parts)]
    if manifest.delete_ids_uri is not None:
        uris.append(("manifest delete_ids_uri", manifest.delete_ids_uri))
    for where, uri in uris:
        if uri.lower().startswith(_REFUSED_SCHEMES):
            raise ValueError(f"{where} ({uri}) is a web URI: staged files are never fetched over http(s)")
    path = folder.partition("://")[2] if "://" in folder else folder
    if any(segment in (".", "..") for segment in path.split("/")[1:]) or "//" in path.lstrip("/"):
        raise ValueError(f"manifest folder ({folder}) is not a plain staging folder path")
    for index, part in enumerate(manifest.parts):
        parent, _, name = part.uri.rpartition("/")
        if parent != folder or not PART_NAME.fullmatch(name):
            raise ValueError(
                f"manifest parts[{index}] ({part.uri}) is not a part in the manifest's folder {folder}: a "
                "manifest hands on only what its own task instance staged"
            )
    if manifest.delete_ids_uri is not None and manifest.delete_ids_uri != f"{folder}/{DELETE_LIST_NAME}":
        raise ValueError(
            f"manifest delete_ids_uri ({manifest.delete_ids_uri}) is not the delete list of the manifest's "
            f"folder ({folder}/{DELETE_LIST_NAME})"
        )
    try:
        marked = is_marked(as_path(folder))
    except ValueError as err:
        raise ValueError(f"manifest folder ({folder}): {err}") from None
    if not marked:
        raise ValueError(
            f"manifest folder ({folder}) is not a folder the provider staged into (it holds no marker; "
            "staged files are removed after [gemini_milvus] staging_keep_days days: run the embedding task "
            "again to stage them anew)"
        )


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
