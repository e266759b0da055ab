from __future__ import annotations

import pytest


@pytest.mark.usefixtures("airflow_db")
def test_dag_test_runs_a_dag_from_the_test_bundle() -> None:
    from airflow.sdk import DagRunState

    from tests.dags.dag_probe_bundle import probe_bundle

    run = probe_bundle().test()
    assert run.state == DagRunState.SUCCESS
