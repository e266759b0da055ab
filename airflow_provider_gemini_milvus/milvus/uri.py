"""
Airflow ``milvus`` connection fields to ``pymilvus.MilvusClient`` keyword arguments, without connecting.
"""

from __future__ import annotations

import base64
import os
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from airflow_provider_gemini_milvus.connection_extras import MILVUS_EXTRA_FIELDS, ConnectionExtras

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["build_client_kwargs", "default_lite_path", "is_lite_uri", "redact_token"]

DEFAULT_LITE_DIR = "milvus_lite"
DEFAULT_LITE_FILE = "milvus.db"
_SERVER_SCHEMES = ("http", "https", "tcp", "unix")
REDACTED = "***"
_URI_USERINFO = re.compile(r"(?P<prefix>[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*:)[^@/\s]+(?=@)")
_SECRET_FIELD = re.compile(
    r"(?P<prefix>\b(?:token|password|passwd|secret|api[_-]?key|authorization)[\"']?\s*[:=]\s*[\"']?"
    r"(?:(?:basic|bearer)\s+)?)[^\s\"',;&)}\]]+",
    re.IGNORECASE,
)
_DISTINCTIVE_SECRET_LENGTH = 8


def is_lite_uri(uri: str) -> bool:
    """True when ``uri`` names a local Milvus Lite ``.db`` file rather than a server."""
    scheme = urlsplit(uri).scheme.lower()
    return uri.endswith(".db") and scheme not in _SERVER_SCHEMES


def default_lite_path() -> str:
    """Return ``$AIRFLOW_HOME/milvus_lite/milvus.db`` (``AIRFLOW_HOME`` defaults to ``~/airflow``)."""
    airflow_home = os.path.expanduser(os.path.expandvars(os.environ.get("AIRFLOW_HOME", "~/airflow")))
    return os.path.join(airflow_home, DEFAULT_LITE_DIR, DEFAULT_LITE_FILE)


def build_client_kwargs(
    *,
    host: str | None,
    login: str | None = None,
    password: str | None = None,
    schema: str | None = None,
    port: int | None = None,
    extra: Mapping[str, Any] | ConnectionExtras | None = None,
    conn_id: str | None = None,
) -> dict[str, Any]:
    """
    Turn Airflow connection fields into ``pymilvus.MilvusClient`` keyword arguments, without connecting.

    * ``host`` is the URI: ``http(s)://host:port`` for a server or Zilliz Cloud, or a path ending in
      ``.db`` for Milvus Lite (made absolute). A bare host name gets ``http://`` (``https://`` when
      ``secure``) and ``port`` if set; pymilvus defaults the port to 19530 (443 for https). Empty means
      :func:`default_lite_path`.
    * ``password`` is the token; with ``login`` it becomes ``user:password``. Credentials written in the URI
      (``https://user:pass@host``) are moved into the token, so the URI passed on never holds a secret.
    * ``schema`` is the database name; extras ``timeout`` (seconds) and ``secure`` (TLS).

    :param conn_id: the connection id, for error messages.
    :raises ValueError: when ``login`` is set without a password, or an extra has a bad value.
    """
    extras = (
        extra
        if isinstance(extra, ConnectionExtras)
        else ConnectionExtras("milvus", MILVUS_EXTRA_FIELDS, extra, conn_id=conn_id)
    )
    raw = (host or "").strip()
    if not raw:
        raw = default_lite_path()
    kwargs: dict[str, Any] = {}
    uri_token = ""
    if is_lite_uri(raw):
        uri = os.path.abspath(os.path.expanduser(raw))
        # A dedicated channel is closed by ``close()``; a shared one would outlive the Lite server.
        kwargs["dedicated"] = True
    else:
        secure = extras.boolean("secure")
        if "://" not in raw and not raw.startswith("unix:"):
            raw = f"{'https' if secure else 'http'}://{raw}"
            if port and urlsplit(raw).port is None:
                raw = f"{raw}:{port}"
        parts = urlsplit(raw)
        if parts.username or parts.password:
            uri_token = parts.username or ""
            if parts.password:
                uri_token = f"{uri_token}:{parts.password}"
            netloc = parts.hostname or ""
            if parts.port:
                netloc = f"{netloc}:{parts.port}"
            parts = parts._replace(netloc=netloc)
        uri = urlunsplit(parts)
        if secure:
            kwargs["secure"] = True
    kwargs["uri"] = uri
    if login and not password:
        where = f"Milvus connection {conn_id!r}" if conn_id else "the Milvus connection"
        raise ValueError(f"{where}: User is set but Password is empty")
    token = f"{login}:{password}" if login and password else (password or uri_token)
    if token:
        kwargs["token"] = token
    if schema:
        kwargs["db_name"] = schema
    timeout = extras.number("timeout")
    if timeout is not None:
        kwargs["timeout"] = timeout
    return kwargs


def _is_distinctive(secret: str) -> bool:
    """A secret that cannot be an ordinary word of a message: long enough and not only letters."""
    return len(secret) >= _DISTINCTIVE_SECRET_LENGTH and not secret.isalpha()


def redact_token(text: str, token: str | None) -> str:
    """
    Remove a Milvus token (``password`` or ``user:password``) from a message, where it stands.

    Redacted wherever they appear: the password in a URI's userinfo (``http://root:***@host``), the
    value of ``token``, ``password``, ``api_key`` or ``authorization`` fields (``token=***``,
    ``"password": "***"``), and the token in the base64 form pymilvus sends. The bare token, and the
    password part of ``user:password``, are replaced everywhere else only when they are distinctive (8 or
    more characters, not only letters): the password ``Milvus`` must not turn every word "Milvus" of a
    message into ``***``.

    :param text: the message.
    :param token: the connection's token, or None.
    """
    text = _URI_USERINFO.sub(rf"\g<prefix>{REDACTED}", text)
    text = _SECRET_FIELD.sub(rf"\g<prefix>{REDACTED}", text)
    if not token:
        return text
    encoded = base64.b64encode(token.encode("utf-8")).decode("ascii")
    text = text.replace(encoded, REDACTED)
    for secret in (token, token.partition(":")[2]):
        if secret and _is_distinctive(secret):
            text = text.replace(secret, REDACTED)
    return text
