"""
The spend view: an Airflow UI page (Browse → Embedding spend, and an "Embedding spend" tab on each DAG)
showing what the provider's tasks embedded, spent and wrote, per DAG, per collection and per run.

It is an Airflow 3 plugin (Airflow 3.2 and later): a FastAPI app that the API server mounts under
:data:`URL_PREFIX`, and two ``external_views`` that put it in the UI. The app reads the return values of
``GeminiEmbedOperator`` and ``MilvusInsertOperator`` tasks from Airflow's metadata database in the API
server, with the user's own Airflow login: a request without a valid Airflow token (the UI's cookie or an
``Authorization: Bearer`` header) is refused, and only the DAGs the user may read are shown. Only the
counts and costs inside those values are read (``stats``, ``model``, ``collection``, ``written``,
``deleted``), never the rows, texts or vectors beside them.

Airflow loads it through the ``airflow.plugins`` entry point of the installed package.
"""

from __future__ import annotations

import logging
import secrets
from typing import TYPE_CHECKING, Annotated, Any

from airflow.api_fastapi.auth.managers.models.base_user import BaseUser
from airflow.api_fastapi.core_api.security import get_user
from airflow.plugins_manager import AirflowPlugin
from fastapi import Depends, FastAPI, HTTPException, Query, status
from fastapi.responses import HTMLResponse, JSONResponse

from airflow_provider_gemini_milvus.plugins.spend_data import (
    EmbedRecord,
    LoadRecord,
    RunSpend,
    SpendReport,
    SpendTotals,
    build_report,
)
from airflow_provider_gemini_milvus.plugins.spend_page import render_page

if TYPE_CHECKING:
    from collections.abc import Collection
    from datetime import datetime

    from sqlalchemy.orm import Session

__all__ = [
    "DEFAULT_RUNS",
    "EMBED_OPERATORS",
    "LOAD_OPERATORS",
    "MAX_RUNS",
    "URL_PREFIX",
    "GeminiMilvusSpendViewPlugin",
    "create_app",
    "read_records",
    "report_json",
]

log = logging.getLogger(__name__)

#: Where the API server mounts the app: the page is ``{URL_PREFIX}/spend``, its JSON ``.../spend.json``.
URL_PREFIX = "/gemini-milvus"
#: Task classes whose return values are read (Airflow records each task instance's class name).
EMBED_OPERATORS = ("GeminiEmbedOperator",)
LOAD_OPERATORS = ("MilvusInsertOperator",)
#: How many of the newest DAG runs with such a task are read by default, and at most.
DEFAULT_RUNS = 100
MAX_RUNS = 2000

# The signed-in Airflow user (the UI's cookie or a Bearer token), or 401; evaluated by FastAPI at run time.
_UserDep = Annotated[BaseUser, Depends(get_user)]
_RunsQuery = Annotated[int, Query(ge=1, le=MAX_RUNS, description="the newest runs to read")]
_DagQuery = Annotated[str | None, Query(max_length=250, description="only this DAG")]


