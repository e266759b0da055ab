"""Provider metadata read by Airflow's ``ProvidersManager`` without importing the hooks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_gemini_milvus import __version__
from airflow_provider_gemini_milvus.connection_extras import (
    GEMINI_EXTRA_FIELDS,
    MILVUS_EXTRA_FIELDS,
    ExtraField,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

PACKAGE_NAME = "airflow-provider-gemini-milvus"


def _form_fields(fields: Sequence[ExtraField]) -> dict[str, Any]:
    return {field.name: field.form_field() for field in fields}


def _gemini_connection_type() -> dict[str, Any]:
    return {
        "connection-type": "gemini",
        "hook-class-name": "airflow_provider_gemini_milvus.hooks.gemini.GeminiHook",
        "hook-name": "Google Gemini",
        "ui-field-behaviour": {
            "hidden-fields": ["host", "schema", "port", "login"],
            "relabeling": {"password": "API Key"},
            "placeholders": {"password": "Gemini API key (leave empty for Vertex AI with a service account)"},
        },
        "conn-fields": _form_fields(GEMINI_EXTRA_FIELDS),
    }


def _milvus_connection_type() -> dict[str, Any]:
    return {
        "connection-type": "milvus",
        "hook-class-name": "airflow_provider_gemini_milvus.hooks.milvus.MilvusHook",
        "hook-name": "Milvus",
        "ui-field-behaviour": {
            "hidden-fields": ["port"],
            "relabeling": {
                "host": "URI",
                "login": "User",
                "password": "Token",
                "schema": "Database",
            },
            "placeholders": {
                "host": "http://localhost:19530, https://<cluster>.zillizcloud.com or /path/to/milvus.db; "
                "empty: a Milvus Lite file at $AIRFLOW_HOME/milvus_lite/milvus.db, one per worker",
                "password": "token, or password when User is set",
                "schema": "default",
            },
        },
        "conn-fields": _form_fields(MILVUS_EXTRA_FIELDS),
    }


def get_provider_info() -> dict[str, Any]:
    """Return the provider description that Airflow registers through the entry point."""
    return {
        "package-name": PACKAGE_NAME,
        "name": "Gemini and Milvus",
        "description": "Google Gemini embeddings loaded into Milvus collections, incrementally.",
        "versions": [__version__],
        "integrations": [
            {"integration-name": "Google Gemini", "tags": ["ai"]},
            {"integration-name": "Milvus", "tags": ["software"]},
        ],
        "hooks": [
            {
                "integration-name": "Google Gemini",
                "python-modules": ["airflow_provider_gemini_milvus.hooks.gemini"],
            },
            {"integration-name": "Milvus", "python-modules": ["airflow_provider_gemini_milvus.hooks.milvus"]},
        ],
        "operators": [
            {
                "integration-name": "Google Gemini",
                "python-modules": ["airflow_provider_gemini_milvus.operators.gemini"],
            },
            {
                "integration-name": "Milvus",
                "python-modules": ["airflow_provider_gemini_milvus.operators.milvus"],
            },
        ],
        "connection-types": [_gemini_connection_type(), _milvus_connection_type()],
    }
