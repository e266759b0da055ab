"""The shipped example DAGs end to end with ``dag.test()``, the emulator for Gemini and a Milvus server."""

from __future__ import annotations

import pytest

from tests.example_dags.test_example_dags import (  # noqa: F401  (imported tests run here, against the server)
    test_ingest_dag_answers_each_seed_question_with_the_right_document,
)

pytestmark = pytest.mark.usefixtures("airflow_db", "gemini_connection", "milvus_connection")
