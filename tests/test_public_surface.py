"""The public surface is pinned: each package face exports exactly these names, and every module's
``__all__`` names things that exist. A change here is a change users see."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import pytest

import airflow_provider_gemini_milvus

PACKAGE_FACES = {
    "airflow_provider_gemini_milvus": ["__version__", "get_provider_info"],
    "airflow_provider_gemini_milvus.hooks": ["GeminiHook", "MilvusHook"],
    "airflow_provider_gemini_milvus.operators": [
        "GeminiEmbedOperator",
        "MilvusInsertOperator",
        "MilvusPromoteAliasOperator",
        "MilvusSearchEvaluationOperator",
        "MilvusSearchOperator",
        "milvus_asset",
    ],
    "airflow_provider_gemini_milvus.triggers": ["GeminiBatchJobTrigger"],
    "airflow_provider_gemini_milvus.embedding": [
        "Document",
        "DocumentSource",
        "EmbedArguments",
        "EmbedPlan",
        "EmbedTask",
        "RunCostEstimate",
        "estimate_run_cost",
        "open_document_source",
        "plan_run",
    ],
    "airflow_provider_gemini_milvus.loading": [
        "InsertArguments",
        "PromoteArguments",
        "embedding_fingerprint",
        "load_manifest",
        "load_rows",
        "promote",
        "versioned_collection_name",
    ],
    "airflow_provider_gemini_milvus.observability": [
        "METRIC_PREFIX",
        "Metric",
        "embed_metrics",
        "evaluation_metrics",
        "insert_metrics",
        "milvus_collection_asset",
        "milvus_collection_uri",
        "promote_metrics",
        "record_metrics",
        "search_metrics",
    ],
    "airflow_provider_gemini_milvus.plugins": [],
    "airflow_provider_gemini_milvus.retrieval": [
        "QUALITY_METRICS",
        "SEARCH_MODES",
        "LabelledQuery",
        "QualityGate",
        "QualityVerdict",
        "QueryHits",
        "QuerySettings",
        "RetrievalScores",
        "SearchArguments",
        "compare_scores",
        "dump_labelled_queries",
        "evaluate_collection",
        "evaluate_search",
        "format_scores_table",
        "labelled_queries",
        "score_rankings",
        "search_collection",
        "stored_query_settings",
    ],
    "airflow_provider_gemini_milvus.files": [
        "FILES_EXTRA_INSTALL",
        "Chunk",
        "ChunkingSpec",
        "FileLoadError",
        "FilesExtraMissingError",
        "LoadedText",
        "SourceFile",
        "chunk_text",
        "extra_installed",
        "format_of",
        "iter_files",
        "load_bytes",
        "load_file",
        "source_key",
    ],
    "airflow_provider_gemini_milvus.gemini": [
        "DEFAULT_MODEL",
        "MAX_TEXTS_PER_REQUEST",
        "MODELS",
        "TASK_TYPES",
        "BackoffPolicy",
        "EmbeddingModel",
        "EmbeddingResult",
        "EmbeddingRunStats",
        "GeminiConnectionSettings",
        "RefusedText",
        "cost_usd",
        "estimate_tokens",
        "read_settings",
        "resolve_model",
    ],
    "airflow_provider_gemini_milvus.milvus": [
        "FIELD_CONTENT_HASH",
        "FIELD_ID",
        "FIELD_METADATA",
        "FIELD_MODEL",
        "FIELD_TEXT",
        "FIELD_VECTOR",
        "CollectionInfo",
        "WriteResult",
        "check_collection_matches",
        "content_hash",
        "model_fingerprint",
        "prepare_rows",
        "redact_token",
    ],
    "airflow_provider_gemini_milvus.utils": [
        "TaskLogger",
        "check_utf8_encodable",
        "iso_time",
        "parse_bool",
        "parse_iso_time",
        "to_bool",
        "to_float",
        "to_int",
        "to_str",
        "to_str_list",
    ],
    "airflow_provider_gemini_milvus.exceptions": [
        "AliasMigrationLockedError",
        "BulkImportFailed",
        "FileLoadError",
        "FilesExtraMissingError",
        "GeminiAPIError",
        "GeminiMilvusProviderError",
        "GeminiQuotaExhaustedError",
        "MigrationCheckError",
        "MigrationQualityError",
        "MilvusCollectionMismatchError",
        "MilvusFullTextUnsupportedError",
    ],
}

#: Import paths the docs and the examples show; they keep working.
USER_IMPORTS = [
    ("airflow_provider_gemini_milvus.hooks.gemini", "GeminiHook"),
    ("airflow_provider_gemini_milvus.hooks.gemini", "TASK_TYPES"),
    ("airflow_provider_gemini_milvus.hooks.milvus", "MilvusHook"),
    ("airflow_provider_gemini_milvus.operators.gemini", "GeminiEmbedOperator"),
    ("airflow_provider_gemini_milvus.operators.gemini", "TASK_TYPES"),
    ("airflow_provider_gemini_milvus.operators.gemini", "estimate_run_cost"),
    ("airflow_provider_gemini_milvus.operators.gemini", "open_document_source"),
    ("airflow_provider_gemini_milvus.operators.milvus", "MilvusInsertOperator"),
    ("airflow_provider_gemini_milvus.operators.milvus", "milvus_asset"),
    ("airflow_provider_gemini_milvus.operators.milvus_alias", "MilvusPromoteAliasOperator"),
    ("airflow_provider_gemini_milvus.operators.milvus_alias", "versioned_collection_name"),
    ("airflow_provider_gemini_milvus.operators.milvus_search", "MilvusSearchOperator"),
    (
        "airflow_provider_gemini_milvus.operators.milvus_search_evaluation",
        "MilvusSearchEvaluationOperator",
    ),
    ("airflow_provider_gemini_milvus.testing.search_set", "SEARCH_QUERIES"),
    ("airflow_provider_gemini_milvus.triggers.gemini_batch", "GeminiBatchJobTrigger"),
    ("airflow_provider_gemini_milvus.staging", "StagedManifest"),
    ("airflow_provider_gemini_milvus.testing.gemini_emulator", "GeminiEmulator"),
    ("airflow_provider_gemini_milvus.testing.xcom", "xcom_return_value"),
]


def all_modules() -> list[str]:
    prefix = airflow_provider_gemini_milvus.__name__ + "."
    names = [airflow_provider_gemini_milvus.__name__]
    names += [info.name for info in pkgutil.walk_packages(airflow_provider_gemini_milvus.__path__, prefix)]
    return [name for name in names if not name.endswith("__main__")]


@pytest.mark.parametrize(("module_name", "expected"), sorted(PACKAGE_FACES.items()))
def test_each_package_face_exports_exactly_its_names(module_name: str, expected: list[str]) -> None:
    module = importlib.import_module(module_name)
    assert sorted(module.__all__) == sorted(expected)


@pytest.mark.parametrize("module_name", all_modules())
def test_every_module_declares_what_it_exports_and_it_exists(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert hasattr(module, "__all__"), f"{module_name} has no __all__"
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert not missing, f"{module_name}.__all__ names what it does not define: {missing}"
    assert len(set(module.__all__)) == len(module.__all__), f"{module_name}.__all__ repeats a name"


@pytest.mark.parametrize(("module_name", "name"), USER_IMPORTS)
def test_the_import_paths_users_type_keep_working(module_name: str, name: str) -> None:
    module = importlib.import_module(module_name)
    assert name in module.__all__


@pytest.mark.parametrize(
    "module_name",
    ["airflow_provider_gemini_milvus.gemini", "airflow_provider_gemini_milvus.testing.gemini_emulator"],
)
def test_the_gemini_face_and_the_emulator_import_no_airflow(module_name: str) -> None:
    # Importing Airflow configures its logging: the emulator's command line would print log records.
    code = f"import sys, {module_name}; sys.exit('airflow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
