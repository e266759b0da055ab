"""
``make demo``: run ``example_gemini_milvus_ingest`` end to end on this machine.

It prepares a throwaway ``AIRFLOW_HOME`` under ``.demo/``, stores the collection in a Milvus Lite file
there, and runs the DAG with ``airflow dags test``. With ``GEMINI_API_KEY`` set it calls the real Gemini
API; without it, it starts the bundled Gemini emulator and says so. It ends by printing each question
with its top hits.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
DEMO_DIR = REPO_ROOT / ".demo"
AIRFLOW_HOME = DEMO_DIR / "airflow_home"
MILVUS_DB = DEMO_DIR / "milvus.db"
LOG_FILE = DEMO_DIR / "dags-test.log"
DAG_ID = "example_gemini_milvus_ingest"
ANSWER_TASK = "answer_questions"


def fresh_demo_dir() -> None:
    shutil.rmtree(DEMO_DIR, ignore_errors=True)
    AIRFLOW_HOME.mkdir(parents=True)


def airflow_environment(gemini_connection: dict[str, Any]) -> dict[str, str]:
    env = os.environ.copy()
    env.update(
        {
            "AIRFLOW_HOME": str(AIRFLOW_HOME),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "example_dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW_CONN_GEMINI_DEFAULT": json.dumps(gemini_connection),
            "AIRFLOW_CONN_MILVUS_DEFAULT": json.dumps({"conn_type": "milvus", "host": str(MILVUS_DB)}),
        }
    )
    return env


def run_logged(command: list[str], env: dict[str, str], log: Any) -> None:
    log.write(f"\n$ {' '.join(command)}\n")
    log.flush()
    result = subprocess.run(command, env=env, stdout=log, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        log.flush()
        tail = LOG_FILE.read_text(encoding="utf-8", errors="replace").splitlines()[-40:]
        print("\n".join(tail), file=sys.stderr)
        raise SystemExit(f"`{' '.join(command[2:])}` failed (exit {result.returncode}); full log: {LOG_FILE}")


def read_answers(env: dict[str, str]) -> list[dict[str, Any]]:
    """The return value of the DAG's question-answering task, read from the run's metadata database."""
    os.environ.update({key: env[key] for key in ("AIRFLOW_HOME", "AIRFLOW__CORE__DAGS_FOLDER")})
    from airflow_provider_gemini_milvus.testing.xcom import xcom_return_value

    try:
        return list(xcom_return_value(DAG_ID, ANSWER_TASK))
    except LookupError as err:
        raise SystemExit(f"the run left no answers; see {LOG_FILE}") from err


def print_answers(answers: list[dict[str, Any]]) -> None:
    print("\nTop hits for each question:")
    for answer in answers:
        print(f"\n  Q: {answer['query']}")
        for rank, hit in enumerate(answer["hits"], start=1):
            print(f"     {rank}. [{hit['score']:.3f}] {hit['text']}")


def main() -> None:
    fresh_demo_dir()
    api_key = os.environ.get("GEMINI_API_KEY")
    emulator = None
    if api_key:
        print("GEMINI_API_KEY is set: embedding with the real Gemini API.")
        gemini_connection: dict[str, Any] = {"conn_type": "gemini", "password": api_key}
    else:
        from airflow_provider_gemini_milvus.testing.gemini_emulator import GeminiEmulator

        emulator = GeminiEmulator().start()
        print(
            f"No GEMINI_API_KEY set: using the bundled Gemini emulator at {emulator.base_url} "
            "(deterministic offline vectors, not real Gemini quality)."
        )
        gemini_connection = {
            "conn_type": "gemini",
            "password": emulator.api_key,
            "extra": {"base_url": emulator.base_url},
        }
    print(f"Milvus Lite file: {MILVUS_DB}")
    print(f"Throwaway AIRFLOW_HOME: {AIRFLOW_HOME}")
    env = airflow_environment(gemini_connection)
    airflow = [sys.executable, "-m", "airflow"]
    try:
        with LOG_FILE.open("w", encoding="utf-8") as log:
            print("Preparing the Airflow metadata database ...")
            run_logged([*airflow, "db", "migrate"], env, log)
            print(f"Running `airflow dags test {DAG_ID}` (log: {LOG_FILE}) ...")
            run_logged([*airflow, "dags", "test", DAG_ID], env, log)
    finally:
        if emulator is not None:
            emulator.stop()
    print_answers(read_answers(env))
    print(f"\nDone: {DAG_ID} embedded, loaded and searched its corpus.")


if __name__ == "__main__":
    main()
