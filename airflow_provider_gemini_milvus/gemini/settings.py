"""
What a ``gemini`` connection holds, read and validated once: the key, where it may be sent, and limits.

Pure code: :class:`~airflow_provider_gemini_milvus.hooks.gemini.GeminiHook` passes in the connection's
password and extras.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_gemini_milvus.connection_extras import (
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_TIMEOUT_SECONDS,
    GEMINI_EXTRA_FIELDS,
    ConnectionExtras,
)
from airflow_provider_gemini_milvus.gemini.retries import BackoffPolicy

__all__ = ["GeminiConnectionSettings", "checked_base_url", "read_settings"]


@dataclass(frozen=True)
class GeminiConnectionSettings:
    """
    Everything the hook reads from a ``gemini`` connection, validated.

    :param api_key: the connection password (never logged).
    :param base_url: a proxy, gateway or the bundled emulator; ``None`` for Google's endpoint.
    :param api_version: API version such as ``v1beta``; ``None`` for the SDK's default.
    :param timeout: seconds per HTTP request.
    :param max_concurrency: most requests in flight at once: the ceiling of the adaptive window, or the
        fixed number when ``adaptive_concurrency`` is off.
    :param adaptive_concurrency: learn how many requests to keep in flight (AIMD on 429s); see
        :mod:`~airflow_provider_gemini_milvus.gemini.concurrency`.
    :param remember_quota: with adaptive concurrency, keep what was learned of the quota for the next task
        (see :mod:`~airflow_provider_gemini_milvus.gemini.learned_rate`).
    :param requests_per_minute: request quota to pace to.
    :param tokens_per_minute: input-token quota to pace to.
    :param backoff: retry policy for 429, 5xx, timeouts, dropped connections and unusable answers.
    :param vertexai: call Gemini through Vertex AI.
    :param project: Vertex AI project.
    :param location: Vertex AI location.
    :param service_account_info: Vertex AI service-account key (parsed JSON).
    """

    api_key: str | None = field(default=None, repr=False)
    base_url: str | None = None
    api_version: str | None = None
    timeout: float = DEFAULT_TIMEOUT_SECONDS
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY
    adaptive_concurrency: bool = True
    remember_quota: bool = True
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    backoff: BackoffPolicy = field(default_factory=BackoffPolicy)
    vertexai: bool = False
    project: str | None = None
    location: str | None = None
    service_account_info: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def secrets(self) -> tuple[str, ...]:
        """
        Every secret the connection holds, as it could be echoed back in an error: the API key, and of a
        service-account key its private key (whole, JSON-escaped, and line by line), key id and any client
        secret or refresh token. Longest first, so a secret is scrubbed before a part of it.
        """
        found: set[str] = set()
        if self.api_key:
            found.add(self.api_key)
        info = self.service_account_info or {}
        for name in _SERVICE_ACCOUNT_SECRETS:
            value = info.get(name)
            if isinstance(value, str) and value.strip():
                found.add(value)
                found.add(json.dumps(value)[1:-1])  # as it stands inside a JSON document or a repr
                found.update(line.strip() for line in value.splitlines() if len(line.strip()) >= _SECRET_LINE)
        return tuple(sorted(found, key=len, reverse=True))


#: Fields of a service-account (or authorized-user) key that are secret.
_SERVICE_ACCOUNT_SECRETS = ("private_key", "private_key_id", "client_secret", "refresh_token")
#: A line of a PEM key at least this long is scrubbed on its own (a split echo still hides the key).
_SECRET_LINE = 16


def checked_base_url(base_url: str | None, conn_id: str) -> str | None:
    """
    Refuse a ``base_url`` the key would reach in clear text: plain ``http://`` to anything but this machine.

    ``https://`` (Google, a proxy, a gateway) is fine; ``http://`` only to a loopback address such as the
    bundled emulator. The message shows the scheme and host only, never credentials in the URL.
    """
    if base_url is None:
        return None
    parts = urlsplit(base_url.strip())
    scheme = parts.scheme.lower() if "://" in base_url else ""
    if scheme == "https":
        return base_url
    if scheme == "http":
        if _is_loopback(parts.hostname):
            return base_url
        raise ValueError(
            f"connection {conn_id!r}: base_url http://{parts.hostname or ''} is plain http to a host that is "
            "not this machine, so the API key would travel in clear text; use https://, or http:// only "
            "with a loopback address (127.0.0.1, ::1, localhost) such as the bundled emulator"
        )
    raise ValueError(
        f"connection {conn_id!r}: base_url must start with https:// (or http:// for a loopback address), "
        f"got {'scheme ' + repr(scheme) if scheme else 'no scheme'}"
    )


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host.rstrip(".").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_settings(password: str | None, extra: dict[str, Any], conn_id: str) -> GeminiConnectionSettings:
    """
    Validate a ``gemini`` connection's password and extras; ``ValueError`` names the bad extra.

    :param password: the connection's password (the API key), or ``None``.
    :param extra: the connection's extras, parsed.
    :param conn_id: the connection id, for messages.
    """
    extras = ConnectionExtras("gemini", GEMINI_EXTRA_FIELDS, extra, conn_id=conn_id)
    return GeminiConnectionSettings(
        api_key=password or None,
        base_url=checked_base_url(extras.string("base_url"), conn_id),
        api_version=extras.string("api_version"),
        timeout=_required(extras.number("timeout")),
        max_concurrency=_required(extras.integer("max_concurrency")),
        adaptive_concurrency=extras.boolean("adaptive_concurrency"),
        remember_quota=extras.boolean("remember_quota"),
        requests_per_minute=extras.integer("requests_per_minute"),
        tokens_per_minute=extras.integer("tokens_per_minute"),
        backoff=BackoffPolicy(
            max_retries=_required(extras.integer("max_retries")),
            initial_delay=_required(extras.number("retry_initial_delay")),
            max_delay=_required(extras.number("retry_max_delay")),
        ),
        vertexai=extras.boolean("vertexai"),
        project=extras.string("project"),
        location=extras.string("location"),
        service_account_info=extras.json_object("service_account_json"),
    )


def _required(value: Any) -> Any:
    """A declared extra with a default is never None; say so to the type checker."""
    if value is None:
        raise AssertionError("an extra with a default came back None")
    return value
