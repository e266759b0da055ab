"""Exceptions raised by the Gemini and Milvus hooks and operators."""

from __future__ import annotations

from airflow.sdk.exceptions import AirflowException


class GeminiMilvusProviderError(AirflowException):
    """Base class for errors raised by this provider."""


class GeminiAPIError(GeminiMilvusProviderError):
    """
    The Gemini API refused a request, or kept failing until the retry budget ran out.

    :param message: what failed, naming the batch and the texts it held; never the key or the texts.
    :param http_status: HTTP status of the last response, if there was one.
    :param status: Google RPC status of the last response, such as ``RESOURCE_EXHAUSTED``.
    :param attempts: how many times the request was sent.
    """

    def __init__(
        self, message: str, *, http_status: int | None = None, status: str | None = None, attempts: int = 1
    ) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.status = status
        self.attempts = attempts


class GeminiQuotaExhaustedError(GeminiAPIError):
    """A quota that does not refill within minutes (for example a per-day quota) is used up."""


class MilvusCollectionMismatchError(GeminiMilvusProviderError, ValueError):
    """An existing Milvus collection does not match what the task needs (dimension, metric or fields)."""