def read_records(
    session: Session, *, dag_ids: Collection[str] | None, runs: int
) -> tuple[list[EmbedRecord], list[LoadRecord]]:
    """
    The provider's task results of the newest ``runs`` DAG runs that have one, from the metadata database.

    Only the figures are selected (JSON paths inside the stored value), so rows, texts and vectors of an
    inline embedding result never leave the database. A value that is not a JSON object in the database
    (an XCom backend that stores it elsewhere) yields nothing.

    :param session: a metadata database session.
    :param dag_ids: the DAGs to read, None for all.
    :param runs: how many of the newest DAG runs to read.
    """
    from airflow.models.dagrun import DagRun
    from airflow.models.renderedtifields import RenderedTaskInstanceFields as Rendered
    from airflow.models.taskinstance import TaskInstance as TI
    from airflow.models.xcom import XCOM_RETURN_KEY, XComModel
    from sqlalchemy import and_, select

    operators = (*EMBED_OPERATORS, *LOAD_OPERATORS)
    newest = (
        select(DagRun.id, DagRun.run_after)
        .join(TI, and_(TI.dag_id == DagRun.dag_id, TI.run_id == DagRun.run_id))
        .where(TI.operator.in_(operators))
        .distinct()
        .order_by(DagRun.run_after.desc(), DagRun.id.desc())
        .limit(runs)
    )
    if dag_ids is not None:
        newest = newest.where(DagRun.dag_id.in_(list(dag_ids)))
    run_ids = [row[0] for row in session.execute(newest)]
    if not run_ids:
        return [], []
    value = XComModel.value
    same_task = and_(
        TI.dag_id == XComModel.dag_id,
        TI.run_id == XComModel.run_id,
        TI.task_id == XComModel.task_id,
        TI.map_index == XComModel.map_index,
    )
    query = (
        select(
            XComModel.dag_id,
            XComModel.run_id,
            XComModel.task_id,
            XComModel.map_index,
            TI.operator,
            DagRun.start_date,
            DagRun.run_after,
            value["stats"],
            value["model"],
            value["collection"],
            value["written"],
            value["deleted"],
            Rendered.rendered_fields["collection_name"],
        )
        .join(DagRun, DagRun.id == XComModel.dag_run_id)
        .join(TI, same_task)
        .outerjoin(
            Rendered,
            and_(
                Rendered.dag_id == XComModel.dag_id,
                Rendered.run_id == XComModel.run_id,
                Rendered.task_id == XComModel.task_id,
                Rendered.map_index == XComModel.map_index,
            ),
        )
        .where(
            XComModel.dag_run_id.in_(run_ids),
            XComModel.key == XCOM_RETURN_KEY,
            TI.operator.in_(operators),
        )
    )
    embeds: list[EmbedRecord] = []
    loads: list[LoadRecord] = []
    for row in session.execute(query):
        dag_id, run_id, task_id, map_index, operator, started, due = row[:7]
        stats, model, collection, written, deleted, collection_name = row[7:]
        task = f"{task_id}[{map_index}]" if map_index is not None and map_index >= 0 else task_id
        when: datetime | None = started or due
        if operator in EMBED_OPERATORS and isinstance(stats, dict):
            embeds.append(
                EmbedRecord(
                    dag_id=dag_id,
                    run_id=run_id,
                    task_id=task,
                    when=when,
                    collection=collection_name if isinstance(collection_name, str) else None,
                    model=model if isinstance(model, str) else "",
                    stats=stats,
                )
            )
        elif operator in LOAD_OPERATORS and isinstance(collection, str):
            loads.append(
                LoadRecord(
                    dag_id=dag_id,
                    run_id=run_id,
                    task_id=task,
                    when=when,
                    collection=collection,
                    written=written if isinstance(written, int) else 0,
                    deleted=deleted if isinstance(deleted, int) else 0,
                )
            )
    return embeds, loads


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _totals_json(totals: SpendTotals) -> dict[str, Any]:
    return {
        "key": totals.key,
        "runs": totals.runs,
        "last": _time(totals.last),
        "documents": totals.documents,
        "texts_embedded": totals.texts,
        "not_resent": totals.not_resent,
        "estimated_tokens": totals.tokens,
        "requests": totals.requests,
        "rate_limited": totals.rate_limited,
        "rate_limited_share": totals.rate_limited_share,
        "sync_cost_usd": totals.sync_usd,
        "batch_cost_usd": totals.batch_usd,
        "saved_usd": totals.saved_usd,
        "written": totals.written,
        "deleted": totals.deleted,
        "dag_ids": list(totals.dag_ids),
        "collections": list(totals.collections),
    }


