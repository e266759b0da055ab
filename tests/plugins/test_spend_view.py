"""
The spend view's FastAPI app (Starlette's TestClient) against a metadata database one real ``dag.test()`` of
the ingest example filled, and the plugin as Airflow loads it. The page in a browser against a running API
server is ``make check-spend-view``.
"""

from __future__ import annotations

import tomllib
from typing import Any

import pytest

from airflow_provider_gemini_milvus.plugins.spend_page import format_count, format_usd
from airflow_provider_gemini_milvus.testing.xcom import xcom_return_value
from tests.conftest import REPO_ROOT
from tests.example_dags.test_example_dags import load_example, run_dag

DAG_ID = "example_gemini_milvus_ingest"


@pytest.fixture(scope="module")
def token() -> str:
    """A real Airflow token of the configured auth manager (SimpleAuthManager), as the UI's login issues."""
    from airflow.api_fastapi.app import create_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    manager = create_auth_manager()
    manager.init()
    return manager.generate_jwt(SimpleAuthManagerUser(username="admin", role="admin"))


@pytest.fixture(scope="module")
def client() -> Any:
    from fastapi.testclient import TestClient

    from airflow_provider_gemini_milvus.plugins.spend_view import create_app

    return TestClient(create_app())


def test_without_an_airflow_login_the_view_is_refused(client: Any, token: str) -> None:
    for path in ("/spend", "/spend.json"):
        answer = client.get(path)
        assert answer.status_code == 401
        assert answer.json() == {"detail": "Not authenticated"}
    assert client.get("/spend", cookies={"_token": "forged"}).status_code == 403


@pytest.mark.usefixtures("airflow_db", "gemini_connection", "milvus_connection")
def test_the_view_shows_what_a_dag_test_run_returned_and_no_document_text(client: Any, token: str) -> None:
    run_id = run_dag(load_example(DAG_ID), DAG_ID).run_id
    stats = xcom_return_value(DAG_ID, "embed_documents", run_id)["stats"]
    load = xcom_return_value(DAG_ID, "load_into_milvus", run_id)

    answer = client.get(
        "/spend.json", params={"dag_id": DAG_ID}, headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    view = answer.json()
    (run,) = [run for run in view["runs"] if run["run_id"] == run_id]
    assert run["collection"] == load["collection"] == "gemini_seed_demo"
    assert run["texts_embedded"] == stats["embedded"] == 10
    assert run["documents"] == stats["documents"]
    assert run["estimated_tokens"] == stats["estimated_tokens"] > 0
    assert run["requests"] == stats["requests"] > 0
    assert run["sync_cost_usd"] == pytest.approx(stats["estimated_cost_usd"])
    assert run["batch_cost_usd"] == 0.0
    assert (run["written"], run["deleted"]) == (load["written"], load["deleted"])
    assert run["mode"] == "sync"
    assert set(view["total"]["dag_ids"]) == {DAG_ID}, "dag_id limits the view"

    answer = client.get("/spend", params={"dag_id": DAG_ID}, cookies={"_token": token})
    assert answer.status_code == 200
    assert "nonce-" in answer.headers["content-security-policy"]
    page = answer.text
    row = page[page.index(f'data-run="{run_id}"') :].split("</tr>")[0]
    assert f'data-col="texts">{format_count(stats["embedded"])}<' in row
    assert f'data-col="tokens">{format_count(stats["estimated_tokens"])}<' in row
    assert f'data-col="cost_usd">{format_usd(stats["estimated_cost_usd"])}<' in row
    assert f'data-col="written">{format_count(load["written"])}<' in row
    for private in ("Maida Vale", "Where was Alan Turing born", "vector"):
        assert private not in page, "document text, queries or vectors"
        assert private not in str(view), "document text, queries or vectors"


def test_a_dag_the_user_may_not_read_is_refused(client: Any, token: str) -> None:
    answer = client.get(
        "/spend.json", params={"dag_id": "no_such_dag"}, headers={"Authorization": f"Bearer {token}"}
    )

    assert answer.status_code == 403


def test_the_plugin_is_registered_the_way_airflow_loads_installed_plugins() -> None:
    from airflow.api_fastapi.app import RESERVED_URL_PREFIXES
    from airflow.plugins_manager import is_valid_plugin

    from airflow_provider_gemini_milvus.plugins.spend_view import URL_PREFIX, GeminiMilvusSpendViewPlugin

    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    plugin = "airflow_provider_gemini_milvus.plugins.spend_view:GeminiMilvusSpendViewPlugin"
    assert project["entry-points"]["airflow.plugins"] == {"gemini_milvus_spend_view": plugin}
    assert is_valid_plugin(GeminiMilvusSpendViewPlugin)
    assert not any(URL_PREFIX.startswith(prefix) for prefix in RESERVED_URL_PREFIXES)
    (app,) = GeminiMilvusSpendViewPlugin.fastapi_apps
    assert app["url_prefix"] == URL_PREFIX
    views = {view["destination"]: view for view in GeminiMilvusSpendViewPlugin.external_views}
    assert views["nav"]["href"] == "gemini-milvus/spend", "relative: works under a base_url path too"
    assert views["dag"]["href"] == "gemini-milvus/spend?dag_id={DAG_ID}"
