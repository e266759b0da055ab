"""The manifest a staged embedding run hands to the loader through XCom: small, JSON, checked on read."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypedDict

from airflow_provider_gemini_milvus.milvus.layout import MAX_DIM

__all__ = [
    "MANIFEST_FORMAT",
    "SKIPPED_SHOWN",
    "ManifestXCom",
    "StagedManifest",
    "StagedPart",
    "StagedPartXCom",
    "is_manifest",
]

MANIFEST_FORMAT = "gemini-milvus-staged/1"
#: How many skipped documents a manifest lists (``skipped_count`` counts them all).
SKIPPED_SHOWN = 100
#: Longest skip reason a manifest keeps, in characters.
REASON_MAX_LENGTH = 300


class StagedPartXCom(TypedDict):
    """One part in a manifest's XCom form."""

    uri: str
    rows: int


class ManifestXCom(TypedDict):
    """What a staged run returns through XCom (see :meth:`StagedManifest.to_xcom`)."""

    format: str
    parts: list[StagedPartXCom]
    rows: int
    dim: int
    model: str
    task_type: str
    delete_ids_uri: str | None
    delete_count: int
    stats: dict[str, Any]
    skipped_documents: list[dict[str, Any]]
    skipped_count: int
    folder: str | None


@dataclass(frozen=True)
class StagedPart:
    """One Parquet part of staged rows."""

    uri: str
    rows: int


