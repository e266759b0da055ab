"""
Run the sharded example DAG on Airflow's CeleryExecutor, end to end, on this machine.

What runs (all on 127.0.0.1, each on a free port, everything stopped at the end):

* Redis (Debian's ``redis-server``): the Celery broker and result backend.
* The control plane, sharing one ``AIRFLOW_HOME`` and its SQLite metadata database: ``airflow api-server``
  (which also serves the task execution API the workers talk to), ``airflow dag-processor`` and
  ``airflow scheduler`` with ``CeleryExecutor``.
* Two ``airflow celery worker`` processes, each with its own ``AIRFLOW_HOME`` (so its own logs, its own
  metadata database path it never uses, its own default staging folder): nothing a task wrote to one
  worker's local disk can be read by a task on the other.
* A moto S3 server: the staging location (``AIRFLOW__GEMINI_MILVUS__STAGING_URI=s3://...``), holding the
  shard files and the Parquet parts the embedding tasks stage for the load tasks.
* A Milvus 2.3.5 standalone server (``ci/milvus_server.py``): the target, loaded by up to 4 shards at once
  (the ``milvus_load`` pool has 4 slots).
* The project's Gemini emulator, in this process.

Then it triggers ``example_gemini_milvus_sharded`` (``airflow dags trigger``), waits for the run, and checks
that it succeeded, that both workers ran tasks, that nothing was staged on a worker's disk, and that the
collection holds one row per document. A component that cannot start makes the script say why and exit 0
(skipped); a run that fails, or a check that does not hold, exits 1.

Usage (from ``make test-distributed``, with the .venv-distributed Python)::

    python ci/distributed/run_distributed.py [--shards 4] [--documents 2000]

Logs of every component (and each worker's task logs) stay in ``.distributed/`` until the next run.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
WORK_DIR = REPO_ROOT / ".distributed"
DAG_ID = "example_gemini_milvus_sharded"
COLLECTION = "gemini_sharded_docs"
LOAD_POOL = "milvus_load"
LOAD_POOL_SLOTS = 4
WORKERS = ("worker1", "worker2")
WORKER_CONCURRENCY = 2
BUCKET = "gemini-milvus-staging"
#: The whole run, from the first component started to the last check; the target's budget is ~8 minutes.
RUN_TIMEOUT_SECONDS = 420.0
STOP_TIMEOUT_SECONDS = 20.0


class Unavailable(RuntimeError):
    """A component cannot be started on this machine: the run is skipped, not failed."""


class CheckFailed(RuntimeError):
    """The run started but did not do what it should."""


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] test-distributed: {message}", flush=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until(what: str, ready: Any, timeout: float, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if process is not None and process.poll() is not None:
            raise Unavailable(f"{what} exited with code {process.returncode} while starting")
        if time.monotonic() > deadline:
            raise Unavailable(f"{what} was not ready after {timeout:.0f} s")
        time.sleep(1)


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Stack:
    """Every process this script started, stopped in reverse order."""

    logs: Path
    processes: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    cleanups: list[tuple[str, Any]] = field(default_factory=list)
    #: Commands that stop a component, run alongside the rest of the shutdown (the Milvus server takes ~30 s).
    stop_commands: list[tuple[str, list[str]]] = field(default_factory=list)

    def start(self, name: str, command: list[str], env: dict[str, str], cwd: Path | None = None) -> Any:
        handle = (self.logs / f"{name}.log").open("wb")
        process = subprocess.Popen(
            command,
            env=env,
            cwd=cwd or REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopping it ends its children, nothing else
        )
        handle.close()
        self.processes.append((name, process))
        return process

    def stop(self) -> None:
        stopping = time.monotonic()
        stoppers = [
            (name, subprocess.Popen(command, stdin=subprocess.DEVNULL))
            for name, command in self.stop_commands
        ]
        for _, process in reversed(self.processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = stopping + STOP_TIMEOUT_SECONDS
        for name, process in reversed(self.processes):
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log(f"{name} did not stop in {STOP_TIMEOUT_SECONDS:.0f} s; killing it")
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            with contextlib.suppress(ProcessLookupError):  # what its children left behind in its group
                os.killpg(process.pid, signal.SIGKILL)
        log(f"Airflow and Redis stopped in {time.monotonic() - stopping:.0f} s")
        for name, cleanup in reversed(self.cleanups):
            stopping = time.monotonic()
            try:
                cleanup()
            except Exception as error:  # a failed cleanup must not hide the run's result
                log(f"stopping {name} failed: {error}")
            log(f"{name} stopped in {time.monotonic() - stopping:.0f} s")
        for name, stopper in stoppers:
            stopper.wait()
            log(f"{name} stopped")


def start_redis(stack: Stack) -> int:
    redis = shutil.which("redis-server")
    if redis is None:
        raise Unavailable("redis-server is not installed (Debian package redis-server)")
    port = free_port()
    process = stack.start(
        "redis",
        [redis, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"],
        dict(os.environ),
    )
    wait_until("redis-server", lambda: port_open(port), 30, process)
    log(f"Redis on 127.0.0.1:{port}")
    return port


@dataclass
class MilvusStart:
    """A Milvus server starting in the background (ci/milvus_server.py start) while Airflow is prepared."""

    port: int
    process: subprocess.Popen[str]
    started: float

    def wait(self) -> str:
        """Block until the server is healthy; its URI. Raises Unavailable with the script's reason if not."""
        out, err = self.process.communicate()
        if self.process.returncode != 0:
            raise Unavailable(f"the Milvus server did not start: {(err or out).strip()}")
        seconds = time.monotonic() - self.started
        log(f"Milvus server on 127.0.0.1:{self.port}, healthy {seconds:.0f} s after launch")
        return f"http://127.0.0.1:{self.port}"


