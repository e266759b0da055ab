"""
pytest fixtures for offline Gemini tests, shipped for the provider's users.

Enable them with ``pytest_plugins = ["airflow_provider_gemini_milvus.testing.pytest_plugin"]`` in a
``conftest.py``. ``gemini_emulator`` gives a running :class:`GeminiEmulator`; ``gemini_connection`` also
points the ``gemini_default`` Airflow connection at it through ``AIRFLOW_CONN_GEMINI_DEFAULT``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_gemini_milvus.testing.gemini_emulator import GeminiEmulator

if TYPE_CHECKING:
    from collections.abc import Iterator

#: Retry settings the ``gemini_connection`` fixture puts in the connection extras: fast, but patient enough
#: to ride out the faults tests inject.
TEST_CONNECTION_EXTRAS: dict[str, Any] = {
    "max_retries": 5,
    "retry_initial_delay": 0.01,
    "retry_max_delay": 0.2,
}


def gemini_connection_json(emulator: GeminiEmulator, **extra: Any) -> str:
    """
    Return the Airflow connection JSON (for ``AIRFLOW_CONN_<ID>``) that points at ``emulator``.

    :param emulator: a started emulator.
    :param extra: more connection extras, merged after ``base_url``.
    """
    return emulator.connection_json(**extra)


@pytest.fixture
def gemini_emulator() -> Iterator[GeminiEmulator]:
    """A started :class:`GeminiEmulator` on a free port, stopped after the test."""
    emulator = GeminiEmulator().start()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def gemini_connection(monkeypatch: pytest.MonkeyPatch, gemini_emulator: GeminiEmulator) -> str:
    """Point ``AIRFLOW_CONN_GEMINI_DEFAULT`` at the emulator (fast retries); return ``"gemini_default"``."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_GEMINI_DEFAULT", gemini_connection_json(gemini_emulator, **TEST_CONNECTION_EXTRAS)
    )
    return "gemini_default"
