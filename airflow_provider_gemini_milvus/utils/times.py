"""The moments the provider records in Milvus properties: written as UTC ISO text, read back strictly."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["iso_time", "parse_iso_time"]


def iso_time(moment: datetime) -> str:
    """``moment`` as UTC ISO 8601 text to the second: ``2026-12-06T15:04:05+00:00``."""
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def parse_iso_time(value: object) -> datetime | None:
    """
    A time written by :func:`iso_time`, or None for anything without a readable time and a time zone
    (an empty value, garbage, a time without a zone): a caller never acts on a time it cannot read.
    """
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None