def start_milvus(stack: Stack) -> MilvusStart:
    port = free_port()
    data_dir = WORK_DIR / "milvus"
    script = REPO_ROOT / "ci" / "milvus_server.py"
    # Options before the command: the script's trailing argument list would swallow them after it.
    command = [sys.executable, str(script), "--data-dir", str(data_dir), "--port", str(port)]
    # Registered before it starts: stopping a server that never came up is a no-op.
    stack.stop_commands.append(("the Milvus server", [*command, "stop"]))
    process = subprocess.Popen(
        [*command, "start"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return MilvusStart(port, process, time.monotonic())


def start_s3(stack: Stack) -> str:
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        raise Unavailable("moto[server] is not installed (the project's test extra)") from None
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per S3 request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    stack.cleanups.append(("moto", server.stop))
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    import boto3

    boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    ).create_bucket(Bucket=BUCKET)
    log(f"S3 (moto) at {endpoint}, bucket {BUCKET}")
    return endpoint


def start_gemini(stack: Stack) -> Any:
    from airflow_provider_gemini_milvus.testing.gemini_emulator import GeminiEmulator

    emulator = GeminiEmulator().start()
    stack.cleanups.append(("gemini emulator", emulator.stop))
    log(f"Gemini emulator at {emulator.base_url}")
    return emulator


def airflow_env(home: Path, common: dict[str, str]) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
    env.update(common)
    env["AIRFLOW_HOME"] = str(home)
    return env


def airflow_cli(command: list[str], env: dict[str, str], timeout: float = 120) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "airflow", *command],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise CheckFailed(
            f"airflow {' '.join(command)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
        )
    return result.stdout


def query(database: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30) as connection:
        return connection.execute(sql, args).fetchall()


def api_ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=2) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def task_logs_by_worker(run_id: str) -> dict[str, list[str]]:
    """Which worker ran which task instance, read from the log files in each worker's own AIRFLOW_HOME."""
    ran: dict[str, list[str]] = {}
    for worker in WORKERS:
        logs = WORK_DIR / worker / "logs" / f"dag_id={DAG_ID}" / f"run_id={run_id}"
        names = []
        for path in sorted(logs.glob("task_id=*/**/attempt=*.log")):
            parts = {part.split("=", 1)[0]: part.split("=", 1)[1] for part in path.parts if "=" in part}
            index = parts.get("map_index")
            names.append(parts["task_id"] + (f"[{index}]" if index not in (None, "-1") else ""))
        ran[worker] = names
    return ran


