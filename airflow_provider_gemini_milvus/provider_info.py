"""Provider metadata read by Airflow's ``ProvidersManager`` without importing the hooks."""

from __future__ import annotations

from typing import Any

from airflow_provider_gemini_milvus import __version__

PACKAGE_NAME = "airflow-provider-gemini-milvus"


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
        "conn-fields": {
            "base_url": {
                "label": "Base URL",
                "description": "A proxy, gateway or the bundled emulator. Empty means Google's endpoint.",
                "schema": {"type": ["string", "null"]},
            },
            "api_version": {
                "label": "API version",
                "description": "For example v1 or v1beta. Empty means the SDK default.",
                "schema": {"type": ["string", "null"]},
            },
            "timeout": {
                "label": "Timeout (seconds)",
                "description": "Per HTTP request.",
                "schema": {"type": ["number", "null"], "default": 60},
            },
            "max_concurrency": {
                "label": "Max concurrent requests",
                "description": "Requests in flight at once per task.",
                "schema": {"type": ["integer", "null"], "default": 8, "minimum": 1},
            },
            "requests_per_minute": {
                "label": "Requests per minute",
                "description": "Pace requests to this quota. Empty means no pacing.",
                "schema": {"type": ["integer", "null"], "minimum": 1},
            },
            "tokens_per_minute": {
                "label": "Tokens per minute",
                "description": "Pace input tokens to this quota. Empty means no pacing.",
                "schema": {"type": ["integer", "null"], "minimum": 1},
            },
            "max_retries": {
                "label": "Max retries",
                "description": "Retries per request on 429, 5xx, timeouts and dropped connections.",
                "schema": {"type": ["integer", "null"], "default": 6, "minimum": 0},
            },
            "vertexai": {
                "label": "Use Vertex AI",
                "description": "Call Gemini through Vertex AI (Google Cloud) instead of the Gemini API.",
                "schema": {"type": ["boolean", "null"], "default": False},
            },
            "project": {
                "label": "Google Cloud project",
                "description": "Vertex AI only.",
                "schema": {"type": ["string", "null"]},
            },
            "location": {
                "label": "Google Cloud location",
                "description": "Vertex AI only, for example us-central1.",
                "schema": {"type": ["string", "null"]},
            },
            "service_account_json": {
                "label": "Service account JSON",
                "description": "Vertex AI only. Empty means Application Default Credentials.",
                "schema": {"type": ["string", "null"], "format": "password"},
            },
        },
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
                "host": "http://localhost:19530, https://<cluster>.zillizcloud.com or /path/to/milvus.db",
                "password": "token, or password when User is set",
                "schema": "default",
            },
        },
        "conn-fields": {
            "timeout": {
                "label": "Timeout (seconds)",
                "description": "Per Milvus call.",
                "schema": {"type": ["number", "null"]},
            },
            "secure": {
                "label": "TLS",
                "description": "Force TLS (https URIs use TLS anyway).",
                "schema": {"type": ["boolean", "null"], "default": False},
            },
        },
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
