"""Injected faults: queued error answers, dropped connections and corrupted successful answers."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from airflow_provider_gemini_milvus.testing.gemini_emulator.protocol import Reply
from airflow_provider_gemini_milvus.testing.gemini_emulator.vectors import encode_json

__all__ = ["CORRUPTION_KINDS", "Fault", "corrupt"]

#: Ways ``corrupt_next`` can spoil a successful embed answer.
CORRUPTION_KINDS = ("nan", "inf", "zero", "short", "null", "missing", "html", "truncated")


@dataclass(frozen=True)
class Fault:
    """
    One queued fault: answer with an error status, or (``drop``) close the connection without answering.

    :param status: the HTTP status answered (unused when ``drop``).
    :param retry_delay: for 429, the ``RetryInfo.retryDelay`` in seconds.
    :param drop: close the connection instead of answering.
    :param retry_after: the ``Retry-After`` header sent with the error, as it is (``"2"``, ``"nan"``, ...).
    """

    status: int
    retry_delay: float | None = None
    drop: bool = False
    retry_after: str | None = None


_HTML_PAGE = (
    "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8><title>Sign in to continue</title></head>\n"
    "<body><h1>Network login required</h1><p>Your request was intercepted by a proxy. "
    "Please sign in to continue.</p></body></html>\n"
)


def _embedding_objects(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The objects holding ``values`` in an embed answer, in order, whatever its route's shape."""
    if "embedding" in body:
        return [body["embedding"]]
    if "predictions" in body:
        return [prediction["embeddings"] for prediction in body["predictions"]]
    embeddings: list[dict[str, Any]] = body["embeddings"]
    return embeddings


def corrupt(reply: Reply, kind: str) -> Reply:
    """
    Spoil one successful embed answer the way a broken gateway or a faulty backend would.

    Value-level kinds change the first embedding of the answer; ``nan`` and ``inf`` replace its middle value.
    """
    if kind == "html":
        return Reply(reply.status, {}, raw=_HTML_PAGE, content_type="text/html; charset=UTF-8")
    if kind == "truncated":
        encoded = encode_json(reply.body)
        return Reply(reply.status, {}, raw=encoded[: len(encoded) // 2])
    target = _embedding_objects(reply.body)[0]
    values: list[float] = json.loads(target["values"])
    if kind in ("nan", "inf"):
        values[len(values) // 2] = math.nan if kind == "nan" else math.inf
        target["values"] = values
    elif kind == "zero":
        target["values"] = [0.0] * len(values)
    elif kind == "short":
        target["values"] = values[:-1]
    elif kind == "null":
        target["values"] = None
    else:
        del target["values"]
    return reply
