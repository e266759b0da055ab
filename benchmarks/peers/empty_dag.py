"""
What Airflow's ``dag.test()`` costs before any provider work: the Quickstart DAG's shape (two tasks, the
second reading the first's XCom) with tasks that do nothing. ``peer_provider.py floor`` runs it, so the
peers benchmark can show how much of the provider's DAG time and memory is Airflow's own.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, task


@dag(schedule="@daily", start_date=pendulum.datetime(2025, 1, 1, tz="UTC"), catchup=False, max_active_runs=1)
def empty_docs() -> None:
    @task
    def embed() -> dict[str, int]:
        return {"rows": 0}

    @task
    def load(result: dict[str, int]) -> int:
        return result["rows"]

    load(embed())  # type: ignore[arg-type]  # an XComArg, resolved when the task runs


bench_dag = empty_docs()
