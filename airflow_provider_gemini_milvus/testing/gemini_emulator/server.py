"""
:class:`GeminiEmulator`: the knobs (latency, quotas, faults), the stats and the life cycle of the local
HTTP server, and how each request is answered.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
import random
import threading
import time
import urllib.parse
from typing import TYPE_CHECKING, Any

from airflow_provider_gemini_milvus.testing.gemini_emulator.batches import (
    BatchRoute,
    BatchService,
    match_batch_route,
)
from airflow_provider_gemini_milvus.testing.gemini_emulator.errors import (
    DEFAULT_REFUSAL_MESSAGE,
    SUPPORTED_FAULT_STATUSES,
    ApiError,
    fault_error,
    invalid_argument,
    invalid_key_error,
    missing_key_error,
)
from airflow_provider_gemini_milvus.testing.gemini_emulator.faults import CORRUPTION_KINDS, Fault, corrupt
from airflow_provider_gemini_milvus.testing.gemini_emulator.http_server import EmulatorHTTPServer
from airflow_provider_gemini_milvus.testing.gemini_emulator.media import MAX_REQUEST_BYTES
from airflow_provider_gemini_milvus.testing.gemini_emulator.protocol import (
    EmbedItem,
    Reply,
    RequestParser,
    Route,
    embed_response,
    list_models,
    lookup_model,
    match_route,
    model_resource,
    parse_json_body,
    received_key,
    vertex_model_resource,
)
from airflow_provider_gemini_milvus.testing.gemini_emulator.quotas import QuotaWindows
from airflow_provider_gemini_milvus.testing.gemini_emulator.stats import EmulatorStats

if TYPE_CHECKING:
    from collections.abc import Iterable
    from types import TracebackType

    from airflow_provider_gemini_milvus.gemini.models import EmbeddingModel

__all__ = ["DEFAULT_API_KEY", "GeminiEmulator"]

log = logging.getLogger(__name__)

#: The key an emulator accepts unless told otherwise.
DEFAULT_API_KEY = "emulator-key"


_KNOBS = (
    "api_key",
    "host",
    "port",
    "latency_seconds",
    "requests_per_minute",
    "tokens_per_minute",
    "requests_per_day",
    "quota_window_seconds",
    "quota_counts_texts",
    "fault_rate",
    "fault_statuses",
    "seed",
    "echo_api_key_in_errors",
)


class GeminiEmulator:
    """
    A local Gemini embedding API (see the package docstring for routes and behaviour).

    All knobs can be changed while running with :meth:`configure`.

    :param api_key: the only key accepted (header ``x-goog-api-key`` or query ``?key=``).
    :param host: interface to listen on (IPv4).
    :param port: TCP port; 0 picks a free one.
    :param latency_seconds: delay added to every request.
    :param requests_per_minute: embed calls allowed per minute, or ``None`` for no limit.
    :param tokens_per_minute: input tokens (``estimate_tokens``) allowed per minute, or ``None``.
    :param requests_per_day: embed calls allowed per day, or ``None``. A "day" is 1440 quota windows.
    :param quota_window_seconds: length of the sliding quota window; limits scale with it, so a 1 s window
        allows ``requests_per_minute / 60`` calls a second.
    :param quota_counts_texts: count each text, not each call, against the request quotas (as the free
        tier does).
    :param fault_rate: share of embed calls that fail at random (seeded), in ``[0, 1]``.
    :param fault_statuses: statuses random faults are drawn from.
    :param seed: seed of the fault generator.
    :param echo_api_key_in_errors: put the API key received with a request into the ``error.message`` of its
        error answers, as a careless gateway would; lets tests prove a key never reaches an exception.
    """

    def __init__(
        self,
        *,
        api_key: str = DEFAULT_API_KEY,
        host: str = "127.0.0.1",
        port: int = 0,
        latency_seconds: float = 0.0,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        requests_per_day: int | None = None,
        quota_window_seconds: float = 60.0,
        quota_counts_texts: bool = False,
        fault_rate: float = 0.0,
        fault_statuses: Iterable[int] = (500, 503),
        seed: int = 0,
        echo_api_key_in_errors: bool = False,
    ) -> None:
        self._lock = threading.Lock()
        self._server: EmulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stats = EmulatorStats()
        self._in_flight = 0
        self._faults: collections.deque[Fault] = collections.deque()
        self._corruptions: collections.deque[str] = collections.deque()
        self._refusals: dict[str, str] = {}
        self._quotas = QuotaWindows()
        self._batches = BatchService(self._record_batch_success, self._refusal_for, lambda: self.base_url)
        self.api_key = api_key
        self.host = host
        self.port = port
        self.latency_seconds = 0.0
        self.requests_per_minute: float | None = None
        self.tokens_per_minute: float | None = None
        self.requests_per_day: int | None = None
        self.quota_window_seconds = 60.0
        self.quota_counts_texts = False
        self.fault_rate = 0.0
        self.fault_statuses: tuple[int, ...] = ()
        self.seed = seed
        self.echo_api_key_in_errors = echo_api_key_in_errors
        self._random = random.Random(seed)
        self.configure(
            latency_seconds=latency_seconds,
            requests_per_minute=requests_per_minute,
            tokens_per_minute=tokens_per_minute,
            requests_per_day=requests_per_day,
            quota_window_seconds=quota_window_seconds,
            quota_counts_texts=quota_counts_texts,
            fault_rate=fault_rate,
            fault_statuses=fault_statuses,
        )

    # -- life cycle ------------------------------------------------------------------------------------

    def start(self) -> GeminiEmulator:
        """Start serving in a daemon thread and return ``self``."""
        if self._server is not None:
            return self
        server = EmulatorHTTPServer((self.host, self.port), self._answer, lambda: self.api_key)
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="gemini-emulator", daemon=True
        )
        self._thread.start()
        log.info("Gemini emulator listening on %s", self.base_url)
        return self

    def stop(self) -> None:
        """Stop serving and close every open connection."""
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.close_open_connections()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = None
        self._thread = None
        log.info("Gemini emulator on port %s stopped", self.port)

    def __enter__(self) -> GeminiEmulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """Whether the server is serving."""
        return self._server is not None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (the address clients should use)."""
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        return f"http://{host}:{self.port}"

    def connection_json(self, **extra: Any) -> str:
        """
        The ``AIRFLOW_CONN_GEMINI_DEFAULT`` value pointing at this emulator.

        :param extra: more connection extras (e.g. ``max_retries=5``).
        """
        return json.dumps(
            {"conn_type": "gemini", "password": self.api_key, "extra": {"base_url": self.base_url, **extra}}
        )

    # -- knobs, faults, stats ---------------------------------------------------------------------------

    def configure(self, **knobs: Any) -> GeminiEmulator:
        """
        Change knobs (the constructor's keyword arguments) at any time; returns ``self``.

        :param knobs: any of the constructor's keyword arguments. ``host`` and ``port`` only before start.
        """
        unknown = set(knobs) - set(_KNOBS)
        if unknown:
            raise TypeError(f"unknown emulator knob(s): {', '.join(sorted(unknown))}")
        if self._server is not None and ({"host", "port"} & set(knobs)):
            raise ValueError("host and port cannot change while the emulator is running")
        _validate_knobs(knobs)
        with self._lock:
            for name, value in knobs.items():
                setattr(self, name, tuple(value) if name == "fault_statuses" else value)
            if "seed" in knobs:
                self._random = random.Random(knobs["seed"])
        return self

    def fail_next(
        self,
        count: int = 1,
        status: int = 503,
        retry_delay: float | None = None,
        retry_after: str | None = None,
    ) -> None:
        """
        Answer the next ``count`` embed calls with ``status`` (after the key and model checks, before the body
        is validated).

        :param count: how many calls fail.
        :param status: one of ``SUPPORTED_FAULT_STATUSES`` (429, 500, 503, 504, ...).
        :param retry_delay: for 429, seconds put in ``RetryInfo.retryDelay`` (with a ``QuotaFailure``);
            without it a 429 is the bare, detail-less kind.
        :param retry_after: a ``Retry-After`` header sent as it is, however odd (``"nan"``, ``"-1"``,
            ``"inf"``), as a misbehaving proxy might.
        """
        if status not in SUPPORTED_FAULT_STATUSES:
            raise ValueError(f"status must be one of {SUPPORTED_FAULT_STATUSES}, got {status}")
        with self._lock:
            self._faults.extend(Fault(status, retry_delay, retry_after=retry_after) for _ in range(count))

    def drop_next(self, count: int = 1) -> None:
        """
        Close the connection of the next ``count`` embed calls without answering.

        :param count: how many calls are dropped.
        """
        with self._lock:
            self._faults.extend(Fault(0, drop=True) for _ in range(count))

    def corrupt_next(self, count: int = 1, kind: str = "nan") -> None:
        """
        Spoil the next ``count`` successful (200) embed answers, on every embed route.

        ``nan`` and ``inf`` put a ``NaN`` / ``Infinity`` token (as ``json.dumps`` writes them) in place of the
        middle value of the first embedding; ``zero`` makes it all zeros; ``short`` drops its last value;
        ``null`` sends ``"values": null``; ``missing`` leaves ``values`` out. ``html`` answers 200 with an
        HTML page, ``truncated`` with the first half of the JSON answer. Failed calls do not use up a
        corruption.

        :param count: how many successful answers are spoiled.
        :param kind: one of ``CORRUPTION_KINDS``.
        """
        if kind not in CORRUPTION_KINDS:
            raise ValueError(f"kind must be one of {CORRUPTION_KINDS}, got {kind!r}")
        with self._lock:
            self._corruptions.extend(kind for _ in range(count))

    def refuse_texts(self, substring: str, message: str = DEFAULT_REFUSAL_MESSAGE) -> None:
        """
        Refuse for good every embed call holding a text that contains ``substring``, on every embed route.

        Such a call answers 400 ``INVALID_ARGUMENT`` with ``message`` in Google's error envelope and a
        ``BadRequest`` detail naming the first refused element; the whole call is refused, as the real API
        refuses a batch for one bad document. Checked after the key, model and queued faults, before quotas
        (a refused call spends none). Lasts until :meth:`clear_faults`; calling again with the same
        ``substring`` replaces its message.

        :param substring: refuse texts containing this (non-empty).
        :param message: the ``error.message`` answered.
        """
        if not isinstance(substring, str) or not substring:
            raise ValueError(f"substring must be a non-empty string, got {substring!r}")
        if not isinstance(message, str) or not message:
            raise ValueError(f"message must be a non-empty string, got {message!r}")
        with self._lock:
            self._refusals[substring] = message

    def clear_faults(self) -> None:
        """Forget ``fail_next`` / ``drop_next`` faults, ``corrupt_next`` corruptions and ``refuse_texts``."""
        with self._lock:
            self._faults.clear()
            self._corruptions.clear()
            self._refusals.clear()

    def reset_stats(self) -> None:
        """Zero the counters (quota windows are kept; see :meth:`reset_quotas`)."""
        with self._lock:
            self._stats = EmulatorStats()

    def reset_quotas(self) -> None:
        """Forget what the quota windows have counted."""
        with self._lock:
            self._quotas.clear()

    @property
    def batches(self) -> BatchService:
        """The Batch API jobs and files, and their knobs (slow, failed or expired jobs)."""
        return self._batches

    @property
    def files_processing_polls(self) -> int:
        """
        ``client.files.get`` calls a file uploaded from now on answers ``state: PROCESSING`` (the upload's
        own answer too) before it turns ``ACTIVE``; an embed request naming it meanwhile gets 400
        ``FAILED_PRECONDITION``. 0 (the default): files are ``ACTIVE`` at once.
        """
        return self._batches.files.processing_polls

    @files_processing_polls.setter
    def files_processing_polls(self, polls: int) -> None:
        if isinstance(polls, bool) or not isinstance(polls, int) or polls < 0:
            raise ValueError(f"files_processing_polls must be a non-negative int, got {polls!r}")
        self._batches.files.processing_polls = polls

    @property
    def stats(self) -> EmulatorStats:
        """A thread-safe snapshot of the counters."""
        with self._lock:
            return self._stats.snapshot()

    # -- request handling (called from the HTTP handler threads) ---------------------------------------

    def _answer(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> Reply | None:
        """Answer one HTTP request; ``None`` means: drop the connection without answering."""
        parsed = urllib.parse.urlsplit(raw_path)
        query = urllib.parse.parse_qs(parsed.query)
        route = match_route(method, parsed.path)
        if route.kind != "embed":
            self._sleep_latency()
            batch_route = match_batch_route(method, parsed.path) if route.kind == "unknown" else None
            if batch_route is not None:
                return self._handle_batch(batch_route, headers, query, body)
            return self._handle_other(route, headers, query)
        with self._lock:
            self._stats.requests += 1
            self._in_flight += 1
            self._stats.max_in_flight = max(self._stats.max_in_flight, self._in_flight)
        try:
            self._sleep_latency()
            reply = self._handle_embed(route, headers, query, body)
            with self._lock:
                if reply is None:
                    self._stats.dropped += 1
                else:
                    self._stats.status_counts[reply.status] += 1
            return reply
        finally:
            with self._lock:
                self._in_flight -= 1

    def _sleep_latency(self) -> None:
        if self.latency_seconds > 0:
            time.sleep(self.latency_seconds)

    def _handle_other(self, route: Route, headers: dict[str, str], query: dict[str, list[str]]) -> Reply:
        try:
            if route.kind == "unknown":
                raise ApiError(404, "Method not found.")
            self._check_key(headers, query, vertex=route.vertex)
            if route.kind == "list_models":
                return Reply(200, list_models(query))
            model = lookup_model(route)
            return Reply(200, vertex_model_resource(model) if route.vertex else model_resource(model))
        except ApiError as error:
            return self._error_reply(error, received_key(headers, query))

    def _handle_batch(
        self, route: BatchRoute, headers: dict[str, str], query: dict[str, list[str]], body: bytes
    ) -> Reply | None:
        try:
            if route.needs_key:
                self._check_key(headers, query, vertex=False)
            return self._batches.answer(route, headers, query, body)
        except ApiError as error:
            return self._error_reply(error, received_key(headers, query))

    def _error_reply(self, error: ApiError, key: str) -> Reply:
        """The error envelope of ``error``; with ``echo_api_key_in_errors``, its message names ``key``."""
        body = error.body()
        if self.echo_api_key_in_errors and key:
            body["error"]["message"] = f"{error.message} (request key: {key})"
        return Reply(error.code, body)

    def _handle_embed(
        self, route: Route, headers: dict[str, str], query: dict[str, list[str]], body: bytes
    ) -> Reply | None:
        try:
            if len(body) > MAX_REQUEST_BYTES:
                # The front end refuses an oversized body before anything else, as the real service does.
                raise invalid_argument(f"Request payload size exceeds the limit: {MAX_REQUEST_BYTES} bytes.")
            self._check_key(headers, query, vertex=route.vertex)
            model = lookup_model(route)
            fault = self._next_queued_fault()
            if fault is not None and fault.drop:
                return None
            if fault is not None and fault.retry_after is not None:
                reply = self._error_reply(fault_error(fault.status, model.name, fault.retry_delay), "")
                return dataclasses.replace(reply, headers=(("Retry-After", fault.retry_after),))
            if fault is not None:
                raise fault_error(fault.status, model.name, fault.retry_delay)
            items = RequestParser(model, route, files=self._batches.files.resolve).parse(
                parse_json_body(body)
            )
            self._refuse_listed_texts(route, items)
            self._maybe_random_fault(model)
            self._spend_quota(model, items)
            reply = Reply(200, embed_response(model, route, items))
            with self._lock:
                self._stats.record_success(model, items)
                corruption = self._corruptions.popleft() if self._corruptions else None
                if corruption is not None:
                    self._stats.corrupted += 1
            log.debug("Embedded %d element(s) with %s", len(items), model.name)
            return reply if corruption is None else corrupt(reply, corruption)
        except ApiError as error:
            log.debug("Embed call refused with %d %s", error.code, error.status)
            return self._error_reply(error, received_key(headers, query))

    def _check_key(self, headers: dict[str, str], query: dict[str, list[str]], *, vertex: bool) -> None:
        key = received_key(headers, query)
        if not key:
            raise missing_key_error(vertex=vertex)
        if key != self.api_key:
            raise invalid_key_error(vertex=vertex)

    def _refuse_listed_texts(self, route: Route, items: list[EmbedItem]) -> None:
        """Raise the 400 of ``refuse_texts`` when an item holds a refused substring."""
        with self._lock:
            refusals = list(self._refusals.items())
        if not refusals:
            return
        for index, item in enumerate(items):
            for text in item.texts:
                for substring, message in refusals:
                    if substring in text:
                        raise invalid_argument(message, _content_field(route, index), message)

    def _refusal_for(self, texts: list[str]) -> str | None:
        """The ``refuse_texts`` message for an element holding ``texts``, or ``None``."""
        with self._lock:
            refusals = list(self._refusals.items())
        return next((message for substring, message in refusals for text in texts if substring in text), None)

    def _record_batch_success(self, model: EmbeddingModel, items: list[EmbedItem]) -> None:
        with self._lock:
            self._stats.record_success(model, items)

    def _next_queued_fault(self) -> Fault | None:
        with self._lock:
            return self._faults.popleft() if self._faults else None

    def _maybe_random_fault(self, model: EmbeddingModel) -> None:
        with self._lock:
            if self.fault_rate <= 0 or not self.fault_statuses or self._random.random() >= self.fault_rate:
                return
            status = self._random.choice(self.fault_statuses)
        raise fault_error(status, model.name, 1.0 if status == 429 else None)

    def _spend_quota(self, model: EmbeddingModel, items: list[EmbedItem]) -> None:
        """Refuse with 429 when a quota is full; otherwise count the call (refused calls are not counted)."""
        with self._lock:
            self._quotas.spend(
                model.name,
                now=time.monotonic(),
                request_cost=float(len(items)) if self.quota_counts_texts else 1.0,
                token_cost=float(sum(item.total_tokens for item in items)),
                window_seconds=self.quota_window_seconds,
                requests_per_minute=self.requests_per_minute,
                tokens_per_minute=self.tokens_per_minute,
                requests_per_day=self.requests_per_day,
            )


def _content_field(route: Route, index: int) -> str:
    """The field path of element ``index``'s content on ``route``, as a ``BadRequest`` names it."""
    if route.method == "embedContent":
        return "content"
    if route.method == "predict":
        return f"instances[{index}].content"
    return f"requests[{index}].content"


def _validate_knobs(knobs: dict[str, Any]) -> None:
    for name in ("latency_seconds", "requests_per_minute", "tokens_per_minute", "requests_per_day"):
        value = knobs.get(name)
        if value is not None and value < 0:
            raise ValueError(f"{name} must not be negative, got {value}")
    if "quota_window_seconds" in knobs and not knobs["quota_window_seconds"] > 0:
        raise ValueError(f"quota_window_seconds must be positive, got {knobs['quota_window_seconds']}")
    if "fault_rate" in knobs and not 0.0 <= knobs["fault_rate"] <= 1.0:
        raise ValueError(f"fault_rate must be within [0, 1], got {knobs['fault_rate']}")
    for status in knobs.get("fault_statuses", ()):
        if status not in SUPPORTED_FAULT_STATUSES:
            raise ValueError(f"fault status must be one of {SUPPORTED_FAULT_STATUSES}, got {status}")
