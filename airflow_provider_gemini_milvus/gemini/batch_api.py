"""
Gemini Batch API for embeddings: submit a job, read its state, cancel it, read its results in text order.

A batch job embeds at half the list price with a turnaround of up to 24 hours. Small inputs go inlined in
the create call; larger ones (more than :data:`INLINE_MAX_BYTES` of request JSON) as an uploaded JSONL file
whose lines are keyed by the text's position. Results come back inlined (in request order) or as a
generated JSONL file (keyed), and are handed over as L2-normalised float32 rows, like
:meth:`GeminiHook.embed_with_stats <airflow_provider_gemini_milvus.hooks.gemini.GeminiHook.embed_with_stats>`
hands them over; a request the job could not embed is a :class:`RefusedText` naming its position.

The functions take a :class:`~airflow_provider_gemini_milvus.gemini.sdk_calls.GeminiConnection`: a
connection's settings, its SDK client and a logger, which
:class:`~airflow_provider_gemini_milvus.hooks.gemini.GeminiHook` is. Batch mode is Gemini-API only: a Vertex
AI connection is refused before anything is sent.
Errors never carry the API key and are raised without a cause (the SDK's exception may hold the request).

What the SDK sends and parses is in ``tests/testing/gemini_emulator/batch_wire.py``: the job's state and
results come from the SDK's ``BatchJob``; the job's own error is read from the raw operation because the
SDK does not map it for the Gemini API (``batches._BatchJob_from_mldev`` reads ``metadata`` only).

**Retries.** Every call gets the connection's retry policy (``max_retries``, backoff, the server's retry
delay) on 429, 5xx, timeouts and dropped connections, as the hook's embed requests do. Creating a job is
not idempotent: it is retried only with a ``display_name``, after looking that name up with
:func:`find_batch_jobs`, so a create whose answer was lost is found instead of paid twice.
"""

from __future__ import annotations

