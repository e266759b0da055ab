"""
Every error this provider raises on purpose: one hierarchy under :class:`GeminiMilvusProviderError`.

An error that no retry can fix (a migration check that failed) is also an ``AirflowFailException``, so
Airflow fails the task at once instead of waiting out its retries.
"""

from __future__ import annotations

from airflow.sdk.exceptions import AirflowException, AirflowFailException

__all__ = [
    "AliasMigrationLockedError",
    "BulkImportFailed",
    "FileLoadError",
    "FilesExtraMissingError",
    "GeminiAPIError",
    "GeminiMilvusProviderError",
    "GeminiQuotaExhaustedError",
    "MigrationCheckError",
    "MigrationQualityError",
    "MilvusCollectionMismatchError",
    "MilvusFullTextUnsupportedError",
]


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


class MilvusFullTextUnsupportedError(GeminiMilvusProviderError, AirflowFailException):
    """
    Full-text search was asked of a Milvus server older than 2.5, which has no BM25 functions.

    No retry can fix it: the message names the server, its version and the version needed.
    """


class BulkImportFailed(GeminiMilvusProviderError):
    """A Milvus bulk import job failed (the server's reason is in the message); completed jobs are kept."""


class FileLoadError(GeminiMilvusProviderError, AirflowFailException, ValueError):
    """A file cannot be read as its format (bad UTF-8, a damaged PDF, ...); the message names the file."""


class FilesExtraMissingError(FileLoadError):
    """A PDF or Office file met an install without the ``files`` extra; the message says how to add it."""


class MigrationCheckError(GeminiMilvusProviderError, AirflowFailException):
    """
    A new collection failed a check before an alias switch; the alias was not moved.

    Not transient (the rows, their model or the probes are wrong), so the task fails without retrying.
    """


class MigrationQualityError(MigrationCheckError):
    """
    The new collection answers the labelled queries worse than the live one, by more than the tolerance;
    the alias was not moved. The message names both collections and both scores.
    """


class AliasMigrationLockedError(GeminiMilvusProviderError, AirflowFailException):
    """
    Another migration of the same alias holds its lease: only one runs at a time, the other fails at once.

    The message names the holder, when its lease expires and how to clear it if that task is gone.
    """
