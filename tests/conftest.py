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
import uuid
from collections.abc import Callable, Iterator
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


@pytest.fixture
def lite_lock_wait(
    monkeypatch: pytest.MonkeyPatch, milvus_connection: str, milvus_db_path: Path
) -> Callable[[float], None]:
    """Set the ``lite_lock_wait`` extra of ``milvus_default`` (seconds)."""

    def set_wait(seconds: float) -> None:
        connection = {
            "conn_type": "milvus",
            "host": str(milvus_db_path),
            "extra": {"lite_lock_wait": seconds},
        }
        monkeypatch.setenv("AIRFLOW_CONN_MILVUS_DEFAULT", json.dumps(connection))

    return set_wait


HOLD_LITE_FILE = """
import sys, time
from milvus_lite.server_manager import server_manager_instance
from pymilvus import MilvusClient

path, release_after = sys.argv[1], float(sys.argv[2])
client = MilvusClient(path)
print("holding", flush=True)
if release_after >= 0:
    time.sleep(release_after)
    client.close()
    server_manager_instance.release_server(path)
sys.stdin.readline()
"""


@pytest.fixture
def lite_file_holder() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """
    Start another process that opens a Milvus Lite file, as a second Airflow task would.

    ``hold(path, release_after=1.0)`` returns once the other process holds the file; it lets go after
    ``release_after`` seconds, or at the end of the test when ``release_after`` is None.
    """
    holders: list[subprocess.Popen[str]] = []

    def hold(path: Path, release_after: float | None = None) -> subprocess.Popen[str]:
        holder = subprocess.Popen(
            [
                sys.executable,
                "-c",
                HOLD_LITE_FILE,
                str(path),
                str(-1 if release_after is None else release_after),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        holders.append(holder)
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "holding"
        return holder

    yield hold
    for holder in holders:
        holder.communicate("done\n", timeout=60)


def _release_milvus_lite(path: Path) -> None:
    """Stop an in-process Milvus Lite server a test may have left holding the file lock."""
    from milvus_lite.server_manager import server_manager_instance

    server_manager_instance.release_server(str(path))


# -- an S3-compatible server on loopback (moto), for staging through s3:// the way a deployment does --


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """The URL of a moto S3 server on 127.0.0.1 (skips the test when moto[server] is not installed)."""
    server_module = pytest.importorskip(
        "moto.server", reason="the S3 staging test needs moto[server] and s3fs (the test extra)"
    )
    pytest.importorskip("s3fs", reason="the S3 staging test needs s3fs (the test extra)")
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """
    A fresh bucket ``s3://staging-tests-<random>``, reached through fsspec's s3fs configured from the
    environment (moto keeps its buckets for the whole process, so every test gets its own).

    No Airflow provider registers ``s3://`` here, so staging falls back to fsspec's implementation and
    attaches it to Airflow's object storage; that attachment is dropped afterwards, so no other test sees a
    filesystem pointing at this short-lived server.
    """
    import s3fs
    from airflow.sdk.io import store

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": s3_endpoint,
    }.items():
        monkeypatch.setenv(name, value)
    s3fs.S3FileSystem.clear_instance_cache()
    bucket = f"staging-tests-{uuid.uuid4().hex[:12]}"
    s3fs.S3FileSystem(skip_instance_cache=True).mkdir(bucket)
    yield f"s3://{bucket}"
    store._STORE_CACHE.pop("s3", None)
    s3fs.S3FileSystem.clear_instance_cache()


@pytest.fixture
def lite_served_over_grpc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """
    ``milvus_default`` pointing at a Milvus Lite file served over gRPC on a loopback port in this process.

    With a ``.db`` URI every task stops the in-process Lite server when it ends (to free the file for the
    next process), which would cut off a reader in the same process: served this way, the tasks and the
    reader share one Lite server that lives as long as the test, as a server's clients do.
    """
    from milvus_lite.adapter.grpc.server import start_server_in_thread

    server, db, port = start_server_in_thread(str(tmp_path / "milvus.db"))
    connection = {"conn_type": "milvus", "host": f"http://127.0.0.1:{port}"}
    monkeypatch.setenv("AIRFLOW_CONN_MILVUS_DEFAULT", json.dumps(connection))
    yield
    server.stop(grace=2)
    db.close()
