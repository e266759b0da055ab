"""
Google Gemini embeddings with the API key kept in an Airflow connection.

.. seealso:: https://ai.google.dev/gemini-api/docs/embeddings
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
from airflow.sdk import BaseHook

from airflow_provider_gemini_milvus.connection_extras import (
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_TIMEOUT_SECONDS,
    GEMINI_EXTRA_FIELDS,
    ConnectionExtras,
)
from airflow_provider_gemini_milvus.exceptions import GeminiAPIError, GeminiQuotaExhaustedError
from airflow_provider_gemini_milvus.gemini_models import (
    DEFAULT_MODEL,
    MAX_TEXTS_PER_REQUEST,
    EmbeddingModel,
    estimate_tokens,
    normalise_task_type,
    resolve_model,
)
from airflow_provider_gemini_milvus.pacing import QuotaPacers
from airflow_provider_gemini_milvus.retries import (
    BackoffPolicy,
    is_daily_quota,
    is_retryable_status,
    server_retry_delay,
)

if TYPE_CHECKING:
    from google import genai
    from google.genai import types

PROGRESS_LOG_INTERVAL_SECONDS = 10.0


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


@dataclass(frozen=True)
class GeminiConnectionSettings:
    """
    Everything the hook reads from a ``gemini`` connection, validated.

    :param api_key: the connection password (never logged).
    :param base_url: a proxy, gateway or the bundled emulator; ``None`` for Google's endpoint.
    :param api_version: API version such as ``v1beta``; ``None`` for the SDK's default.
    :param timeout: seconds per HTTP request.
    :param max_concurrency: requests in flight at once.
    :param requests_per_minute: request quota to pace to.
    :param tokens_per_minute: input-token quota to pace to.
    :param backoff: retry policy for 429, 5xx, timeouts and dropped connections.
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
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    backoff: BackoffPolicy = field(default_factory=BackoffPolicy)
    vertexai: bool = False
    project: str | None = None
    location: str | None = None
    service_account_info: dict[str, Any] | None = field(default=None, repr=False)


@dataclass
class EmbeddingRunStats:
    """
    What one :meth:`GeminiHook.embed` call did; JSON-safe through :meth:`as_dict`.

    ``tokens`` is estimated at about four characters a token (see ``gemini_models.estimate_tokens``).
    """

    model: str = ""
    texts: int = 0
    tokens: int = 0
    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    seconds: float = 0.0
    usd_per_million_tokens: float | None = None

    @property
    def estimated_cost_usd(self) -> float | None:
        if self.usd_per_million_tokens is None:
            return None
        return self.tokens * self.usd_per_million_tokens / 1_000_000

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "texts": self.texts,
            "estimated_tokens": self.tokens,
            "requests": self.requests,
            "retries": self.retries,
            "rate_limited": self.rate_limited,
            "seconds": round(self.seconds, 3),
            "estimated_cost_usd": self.estimated_cost_usd,
        }


@dataclass(frozen=True)
class _Batch:
    index: int
    start: int
    texts: list[str]
    titles: list[str | None] | None
    tokens: int


@dataclass(frozen=True)
class _EmbedRequest:
    model: EmbeddingModel
    task_type: str
    output_dimensionality: int | None
    dim: int


class _ProgressLog:
    """Logs texts done / total, rate and ETA at most every few seconds (never the texts)."""

    def __init__(self, log: Any, total: int, interval: float = PROGRESS_LOG_INTERVAL_SECONDS) -> None:
        self.log = log
        self.total = total
        self.interval = interval
        self.done = 0
        self.started = time.monotonic()
        self._last_logged = self.started
        self._lock = threading.Lock()

    def advance(self, count: int) -> None:
        with self._lock:
            self.done += count
            now = time.monotonic()
            if now - self._last_logged < self.interval or self.done >= self.total:
                return
            self._last_logged = now
            elapsed = max(now - self.started, 1e-9)
            rate = self.done / elapsed
            eta = (self.total - self.done) / rate if rate else float("inf")
            self.log.info(
                "Embedded %d/%d texts (%.0f%%, %.1f texts/s, ETA %.0fs)",
                self.done,
                self.total,
                100 * self.done / self.total,
                rate,
                eta,
            )


