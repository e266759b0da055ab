"""
Google's error envelopes: the status names, messages and ``google.rpc`` details the real service answers
with, so SDK errors raised against the emulator look like the real ones.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = [
    "DEFAULT_REFUSAL_MESSAGE",
    "SUPPORTED_FAULT_STATUSES",
    "ApiError",
    "fault_error",
    "invalid_argument",
    "invalid_key_error",
    "missing_key_error",
    "quota_error",
]

_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

_FAULT_MESSAGES = {
    400: "Request contains an invalid argument.",
    403: "The caller does not have permission",
    404: "Requested entity was not found.",
    429: (
        "You exceeded your current quota, please check your plan and billing details. For more "
        "information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits."
    ),
    500: (
        "An internal error has occurred. Please retry or report in "
        "https://developers.generativeai.google/guide/troubleshooting"
    ),
    503: "The model is overloaded. Please try again later.",
    504: "Deadline expired before operation could complete.",
}

#: The ``error.message`` of a ``refuse_texts`` refusal unless told otherwise: Google's generic 400.
DEFAULT_REFUSAL_MESSAGE = _FAULT_MESSAGES[400]

#: Statuses ``fail_next`` and ``fault_statuses`` can produce.
SUPPORTED_FAULT_STATUSES = tuple(_FAULT_MESSAGES)

_MISSING_KEY_MESSAGE = (
    "Method doesn't allow unregistered callers (callers without established identity). "
    "Please use API Key or other form of API consumer identity to call this API."
)
_VERTEX_MISSING_CREDENTIAL_MESSAGE = (
    "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie "
    "or other valid authentication credential. "
    "See https://developers.google.com/identity/sign-in/web/devconsole-project."
)
_INVALID_KEY_MESSAGE = "API key not valid. Please pass a valid API key."
_QUOTA_MESSAGE_HEAD = (
    "You exceeded your current quota, please check your plan and billing details. For more information "
    "on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits. To monitor your current "
    "usage, head to: https://ai.dev/rate-limit. "
)
_GEMINI_SERVICE = "generativelanguage.googleapis.com"
_VERTEX_SERVICE = "aiplatform.googleapis.com"


class ApiError(Exception):
    """
    An error answered in Google's envelope ``{"error": {"code", "message", "status", "details"?}}``.

    :param code: HTTP status.
    :param message: the ``error.message`` text.
    :param details: optional ``error.details`` entries (``google.rpc`` messages with an ``@type``).
    :param status: the canonical status name; derived from ``code`` when omitted.
    """

    def __init__(
        self, code: int, message: str, details: list[dict[str, Any]] | None = None, status: str | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details
        self.status = status or _STATUS_NAMES.get(code, "UNKNOWN")

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message, "status": self.status}
        if self.details:
            error["details"] = self.details
        return {"error": error}


def invalid_argument(message: str, field_path: str | None = None, description: str | None = None) -> ApiError:
    """A 400 INVALID_ARGUMENT, with a ``BadRequest`` detail naming the field when there is one."""
    details = None
    if field_path is not None:
        details = [
            {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": field_path, "description": description or message.strip()}],
            }
        ]
    return ApiError(400, message, details)


def missing_key_error(*, vertex: bool) -> ApiError:
    """What a call without any key gets: 401 from Vertex AI, 403 from the Gemini API."""
    if vertex:
        return ApiError(401, _VERTEX_MISSING_CREDENTIAL_MESSAGE)
    return ApiError(403, _MISSING_KEY_MESSAGE)


def invalid_key_error(*, vertex: bool) -> ApiError:
    """What a call with a wrong key gets: 400 ``API_KEY_INVALID`` (the key itself is never echoed)."""
    return ApiError(
        400,
        _INVALID_KEY_MESSAGE,
        [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": _VERTEX_SERVICE if vertex else _GEMINI_SERVICE},
            },
            {
                "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                "locale": "en-US",
                "message": _INVALID_KEY_MESSAGE,
            },
        ],
    )


def _format_delay(seconds: float) -> str:
    """Render a ``google.protobuf.Duration`` the way Google does (``"1.25s"``, ``"15s"``)."""
    millis = max(1, math.ceil(seconds * 1000))
    whole, rest = divmod(millis, 1000)
    if rest == 0:
        return f"{whole}s"
    return f"{whole}.{rest:03d}".rstrip("0") + "s"


def quota_error(
    *,
    model: str,
    metric: str,
    quota_id: str,
    limit: float,
    retry_delay: float | None,
) -> ApiError:
    limit_text = f"{limit:g}"
    message = (
        f"{_QUOTA_MESSAGE_HEAD}\n* Quota exceeded for metric: {_GEMINI_SERVICE}/{metric}, "
        f"limit: {limit_text}, model: {model}"
    )
    if retry_delay is not None:
        message += f"\nPlease retry in {_format_delay(retry_delay)[:-1]}s."
    details: list[dict[str, Any]] = [
        {
            "@type": "type.googleapis.com/google.rpc.Help",
            "links": [
                {
                    "description": "Learn more about Gemini API quotas",
                    "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
                }
            ],
        },
        {
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            "violations": [
                {
                    "quotaMetric": f"{_GEMINI_SERVICE}/{metric}",
                    "quotaId": quota_id,
                    "quotaDimensions": {"model": model, "location": "global"},
                    "quotaValue": limit_text,
                }
            ],
        },
    ]
    if retry_delay is not None:
        details.append(
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": _format_delay(retry_delay)}
        )
    return ApiError(429, message, details)


def fault_error(status: int, model: str = "", retry_delay: float | None = None) -> ApiError:
    """
    The answer of an injected fault.

    :param status: one of ``SUPPORTED_FAULT_STATUSES``.
    :param model: the model called (named in a 429's ``QuotaFailure``).
    :param retry_delay: for 429, the ``RetryInfo.retryDelay``; without it a 429 is the bare kind.
    """
    if status == 429 and retry_delay is not None:
        return quota_error(
            model=model,
            metric="embed_content_requests",
            quota_id="EmbedContentRequestsPerMinutePerProjectPerModel",
            limit=0,
            retry_delay=retry_delay,
        )
    return ApiError(status, _FAULT_MESSAGES[status])