@dataclass(frozen=True)
class StagedManifest:
    """
    What a staged run wrote: its parts, the ids to delete, and what the loader must know about them.

    :param parts: the Parquet parts, in writing order.
    :param rows: total rows in ``parts``.
    :param dim: the vectors' dimension.
    :param model: the model fingerprint ``"name/dim/task_type"`` stored with the rows.
    :param task_type: the embedding task type.
    :param delete_ids_uri: a Parquet file with one ``id`` column, or None.
    :param delete_count: how many ids it holds.
    :param stats: the run's statistics (JSON-safe).
    :param skipped_documents: the first :data:`SKIPPED_SHOWN` of ``{"index", "id", "reason"}``.
    :param skipped_count: how many documents were skipped in all.
    :param folder: the producing task instance's staging folder: a loader reads parts and the delete list
        only there (see :func:`~.verify.check_locations`).
    """

    parts: list[StagedPart]
    rows: int
    dim: int
    model: str
    task_type: str
    delete_ids_uri: str | None = None
    delete_count: int = 0
    stats: dict[str, Any] = field(default_factory=dict)
    skipped_documents: list[dict[str, Any]] = field(default_factory=list)
    skipped_count: int = 0
    folder: str | None = None

    def to_xcom(self) -> ManifestXCom:
        """
        Return the manifest as a small JSON-safe dict with ``"format": MANIFEST_FORMAT``.

        At most :data:`SKIPPED_SHOWN` skipped documents are kept, each reason cut to 300 characters.

        :raises ValueError: when ``stats`` or a skipped document is not JSON-serialisable.
        """
        shown = [_short_reason(document) for document in self.skipped_documents[:SKIPPED_SHOWN]]
        data: ManifestXCom = {
            "format": MANIFEST_FORMAT,
            "parts": [{"uri": part.uri, "rows": part.rows} for part in self.parts],
            "rows": self.rows,
            "dim": self.dim,
            "model": self.model,
            "task_type": self.task_type,
            "delete_ids_uri": self.delete_ids_uri,
            "delete_count": self.delete_count,
            "stats": dict(self.stats),
            "skipped_documents": shown,
            "skipped_count": max(self.skipped_count, len(self.skipped_documents)),
            "folder": self.folder,
        }
        try:
            json.dumps(data, allow_nan=False)
        except (TypeError, ValueError) as err:
            raise ValueError(f"the manifest is not JSON-serialisable: {err}") from None
        return data

    @classmethod
    def from_xcom(cls, data: Mapping[str, Any]) -> StagedManifest:
        """
        Read a manifest made by :meth:`to_xcom`, checking every field.

        :raises ValueError: naming what is wrong (``manifest['parts'][2]['rows']`` ...).
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"a staged manifest must be a dict, got {type(data).__name__}")
        found = data.get("format")
        if found != MANIFEST_FORMAT:
            raise ValueError(
                f"manifest['format'] is {found!r}; this version of the provider reads {MANIFEST_FORMAT!r}"
            )
        for key in ("parts", "rows", "dim", "model", "task_type"):
            if key not in data:
                raise ValueError(f"the manifest has no {key!r}")
        raw_parts = data["parts"]
        if not isinstance(raw_parts, list):
            raise ValueError(f"manifest['parts'] must be a list, got {type(raw_parts).__name__}")
        parts = [_part(raw, index) for index, raw in enumerate(raw_parts)]
        rows = _count(data["rows"], "rows")
        held = sum(part.rows for part in parts)
        if rows != held:
            raise ValueError(f"manifest['rows'] is {rows} but its parts hold {held} rows")
        dim = _count(data["dim"], "dim")
        if not 1 <= dim <= MAX_DIM:
            raise ValueError(f"manifest['dim'] must be from 1 to {MAX_DIM}, got {dim}")
        delete_ids_uri = data.get("delete_ids_uri")
        if delete_ids_uri is not None and (not isinstance(delete_ids_uri, str) or not delete_ids_uri):
            raise ValueError(f"manifest['delete_ids_uri'] must be a URI or None, got {delete_ids_uri!r}")
        delete_count = _count(data.get("delete_count", 0), "delete_count")
        if delete_count and delete_ids_uri is None:
            raise ValueError(f"manifest['delete_count'] is {delete_count} but it has no 'delete_ids_uri'")
        stats = data.get("stats") or {}
        if not isinstance(stats, Mapping):
            raise ValueError(f"manifest['stats'] must be a dict, got {type(stats).__name__}")
        skipped = data.get("skipped_documents") or []
        if not isinstance(skipped, list) or not all(isinstance(item, Mapping) for item in skipped):
            raise ValueError("manifest['skipped_documents'] must be a list of dicts")
        skipped_count = _count(data.get("skipped_count", len(skipped)), "skipped_count")
        if skipped_count < len(skipped):
            raise ValueError(
                f"manifest['skipped_count'] is {skipped_count} but it lists {len(skipped)} skipped documents"
            )
        folder = data.get("folder")
        if not isinstance(folder, str) or not folder:
            raise ValueError(
                "the manifest names no 'folder' (the producing task instance's staging folder): it was made "
                "by an earlier version of the provider, or not by the provider; run the embedding task again"
            )
        return cls(
            parts=parts,
            rows=rows,
            dim=dim,
            model=_text(data["model"], "model"),
            task_type=_text(data["task_type"], "task_type"),
            delete_ids_uri=delete_ids_uri,
            delete_count=delete_count,
            stats=dict(stats),
            skipped_documents=[dict(item) for item in skipped],
            skipped_count=skipped_count,
            folder=folder,
        )


def is_manifest(data: Any) -> bool:
    """True when ``data`` is a dict made by :meth:`StagedManifest.to_xcom` (its ``format`` says so)."""
    return isinstance(data, Mapping) and data.get("format") == MANIFEST_FORMAT


def _count(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"manifest['{where}'] must be an integer >= 0, got {value!r}")
    return value


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"manifest['{where}'] must be a string, got {type(value).__name__}")
    return value


def _part(raw: Any, index: int) -> StagedPart:
    where = f"parts'][{index}"
    if not isinstance(raw, Mapping):
        raise ValueError(f"manifest['{where}] must be a dict with 'uri' and 'rows', got {type(raw).__name__}")
    uri = raw.get("uri")
    if not isinstance(uri, str) or not uri:
        raise ValueError(f"manifest['{where}]['uri'] must be a non-empty string, got {uri!r}")
    return StagedPart(uri=uri, rows=_count(raw.get("rows"), f"{where}]['rows"))


def _short_reason(document: Mapping[str, Any]) -> dict[str, Any]:
    shown = dict(document)
    reason = shown.get("reason")
    if isinstance(reason, str) and len(reason) > REASON_MAX_LENGTH:
        shown["reason"] = reason[: REASON_MAX_LENGTH - 3] + "..."
    return shown
