"""
What watches a run: OpenLineage facets and asset URIs of the collections, and Airflow metrics (StatsD or
OpenTelemetry, as the deployment is configured) of what each task embedded, spent and wrote.
"""

from __future__ import annotations

__all__: list[str] = []
