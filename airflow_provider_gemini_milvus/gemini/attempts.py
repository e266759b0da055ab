"""
What one Gemini request attempt came to, told apart from the SDK's errors without keeping them: SDK
exception objects may hold the request (and its key), so only a summary safe to log and raise survives.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from typing import Any

__all__ = [
    "TRANSIENT_TRANSPORT_ERRORS",
    "FailedAttempt",
    "is_about_the_answer",
    "parse_failure",
    "response_headers",
    "short_reason",
    "unparsable_response_errors",
]


def _transient_transport_errors() -> tuple[type[BaseException], ...]:
    """Timeouts, refused and dropped connections of whichever HTTP client google-genai uses."""
    errors: list[type[BaseException]] = []
    for module_name in ("httpx2", "httpx"):
        try:
            module = __import__(module_name)
        except ImportError:
            continue
        errors.append(module.TransportError)
    return tuple(errors)


TRANSIENT_TRANSPORT_ERRORS = _transient_transport_errors()


@cache
def unparsable_response_errors() -> tuple[type[BaseException], ...]:
    """
    What the SDK raises on a 200 whose body is not an embedding response.

    ``models.embed_content`` calls ``json.loads`` on the body (``JSONDecodeError`` on HTML or truncated JSON);
    newer SDKs wrap parse failures elsewhere in ``errors.UnknownApiResponseError``; pydantic refuses JSON of
    the wrong shape (``values: "abc"``) with ``ValidationError``.
    """
    import pydantic
    from google.genai import errors

    found: list[type[BaseException]] = [json.JSONDecodeError, pydantic.ValidationError]
    unknown_response = getattr(errors, "UnknownApiResponseError", None)
    if unknown_response is not None:
        found.append(unknown_response)
    return tuple(found)


@dataclass(frozen=True)
class FailedAttempt:
    """One attempt that did not give usable vectors, reduced to what is safe to keep (no SDK objects)."""

    reason: str
    retryable: bool
    http_status: int | None = None
    status: str | None = None
    server_delay: float | None = None
    quota_exhausted: bool = False
    document_refusal: bool = False
    api_message: str | None = None

    @property
    def refusal_reason(self) -> str:
        """``400 INVALID_ARGUMENT: <Gemini's message>`` (key scrubbed), or the whole reason without one."""
        if self.api_message is None:
            return self.reason
        return f"{self.http_status} {self.status}: {self.api_message}"


def is_about_the_answer(err: BaseException) -> bool:
    """Whether a parse error concerns the answer (pydantic names the model it validated: ``...Response``)."""
    title = getattr(err, "title", None)
    return not isinstance(title, str) or title.endswith("Response")


def parse_failure(err: BaseException) -> str:
    """Where a body failed to parse; never the body, which may echo the key."""
    if isinstance(err, json.JSONDecodeError):
        return f"invalid JSON: {err.msg} at character {err.pos}"
    return type(err).__name__


def response_headers(err: Any) -> Any:
    response = getattr(err, "response", None)
    return getattr(response, "headers", None)


def short_reason(failure: FailedAttempt) -> str:
    if failure.http_status == 200:
        return "unusable answer"
    if failure.http_status is not None:
        return f"{failure.http_status} {failure.status}"
    return failure.reason.split(":", 1)[0]
