"""
Google Gemini embeddings with the API key kept in an Airflow connection.

This module holds the hook: the SDK client, sending, retrying and pacing. What to send and whether an answer
is usable is decided in :mod:`~airflow_provider_gemini_milvus.gemini.requests`, the connection is read in
:mod:`~airflow_provider_gemini_milvus.gemini.settings`, and worker threads run in
:mod:`~airflow_provider_gemini_milvus.gemini.runner`.

.. seealso:: https://ai.google.dev/gemini-api/docs/embeddings
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
from airflow.sdk import BaseHook

from airflow_provider_gemini_milvus.exceptions import GeminiAPIError, GeminiQuotaExhaustedError
from airflow_provider_gemini_milvus.gemini.attempts import (
    TRANSIENT_TRANSPORT_ERRORS,
    FailedAttempt,
    is_about_the_answer,
    parse_failure,
    response_headers,
    short_reason,
    unparsable_response_errors,
)
from airflow_provider_gemini_milvus.gemini.concurrency import DEFAULT_INITIAL_WINDOW, AdaptiveConcurrency
from airflow_provider_gemini_milvus.gemini.files_api import delete_file, upload_media
from airflow_provider_gemini_milvus.gemini.models import (
    DEFAULT_MODEL,
    MAX_TEXTS_PER_REQUEST,
    TASK_TYPES,
    resolve_model,
)
from airflow_provider_gemini_milvus.gemini.pacing import QuotaPacers
from airflow_provider_gemini_milvus.gemini.requests import (
    ON_DOCUMENT_ERROR_CHOICES,
    EmbeddingResult,
    EmbeddingRunStats,
    EmbedRequest,
    PlannedRequest,
    RefusedText,
    UnusableResponse,
    checked_rows,
    media_tokens_of,
    plan_requests,
    scrubbed,
    validated_batch_size,
    validated_concurrency,
    validated_inputs,
    validated_request,
)
from airflow_provider_gemini_milvus.gemini.retries import (
    is_daily_quota,
    is_document_refusal,
    is_retryable_status,
    server_retry_delay,
)
from airflow_provider_gemini_milvus.gemini.runner import Cancelled, ProgressLog, RunCounters, run_all
from airflow_provider_gemini_milvus.gemini.settings import GeminiConnectionSettings, read_settings
from airflow_provider_gemini_milvus.gemini.wire import send_embed_request
from airflow_provider_gemini_milvus.hooks.quota_memory import QuotaMemory, QuotaStore

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from google import genai
    from google.genai import types

    from airflow_provider_gemini_milvus.gemini.media import MediaPart

__all__ = [
    "ON_DOCUMENT_ERROR_CHOICES",
    "TASK_TYPES",
    "EmbeddingResult",
    "EmbeddingRunStats",
    "GeminiConnectionSettings",
    "GeminiHook",
    "RefusedText",
]


#: Refused texts logged one by one; the rest are only counted.
MAX_LOGGED_REFUSALS = 20

#: What a request hands back to the calling thread: the vectors of ``texts[positions]``, or a refused text.
_Delivery = tuple[range, np.ndarray] | RefusedText


#: Guards the first build of a hook's client and pacers (module-level: a hook must stay deep-copyable).
_BUILD_LOCK = threading.Lock()


@dataclass(frozen=True)
class _ModelWindow:
    """The adaptive window of one model on a hook (quotas are per model) and where it keeps what it learns."""

    concurrency: AdaptiveConcurrency
    memory: QuotaMemory | None
    since: float


@dataclass(frozen=True)
class _Call:
    """What every request of one ``embed_with_stats`` call shares."""

    request: EmbedRequest
    counters: RunCounters
    cancelled: threading.Event
    skip_refused: bool
    concurrency: AdaptiveConcurrency | None


class GeminiHook(BaseHook):
    """
    Embed texts with Google Gemini, with the API key kept in an Airflow connection.

    The connection's password holds the API key. Optional extras: ``base_url`` (an ``https://`` proxy or
    gateway, or ``http://`` to a loopback address such as the bundled emulator), ``api_version``,
    ``timeout`` (seconds), ``max_concurrency`` (default 32), ``adaptive_concurrency`` (default true),
    ``remember_quota`` (default true), ``requests_per_minute``, ``tokens_per_minute``,
    ``max_retries``, ``retry_initial_delay``, ``retry_max_delay``, and for Vertex AI ``vertexai: true``
    with ``project``, ``location`` and ``service_account_json`` (or Application Default Credentials; an API
    key in Vertex mode selects express mode).

    :meth:`embed` splits any number of texts into requests of at most 100, runs several at once (adaptive:
    from 16 in flight up to ``max_concurrency`` while answers come fast without 429, cut on a 429; see
    :mod:`~airflow_provider_gemini_milvus.gemini.concurrency`), retries
    429, 5xx, timeouts, dropped connections and unusable answers (NaN, wrong length, not JSON) with backoff
    (honouring the server's retry delay), paces itself to the connection's quotas, and returns
    L2-normalised float32 rows in input order. :meth:`embed_with_stats` also returns what the call did; it
    can hand each request's vectors to a callback as they arrive (``on_result``, flat memory at any corpus
    size) and skip the texts Gemini refuses for good (``on_document_error="skip"``).

    Inside an Airflow task, the rates the window settled on (per connection and model) are kept in an
    Airflow Variable, and the next task starts there instead of in slow start, still probing upward and
    backing off on 429s (``remember_quota``; see :mod:`~airflow_provider_gemini_milvus.hooks.quota_memory`).

    :param gemini_conn_id: the ``gemini`` connection to use.
    :param quota_store: where to keep the learned quota instead of Airflow Variables (any object with
        ``read(key)`` and ``write(key, value)``), e.g. for a script outside Airflow; ``None``: Variables,
        inside a task only.
    """

    conn_name_attr = "gemini_conn_id"
    default_conn_name = "gemini_default"
    conn_type = "gemini"
    hook_name = "Google Gemini"

    def __init__(
        self, gemini_conn_id: str = default_conn_name, *, quota_store: QuotaStore | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.gemini_conn_id = gemini_conn_id
        self.quota_store = quota_store
        self._windows: dict[str, _ModelWindow] = {}

    @classmethod
    async def from_async_connection(cls, gemini_conn_id: str = default_conn_name) -> GeminiHook:
        """
        A hook whose connection is read with the async connection API, for the triggerer's event loop: it
        never reads the connection synchronously.

        :param gemini_conn_id: the ``gemini`` connection.
        """
        connection = await cls.aget_connection(gemini_conn_id)
        hook = cls(gemini_conn_id=gemini_conn_id)
        hook.settings = read_settings(connection.password, connection.extra_dejson, gemini_conn_id)
        return hook

    # -- connection -----------------------------------------------------------------------------

    @cached_property
    def settings(self) -> GeminiConnectionSettings:
        """The connection's settings, read once and validated."""
        conn = self.get_connection(self.gemini_conn_id)
        return read_settings(conn.password, conn.extra_dejson, self.gemini_conn_id)

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

    def adaptive_window(self, model: str = DEFAULT_MODEL) -> AdaptiveConcurrency | None:
        """
        The adaptive window of ``model`` on this hook, shared by its calls with that model (they share one
        quota), or ``None`` before the first call with it: its ``window``, ``start_rate`` (what it started
        from, ``None`` for slow start) and ``learned_rates()``.
        """
        entry = self._windows.get(resolve_model(model).name)
        return entry.concurrency if entry is not None else None

    def _window_for(self, model: str, batches: Sequence[PlannedRequest]) -> _ModelWindow:
        """The window of ``model``, built on its first call: from the learned quota, if one is kept."""
        entry = self._windows.get(model)
        if entry is not None:
            return entry
        settings = self.settings
        memory = (
            QuotaMemory(self.quota_store, self.gemini_conn_id, model, self.log)
            if settings.remember_quota
            else None
        )
        start_rate = self._start_rate(memory, batches) if memory is not None else None
        ceiling = settings.max_concurrency
        initial = min(DEFAULT_INITIAL_WINDOW, ceiling)
        entry = _ModelWindow(
            concurrency=AdaptiveConcurrency(initial, ceiling, start_rate=start_rate),
            memory=memory,
            since=memory.now() if memory is not None else time.time(),
        )
        self._windows[model] = entry
        return entry

    def _start_rate(self, memory: QuotaMemory, batches: Sequence[PlannedRequest]) -> float | None:
        """
        Requests per second to start at: the learned share of the quota (aged), as requests of this call's
        size; a quota configured on the connection caps it. ``None``: nothing learned, slow start.
        """
        record = memory.recall()
        rates = record.start_rates(memory.now()) if record is not None else None
        if record is None or rates is None:
            return None
        requests_per_second, tokens_per_second = rates
        tokens_per_request = sum(batch.tokens for batch in batches) / max(len(batches), 1)
        start = requests_per_second
        if tokens_per_second > 0 and tokens_per_request > 0:
            # A request quota and a token quota both bind: the learned token rate, in requests of this size.
            start = min(start, tokens_per_second / tokens_per_request)
        settings = self.settings
        if settings.requests_per_minute:
            start = min(start, settings.requests_per_minute / 60.0)
        if settings.tokens_per_minute and tokens_per_request > 0:
            start = min(start, settings.tokens_per_minute / 60.0 / tokens_per_request)
        self.log.info(
            "Starting near %.2f requests/s, the quota learned %.0f s ago by %d task(s) (Variable %s), "
            "not in slow start",
            start,
            max(memory.now() - record.learned_at, 0.0),
            len(record.learners),
            memory.key,
        )
        return start

    def _remember(self, entry: _ModelWindow) -> None:
        """Keep what the window learned, if it learned something and the last write is not too recent."""
        if entry.memory is None or not entry.memory.due():
            return
        rates = entry.concurrency.learned_rates()
        if rates is not None:
            entry.memory.remember(*rates, since=entry.since)

    def test_connection(self) -> tuple[bool, str]:
        """Look up the default embedding model: one cheap, free, read-only call."""
        try:
            _ = self.settings
        except ValueError as err:
            # Bad extras or base_url: these messages name settings, never the password.
            return False, str(err)
        try:
            model = self.get_conn().models.get(model=DEFAULT_MODEL)
        except Exception as err:
            return False, self._safe_error_text(err)
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
        is validated before the first request, so a bad item costs nothing. Takes the arguments of
        :meth:`embed_with_stats`, which also returns what the call did.

        :return: ``numpy.ndarray`` of float32, shape ``(len(texts), dim)``.
        """
        return self.embed_with_stats(
            texts,
            model=model,
            task_type=task_type,
            output_dimensionality=output_dimensionality,
            titles=titles,
            batch_size=batch_size,
            max_concurrency=max_concurrency,
        ).vectors

    def embed_with_stats(
        self,
        texts: Sequence[str],
        *,
        model: str = DEFAULT_MODEL,
        task_type: str = "RETRIEVAL_DOCUMENT",
        output_dimensionality: int | None = None,
        titles: Sequence[str | None] | None = None,
        batch_size: int = MAX_TEXTS_PER_REQUEST,
        max_concurrency: int | None = None,
        on_result: Callable[[Sequence[int], np.ndarray], None] | None = None,
        on_document_error: str = "fail",
        media: Sequence[MediaPart | None] | None = None,
    ) -> EmbeddingResult:
        """
        Embed ``texts``; return the vectors with this call's requests, retries, tokens and cost.

        Safe to call from several threads on one hook: each call has its own stats.

        With ``on_result``, each request's vectors are handed over as soon as it finishes, and the hook keeps
        none of them: memory holds the requests in flight, not the corpus. ``on_result(positions, vectors)``
        is called in the calling thread (the one that called this method), one request at a time, never
        concurrently; ``positions`` is a ``range`` of indexes into ``texts``, ``vectors`` a float32
        L2-normalised array of shape ``(len(positions), dim)``. Requests finish in any order. Should the call
        fail (a request refused, retries or quota exhausted, the callback raising), every request that
        finished before, or while the requests in flight finished, has been delivered first; an error raised
        by ``on_result`` ends delivery and is raised as it is.

        :param texts: the texts; any number.
        :param model: a Gemini embedding model, with or without ``models/``.
        :param task_type: one of the eight Gemini task types, e.g. ``RETRIEVAL_DOCUMENT``.
        :param output_dimensionality: truncate vectors to this length (Matryoshka); ``None``: model default.
        :param titles: one title (or ``None``) per text; only with ``RETRIEVAL_DOCUMENT``.
        :param batch_size: texts per request, 1 to 100.
        :param max_concurrency: most requests in flight at once; default from the connection, else 32. With
            adaptive concurrency (the default) the ceiling of the window, which starts at 16.
        :param on_result: called with ``(positions, vectors)`` per finished request, instead of collecting
            the vectors in the result.
        :param on_document_error: ``"fail"`` (default): a request Gemini refuses for good (400
            ``INVALID_ARGUMENT``) fails the call. ``"skip"``: such a request is split in halves and sent again
            until each refused text stands alone; those are left out and listed in
            :attr:`EmbeddingResult.refused` with Gemini's reason, the rest are embedded. 429, 5xx and
            other errors are retried or raised as with ``"fail"``.
        :param media: one :class:`~airflow_provider_gemini_milvus.gemini.media.MediaPart` (or None) per
            text, for a model that embeds media (gemini-embedding-2): each text and its media item make one
            vector (the text may then be empty). Small items go inline, larger ones through the Files API
            (uploaded, then deleted once their request is done). Gemini API connections only.
        :return: :class:`EmbeddingResult` with float32 ``vectors`` of shape ``(len(texts), dim)``, or
            ``(0, dim)`` with ``on_result``.
        :raises ValueError: bad input, naming ``texts[i]`` or ``titles[i]``, before any request.
        :raises GeminiAPIError: a request was refused, or failed until the retry budget ran out; the message
            names the request and its texts' indexes, never the key.
        """
        if on_document_error not in ON_DOCUMENT_ERROR_CHOICES:
            raise ValueError(
                f"on_document_error must be one of {', '.join(map(repr, ON_DOCUMENT_ERROR_CHOICES))}, "
                f"got {on_document_error!r}"
            )
        if on_result is not None and not callable(on_result):
            raise ValueError(f"on_result must be callable, got {type(on_result).__name__}")
        request = validated_request(model, task_type, output_dimensionality, vertexai=self.settings.vertexai)
        text_list, title_list, media_list = validated_inputs(texts, titles, request, media)
        if media_list is not None and self.settings.vertexai:
            raise ValueError(
                "media documents are embedded through the Gemini API; this connection calls Vertex AI"
            )
        batches = plan_requests(
            text_list,
            title_list,
            validated_batch_size(batch_size),
            self.settings.tokens_per_minute,
            media_list,
        )
        concurrency = validated_concurrency(max_concurrency, self.settings.max_concurrency)
        adaptive = self.settings.adaptive_concurrency
        self.log.info(
            "Embedding %d texts with %s (%s, dim %d) in %d requests, %s %d at once",
            len(text_list),
            request.model.name,
            request.task_type,
            request.dim,
            len(batches),
            "adaptive, up to" if adaptive else "fixed",
            concurrency,
        )
        # Build the client, pacers and window once, before worker threads (and concurrent calls) share
        # them: cached_property has no lock.
        window: _ModelWindow | None = None
        with _BUILD_LOCK:
            self.get_conn()
            _ = self._pacers
            if adaptive:
                window = self._window_for(request.model.name, batches)
                window.concurrency.raise_ceiling(concurrency)
        started = time.monotonic()
        vectors = np.empty((0 if on_result is not None else len(text_list), request.dim), dtype=np.float32)
        refused: list[RefusedText] = []
        progress = ProgressLog(self.log, len(text_list))
        call = _Call(
            request=request,
            counters=RunCounters(),
            cancelled=threading.Event(),
            skip_refused=on_document_error == "skip",
            concurrency=window.concurrency if window is not None else None,
        )

        def deliver(delivery: _Delivery) -> None:
            if isinstance(delivery, RefusedText):
                refused.append(delivery)
                if on_result is None:
                    vectors[delivery.position] = np.nan
                self._log_refusal(delivery, len(refused))
                progress.advance(1)
                return
            positions, rows = delivery
            if on_result is None:
                vectors[positions.start : positions.stop] = rows
            else:
                on_result(positions, rows)
            progress.advance(len(positions))

        def run(batch: PlannedRequest, emit: Callable[[_Delivery], None]) -> None:
            self._embed_request(batch, call, emit)

        if window is not None:
            window.concurrency.begin_call()
        try:
            run_all(run, batches, concurrency, call.cancelled, deliver)
        finally:
            if window is not None:
                window.concurrency.end_call()
        if window is not None:
            self._remember(window)
        counters = call.counters
        media_tokens = media_tokens_of(batches)
        stats = EmbeddingRunStats(
            model=request.model.name,
            texts=len(text_list),
            tokens=sum(batch.tokens for batch in batches),
            requests=counters.requests,
            retries=counters.retries,
            rate_limited=counters.rate_limited,
            refused=len(refused),
            split_requests=counters.split_requests,
            seconds=time.monotonic() - started,
            usd_per_million_tokens=request.model.usd_per_million_tokens,
            image_tokens=media_tokens["image"],
            audio_tokens=media_tokens["audio"],
            video_tokens=media_tokens["video"],
            media_usd_per_million_tokens=request.model.media_usd_per_million_tokens,
        )
        if call.concurrency is not None:
            self.log.info("Adaptive concurrency: %.1f requests in flight", call.concurrency.window)
        self.log.info(
            "Embedded %d texts in %.1fs (%.1f texts/s): %d requests, %d retries (%d rate-limited), "
            "about %d tokens%s",
            stats.texts - stats.refused,
            stats.seconds,
            (stats.texts - stats.refused) / max(stats.seconds, 1e-9),
            stats.requests,
            stats.retries,
            stats.rate_limited,
            stats.tokens,
            _cost_text(stats.estimated_cost_usd),
        )
        if refused:
            self.log.warning(
                "Skipped %d texts Gemini refused; %d requests went to finding them",
                stats.refused,
                stats.split_requests,
            )
        return EmbeddingResult(
            vectors=vectors, stats=stats, refused=tuple(sorted(refused, key=lambda text: text.position))
        )

    def _log_refusal(self, refusal: RefusedText, count: int) -> None:
        if count <= MAX_LOGGED_REFUSALS:
            self.log.warning("Gemini refused texts[%d]; skipped: %s", refusal.position, refusal.reason)
        if count == MAX_LOGGED_REFUSALS:
            self.log.warning("Further refused texts are counted, not logged one by one")

    def _embed_request(self, batch: PlannedRequest, call: _Call, emit: Callable[[_Delivery], None]) -> None:
        """Send one planned request, emit its vectors; with ``skip_refused``, isolate what Gemini refuses."""
        uploads: list[str] = []
        try:
            if batch.media is not None and any(part and not part.facts.inline for part in batch.media):
                batch = batch.with_media([self._uploaded(part, uploads) for part in batch.media])
            refusal = self._send_part(batch, call, emit, split=False)
            if refusal is not None:
                self._isolate_refused(batch, refusal, call, emit)
        finally:
            for name in uploads:
                delete_file(self, name)

    def _uploaded(self, part: MediaPart | None, uploads: list[str]) -> MediaPart | None:
        """``part`` as sent: inline if small, else uploaded to the Files API (its name put in ``uploads``)."""
        if part is None or part.facts.inline:
            return part
        name, uri = upload_media(self, part)
        uploads.append(name)
        return part.uploaded(uri)

    def _send_part(
        self, part: PlannedRequest, call: _Call, emit: Callable[[_Delivery], None], *, split: bool
    ) -> FailedAttempt | None:
        """Send ``part``; emit its vectors and return ``None``, or return the refusal of a refusable part."""
        outcome = self._send_request(part, call, split=split)
        if isinstance(outcome, np.ndarray):
            emit((range(part.start, part.start + len(part.texts)), outcome))
            return None
        return outcome

    def _isolate_refused(
        self, part: PlannedRequest, refusal: FailedAttempt, call: _Call, emit: Callable[[_Delivery], None]
    ) -> None:
        """
        ``part`` was refused as a whole: emit the vectors of its texts Gemini accepts, and each text it
        refuses when sent alone as a :class:`RefusedText`.

        Halves are sent first-half first. When the first half is accepted, the refusal lies in the second,
        which is split at once without being sent whole; a single text is always sent on its own, so a text
        is only ever recorded as refused on its own 400.
        """
        if len(part.texts) == 1:
            emit(RefusedText(part.start, refusal.refusal_reason))
            return
        first, second = part.halves()
        first_refusal = self._send_part(first, call, emit, split=True)
        if first_refusal is not None:
            self._isolate_refused(first, first_refusal, call, emit)
        if first_refusal is None and len(second.texts) > 1:
            self._isolate_refused(second, refusal, call, emit)
            return
        second_refusal = self._send_part(second, call, emit, split=True)
        if second_refusal is not None:
            self._isolate_refused(second, second_refusal, call, emit)

    def _send_request(self, batch: PlannedRequest, call: _Call, *, split: bool) -> np.ndarray | FailedAttempt:
        """
        Send one batch, retrying what is worth retrying; return its checked, normalised vectors, or (with
        ``call.skip_refused``) the attempt that refused it for good as a document refusal.

        Errors are raised outside any ``except`` block, so a :class:`GeminiAPIError` has no ``__cause__``
        or ``__context__`` (the SDK's error may hold a gateway's echo of the key).

        :param split: ``batch`` is part of a refused request (counted in ``split_requests``).
        """
        backoff = self.settings.backoff
        counters = call.counters
        attempt = 0
        while True:
            attempt += 1
            self._pacers.acquire(batch.tokens)
            outcome = self._windowed_attempt(batch, call, split=split)
            if isinstance(outcome, np.ndarray):
                return outcome
            counters.add(rate_limited=outcome.http_status == 429)
            if outcome.document_refusal and call.skip_refused:
                return outcome
            if not outcome.retryable:
                error_class = GeminiQuotaExhaustedError if outcome.quota_exhausted else GeminiAPIError
                raise error_class(
                    f"Gemini refused {batch.describe()}: {outcome.reason}",
                    http_status=outcome.http_status,
                    status=outcome.status,
                    attempts=attempt,
                )
            if attempt > backoff.max_retries:
                raise GeminiAPIError(
                    f"gave up on {batch.describe()} after {attempt} attempts: {outcome.reason}",
                    http_status=outcome.http_status,
                    status=outcome.status,
                    attempts=attempt,
                )
            counters.add(retries=1)
            delay = outcome.server_delay
            wait_seconds = delay if delay is not None else backoff.delay(attempt)
            self.log.warning(
                "%s failed (%s); retry %d/%d in %.2fs",
                batch.describe().capitalize(),
                short_reason(outcome),
                attempt,
                backoff.max_retries,
                wait_seconds,
            )
            time.sleep(wait_seconds * (1 + random.uniform(0, 0.1)) if delay is not None else wait_seconds)

    def _windowed_attempt(
        self, batch: PlannedRequest, call: _Call, *, split: bool
    ) -> np.ndarray | FailedAttempt:
        """Send ``batch`` once, within the adaptive window if there is one, and tell it how it went."""
        window = call.concurrency
        sent_at = window.acquire(call.cancelled) if window is not None else 0.0
        outcome: np.ndarray | FailedAttempt | None = None
        try:
            if call.cancelled.is_set():
                raise Cancelled(f"{batch.describe()} not sent: another request failed")
            call.counters.add(requests=1, split_requests=int(split))
            outcome = self._attempt(batch, call.request)
            return outcome
        finally:
            if window is not None:
                if isinstance(outcome, np.ndarray):
                    window.succeeded(sent_at, batch.tokens)
                elif isinstance(outcome, FailedAttempt) and outcome.http_status == 429:
                    window.rate_limited(sent_at, outcome.server_delay)
                else:
                    window.released()

    def _attempt(self, batch: PlannedRequest, request: EmbedRequest) -> np.ndarray | FailedAttempt:
        """Send ``batch`` once; return its vectors, or what went wrong as plain data."""
        from google.genai import errors

        try:
            embeddings = send_embed_request(self.get_conn(), batch, request, vertexai=self.settings.vertexai)
            return checked_rows(embeddings, batch, request.dim)
        except errors.APIError as err:
            daily = err.code == 429 and is_daily_quota(err.details)
            return FailedAttempt(
                reason=self._safe_error_text(err),
                retryable=is_retryable_status(err.code) and not daily,
                http_status=err.code,
                status=err.status,
                server_delay=server_retry_delay(err.details, response_headers(err)),
                quota_exhausted=err.code == 429,
                document_refusal=is_document_refusal(err.code, err.status, err.details),
                api_message=scrubbed(err.message, self.settings.secrets) if err.message else None,
            )
        except TRANSIENT_TRANSPORT_ERRORS as err:
            return FailedAttempt(reason=self._safe_error_text(err), retryable=True)
        except UnusableResponse as err:
            return FailedAttempt(
                reason=scrubbed(str(err), self.settings.secrets), retryable=True, http_status=200
            )
        except unparsable_response_errors() as err:
            if not is_about_the_answer(err):
                raise  # pydantic refused the request we built: a bug to see, not a reason to retry
            return FailedAttempt(
                reason=f"Gemini answered 200 with a body that is not an embedding response "
                f"({parse_failure(err)})",
                retryable=True,
                http_status=200,
            )

    def _safe_error_text(self, err: BaseException) -> str:
        """An error's type and text with every secret of the connection scrubbed out, were it echoed."""
        return scrubbed(f"{type(err).__name__}: {err}", self.settings.secrets)


# -- helpers ----------------------------------------------------------------------------------------


def _cost_text(cost: float | None) -> str:
    return f", estimated cost ${cost:.6f}" if cost is not None else ""
