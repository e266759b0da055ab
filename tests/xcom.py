"""Reading a finished run's XCom values back from the metadata database."""

from __future__ import annotations

from typing import Any


def xcom_return_value(dag_id: str, run_id: str, task_id: str) -> Any:
    """The return value ``task_id`` pushed in run ``run_id`` of ``dag_id``."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        row = session.execute(
            select(XComModel.value).where(
                XComModel.dag_id == dag_id,
                XComModel.run_id == run_id,
                XComModel.task_id == task_id,
                XComModel.key == "return_value",
            )
        ).first()
    if row is None:
        raise LookupError(f"no return value for {dag_id}.{task_id} in run {run_id}")
    return XComModel.deserialize_value(row)
