"""Smallest DAG, used to prove ``dag.test()`` finds DAGs in the test bundle."""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, task


@dag(schedule=None, start_date=pendulum.datetime(2025, 1, 1, tz="UTC"), catchup=False, tags=["test"])
def probe_bundle() -> None:
    @task
    def answer() -> int:
        return 42

    answer()


probe_bundle()
