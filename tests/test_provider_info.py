"""Airflow's own ProvidersManager discovers the package, its hooks and both connection forms."""

from __future__ import annotations

import warnings

import pytest

from airflow_provider_gemini_milvus import __version__, get_provider_info

PACKAGE = "airflow-provider-gemini-milvus"


@pytest.fixture(scope="module")
def providers_manager():
    from airflow.exceptions import AirflowProviderDeprecationWarning
    from airflow.providers_manager import ProvidersManager

    with warnings.catch_warnings():
        warnings.simplefilter("error", AirflowProviderDeprecationWarning)
        manager = ProvidersManager()
        manager.initialize_providers_hooks()
        manager._import_info_from_all_hooks()  # what the UI triggers when it lists connection types
    return manager


def test_entry_point_provides_the_package(providers_manager) -> None:
    provider = providers_manager.providers[PACKAGE]
    assert provider.version == __version__
    assert provider.data["package-name"] == PACKAGE


@pytest.mark.parametrize(
    ("conn_type", "hook_class", "hook_name"),
    [
        ("gemini", "airflow_provider_gemini_milvus.hooks.gemini.GeminiHook", "Google Gemini"),
        ("milvus", "airflow_provider_gemini_milvus.hooks.milvus.MilvusHook", "Milvus"),
    ],
)
def test_both_connection_types_are_registered(conn_type, hook_class, hook_name) -> None:
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    hook = ProvidersManagerTaskRuntime().hooks[conn_type]
    assert hook is not None
    assert f"{hook.package_name}" == PACKAGE
    assert hook.hook_class_name == hook_class
    assert hook.connection_type == conn_type
    assert hook.hook_name == hook_name


def test_gemini_form_relabels_the_password_and_hides_unused_fields(providers_manager) -> None:
    behaviour = providers_manager.field_behaviours["gemini"]
    assert behaviour["relabeling"] == {"password": "API Key"}
    assert {"host", "schema", "port", "login"} <= set(behaviour["hidden_fields"])


def test_milvus_form_relabels_its_fields(providers_manager) -> None:
    behaviour = providers_manager.field_behaviours["milvus"]
    assert behaviour["relabeling"]["host"] == "URI"
    assert behaviour["relabeling"]["password"] == "Token"
    assert behaviour["relabeling"]["schema"] == "Database"


def test_gemini_form_fields_come_from_conn_fields(providers_manager) -> None:
    widgets = providers_manager.connection_form_widgets
    for name in (
        "base_url",
        "api_version",
        "timeout",
        "max_concurrency",
        "requests_per_minute",
        "tokens_per_minute",
        "vertexai",
        "project",
        "location",
        "service_account_json",
    ):
        assert f"extra__gemini__{name}" in widgets, name
    assert widgets["extra__gemini__service_account_json"].is_sensitive
    assert not widgets["extra__gemini__base_url"].is_sensitive


def test_secrets_are_only_password_fields() -> None:
    for conn_type in get_provider_info()["connection-types"]:
        for name, field in conn_type["conn-fields"].items():
            is_secret = field["schema"].get("format") == "password"
            assert is_secret == (name == "service_account_json"), name


def test_every_declared_module_imports() -> None:
    import importlib

    info = get_provider_info()
    for section in ("hooks", "operators", "triggers"):
        for entry in info[section]:
            for module in entry["python-modules"]:
                importlib.import_module(module)


def test_every_operator_hook_and_trigger_module_is_registered() -> None:
    import pkgutil

    import airflow_provider_gemini_milvus as package

    info = get_provider_info()
    for section in ("operators", "hooks", "triggers"):
        declared = {module for entry in info[section] for module in entry["python-modules"]}
        folder = f"{package.__path__[0]}/{section}"
        shipped = {f"{package.__name__}.{section}.{found.name}" for found in pkgutil.iter_modules([folder])}
        assert declared == shipped, section
