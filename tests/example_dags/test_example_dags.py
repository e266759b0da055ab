"""The shipped example DAGs: they import cleanly and run end to end on the emulator and Milvus Lite."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_gemini_milvus.hooks.milvus import MilvusHook
from airflow_provider_gemini_milvus.testing.gemini_emulator import GeminiEmulator
from airflow_provider_gemini_milvus.testing.xcom import xcom_return_value
from tests.conftest import EXAMPLE_DAGS

pytestmark = pytest.mark.usefixtures("airflow_db", "gemini_connection", "milvus_connection")


def load_example(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, EXAMPLE_DAGS / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_dag(module: Any, dag_name: str, **run_conf: Any) -> Any:
    from airflow.sdk import DagRunState

    dag = getattr(module, dag_name)()
    run = dag.test(run_conf=run_conf or None)
    assert run.state == DagRunState.SUCCESS, f"{dag.dag_id} ended {run.state}"
    return run


def test_dagbag_imports_every_example_without_errors() -> None:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(EXAMPLE_DAGS))
    assert bag.import_errors == {}
    assert {Path(stat.file).name for stat in bag.dagbag_stats} == {
        "example_gemini_milvus_ingest.py",
        "example_gemini_milvus_model_migration.py",
        "example_gemini_milvus_multimodal.py",
        "example_gemini_milvus_reembed.py",
        "example_gemini_milvus_sharded.py",
    }, "run_demo.py is a script, listed in .airflowignore"
    dag_ids = (
        "example_gemini_milvus_ingest",
        "example_gemini_milvus_model_migration",
        "example_gemini_milvus_multimodal",
        "example_gemini_milvus_reembed",
        "example_gemini_milvus_sharded",
    )
    assert set(dag_ids) <= set(bag.dag_ids)
    for dag_id in dag_ids:
        dag = bag.get_dag(dag_id)
        assert dag is not None
        assert "gemini_api_key" not in str(dag.params)


def test_ingest_dag_answers_each_seed_question_with_the_right_document(
    gemini_emulator: GeminiEmulator,
) -> None:
    module = load_example("example_gemini_milvus_ingest")
    run = run_dag(module, "example_gemini_milvus_ingest")

    answers = xcom_return_value("example_gemini_milvus_ingest", "answer_questions", run.run_id)
    top_hits = {answer["query"]: answer["hits"][0]["id"] for answer in answers}
    assert all(set(hit) == {"id", "score", "text"} for answer in answers for hit in answer["hits"])
    assert top_hits == {
        "When was artificial intelligence founded": "ai-founded",
        "Where was Alan Turing born?": "turing-born",
    }
    assert gemini_emulator.stats.task_types == {
        "RETRIEVAL_DOCUMENT": len(module.DOCUMENTS),
        "RETRIEVAL_QUERY": len(module.QUESTIONS),
    }
    summary = xcom_return_value("example_gemini_milvus_ingest", "load_into_milvus", run.run_id)
    assert summary["written"] == len(module.DOCUMENTS)
    with MilvusHook() as milvus:
        assert milvus.count(module.COLLECTION) == len(module.DOCUMENTS)


def test_multimodal_dag_finds_photos_and_pages_with_text_questions(gemini_emulator: GeminiEmulator) -> None:
    module = load_example("example_gemini_milvus_multimodal")
    run = run_dag(module, "example_gemini_milvus_multimodal")

    answers = xcom_return_value("example_gemini_milvus_multimodal", "search", run.run_id)
    top = {answer["question"]: answer["hits"][0] for answer in answers}
    assert top["a jacket that keeps the rain out"]["id"] == "red_hiking_jacket.png"
    assert top["a jacket that keeps the rain out"]["mime_type"] == "image/png"
    assert top["how do I keep my tent out of the sunlight?"]["id"] == "care_guide.pdf"
    assert top["how do I keep my tent out of the sunlight?"]["uri"].startswith("file://")
    assert dict(gemini_emulator.stats.media_parts) == {"image/png": 4, "application/pdf": 1}

    gemini_emulator.reset_stats()
    run_dag(module, "example_gemini_milvus_multimodal")
    assert gemini_emulator.stats.media_parts == {}  # unchanged files: nothing embedded again
    assert gemini_emulator.stats.texts == 2  # the two questions


def test_ingest_dag_rerun_leaves_the_same_rows() -> None:
    module = load_example("example_gemini_milvus_ingest")
    run_dag(module, "example_gemini_milvus_ingest")
    run_dag(module, "example_gemini_milvus_ingest")
    with MilvusHook() as milvus:
        assert milvus.count(module.COLLECTION) == len(module.DOCUMENTS)


def test_reembed_dag_pays_only_for_what_changed(tmp_path: Path, gemini_emulator: GeminiEmulator) -> None:
    module = load_example("example_gemini_milvus_reembed")
    docs = tmp_path / "docs"
    (docs / "guides").mkdir(parents=True)
    (docs / "milvus.md").write_text("Milvus stores vectors for similarity search.", encoding="utf-8")
    (docs / "airflow.txt").write_text("Airflow schedules data pipelines every day.", encoding="utf-8")
    (docs / "guides" / "gemini.md").write_text("Gemini turns text into embeddings.", encoding="utf-8")
    (docs / "notes.bin").write_bytes(b"\x00ignored")
    conf: dict[str, Any] = {"docs_uri": f"file://{docs}"}

    def run_and_count() -> int:
        gemini_emulator.reset_stats()
        run_dag(module, "example_gemini_milvus_reembed", **conf)
        with MilvusHook() as milvus:
            return milvus.count(module.COLLECTION)

    assert run_and_count() == 3
    assert gemini_emulator.stats.texts == 3

    assert run_and_count() == 3
    assert gemini_emulator.stats.requests == 0, "an unchanged folder must cost no embedding request"

    (docs / "airflow.txt").write_text("Airflow schedules and retries data pipelines.", encoding="utf-8")
    assert run_and_count() == 3
    assert gemini_emulator.stats.embedded_texts == ["Airflow schedules and retries data pipelines."]

    (docs / "guides" / "gemini.md").unlink()
    conf["prune"] = False  # rendered into delete_missing as the text "False": nothing is deleted
    assert run_and_count() == 3
    del conf["prune"]
    assert run_and_count() == 2
    assert gemini_emulator.stats.requests == 0
    with MilvusHook() as milvus:
        sources = sorted(row_id.split("#")[0] for row_id in milvus.list_ids(module.COLLECTION))
    assert sources == [f"file://{docs}/airflow.txt", f"file://{docs}/milvus.md"]