def _run_json(run: RunSpend) -> dict[str, Any]:
    return {
        "dag_id": run.dag_id,
        "run_id": run.run_id,
        "when": _time(run.when),
        "collection": run.collection,
        "models": list(run.models),
        "mode": "batch" if run.batch else "sync",
        "documents": run.documents,
        "texts_embedded": run.texts,
        "not_resent": run.not_resent,
        "estimated_tokens": run.tokens,
        "requests": run.requests,
        "rate_limited": run.rate_limited,
        "sync_cost_usd": run.sync_usd,
        "batch_cost_usd": run.batch_usd,
        "saved_usd": run.saved_usd,
        "written": run.written,
        "deleted": run.deleted,
    }


def report_json(report: SpendReport) -> dict[str, Any]:
    """The report as JSON (what ``spend.json`` answers)."""
    return {
        "total": _totals_json(report.total),
        "by_dag": [_totals_json(totals) for totals in report.by_dag],
        "by_collection": [_totals_json(totals) for totals in report.by_collection],
        "runs": [_run_json(run) for run in report.runs],
    }


def _readable_dags(user: BaseUser, dag_id: str | None) -> set[str]:
    """The DAGs the user may read (``dag_id`` alone when given), refused with 403 when that is none."""
    from airflow.api_fastapi.app import get_auth_manager

    readable = set(get_auth_manager().get_authorized_dag_ids(user=user, method="GET"))
    if dag_id is None:
        return readable
    if dag_id not in readable:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, f"You may not read DAG {dag_id!r}, or it does not exist"
        )
    return {dag_id}


def _report(user: BaseUser, dag_id: str | None, runs: int) -> SpendReport:
    from airflow.utils.session import create_session

    dag_ids = _readable_dags(user, dag_id)
    with create_session() as session:
        embeds, loads = read_records(session, dag_ids=dag_ids, runs=runs)
    log.debug("Spend view: %d embedding and %d load results", len(embeds), len(loads))
    return build_report(embeds, loads)


_NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def create_app() -> FastAPI:
    """The FastAPI app the API server mounts under :data:`URL_PREFIX`."""
    app = FastAPI(
        title="Gemini and Milvus spend view",
        description="What the provider's tasks embedded, spent and wrote; needs an Airflow login.",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )

    @app.get("/spend", response_class=HTMLResponse)
    def spend_page(
        user: _UserDep,
        dag_id: _DagQuery = None,
        runs: _RunsQuery = DEFAULT_RUNS,
    ) -> HTMLResponse:
        report = _report(user, dag_id, runs)
        nonce = secrets.token_urlsafe(16)
        policy = (
            f"default-src 'none'; style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}'; "
            "frame-ancestors 'self'; base-uri 'none'; form-action 'self'"
        )
        return HTMLResponse(
            render_page(report, dag_id=dag_id, run_limit=runs, nonce=nonce),
            headers={**_NO_STORE, "Content-Security-Policy": policy},
        )

    @app.get("/spend.json")
    def spend_json(
        user: _UserDep,
        dag_id: _DagQuery = None,
        runs: _RunsQuery = DEFAULT_RUNS,
    ) -> JSONResponse:
        return JSONResponse(report_json(_report(user, dag_id, runs)), headers=_NO_STORE)

    return app


class GeminiMilvusSpendViewPlugin(AirflowPlugin):
    """The spend view in the Airflow UI: a FastAPI app and the views that show it."""

    name = "gemini_milvus_spend_view"
    fastapi_apps = [
        {"app": create_app(), "url_prefix": URL_PREFIX, "name": "Gemini and Milvus spend view"},
    ]
    external_views = [
        {
            "name": "Embedding spend",
            "href": f"{URL_PREFIX.lstrip('/')}/spend",
            "destination": "nav",
            "category": "browse",
            "url_route": "gemini-milvus-spend",
        },
        {
            "name": "Embedding spend",
            "href": f"{URL_PREFIX.lstrip('/')}/spend?dag_id={{DAG_ID}}",
            "destination": "dag",
            "url_route": "gemini-milvus-spend-dag",
        },
    ]
