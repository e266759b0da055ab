"""Provider metadata read by Airflow's ``ProvidersManager`` without importing the hooks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_gemini_milvus.connection_extras import (
    GEMINI_EXTRA_FIELDS,
    MILVUS_EXTRA_FIELDS,
    ExtraField,
)
from airflow_provider_gemini_milvus.version import __version__

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["PACKAGE_NAME", "get_provider_info"]

PACKAGE_NAME = "airflow-provider-gemini-milvus"

_STAGING_URI_HELP = """\
Where staged embedding rows (Parquet parts) are written: any URL Airflow's object storage resolves, such
as s3://conn_id@bucket/prefix (needs the provider of the scheme, e.g. apache-airflow-providers-amazon[s3fs])
or gs://bucket/prefix. Every worker must reach it, so set it for distributed executors. Empty means local
files under $AIRFLOW_HOME/gemini_milvus/staging, fine on one machine. An operator's staging_uri argument
overrides it.
"""
_KEEP_DAYS_HELP = """\
Staged task folders (only those carrying the provider's marker) of DAG runs whose newest file is older
than this many days are removed when a staged embedding run starts; a run with a newer file, a run still
queued or running, and the current run are never touched. At least 1 hour (fractions of a day allowed);
empty means never remove anything.
"""


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


def _config() -> dict[str, Any]:
    """The ``[gemini_milvus]`` Airflow config section (``AIRFLOW__GEMINI_MILVUS__<OPTION>`` in the env)."""
    return {
        "gemini_milvus": {
            "description": "Staging of embedding rows between the Gemini and Milvus operators.\n",
            "options": {
                "staging_uri": {
                    "description": _STAGING_URI_HELP,
                    "version_added": "0.1.0",
                    "type": "string",
                    "example": "s3://aws_default@my-bucket/gemini-milvus-staging",
                    "default": "",
                },
                "staging_keep_days": {
                    "description": _KEEP_DAYS_HELP,
                    "version_added": "0.1.0",
                    "type": "float",
                    "example": "1.5",
                    "default": "7",
                },
            },
        }
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
                "python-modules": [
                    "airflow_provider_gemini_milvus.hooks.gemini",
                    "airflow_provider_gemini_milvus.hooks.quota_memory",
                ],
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
                "python-modules": [
                    "airflow_provider_gemini_milvus.operators.milvus",
                    "airflow_provider_gemini_milvus.operators.milvus_alias",
                    "airflow_provider_gemini_milvus.operators.milvus_search",
                    "airflow_provider_gemini_milvus.operators.milvus_search_evaluation",
                ],
            },
        ],
        "triggers": [
            {
                "integration-name": "Google Gemini",
                "python-modules": ["airflow_provider_gemini_milvus.triggers.gemini_batch"],
            },
        ],
        "connection-types": [_gemini_connection_type(), _milvus_connection_type()],
        # milvus://host:port/database/collection (observability/assets.py): checked and normalised by the
        # handler, turned into the collection's OpenLineage dataset by the converter.
        "asset-uris": [
            {
                "schemes": ["milvus"],
                "handler": "airflow_provider_gemini_milvus.observability.assets.sanitize_uri",
                "factory": "airflow_provider_gemini_milvus.observability.assets.milvus_collection_asset",
                "to_openlineage_converter": (
                    "airflow_provider_gemini_milvus.observability.assets.convert_asset_to_openlineage"
                ),
            }
        ],
        "config": _config(),
    }