class GeminiHook(BaseHook):
    """
    Embed texts with Google Gemini, with the API key kept in an Airflow connection.

    The connection's password holds the API key. Optional extras: ``base_url`` (a proxy, gateway or the
    bundled emulator), ``api_version``, ``timeout`` (seconds), ``max_concurrency``,
    ``requests_per_minute``, ``tokens_per_minute``, ``max_retries``, ``retry_initial_delay``,
    ``retry_max_delay``, and for Vertex AI ``vertexai: true`` with ``project``, ``location`` and
    ``service_account_json`` (or Application Default Credentials; an API key in Vertex mode selects
    express mode).

    :meth:`embed` splits any number of texts into requests of at most 100, runs several at once, retries
    429, 5xx, timeouts and dropped connections with backoff (honouring the server's retry delay), paces
    itself to the connection's quotas, and returns L2-normalised float32 rows in input order.

    :param gemini_conn_id: the ``gemini`` connection to use.
    """

    conn_name_attr = "gemini_conn_id"
    default_conn_name = "gemini_default"
    conn_type = "gemini"
    hook_name = "Google Gemini"

    def __init__(self, gemini_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.gemini_conn_id = gemini_conn_id
        self.last_run = EmbeddingRunStats()

    # -- connection -----------------------------------------------------------------------------

    @cached_property
    def settings(self) -> GeminiConnectionSettings:
        """The connection's settings, read once and validated."""
        conn = self.get_connection(self.gemini_conn_id)
        extras = ConnectionExtras(
            self.conn_type, GEMINI_EXTRA_FIELDS, conn.extra_dejson, conn_id=self.gemini_conn_id
        )
        return GeminiConnectionSettings(
            api_key=conn.password or None,
            base_url=extras.string("base_url"),
            api_version=extras.string("api_version"),
            timeout=_required(extras.number("timeout")),
            max_concurrency=_required(extras.integer("max_concurrency")),
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

    def get_conn(self) -> genai.Client:
        """Return the ``google.genai.Client`` for this connection, built once per hook."""
        return self._client

    @cached_property
    def _client(self) -> genai.Client:
        from google import genai
        from google.genai import types

        settings = self.settings
        http_options = types.HttpOptions(
            base_url=settings.base_url,
            api_version=settings.api_version,
            timeout=int(settings.timeout * 1000),
        )
        if settings.vertexai:
            return self._vertex_client(settings, http_options)
        if not settings.api_key:
            raise ValueError(
                f"connection {self.gemini_conn_id!r} has no API key: put the Gemini API key in the "
                "connection's password (or set extra vertexai=true to use Vertex AI)"
            )
        return genai.Client(api_key=settings.api_key, http_options=http_options)

    def _vertex_client(
        self, settings: GeminiConnectionSettings, http_options: types.HttpOptions
    ) -> genai.Client:
        from google import genai

        if settings.api_key:
            # Vertex AI express mode: an API key, no project or location.
            return genai.Client(vertexai=True, api_key=settings.api_key, http_options=http_options)
        credentials = None
        if settings.service_account_info is not None:
            from google.oauth2 import service_account

            credentials = service_account.Credentials.from_service_account_info(
                settings.service_account_info,
                scopes=["https://www.googleapis.com/auth/cloud-platform"],
            )
        return genai.Client(
            vertexai=True,
            project=settings.project or (settings.service_account_info or {}).get("project_id"),
            location=settings.location,
            credentials=credentials,
            http_options=http_options,
        )

    @cached_property
    def _pacers(self) -> QuotaPacers:
        return QuotaPacers(self.settings.requests_per_minute, self.settings.tokens_per_minute)

    def test_connection(self) -> tuple[bool, str]:
        """Look up the default embedding model: one cheap, free, read-only call."""
        try:
            model = self.get_conn().models.get(model=DEFAULT_MODEL)
        except Exception as err:
            return False, _safe_error_text(err, self.settings.api_key)
        return True, f"Connected to Gemini; model {model.name or DEFAULT_MODEL} is available"

    # -- parity with pymilvus-model's GeminiEmbeddingFunction --------------------------------------

    def dim(self, model: str = DEFAULT_MODEL, output_dimensionality: int | None = None) -> int:
        """Length of the vectors ``model`` returns for ``output_dimensionality`` (``None``: the default)."""
        return resolve_model(model).dim(output_dimensionality)

    def encode_documents(self, texts: Sequence[str], **kwargs: Any) -> np.ndarray:
        """Embed documents for retrieval (task type ``RETRIEVAL_DOCUMENT``); see :meth:`embed`."""
        return self.embed(texts, task_type="RETRIEVAL_DOCUMENT", **kwargs)

    def encode_queries(self, texts: Sequence[str], **kwargs: Any) -> np.ndarray:
        """Embed search queries (task type ``RETRIEVAL_QUERY``); see :meth:`embed`."""
        if "titles" in kwargs:
            raise ValueError("titles apply to documents only; encode_queries does not take them")
        return self.embed(texts, task_type="RETRIEVAL_QUERY", **kwargs)

    # -- embedding --------------------------------------------------------------------------------

    def embed(
        self,
        texts: Sequence[str],
        *,
        model: str = DEFAULT_MODEL,
        task_type: str = "RETRIEVAL_DOCUMENT",
        output_dimensionality: int | None = None,
        titles: Sequence[str | None] | None = None,
        batch_size: int = MAX_TEXTS_PER_REQUEST,
        max_concurrency: int | None = None,
    ) -> np.ndarray:
        """
        Embed ``texts`` and return a float32 array of shape ``(len(texts), dim)``, rows in input order.

        Every row is L2-normalised (Gemini returns truncated vectors that are not unit length). All input
        is validated before the first request, so a bad item costs nothing.

        :param texts: the texts; any number.
        :param model: a Gemini embedding model, with or without ``models/``.
        :param task_type: one of the eight Gemini task types, e.g. ``RETRIEVAL_DOCUMENT``.
        :param output_dimensionality: truncate vectors to this length (Matryoshka); ``None``: model default.
        :param titles: one title (or ``None``) per text; only with ``RETRIEVAL_DOCUMENT``.
        :param batch_size: texts per request, 1 to 100.
        :param max_concurrency: requests in flight at once; default from the connection, else 8.
        :return: ``numpy.ndarray`` of float32, shape ``(len(texts), dim)``.
        """
        request = self._validated_request(model, task_type, output_dimensionality)
        texts = _validated_texts(texts, request.model)
        title_list = _validated_titles(titles, len(texts), request.task_type)
        batches = _plan_batches(
            texts, title_list, _validated_batch_size(batch_size), self.settings.tokens_per_minute
        )
        concurrency = _validated_concurrency(max_concurrency, self.settings.max_concurrency)

        self.last_run = stats = EmbeddingRunStats(
            model=request.model.name,
            texts=len(texts),
            tokens=sum(batch.tokens for batch in batches),
            usd_per_million_tokens=request.model.usd_per_million_tokens,
        )
        self.log.info(
            "Embedding %d texts with %s (%s, dim %d) in %d requests, up to %d at once",
            len(texts),
            request.model.name,
            request.task_type,
            request.dim,
            len(batches),
            concurrency,
        )
        # Build the client and pacers before the worker threads share them (cached_property has no lock).
        self.get_conn()
        _ = self._pacers
        started = time.monotonic()
        vectors = np.empty((len(texts), request.dim), dtype=np.float32)
        progress = _ProgressLog(self.log, len(texts))
        stats_lock = threading.Lock()
        cancelled = threading.Event()

        def run(batch: _Batch) -> None:
            rows = self._embed_batch(batch, request, stats, stats_lock, cancelled)
            vectors[batch.start : batch.start + len(batch.texts)] = rows
            progress.advance(len(batch.texts))

        _run_all(run, batches, concurrency, cancelled)
        stats.seconds = time.monotonic() - started
        self.log.info(
            "Embedded %d texts in %.1fs (%.1f texts/s): %d requests, %d retries (%d rate-limited), "
            "about %d tokens%s",
            stats.texts,
            stats.seconds,
            stats.texts / max(stats.seconds, 1e-9),
            stats.requests,
            stats.retries,
            stats.rate_limited,
            stats.tokens,
            _cost_text(stats.estimated_cost_usd),
        )
        return _l2_normalised(vectors)

    def _validated_request(
        self, model: str, task_type: str, output_dimensionality: int | None
    ) -> _EmbedRequest:
        spec = resolve_model(model)
        return _EmbedRequest(
            model=spec,
            task_type=normalise_task_type(task_type),
            output_dimensionality=output_dimensionality,
            dim=spec.dim(output_dimensionality),
        )

    def _embed_batch(
        self,
        batch: _Batch,
        request: _EmbedRequest,
        stats: EmbeddingRunStats,
        stats_lock: threading.Lock,
        cancelled: threading.Event,
    ) -> np.ndarray:
        """Send one batch, retrying what is worth retrying; return its vectors."""
        from google.genai import errors

        backoff = self.settings.backoff
        attempt = 0
        while True:
            attempt += 1
            self._pacers.acquire(batch.tokens)
            if cancelled.is_set():
                raise _Cancelled(f"request {batch.index + 1} not sent: another request failed")
            with stats_lock:
                stats.requests += 1
            try:
                return self._send(batch, request)
            except errors.APIError as err:
                if not is_retryable_status(err.code) or (err.code == 429 and is_daily_quota(err.details)):
                    raise self._api_error(batch, err, attempt) from err
                delay = server_retry_delay(err.details, _response_headers(err))
                with stats_lock:
                    stats.rate_limited += err.code == 429
                failure: BaseException = err
            except TRANSIENT_TRANSPORT_ERRORS as err:
                delay = None
                failure = err
            if attempt > backoff.max_retries:
                raise GeminiAPIError(
                    f"gave up on request {batch.index + 1} (texts {batch.start} to "
                    f"{batch.start + len(batch.texts) - 1}) after {attempt} attempts: "
                    f"{_safe_error_text(failure, self.settings.api_key)}",
                    http_status=getattr(failure, "code", None),
                    status=getattr(failure, "status", None),
                    attempts=attempt,
                ) from failure
            wait_seconds = delay if delay is not None else backoff.delay(attempt)
            with stats_lock:
                stats.retries += 1
            self.log.warning(
                "Request %d failed (%s); retry %d/%d in %.2fs",
                batch.index + 1,
                _short_reason(failure),
                attempt,
                backoff.max_retries,
                wait_seconds,
            )
            time.sleep(wait_seconds * (1 + random.uniform(0, 0.1)) if delay is not None else wait_seconds)

    def _send(self, batch: _Batch, request: _EmbedRequest) -> np.ndarray:
        from google.genai import types

        config = types.EmbedContentConfig(
            task_type=request.task_type if request.model.supports_task_type else None,
            output_dimensionality=request.output_dimensionality,
        )
        titles = batch.titles
        if titles is not None and len(set(titles)) == 1:
            config.title = titles[0]
        elif titles is not None:
            config.http_options = types.HttpOptions(
                extra_body={"requests": self._per_request_bodies(batch, request)}
            )
        response = self.get_conn().models.embed_content(
            model=request.model.name, contents=_contents(batch.texts, request.model), config=config
        )
        return _checked_vectors(response, batch, request)

    def _per_request_bodies(self, batch: _Batch, request: _EmbedRequest) -> list[dict[str, Any]]:
        """
        Wire bodies carrying a different title per text.

        The SDK copies one config onto every request of a call, so per-text titles go through
        ``HttpOptions.extra_body``, which replaces the ``requests`` list it would have built.
        """
        titles = batch.titles or [None] * len(batch.texts)
        bodies: list[dict[str, Any]] = []
        for text, title in zip(batch.texts, titles, strict=True):
            config: dict[str, Any] = {"taskType": request.task_type}
            if title is not None:
                config["title"] = title
            if request.output_dimensionality is not None:
                config["outputDimensionality"] = request.output_dimensionality
            content = {"parts": [{"text": text}], "role": "user"}
            if self.settings.vertexai:
                bodies.append({"content": content, "embedContentConfig": config})
            else:
                bodies.append({"model": f"models/{request.model.name}", "content": content, **config})
        return bodies

    def _api_error(self, batch: _Batch, err: Any, attempts: int) -> GeminiAPIError:
        error_class = GeminiQuotaExhaustedError if err.code == 429 else GeminiAPIError
        return error_class(
            f"Gemini refused request {batch.index + 1} (texts {batch.start} to "
            f"{batch.start + len(batch.texts) - 1}): {_safe_error_text(err, self.settings.api_key)}",
            http_status=err.code,
            status=err.status,
            attempts=attempts,
        )


# -- validation (all of it runs before the first request) ----------------------------------------


def _validated_texts(texts: Sequence[str], model: EmbeddingModel) -> list[str]:
    if isinstance(texts, (str, bytes)) or not isinstance(texts, Sequence):
        raise ValueError(f"texts must be a list of strings, got {type(texts).__name__}")
    if not texts:
        raise ValueError("texts is empty: nothing to embed")
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValueError(f"texts[{index}] is not a string (got {type(text).__name__})")
        if not text.strip():
            raise ValueError(f"texts[{index}] is empty or only whitespace")
        tokens = estimate_tokens(text)
        if tokens > model.max_input_tokens:
            raise ValueError(
                f"texts[{index}] is about {tokens} tokens; {model.name} accepts at most "
                f"{model.max_input_tokens} tokens per text (split it into chunks)"
            )
    return list(texts)


def _validated_titles(
    titles: Sequence[str | None] | None, count: int, task_type: str
) -> list[str | None] | None:
    if titles is None:
        return None
    if isinstance(titles, str) or not isinstance(titles, Sequence):
        raise ValueError(f"titles must be a list with one title per text, got {type(titles).__name__}")
    if task_type != "RETRIEVAL_DOCUMENT":
        raise ValueError(f"titles are only accepted with task_type RETRIEVAL_DOCUMENT, not {task_type}")
    if len(titles) != count:
        raise ValueError(f"got {len(titles)} titles for {count} texts; give one title (or None) per text")
    for index, title in enumerate(titles):
        if title is not None and not isinstance(title, str):
            raise ValueError(f"titles[{index}] is not a string (got {type(title).__name__})")
    return list(titles)


def _validated_batch_size(batch_size: int) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int):
        raise ValueError(f"batch_size must be an integer, got {type(batch_size).__name__}")
    if not 1 <= batch_size <= MAX_TEXTS_PER_REQUEST:
        raise ValueError(f"batch_size must be between 1 and {MAX_TEXTS_PER_REQUEST}, got {batch_size}")
    return batch_size


def _validated_concurrency(max_concurrency: int | None, default: int) -> int:
    if max_concurrency is None:
        return default
    if isinstance(max_concurrency, bool) or not isinstance(max_concurrency, int) or max_concurrency < 1:
        raise ValueError(f"max_concurrency must be a positive integer, got {max_concurrency!r}")
    return max_concurrency


def _plan_batches(
    texts: list[str], titles: list[str | None] | None, batch_size: int, tokens_per_minute: int | None
) -> list[_Batch]:
    """Split into requests of at most ``batch_size`` texts, and at most one minute of token quota."""
    batches: list[_Batch] = []
    start = 0
    while start < len(texts):
        end = start
        tokens = 0
        while end < len(texts) and end - start < batch_size:
            text_tokens = estimate_tokens(texts[end])
            if tokens_per_minute is not None and text_tokens > tokens_per_minute:
                raise ValueError(
                    f"texts[{end}] is about {text_tokens} tokens, more than the connection's "
                    f"tokens_per_minute={tokens_per_minute}; it could never be sent"
                )
            if tokens_per_minute is not None and end > start and tokens + text_tokens > tokens_per_minute:
                break
            tokens += text_tokens
            end += 1
        batches.append(
            _Batch(
                index=len(batches),
                start=start,
                texts=texts[start:end],
                titles=titles[start:end] if titles is not None else None,
                tokens=tokens,
            )
        )
        start = end
    return batches


# -- execution helpers ----------------------------------------------------------------------------


class _Cancelled(Exception):
    """Raised in a worker when another batch has already failed for good."""


def _run_all(
    run: Callable[[_Batch], None], batches: list[_Batch], concurrency: int, cancelled: threading.Event
) -> None:
    """Run every batch with up to ``concurrency`` threads; on the first failure, stop the rest and raise."""
    if concurrency == 1 or len(batches) == 1:
        for batch in batches:
            run(batch)
        return
    with ThreadPoolExecutor(max_workers=min(concurrency, len(batches)), thread_name_prefix="gemini") as pool:
        futures: list[Future[None]] = [pool.submit(run, batch) for batch in batches]
        done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        failure = next((future.exception() for future in done if future.exception() is not None), None)
        if failure is not None:
            cancelled.set()
            for future in pending:
                future.cancel()
            raise failure


def _contents(texts: list[str], model: EmbeddingModel) -> list[Any]:
    """
    What to pass the SDK as ``contents``: one vector must come back per text.

    For gemini-embedding-2 the SDK merges a list of strings into one ``Content`` (one vector for the
    whole list), so each text gets its own ``Content``. Other models take plain strings, which the SDK
    turns into requests about twice as fast as ``Content`` objects.
    """
    if not model.one_content_per_text:
        return list(texts)
    from google.genai import types

    return [types.Content(parts=[types.Part(text=text)]) for text in texts]


def _checked_vectors(response: Any, batch: _Batch, request: _EmbedRequest) -> np.ndarray:
    embeddings = response.embeddings or []
    if len(embeddings) != len(batch.texts):
        raise GeminiAPIError(
            f"Gemini returned {len(embeddings)} vectors for the {len(batch.texts)} texts of request "
            f"{batch.index + 1}"
        )
    rows = np.asarray([embedding.values or [] for embedding in embeddings], dtype=np.float32)
    if rows.ndim != 2 or rows.shape[1] != request.dim:
        width = rows.shape[1] if rows.ndim == 2 else "mixed"
        raise GeminiAPIError(
            f"Gemini returned vectors of length {width} for request {batch.index + 1}; expected {request.dim}"
        )
    return rows


def _l2_normalised(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    zero_rows = np.flatnonzero(norms[:, 0] == 0)
    if zero_rows.size:
        raise GeminiAPIError(f"Gemini returned an all-zero vector for texts[{int(zero_rows[0])}]")
    return (vectors / norms).astype(np.float32, copy=False)


def _response_headers(err: Any) -> Any:
    response = getattr(err, "response", None)
    return getattr(response, "headers", None)


def _short_reason(err: BaseException) -> str:
    code = getattr(err, "code", None)
    status = getattr(err, "status", None)
    return f"{code} {status}" if code is not None else type(err).__name__


def _safe_error_text(err: BaseException, api_key: str | None) -> str:
    """An error's text with the API key scrubbed out, should any layer have echoed it."""
    text = f"{type(err).__name__}: {err}"
    return text.replace(api_key, "***") if api_key else text


def _cost_text(cost: float | None) -> str:
    return f", estimated cost ${cost:.6f}" if cost is not None else ""


def _required(value: Any) -> Any:
    """A declared extra with a default is never None; say so to the type checker."""
    if value is None:
        raise AssertionError("an extra with a default came back None")
    return value