def max_overlap(intervals: list[tuple[str, str]]) -> int:
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return peak


def run(shards: int, documents: int) -> None:
    if WORK_DIR.exists():
        milvus_data = WORK_DIR / "milvus"
        for entry in WORK_DIR.iterdir():
            if entry != milvus_data:  # the unpacked Milvus binaries are kept between runs
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    logs = WORK_DIR / "logs"
    logs.mkdir(parents=True)
    stack = Stack(logs)
    milvus: MilvusStart | None = None
    started = time.monotonic()
    try:
        if importlib.util.find_spec("airflow.providers.celery") is None:
            raise Unavailable("apache-airflow-providers-celery is not installed in this environment")
        # The Milvus server starts in the background while the rest starts and the metadata database is
        # migrated (each takes tens of seconds on two shared cores); it is waited for before the workers.
        milvus = start_milvus(stack)
        redis_port = start_redis(stack)
        s3_endpoint = start_s3(stack)
        emulator = start_gemini(stack)

        api_port = free_port()
        control = WORK_DIR / "control"
        database = control / "airflow.db"
        common = {
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "example_dags"),
            "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(
                [
                    {
                        "name": "example-dags",
                        "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
                        "kwargs": {"path": str(REPO_ROOT / "example_dags")},
                    }
                ]
            ),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
            "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{redis_port}/0",
            "AIRFLOW__CELERY__RESULT_BACKEND": f"redis://127.0.0.1:{redis_port}/1",
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(WORKER_CONCURRENCY),
            "AIRFLOW__GEMINI_MILVUS__STAGING_URI": f"s3://{BUCKET}/staging",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": s3_endpoint,
            "AIRFLOW_CONN_GEMINI_DEFAULT": emulator.connection_json(),
        }
        control_env = airflow_env(control, common)
        control_env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{database}"
        control.mkdir()
        airflow_cli(["db", "migrate"], control_env, timeout=240)
        log(f"metadata database migrated ({database})")
        milvus_uri = milvus.wait()
        common["AIRFLOW_CONN_MILVUS_DEFAULT"] = json.dumps({"conn_type": "milvus", "host": milvus_uri})
        control_env["AIRFLOW_CONN_MILVUS_DEFAULT"] = common["AIRFLOW_CONN_MILVUS_DEFAULT"]

        api = stack.start(
            "api-server",
            [
                sys.executable,
                "-m",
                "airflow",
                "api-server",
                "--host",
                "127.0.0.1",
                "--port",
                str(api_port),
                "--workers",
                "1",
            ],
            control_env,
        )
        stack.start("dag-processor", [sys.executable, "-m", "airflow", "dag-processor"], control_env)
        stack.start("scheduler", [sys.executable, "-m", "airflow", "scheduler"], control_env)
        for worker in WORKERS:
            home = WORK_DIR / worker
            home.mkdir()
            worker_env = airflow_env(home, common)
            # A database of its own that it never needs: a worker reaches Airflow only through the API.
            worker_env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{home / 'unused.db'}"
            worker_env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] = str(free_port())
            stack.start(
                worker,
                [
                    sys.executable,
                    "-m",
                    "airflow",
                    "celery",
                    "worker",
                    "--celery-hostname",
                    f"{worker}@%h",
                    "--concurrency",
                    str(WORKER_CONCURRENCY),
                ],
                worker_env,
            )
            log(f"{worker} started (AIRFLOW_HOME {home})")
        wait_until("the api-server", lambda: api_ready(api_port), 180, api)
        log(f"api-server on 127.0.0.1:{api_port}")

        airflow_cli(
            ["pools", "set", LOAD_POOL, str(LOAD_POOL_SLOTS), "parallel Milvus server loads"], control_env
        )
        wait_until(
            f"the dag-processor parsing {DAG_ID}",
            lambda: (
                database.exists()
                and bool(query(database, "SELECT 1 FROM serialized_dag WHERE dag_id = ?", DAG_ID))
            ),
            120,
        )
        run_id = f"distributed__{time.strftime('%Y%m%dT%H%M%S')}"
        conf = json.dumps({"shards": shards, "generated_documents": documents})
        airflow_cli(["dags", "trigger", DAG_ID, "--run-id", run_id, "--conf", conf], control_env)
        log(f"triggered {DAG_ID} run {run_id}: {documents} documents in {shards} shards")

        state = "queued"
        deadline = started + RUN_TIMEOUT_SECONDS
        while state not in ("success", "failed"):
            if time.monotonic() > deadline:
                raise CheckFailed(f"the run was still {state} after {RUN_TIMEOUT_SECONDS:.0f} s")
            for name, process in stack.processes:
                if process.poll() is not None:
                    raise CheckFailed(f"{name} exited with code {process.returncode} during the run")
            time.sleep(3)
            rows = query(
                database, "SELECT state FROM dag_run WHERE dag_id = ? AND run_id = ?", DAG_ID, run_id
            )
            state = rows[0][0] if rows else "queued"
        tasks = query(
            database,
            "SELECT task_id, map_index, state, try_number, start_date, end_date FROM task_instance "
            "WHERE dag_id = ? AND run_id = ? ORDER BY task_id, map_index",
            DAG_ID,
            run_id,
        )
        for task_id, map_index, task_state, tries, start, end in tasks:
            name = task_id + (f"[{map_index}]" if map_index >= 0 else "")
            log(f"  {name:<22} {task_state:<8} try {tries}  {start} .. {end}")
        if state != "success":
            raise CheckFailed(f"the run ended {state}; task logs are under {WORK_DIR}/worker*/logs")
        log(f"run {run_id} succeeded after {time.monotonic() - started:.0f} s")
        check(run_id, tasks, milvus_uri, documents, emulator)
    finally:
        if milvus is not None:
            milvus.process.wait()  # a server still starting is stopped once it has recorded itself
        stack.stop()
        log(f"everything stopped; total {time.monotonic() - started:.0f} s; logs in {logs}")


