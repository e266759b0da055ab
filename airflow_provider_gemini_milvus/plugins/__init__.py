"""Airflow plugins of the provider: the spend view in the Airflow UI."""

from __future__ import annotations

__all__: list[str] = []
