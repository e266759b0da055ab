"""
Shared test set-up.

Airflow reads its configuration when first imported, so this module points ``AIRFLOW_HOME`` at a throwaway
folder and the DAGs folder at ``example_dags/`` before anything imports Airflow. Gemini fixtures come from
the plugin the package ships for its users (``gemini_emulator``, ``gemini_connection``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_DAGS = REPO_ROOT / "example_dags"
TEST_DAGS = Path(__file__).resolve().parent / "dags"

_AIRFLOW_HOME = tempfile.mkdtemp(prefix="gemini-milvus-airflow-home-")
os.environ["AIRFLOW_HOME"] = _AIRFLOW_HOME
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(EXAMPLE_DAGS)
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"
# Two DAG bundles: the shipped examples and the small DAGs the tests run with ``dag.test()``.
os.environ["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"] = json.dumps(
    [
        {
            "name": "example-dags",
            "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
            "kwargs": {"path": str(EXAMPLE_DAGS)},
        },
        {
            "name": "test-dags",
            "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
            "kwargs": {"path": str(TEST_DAGS)},
        },
    ]
)
os.environ.pop("AIRFLOW_CONN_GEMINI_DEFAULT", None)
os.environ.pop("AIRFLOW_CONN_MILVUS_DEFAULT", None)

pytest_plugins = ["airflow_provider_gemini_milvus.testing.pytest_plugin"]


@pytest.fixture(scope="session")
def airflow_db() -> str:
    """Create Airflow's metadata database once per session (needed by ``dag.test()``)."""
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        capture_output=True,
        env=os.environ.copy(),
    )
    return _AIRFLOW_HOME


@pytest.fixture
def milvus_db_path(tmp_path: Path) -> Path:
    """A fresh Milvus Lite database file location for one test."""
    return tmp_path / "milvus.db"


@pytest.fixture
def milvus_connection(monkeypatch: pytest.MonkeyPatch, milvus_db_path: Path) -> Iterator[str]:
    """``milvus_default`` pointing at a fresh Milvus Lite file, given as ``AIRFLOW_CONN_MILVUS_DEFAULT``."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_MILVUS_DEFAULT",
        json.dumps({"conn_type": "milvus", "host": str(milvus_db_path)}),
    )
    yield "milvus_default"
    _release_milvus_lite(milvus_db_path)


def _release_milvus_lite(path: Path) -> None:
    """Stop an in-process Milvus Lite server a test may have left holding the file lock."""
    from milvus_lite.server_manager import server_manager_instance

    server_manager_instance.release_server(str(path))