def check(run_id: str, tasks: list[tuple[Any, ...]], milvus_uri: str, documents: int, emulator: Any) -> None:
    by_worker = task_logs_by_worker(run_id)
    for worker, names in by_worker.items():
        log(f"{worker} ran {len(names)} task instances: {', '.join(names) or '-'}")
    if not all(by_worker.values()):
        raise CheckFailed("one worker ran no task: the run did not use both workers")
    local = [str(path) for worker in WORKERS for path in (WORK_DIR / worker).rglob("gemini_milvus")]
    if local:
        raise CheckFailed(f"something was staged on a worker's disk, not in S3: {local}")
    loads = [(start, end) for task_id, _, _, _, start, end in tasks if task_id == "load_shard"]
    log(f"load_shard: {len(loads)} mapped loads, at most {max_overlap(loads)} at once")

    from pymilvus import MilvusClient

    client = MilvusClient(uri=milvus_uri)
    try:
        rows = client.query(COLLECTION, filter="", output_fields=["count(*)"], consistency_level="Strong")
    finally:
        client.close()
    count = int(rows[0]["count(*)"])
    log(f"collection {COLLECTION} holds {count} rows; the emulator embedded {emulator.stats.texts} texts")
    if count != documents:
        raise CheckFailed(f"collection {COLLECTION} holds {count} rows, expected {documents}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1] if __doc__ else None)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--documents", type=int, default=2000)
    options = parser.parse_args(argv)
    try:
        run(options.shards, options.documents)
    except Unavailable as reason:
        log(f"SKIPPED: {reason}")
        return 0
    except CheckFailed as failure:
        log(f"FAILED: {failure}")
        return 1
    log("PASSED")
    return 0


if __name__ == "__main__":
    sys.exit(main())
