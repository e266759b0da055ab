"""Read a finished DAG run's return values back from Airflow's metadata database (for tests and demos)."""

from __future__ import annotations

from typing import Any

__all__ = ["xcom_return_value"]


def xcom_return_value(dag_id: str, task_id: str, run_id: str | None = None) -> Any:
    """
    Return what ``task_id`` returned in run ``run_id`` of ``dag_id`` (the latest run when ``run_id`` is None).

    :param dag_id: the DAG.
    :param task_id: the task whose return value to read.
    :param run_id: the run; None means the most recent one that pushed a value.
    :raises LookupError: when the task pushed no return value.
    """
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    query = select(XComModel.value).where(
        XComModel.dag_id == dag_id, XComModel.task_id == task_id, XComModel.key == "return_value"
    )
    if run_id is not None:
        query = query.where(XComModel.run_id == run_id)
    with create_session() as session:
        row = session.execute(query.order_by(XComModel.timestamp.desc()).limit(1)).first()
    if row is None:
        raise LookupError(f"no return value for {dag_id}.{task_id}" + (f" in run {run_id}" if run_id else ""))
    return XComModel.deserialize_value(row)
