"""
pytest fixtures for offline Gemini tests, shipped for the provider's users.

Enable them with ``pytest_plugins = ["airflow_provider_gemini_milvus.testing.pytest_plugin"]`` in a
``conftest.py``. ``gemini_emulator`` gives a running :class:`GeminiEmulator`; ``gemini_connection`` also
points the ``gemini_default`` Airflow connection at it through ``AIRFLOW_CONN_GEMINI_DEFAULT``;
``gemini_connection_factory`` does the same with the extras (and connection id) a test chooses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import pytest

from airflow_provider_gemini_milvus.testing.gemini_emulator import GeminiEmulator

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["GeminiConnectionFactory", "gemini_connection", "gemini_connection_factory", "gemini_emulator"]

#: Retry settings the ``gemini_connection`` fixture puts in the connection extras: fast, but patient enough
#: to ride out the faults tests inject.
TEST_CONNECTION_EXTRAS: dict[str, Any] = {
    "max_retries": 5,
    "retry_initial_delay": 0.01,
    "retry_max_delay": 0.2,
}


class GeminiConnectionFactory(Protocol):
    """The ``gemini_connection_factory`` fixture's value."""

    def __call__(self, conn_id: str = "gemini_default", **extra: Any) -> str:
        """
        Point the Airflow connection ``conn_id`` at the emulator and return ``conn_id``.

        :param conn_id: the connection id (set through ``AIRFLOW_CONN_<CONN_ID>``).
        :param extra: connection extras, merged over ``TEST_CONNECTION_EXTRAS``.
        """
        ...


@pytest.fixture
def gemini_emulator() -> Iterator[GeminiEmulator]:
    """A started :class:`GeminiEmulator` on a free port, stopped after the test."""
    emulator = GeminiEmulator().start()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def gemini_connection_factory(
    monkeypatch: pytest.MonkeyPatch, gemini_emulator: GeminiEmulator
) -> GeminiConnectionFactory:
    """
    A function that points an Airflow connection at the emulator with the extras a test chooses:
    ``gemini_connection_factory(batch_size=50)`` sets ``AIRFLOW_CONN_GEMINI_DEFAULT``;
    ``gemini_connection_factory("gemini_slow", timeout=1)`` sets ``AIRFLOW_CONN_GEMINI_SLOW``. Each call
    replaces that connection; all are unset after the test.
    """

    def point_connection(conn_id: str = "gemini_default", **extra: Any) -> str:
        monkeypatch.setenv(
            f"AIRFLOW_CONN_{conn_id.upper()}",
            gemini_emulator.connection_json(**{**TEST_CONNECTION_EXTRAS, **extra}),
        )
        return conn_id

    return point_connection


@pytest.fixture
def gemini_connection(gemini_connection_factory: GeminiConnectionFactory) -> str:
    """Point ``AIRFLOW_CONN_GEMINI_DEFAULT`` at the emulator (fast retries); return ``"gemini_default"``."""
    return gemini_connection_factory()