import functools
import json
import math
import os
import tempfile
import time
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from airflow_provider_gemini_milvus.exceptions import GeminiAPIError
from airflow_provider_gemini_milvus.gemini.files_api import delete_file
from airflow_provider_gemini_milvus.gemini.requests import (
    EmbedRequest,
    PlannedRequest,
    RefusedText,
    UnusableResponse,
    checked_rows,
    scrubbed,
    validated_inputs,
    validated_request,
)
from airflow_provider_gemini_milvus.gemini.sdk_calls import (
    api_error,
    asdk_call,
    log_retry,
    retry_wait,
    sdk_call,
    sdk_errors,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from airflow_provider_gemini_milvus.gemini.sdk_calls import GeminiConnection

__all__ = [
    "ENDED_STATES",
    "INLINE_MAX_BYTES",
    "MAX_LISTED_JOBS",
    "RESUBMIT_STATES",
    "BatchJobStatus",
    "BatchResults",
    "acancel_batch_job",
    "aget_batch_job",
    "cancel_batch_job",
    "check_batch_supported",
    "find_batch_jobs",
    "get_batch_job",
    "read_batch_results",
    "submit_embedding_batch",
]

#: Request JSON up to this size goes inlined in the create call (Google asks to keep inlined batches
#: under 20 MB); more goes as an uploaded JSONL file (up to 2 GB).
INLINE_MAX_BYTES = 4 * 1024 * 1024
#: Rows handed to ``on_result`` at a time while reading results.
RESULT_CHUNK_ROWS = 1000
#: Job states a job never leaves (the SDK's ``JOB_STATE_`` prefix dropped).
ENDED_STATES = frozenset({"SUCCEEDED", "FAILED", "CANCELLED", "EXPIRED"})
#: Ended states whose job will never give results: a new job is needed.
RESUBMIT_STATES = frozenset({"FAILED", "CANCELLED", "EXPIRED"})
#: :func:`find_batch_jobs` looks at most at this many jobs (newest first), 100 a page.
MAX_LISTED_JOBS = 5000
_LIST_PAGE_SIZE = 100
_STATE_PREFIXES = ("JOB_STATE_", "BATCH_STATE_")


@dataclass(frozen=True)
class BatchJobStatus:
    """
    Where a batch job stands.

    :param name: ``batches/...``.
    :param state: ``PENDING``, ``RUNNING``, ``SUCCEEDED``, ``FAILED``, ``CANCELLED``, ``EXPIRED`` (or
        another state the service reports).
    :param error: the job's own error (``code: message``) once it ended without success, key scrubbed.
    :param display_name: the display name it was created with.
    :param request_count: how many requests it holds, when the service says.
    """

    name: str
    state: str
    error: str | None = None
    display_name: str | None = None
    request_count: int | None = None

    @property
    def done(self) -> bool:
        return self.state in ENDED_STATES

    @property
    def succeeded(self) -> bool:
        return self.state == "SUCCEEDED"


@dataclass(frozen=True)
class BatchResults:
    """
    What reading a job's results came to.

    :param refused: the requests the job could not embed, by position, with the service's reason.
    :param reported_tokens: the sum of the ``token_count`` the service reported, or ``None`` when it did not.
    :param unusable: the requests whose result cannot be used (missing, repeated, NaN, wrong length...), by
        position, with why: sending them again may well succeed, unlike a refusal.
    :param result_file: the Files API file the results came in (``files/...``), or ``None`` when inlined.
    """

    refused: tuple[RefusedText, ...]
    reported_tokens: int | None
    unusable: tuple[RefusedText, ...] = ()
    result_file: str | None = None


def check_batch_supported(hook: GeminiConnection) -> None:
    """
    Refuse batch mode on a Vertex AI connection, before anything is sent.

    :raises ValueError: naming the connection.
    """
    if hook.settings.vertexai:
        raise ValueError(
            f"batch mode needs the Gemini API, but connection {hook.gemini_conn_id!r} is set to Vertex AI "
            "(extra vertexai=true), which has no embedding Batch API; use deferrable=False, or a Gemini API "
            "connection (an API key, no vertexai extra)"
        )


def submit_embedding_batch(
    hook: GeminiConnection,
    texts: Sequence[str],
    *,
    model: str,
    task_type: str = "RETRIEVAL_DOCUMENT",
    output_dimensionality: int | None = None,
    titles: Sequence[str | None] | None = None,
    display_name: str | None = None,
    inline_max_bytes: int | None = None,
    on_upload: Callable[[str], None] | None = None,
) -> str:
    """
    Create an embedding batch job for ``texts`` and return its name (``batches/...``).

    Input is checked as :meth:`GeminiHook.embed_with_stats` checks it, before anything is sent. With a
    ``display_name``, a create that failed in a way that may have created the job anyway (a 5xx, a timeout,
    a dropped connection) is followed by a look-up of that name: a job found (not failed) is the one
    created, and only when none is found is the create sent again, under the connection's retry policy.

    :param hook: the hook of the ``gemini`` connection (Gemini API, not Vertex AI).
    :param texts: the texts, in the order results will be read.
    :param model: a Gemini embedding model.
    :param task_type: one of the Gemini task types.
    :param output_dimensionality: vector length; ``None`` for the model default.
    :param titles: one title (or ``None``) per text; ``RETRIEVAL_DOCUMENT`` only.
    :param display_name: the job's display name; unique to what is submitted, it makes the job findable.
    :param inline_max_bytes: request JSON up to this size goes inlined, more as an uploaded JSONL file
        (default :data:`INLINE_MAX_BYTES`).
    :param on_upload: called with the uploaded request file's name (``files/...``) before the job is
        created, so the caller can delete it once done (see :func:`delete_batch_file`).
    :raises ValueError: a Vertex AI connection or bad input, naming ``texts[i]``; nothing was sent.
    :raises GeminiAPIError: the upload or the create call failed (the key scrubbed from the message).
    """
    check_batch_supported(hook)
    request = validated_request(model, task_type, output_dimensionality, vertexai=False)
    text_list, title_list, _ = validated_inputs(texts, titles, request)
    bodies = [_request_body(text, title, request) for text, title in _with_titles(text_list, title_list)]
    size = sum(len(json.dumps(body)) for body in bodies)
    from google.genai import types

    config = types.CreateEmbeddingsBatchJobConfig(display_name=display_name)
    uploaded: str | None = None
    if size <= (INLINE_MAX_BYTES if inline_max_bytes is None else inline_max_bytes):
        src = types.EmbeddingsBatchJobSource(inlined_requests=_inlined(text_list, title_list, request))
        if title_list is not None and len(set(title_list)) > 1:
            # The SDK copies one config onto every request; per-text titles replace the list it built.
            requests = [{"request": body} for body in bodies]
            config.http_options = types.HttpOptions(
                extra_body={"batch": {"inputConfig": {"requests": {"requests": requests}}}}
            )
        source = "inlined"
    else:
        uploaded = _upload_requests(hook, bodies)
        if on_upload is not None:
            on_upload(uploaded)
        src = types.EmbeddingsBatchJobSource(file_name=uploaded)
        source = "an uploaded JSONL file"
    client = hook.get_conn()

    def create() -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # create_embeddings is marked experimental by the SDK
            return client.batches.create_embeddings(model=request.model.name, src=src, config=config)

    what = f"creating a batch job of {len(text_list)} texts"
    policy = hook.settings.backoff
    attempt = 0
    while True:
        attempt += 1
        try:
            job = create()
            break
        except sdk_errors() as err:
            failure, wait = api_error(hook, what, err), retry_wait(hook, err, attempt)
        if display_name is not None and wait is not None:
            found = _created_job(hook, display_name)
            if found is not None:
                hook.log.warning(
                    "%s failed (%s), but the job was created: found %s by its display name",
                    what.capitalize(),
                    failure,
                    found,
                )
                return found
        if display_name is None or wait is None or attempt > policy.max_retries:
            if uploaded is not None:
                delete_file(hook, uploaded)
            raise failure
        log_retry(hook, failure, attempt, wait)
        time.sleep(wait)
    if not job.name:
        raise GeminiAPIError("Gemini answered the batch job creation without a job name")
    hook.log.info(
        "Submitted Gemini batch job %s: %d texts with %s (%s, dim %d), %s",
        job.name,
        len(text_list),
        request.model.name,
        request.task_type,
        request.dim,
        source,
    )
    return str(job.name)


def _created_job(hook: GeminiConnection, display_name: str) -> str | None:
    """The newest job named ``display_name`` that has not failed, or ``None``."""
    for job in find_batch_jobs(hook, display_name):
        if job.display_name == display_name and job.state not in RESUBMIT_STATES:
            return job.name
    return None


def find_batch_jobs(hook: GeminiConnection, display_name_prefix: str) -> list[BatchJobStatus]:
    """
    The jobs of the connection's project whose display name starts with ``display_name_prefix``, newest
    first as the service lists them (at most :data:`MAX_LISTED_JOBS` are looked at).

    :raises GeminiAPIError: listing failed after the retries.
    """
    check_batch_supported(hook)
    client = hook.get_conn()
    found: list[BatchJobStatus] = []
    token: str | None = None
    for _ in range(0, MAX_LISTED_JOBS, _LIST_PAGE_SIZE):
        from google.genai import types

        config = types.ListBatchJobsConfig(page_size=_LIST_PAGE_SIZE, page_token=token)
        pager = sdk_call(hook, "listing batch jobs", functools.partial(client.batches.list, config=config))
        for job in pager.page:
            if job.name and (job.display_name or "").startswith(display_name_prefix):
                found.append(BatchJobStatus(job.name, _short_state(job.state), display_name=job.display_name))
        token = pager.config.get("page_token")
        if not token:
            break
    return found


def get_batch_job(hook: GeminiConnection, name: str) -> BatchJobStatus:
    """
    Where the job ``name`` stands: its state, display name and request count, and its own error when it
    ended without success.

    :raises GeminiAPIError: the job could not be read (``http_status`` 404: the service does not know it).
    """
    check_batch_supported(hook)
    client = hook.get_conn()
    path = _job_path(name)
    raw = sdk_call(hook, f"reading batch job {name}", lambda: client._api_client.request("get", path, {}))
    return _status_of(name, raw.body, hook.settings.secrets)


async def aget_batch_job(hook: GeminiConnection, name: str, *, retry: bool = False) -> BatchJobStatus:
    """
    :func:`get_batch_job` for the triggerer's event loop (the SDK's async client).

    :param retry: retry transient failures here (the trigger's poll loop counts them itself).
    """
    client = hook.get_conn()
    path = _job_path(name)
    raw = await asdk_call(
        hook,
        f"reading batch job {name}",
        lambda: client._api_client.async_request("get", path, {}),
        retry=retry,
    )
    return _status_of(name, raw.body, hook.settings.secrets)


def cancel_batch_job(hook: GeminiConnection, name: str) -> bool:
    """
    Cancel the job ``name``; return whether it was still running (a job that has ended stays as it is, and
    a job the service does not know is left alone).

    :raises GeminiAPIError: the cancel call failed for another reason, after the retries.
    """
    check_batch_supported(hook)
    status = _status_or_unknown(hook, name)
    if status is None or status.done:
        return False
    client = hook.get_conn()
    try:
        sdk_call(hook, f"cancelling batch job {name}", lambda: client.batches.cancel(name=name))
    except GeminiAPIError as err:
        # A cancel whose answer was lost and was sent again finds the job ended (400 FAILED_PRECONDITION).
        if err.http_status != 400 or not get_batch_job(hook, name).done:
            raise
    hook.log.info("Cancelled Gemini batch job %s", name)
    return True


async def acancel_batch_job(hook: GeminiConnection, name: str) -> bool:
    """:func:`cancel_batch_job` for the triggerer's event loop, with the same retries."""
    try:
        status = await aget_batch_job(hook, name, retry=True)
    except GeminiAPIError as err:
        if err.http_status != 404:
            raise
        hook.log.warning("Gemini does not know batch job %s; nothing to cancel", name)
        return False
    if status.done:
        hook.log.info("Gemini batch job %s already ended %s; nothing to cancel", name, status.state)
        return False
    client = hook.get_conn()
    try:
        await asdk_call(hook, f"cancelling batch job {name}", lambda: client.aio.batches.cancel(name=name))
    except GeminiAPIError as err:
        if err.http_status != 400 or not (await aget_batch_job(hook, name, retry=True)).done:
            raise
    hook.log.info("Cancelled Gemini batch job %s", name)
    return True


def _status_or_unknown(hook: GeminiConnection, name: str) -> BatchJobStatus | None:
    """The job's status; ``None`` (logged) when the service does not know it."""
    try:
        status = get_batch_job(hook, name)
    except GeminiAPIError as err:
        if err.http_status != 404:
            raise
        hook.log.warning("Gemini does not know batch job %s; nothing to cancel", name)
        return None
    if status.done:
        hook.log.info("Gemini batch job %s already ended %s; nothing to cancel", name, status.state)
    return status


def read_batch_results(
    hook: GeminiConnection,
    name: str,
    count: int,
    *,
    dim: int,
    on_result: Callable[[Sequence[int], np.ndarray], None],
) -> BatchResults:
    """
    Hand the vectors of a succeeded job to ``on_result(positions, vectors)``, in chunks, in text order for
    inlined results (file results in the order of the file); return the requests it could not embed, and
    those whose result is unusable (missing, repeated, not a usable vector): no other result is lost to them.

    :param hook: the hook of the job's connection.
    :param name: the job.
    :param count: how many texts were submitted: every position ``0..count-1`` must be answered once.
    :param dim: the vector length asked for.
    :param on_result: called with a list of positions and a float32 array of their L2-normalised rows.
    :raises GeminiAPIError: the job has not succeeded, or reading failed (``http_status`` 404: the job or
        its result file is gone).
    """
    check_batch_supported(hook)
    client = hook.get_conn()
    job = sdk_call(hook, f"reading batch job {name}", lambda: client.batches.get(name=name))
    if _short_state(job.state) != "SUCCEEDED":
        raise GeminiAPIError(f"batch job {name} has not succeeded (state {_short_state(job.state)})")
    dest = job.dest
    if dest is not None and dest.file_name:
        with tempfile.TemporaryDirectory(prefix="gemini-batch-") as folder:
            path = os.path.join(folder, "results.jsonl")
            file_name = dest.file_name
            sdk_call(
                hook,
                f"downloading the results of batch job {name}",
                lambda: client.files.download(file=file_name, destination=path),
            )
            results = _deliver(hook, name, count, dim, _file_results(hook, name, path, count), on_result)
            return BatchResults(results.refused, results.reported_tokens, results.unusable, file_name)
    inlined = list((dest.inlined_embed_content_responses or dest.inlined_responses or []) if dest else [])
    return _deliver(hook, name, count, dim, _inlined_results(inlined), on_result)


# -- what is sent ---------------------------------------------------------------------------------------


def _with_titles(texts: list[str], titles: list[str | None] | None) -> Iterator[tuple[str, str | None]]:
    return zip(texts, titles or [None] * len(texts), strict=True)


def _request_body(text: str, title: str | None, request: EmbedRequest) -> dict[str, Any]:
    """One request as the wire carries it (camelCase, as the SDK writes inlined requests)."""
    body: dict[str, Any] = {"content": {"parts": [{"text": text}], "role": "user"}}
    if request.model.supports_task_type:
        body["taskType"] = request.task_type
        if title is not None:
            body["title"] = title
    if request.output_dimensionality is not None:
        body["outputDimensionality"] = request.output_dimensionality
    return body


def _inlined(texts: list[str], titles: list[str | None] | None, request: EmbedRequest) -> Any:
    from google.genai import types

    config = types.EmbedContentConfig(
        task_type=request.task_type if request.model.supports_task_type else None,
        output_dimensionality=request.output_dimensionality,
    )
    if titles is not None and len(set(titles)) == 1 and request.model.supports_task_type:
        config.title = titles[0]
    contents: Any = [types.Content(parts=[types.Part(text=text)], role="user") for text in texts]
    return types.EmbedContentBatch(contents=contents, config=config)


def _upload_requests(hook: GeminiConnection, bodies: list[dict[str, Any]]) -> str:
    """Upload the requests as JSONL keyed by position; return the file's name (``files/...``)."""
    client = hook.get_conn()
    with tempfile.TemporaryDirectory(prefix="gemini-batch-") as folder:
        path = os.path.join(folder, "requests.jsonl")
        with open(path, "w", encoding="utf-8") as lines:
            for position, body in enumerate(bodies):
                lines.write(json.dumps({"key": str(position), "request": body}, ensure_ascii=False) + "\n")
        uploaded = sdk_call(
            hook,
            f"uploading {len(bodies)} batch requests",
            lambda: client.files.upload(
                file=path, config={"mime_type": "application/jsonl", "display_name": "embedding-requests"}
            ),
        )
    if not uploaded.name:
        raise GeminiAPIError("Gemini answered the upload of the batch requests without a file name")
    hook.log.info("Uploaded %d batch requests as %s", len(bodies), uploaded.name)
    return uploaded.name


# -- what comes back ------------------------------------------------------------------------------------

#: One result: its position, and its values, or its error (``code: message``), and its token count.
_Result = tuple[int, list[float] | None, str | None, int | None]


def _inlined_results(items: list[Any]) -> Iterator[_Result]:
    for position, item in enumerate(items):
        response = getattr(item, "response", None)
        embedding = getattr(response, "embedding", None)
        values = getattr(embedding, "values", None)
        tokens = getattr(response, "token_count", None)
        yield position, values, _error_text(getattr(item, "error", None)), tokens


def _file_results(hook: GeminiConnection, name: str, path: str, count: int) -> Iterator[_Result]:
    """
    The results of a result file. A line without a usable key, or naming a position out of range, is
    skipped (logged): its position, if any, is then missing, and reported unusable.
    """
    with open(path, encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                result = json.loads(line)
                position = int(result["key"])
            except (ValueError, KeyError, TypeError, RecursionError):
                hook.log.warning(
                    "Line %d of the results of batch job %s has no usable key; skipped", number, name
                )
                continue
            if not 0 <= position < count:
                hook.log.warning(
                    "Line %d of the results of batch job %s names a position out of range; skipped",
                    number,
                    name,
                )
                continue
            response = result.get("response") or {}
            response = response if isinstance(response, dict) else {}
            embedding = response.get("embedding") or {}
            values = embedding.get("values") if isinstance(embedding, dict) else None
            error = result.get("error")
            error_text = _error_text(error) if error else None
            yield position, values, error_text, _token_count(response.get("tokenCount"))


def _token_count(value: Any) -> int | None:
    """A reported token count, or ``None`` when it is missing or not a whole number (it is only counted)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return int(number) if math.isfinite(number) and number >= 0 else None


class _Values:
    """What :func:`checked_rows` reads of an embedding."""

    __slots__ = ("values",)

    def __init__(self, values: list[float] | None) -> None:
        self.values = values


def _deliver(
    hook: GeminiConnection,
    name: str,
    count: int,
    dim: int,
    results: Iterator[_Result],
    on_result: Callable[[Sequence[int], np.ndarray], None],
) -> BatchResults:
    seen = np.zeros(count, dtype=bool)
    refused: list[RefusedText] = []
    unusable: dict[int, str] = {}
    positions: list[int] = []
    rows: list[np.ndarray] = []
    reported: int | None = None
    secrets = hook.settings.secrets
    for position, values, error, tokens in results:
        if position >= count:
            continue
        if seen[position]:
            unusable[position] = "answered more than once"  # which answer is right cannot be told
            continue
        seen[position] = True
        if tokens is not None:
            reported = (reported or 0) + tokens
        if error is not None:
            refused.append(RefusedText(position, scrubbed(error, secrets)))
            continue
        try:
            row = checked_rows([_Values(values)], PlannedRequest(0, position, [""], None, 0), dim)
        except UnusableResponse as err:
            unusable[position] = scrubbed(str(err), secrets)
            continue
        positions.append(position)
        rows.append(row[0])
        if len(positions) >= RESULT_CHUNK_ROWS:
            on_result(positions, np.stack(rows))
            positions, rows = [], []
    if positions:
        on_result(positions, np.stack(rows))
    for position in np.flatnonzero(~seen).tolist():
        unusable[position] = "no result"
    refused = [item for item in refused if item.position not in unusable]
    for item in refused[:20]:
        hook.log.warning(
            "Gemini batch job %s could not embed texts[%d]: %s", name, item.position, item.reason
        )
    if unusable:
        first = min(unusable)
        hook.log.warning(
            "Gemini batch job %s answered %d results that cannot be used; first texts[%d]: %s",
            name,
            len(unusable),
            first,
            unusable[first],
        )
    return BatchResults(
        refused=tuple(refused),
        reported_tokens=reported,
        unusable=tuple(RefusedText(position, reason) for position, reason in sorted(unusable.items())),
    )


def _error_text(error: Any) -> str | None:
    if error is None:
        return None
    code = error.get("code") if isinstance(error, dict) else getattr(error, "code", None)
    message = error.get("message") if isinstance(error, dict) else getattr(error, "message", None)
    return f"{code}: {message}" if code is not None else str(message)


def _job_error(body: str | None, secrets: Sequence[str]) -> str | None:
    """The ``error`` of a raw operation, as ``code: message``, key scrubbed."""
    try:
        error = json.loads(body or "{}").get("error")
    except (ValueError, AttributeError):
        return None
    text = _error_text(error) if isinstance(error, dict) else None
    return scrubbed(text, secrets) if text else None


def _short_state(state: Any) -> str:
    text = str(getattr(state, "value", state) or "UNSPECIFIED")
    for prefix in _STATE_PREFIXES:
        if text.startswith(prefix):
            return text[len(prefix) :]
    return text


def _job_path(name: str) -> str:
    return f"batches/{name.split('/', 1)[-1]}"


def _status_of(name: str, body: str | None, secrets: Sequence[str]) -> BatchJobStatus:
    """A job's status from its raw operation (the SDK maps neither its error nor its request count)."""
    try:
        operation = json.loads(body or "{}")
    except ValueError:
        raise GeminiAPIError(f"Gemini answered batch job {name} with a body that is not JSON") from None
    operation = operation if isinstance(operation, dict) else {}
    metadata = operation.get("metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    state = _short_state(metadata.get("state"))
    stats = metadata.get("batchStats")
    try:
        count: int | None = int(str((stats or {}).get("requestCount")))
    except (TypeError, ValueError, AttributeError):
        count = None
    error = _job_error(body, secrets) if state in ENDED_STATES and state != "SUCCEEDED" else None
    display_name = metadata.get("displayName")
    return BatchJobStatus(name, state, error, str(display_name) if display_name is not None else None, count)
