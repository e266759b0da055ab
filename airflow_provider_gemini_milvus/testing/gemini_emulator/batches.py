"""
The Batch API routes ``client.batches`` uses for embedding jobs, and the Files API routes of its file jobs.

Written against the SDK's captured requests (``tests/testing/gemini_emulator/batch_wire.py``):

* ``POST /{ver}/models/{model}:asyncBatchEmbedContent`` with ``{"batch": {"displayName"?, "inputConfig":
  {"requests": {"requests": [{"request": {content, taskType, title, outputDimensionality}}]}}}}`` (inlined)
  or ``{"batch": {"inputConfig": {"file_name": "files/x"}}}`` (``fileName`` accepted too) creates a job;
* ``GET /{ver}/batches/{id}``, ``POST /{ver}/batches/{id}:cancel``, and
  ``GET /{ver}/batches?pageSize&pageToken`` (answering ``{"operations", "nextPageToken"}``);
* the Files API's upload, get, download and delete routes, answered by :class:`~.files.FileStore` (see
  :mod:`.files`).

A job is an operation ``{"name": "batches/..", "metadata": {"state": "BATCH_STATE_..", "output"?, ..},
"done"?, "response"?, "error"?}``. The SDK reads ``metadata`` only (the operation's ``error`` is not mapped
for the Gemini API), so results go in ``metadata.output`` and, for other clients, in ``response`` too.

**States.** A job is created ``PENDING``; each ``get`` is a poll: it stays ``PENDING`` for
``pending_polls`` polls, then ``RUNNING`` for ``running_polls`` more (and at least ``running_seconds``
after creation), then ends ``SUCCEEDED``, or ``FAILED`` / ``EXPIRED`` when :meth:`BatchService.fail_next`
/ :meth:`BatchService.expire_next` marked it at creation. ``:cancel`` ends a job that has not ended as
``CANCELLED``. With the default knobs the first ``get`` finds the job ``SUCCEEDED``.
:meth:`BatchService.fail_next_calls` answers the next calls with a 429 or 5xx, as a flaky service would;
:meth:`BatchService.lose_next_answers` does a call and then drops the connection (the answer is lost);
:meth:`BatchService.spoil_next_results` makes a job succeed with unusable results; :meth:`BatchService.forget`
purges a job (404 from then on).

**Results.** Each request of a successful job is embedded exactly as the synchronous routes would embed it
(same vectors for the same text, title, model, dimension and task type). A request the synchronous route
would refuse (a bad field, a text too long, a text matching ``GeminiEmulator.refuse_texts``) gets a
per-request ``{"error": {"code": 3, "message"}}`` instead: the job still succeeds, partially. Inlined jobs
answer in ``metadata.output.inlinedResponses.inlinedResponses`` in request order; file jobs write
``{"key", "response": {"tokenCount", "embedding": {"values"}}}`` (or ``{"key", "error"}``) lines to a
generated file named in ``metadata.output.responsesFile``. When a job succeeds, its embedded elements are
counted in the emulator's stats as one successful call (``texts``, ``embedded_texts``, ``tokens``...).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_gemini_milvus.gemini.models import MODELS, EmbeddingModel
from airflow_provider_gemini_milvus.testing.gemini_emulator.errors import (
    SUPPORTED_FAULT_STATUSES,
    ApiError,
    fault_error,
    invalid_argument,
)
from airflow_provider_gemini_milvus.testing.gemini_emulator.files import (
    UPLOAD_SESSION_PREFIX,
    FileStore,
    timestamp,
)
from airflow_provider_gemini_milvus.testing.gemini_emulator.protocol import (
    EmbedItem,
    Reply,
    RequestParser,
    Route,
    parse_json_body,
)
from airflow_provider_gemini_milvus.testing.gemini_emulator.vectors import encode_json, vector_json

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "ENDED_STATES",
    "SPOIL_KINDS",
    "BatchJobInfo",
    "BatchRoute",
    "BatchService",
    "match_batch_route",
]

PENDING = "BATCH_STATE_PENDING"
RUNNING = "BATCH_STATE_RUNNING"
SUCCEEDED = "BATCH_STATE_SUCCEEDED"
FAILED = "BATCH_STATE_FAILED"
CANCELLED = "BATCH_STATE_CANCELLED"
EXPIRED = "BATCH_STATE_EXPIRED"
#: States a job never leaves.
ENDED_STATES = frozenset({SUCCEEDED, FAILED, CANCELLED, EXPIRED})

#: google.rpc codes of per-request and per-job errors.
_INVALID_ARGUMENT, _CANCELLED, _DEADLINE_EXCEEDED, _INTERNAL = 3, 1, 4, 13
_FAILED_JOB_MESSAGE = "Batch job failed: an internal error occurred while processing the batch."
_EXPIRED_JOB_MESSAGE = "Batch job expired: it did not finish within the 24-hour window."
_CANCELLED_JOB_MESSAGE = "Batch job was cancelled."
_TYPE_PREFIX = "type.googleapis.com/google.ai.generativelanguage.v1main."

_VERSION = r"(?P<version>v\d+(?:alpha|beta)?\d*)"
_ROUTES = (
    ("POST", re.compile(rf"^/{_VERSION}/models/(?P<model>[^/:]+):asyncBatchEmbedContent$"), "create"),
    ("GET", re.compile(rf"^/{_VERSION}/batches/(?P<id>[^/:]+)$"), "get"),
    ("POST", re.compile(rf"^/{_VERSION}/batches/(?P<id>[^/:]+):cancel$"), "cancel"),
    ("GET", re.compile(rf"^/{_VERSION}/batches$"), "list"),
    ("POST", re.compile(rf"^/upload/{_VERSION}/files$"), "upload_start"),
    ("POST", re.compile(rf"^{UPLOAD_SESSION_PREFIX}(?P<id>[^/]+)$"), "upload_bytes"),
    ("GET", re.compile(rf"^/{_VERSION}/files/(?P<id>[^/:]+):download$"), "download"),
    ("GET", re.compile(rf"^/{_VERSION}/files/(?P<id>[^/:]+)$"), "get_file"),
    ("DELETE", re.compile(rf"^/{_VERSION}/files/(?P<id>[^/:]+)$"), "delete_file"),
)
#: Ways :meth:`BatchService.spoil_next_results` can spoil a job's results.
SPOIL_KINDS = ("nan", "short", "missing", "token_count")


@dataclass(frozen=True)
class BatchRoute:
    """A matched batch or file URL."""

    kind: str  # create, get, cancel, list, upload_start, upload_bytes, download, get_file, delete_file
    version: str = ""
    model: str = ""
    resource_id: str = ""

    @property
    def needs_key(self) -> bool:
        """The upload session URL is a capability: the SDK sends the bytes there without the key."""
        return self.kind != "upload_bytes"


def match_batch_route(method: str, path: str) -> BatchRoute | None:
    """The batch route of ``method`` on ``path``, or ``None`` when it is not one."""
    for route_method, pattern, kind in _ROUTES:
        match = pattern.match(path) if route_method == method else None
        if match:
            groups = match.groupdict()
            return BatchRoute(
                kind=kind,
                version=groups.get("version") or "",
                model=urllib.parse.unquote(groups.get("model") or ""),
                resource_id=groups.get("id") or "",
            )
    return None


@dataclass(frozen=True)
class BatchJobInfo:
    """
    What a test can see of one job (:meth:`BatchService.jobs`).

    :param name: ``batches/...``.
    :param model: the model name.
    :param state: ``BATCH_STATE_...``.
    :param source: ``inlined`` or ``file``.
    :param texts: the texts of its requests, in request order.
    :param polls: ``get`` calls made on it.
    :param display_name: the display name it was created with.
    """

    name: str
    model: str
    state: str
    source: str
    texts: tuple[str, ...]
    polls: int
    display_name: str | None = None


@dataclass
class _Request:
    key: str | None
    item: EmbedItem | None
    error: str | None  # why the synchronous route would have refused it


@dataclass
class _Job:
    name: str
    model: EmbeddingModel
    display_name: str | None
    source: str
    requests: list[_Request]
    pending_polls: int
    running_polls: int
    running_until: float
    outcome: str
    created: str
    state: str = PENDING
    updated: str = ""
    ended: str | None = None
    polls: int = 0
    output: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    counts: dict[str, int] = field(default_factory=dict)
    spoil: str | None = None


class BatchService:
    """
    The jobs and files of one emulator, and the knobs that shape them (see the module docstring).

    :param record_success: counts a finished job's embedded elements in the emulator's stats.
    :param refusal_for: the ``refuse_texts`` message for an element's texts, or ``None``.
    :param base_url: the emulator's address (for upload URLs).
    """

    def __init__(
        self,
        record_success: Callable[[EmbeddingModel, list[EmbedItem]], None],
        refusal_for: Callable[[list[str]], str | None],
        base_url: Callable[[], str],
    ) -> None:
        self._record_success = record_success
        self._refusal_for = refusal_for
        self._base_url = base_url
        self._lock = threading.Lock()
        self._jobs: dict[str, _Job] = {}
        self._ids = itertools.count(1)
        self.files = FileStore(self._ids, base_url)
        self._outcomes: list[str] = []
        self._call_faults: list[tuple[int, str | None]] = []
        self._lost_answers: dict[str, int] = {}
        self._spoils: list[str] = []
        self.pending_polls = 0
        self.running_polls = 0
        self.running_seconds = 0.0

    # -- knobs ------------------------------------------------------------------------------------------

    def configure(
        self,
        *,
        pending_polls: int | None = None,
        running_polls: int | None = None,
        running_seconds: float | None = None,
    ) -> BatchService:
        """
        Make jobs created from now on slow; returns ``self``.

        :param pending_polls: ``get`` calls a new job answers ``PENDING``.
        :param running_polls: further ``get`` calls it answers ``RUNNING``.
        :param running_seconds: it also stays ``RUNNING`` until this long after its creation.
        """
        for name, value in (
            ("pending_polls", pending_polls),
            ("running_polls", running_polls),
            ("running_seconds", running_seconds),
        ):
            if value is not None and value < 0:
                raise ValueError(f"{name} must not be negative, got {value}")
        with self._lock:
            if pending_polls is not None:
                self.pending_polls = pending_polls
            if running_polls is not None:
                self.running_polls = running_polls
            if running_seconds is not None:
                self.running_seconds = running_seconds
        return self

    def fail_next(self, count: int = 1) -> None:
        """The next ``count`` jobs created end ``FAILED`` (an ``INTERNAL`` error) instead of succeeding."""
        with self._lock:
            self._outcomes.extend([FAILED] * count)

    def expire_next(self, count: int = 1) -> None:
        """The next ``count`` jobs created end ``EXPIRED`` instead of succeeding."""
        with self._lock:
            self._outcomes.extend([EXPIRED] * count)

    def fail_next_calls(self, count: int = 1, status: int = 503, kind: str | None = None) -> None:
        """
        Answer the next ``count`` batch and file calls with ``status``, before doing anything.

        :param count: how many calls fail.
        :param status: one of ``SUPPORTED_FAULT_STATUSES`` (429, 500, 503, 504, ...).
        :param kind: only calls of this route (``create``, ``get``, ``list``, ``cancel``, ``download``...);
            ``None``: any route.
        """
        if status not in SUPPORTED_FAULT_STATUSES:
            raise ValueError(f"status must be one of {SUPPORTED_FAULT_STATUSES}, got {status}")
        if kind is not None and kind not in {kind for _, _, kind in _ROUTES}:
            raise ValueError(f"kind must be one of the batch routes, got {kind!r}")
        with self._lock:
            self._call_faults.extend([(status, kind)] * count)

    def lose_next_answers(self, kind: str = "create", count: int = 1) -> None:
        """
        Do the next ``count`` calls of route ``kind`` (``create``, ``get``, ``cancel``, ``delete_file``...),
        then close the connection without answering, as a dropped connection or a client timeout loses an
        answer: a lost ``create`` has created (and will bill) the job all the same.
        """
        if kind not in {kind for _, _, kind in _ROUTES}:
            raise ValueError(f"kind must be one of the batch routes, got {kind!r}")
        with self._lock:
            self._lost_answers[kind] = self._lost_answers.get(kind, 0) + count

    def spoil_next_results(self, kind: str = "nan", count: int = 1) -> None:
        """
        The next ``count`` jobs created succeed with spoiled results: ``nan`` puts a NaN in the first
        result's vector, ``short`` drops its last value, ``missing`` leaves the last result out, and
        ``token_count`` (file jobs) answers a non-numeric ``tokenCount`` for the first result.
        """
        if kind not in SPOIL_KINDS:
            raise ValueError(f"kind must be one of {SPOIL_KINDS}, got {kind!r}")
        with self._lock:
            self._spoils.extend([kind] * count)

    def forget(self, name: str) -> None:
        """Purge the job ``name``: the service answers 404 for it from now on (as for another key's job)."""
        with self._lock:
            self._jobs.pop(name, None)

    def jobs(self) -> list[BatchJobInfo]:
        """Every job created, in creation order."""
        with self._lock:
            return [
                BatchJobInfo(
                    name=job.name,
                    model=job.model.name,
                    state=job.state,
                    source=job.source,
                    texts=tuple(
                        text for request in job.requests if request.item for text in request.item.texts
                    ),
                    polls=job.polls,
                    display_name=job.display_name,
                )
                for job in self._jobs.values()
            ]

    # -- requests ---------------------------------------------------------------------------------------

    def answer(
        self, route: BatchRoute, headers: dict[str, str], query: dict[str, list[str]], body: bytes
    ) -> Reply | None:
        """
        Answer one batch or file request (the key has been checked); raises :class:`ApiError`; ``None``
        means: drop the connection (the call was done, its answer is lost).
        """
        with self._lock:
            fault = next((status for status, kind in self._call_faults if kind in (None, route.kind)), None)
            if fault is not None:
                self._call_faults.remove(next(f for f in self._call_faults if f[1] in (None, route.kind)))
            lose = self._lost_answers.get(route.kind, 0) > 0
            if lose and fault is None:
                self._lost_answers[route.kind] -= 1
        if fault is not None:
            raise fault_error(fault)
        reply = self._answer(route, headers, query, body)
        return None if lose else reply

    def _answer(
        self, route: BatchRoute, headers: dict[str, str], query: dict[str, list[str]], body: bytes
    ) -> Reply:
        if route.kind == "create":
            return Reply(200, self._create(route, parse_json_body(body)))
        if route.kind == "get":
            return Reply(200, self._poll(route.resource_id))
        if route.kind == "cancel":
            return Reply(200, self._cancel(route.resource_id))
        if route.kind == "list":
            return Reply(200, self._list(query))
        if route.kind == "upload_start":
            return self.files.start_upload(headers, parse_json_body(body))
        if route.kind == "upload_bytes":
            return self.files.receive_upload(route.resource_id, headers, body)
        if route.kind == "delete_file":
            return self.files.delete(route.resource_id)
        if route.kind == "get_file":
            return self.files.get_resource(route.resource_id)
        return self.files.download(route.resource_id)

    def _create(self, route: BatchRoute, body: dict[str, Any]) -> dict[str, Any]:
        model = MODELS.get(route.model)
        if model is None or model.retired_on is not None or model.vertex_only:
            raise ApiError(404, f"models/{route.model} is not found for API version {route.version}.")
        batch = body.get("batch")
        if not isinstance(batch, dict):
            raise invalid_argument("* AsyncBatchEmbedContentRequest.batch: batch is required.\n", "batch")
        input_config = batch.get("inputConfig") or batch.get("input_config")
        if not isinstance(input_config, dict):
            raise invalid_argument(
                "* EmbedContentBatch.input_config: input_config is required.\n", "input_config"
            )
        parser = RequestParser(
            model,
            Route(kind="embed", version=route.version, model=model.name, method="embedContent"),
            files=self.files.resolve,
        )
        file_name = input_config.get("fileName") or input_config.get("file_name")
        inlined = input_config.get("requests")
        if (file_name is None) == (inlined is None):
            raise invalid_argument(
                "* EmbedContentBatch.input_config: exactly one of file_name and requests must be set.\n",
                "input_config",
            )
        if file_name is not None:
            requests, source = self._file_requests(str(file_name), parser), "file"
        else:
            requests, source = self._inlined_requests(inlined, parser), "inlined"
        if not requests:
            raise invalid_argument(
                "* EmbedContentBatch.input_config: the batch has no requests.\n", "input_config"
            )
        now = timestamp()
        with self._lock:
            name = (
                f"batches/emu{next(self._ids):04d}{hashlib.blake2b(now.encode(), digest_size=4).hexdigest()}"
            )
            job = _Job(
                name=name,
                model=model,
                display_name=batch.get("displayName") or batch.get("display_name"),
                source=source,
                requests=requests,
                pending_polls=self.pending_polls,
                running_polls=self.running_polls,
                running_until=time.monotonic() + self.running_seconds,
                outcome=self._outcomes.pop(0) if self._outcomes else SUCCEEDED,
                created=now,
                updated=now,
                spoil=self._spoils.pop(0) if self._spoils else None,
            )
            self._jobs[name] = job
            return _operation(job)

    def _inlined_requests(self, inlined: Any, parser: RequestParser) -> list[_Request]:
        elements = inlined.get("requests") if isinstance(inlined, dict) else None
        if not isinstance(elements, list):
            raise invalid_argument(
                "Invalid JSON payload received. Expected a list for 'requests'.", "requests"
            )
        return [self._request(None, element, parser, f"requests[{i}]") for i, element in enumerate(elements)]

    def _file_requests(self, file_name: str, parser: RequestParser) -> list[_Request]:
        file = self.files.get(file_name)
        if file is None:
            raise ApiError(404, f"File {file_name} was not found.")
        requests = []
        for number, line in enumerate(file.data.decode("utf-8", "replace").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                element = json.loads(line)
            except json.JSONDecodeError:
                raise invalid_argument(f"{file_name} line {number} is not JSON.") from None
            if not isinstance(element, dict):
                raise invalid_argument(f"{file_name} line {number} is not a JSON object.")
            key = element.get("key")
            requests.append(
                self._request(None if key is None else str(key), element, parser, f"line {number}")
            )
        return requests

    def _request(self, key: str | None, element: Any, parser: RequestParser, where: str) -> _Request:
        request = element.get("request") if isinstance(element, dict) else None
        if not isinstance(request, dict):
            return _Request(key, None, f"{where}: request is required.")
        try:
            item = parser.parse(request)[0]
        except ApiError as error:
            return _Request(key, None, error.message.strip())
        return _Request(key, item, self._refusal_for(item.texts))

    def _poll(self, resource_id: str) -> dict[str, Any]:
        finished: _Job | None = None
        with self._lock:
            job = self._job(resource_id)
            if job.state not in ENDED_STATES:
                job.polls += 1
                job.updated = timestamp()
                if job.polls <= job.pending_polls:
                    job.state = PENDING
                elif (
                    job.polls <= job.pending_polls + job.running_polls or time.monotonic() < job.running_until
                ):
                    job.state = RUNNING
                else:
                    self._end(job, job.outcome)
                    finished = job if job.state == SUCCEEDED else None
            operation = _operation(job)
        if finished is not None:
            embedded = [
                request.item for request in finished.requests if request.item and request.error is None
            ]
            if embedded:
                self._record_success(finished.model, embedded)
        return operation

    def _cancel(self, resource_id: str) -> dict[str, Any]:
        with self._lock:
            job = self._job(resource_id)
            if job.state in ENDED_STATES:
                raise ApiError(
                    400,
                    f"Batch {job.name} is already in a terminal state ({job.state}).",
                    status="FAILED_PRECONDITION",
                )
            self._end(job, CANCELLED)
        return {}

    def _list(self, query: dict[str, list[str]]) -> dict[str, Any]:
        try:
            page_size = int((query.get("pageSize") or ["50"])[0])
            offset = int((query.get("pageToken") or ["0"])[0] or 0)
        except ValueError:
            raise invalid_argument("Invalid page size or page token.") from None
        page_size = 50 if page_size <= 0 else min(page_size, 1000)
        with self._lock:
            jobs = list(self._jobs.values())[::-1]  # newest first
            page = [_operation(job, with_output=False) for job in jobs[offset : offset + page_size]]
        answer: dict[str, Any] = {"operations": page}
        if offset + page_size < len(jobs):
            answer["nextPageToken"] = str(offset + page_size)
        return answer

    def _job(self, resource_id: str) -> _Job:
        job = self._jobs.get(f"batches/{resource_id}")
        if job is None:
            raise ApiError(404, f"Batch batches/{resource_id} was not found.")
        return job

    def _end(self, job: _Job, state: str) -> None:
        """Move ``job`` to ``state`` for good; a success gets its output (called with the lock held)."""
        job.state = state
        job.ended = job.updated = timestamp()
        if state == SUCCEEDED:
            job.output = self._output(job)
        else:
            code, message = {
                FAILED: (_INTERNAL, _FAILED_JOB_MESSAGE),
                EXPIRED: (_DEADLINE_EXCEEDED, _EXPIRED_JOB_MESSAGE),
                CANCELLED: (_CANCELLED, _CANCELLED_JOB_MESSAGE),
            }[state]
            job.error = {"code": code, "message": message}

    def _output(self, job: _Job) -> dict[str, Any]:
        answers = [_answer(job.model, request) for request in job.requests]
        failed = sum(1 for answer in answers if "error" in answer)
        job.counts = {"successful": len(answers) - failed, "failed": failed}
        keyed = [
            {"key": request.key, **answer} if request.key is not None else answer
            for request, answer in zip(job.requests, answers, strict=True)
        ]
        if job.spoil is not None:
            keyed = _spoiled(keyed, job.spoil)
        if job.source == "inlined":
            return {"inlinedResponses": {"inlinedResponses": keyed}}
        lines = [encode_json(answer) for answer in keyed]
        name = f"files/{job.name.split('/', 1)[1]}-results"
        self.files.add_generated(name, "application/jsonl", ("\n".join(lines) + "\n").encode(), job.updated)
        return {"responsesFile": name}


def _spoiled(answers: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """``answers`` with the first one spoiled (``missing``: the last one left out)."""
    if kind == "missing":
        return answers[:-1]
    response = answers[0].get("response")
    if response is None:
        return answers
    values = json.loads(response["embedding"]["values"])
    if kind == "nan":
        values[len(values) // 2] = math.nan
    elif kind == "short":
        values = values[:-1]
    else:
        response["tokenCount"] = "many"
    if kind != "token_count":
        response["embedding"]["values"] = values
    return answers


def _answer(model: EmbeddingModel, request: _Request) -> dict[str, Any]:
    """One request's result: the same vector the synchronous route answers, or its error."""
    if request.item is None or request.error is not None:
        return {"error": {"code": _INVALID_ARGUMENT, "message": request.error or "Invalid request."}}
    item = request.item
    values = vector_json(model.name, item.task_type, item.title, item.parts, item.output_dimensionality)
    return {"response": {"embedding": {"values": values}, "tokenCount": str(item.total_tokens)}}


def _operation(job: _Job, *, with_output: bool = True) -> dict[str, Any]:
    """The operation resource of ``job`` (``list`` leaves the output out, as the real service does)."""
    total = len(job.requests)
    metadata: dict[str, Any] = {
        "@type": f"{_TYPE_PREFIX}EmbedContentBatch",
        "model": f"models/{job.model.name}",
        "name": job.name,
        "state": job.state,
        "createTime": job.created,
        "updateTime": job.updated,
        "batchStats": {
            "requestCount": str(total),
            "successfulRequestCount": str(job.counts.get("successful", 0)),
            "failedRequestCount": str(job.counts.get("failed", 0)),
            "pendingRequestCount": str(total - sum(job.counts.values())),
        },
    }
    if job.display_name:
        metadata["displayName"] = job.display_name
    if job.ended:
        metadata["endTime"] = job.ended
    operation: dict[str, Any] = {"name": job.name, "metadata": metadata}
    if job.state in ENDED_STATES:
        operation["done"] = True
    if job.output is not None and with_output:
        metadata["output"] = job.output
        operation["response"] = {"@type": f"{_TYPE_PREFIX}EmbedContentBatchOutput", **job.output}
    if job.error is not None:
        operation["error"] = job.error
    return operation
