"""
Gemini Batch API for embeddings: submit a job, read its state, cancel it, read its results in text order.

A batch job embeds at half the list price with a turnaround of up to 24 hours. Small inputs go inlined in
the create call; larger ones (more than :data:`INLINE_MAX_BYTES` of request JSON) as an uploaded JSONL file
whose lines are keyed by the text's position. Results come back inlined (in request order) or as a
generated JSONL file (keyed), and are handed over as L2-normalised float32 rows, like
:meth:`GeminiHook.embed_with_stats <airflow_provider_gemini_milvus.hooks.gemini.GeminiHook.embed_with_stats>`
hands them over; a request the job could not embed is a :class:`RefusedText` naming its position.

The functions take a :class:`GeminiConnection`: a connection's settings, its SDK client and a logger, which
:class:`~airflow_provider_gemini_milvus.hooks.gemini.GeminiHook` is. Batch mode is Gemini-API only: a Vertex
AI connection is refused before anything is sent.
Errors never carry the API key and are raised without a cause (the SDK's exception may hold the request).

What the SDK sends and parses is in ``tests/testing/gemini_emulator/batch_wire.py``: the job's state and
results come from the SDK's ``BatchJob``; the job's own error is read from the raw operation because the
SDK does not map it for the Gemini API (``batches._BatchJob_from_mldev`` reads ``metadata`` only).
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import numpy as np

from airflow_provider_gemini_milvus.exceptions import GeminiAPIError
from airflow_provider_gemini_milvus.gemini.attempts import TRANSIENT_TRANSPORT_ERRORS
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

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from google import genai

    from airflow_provider_gemini_milvus.gemini.settings import GeminiConnectionSettings
    from airflow_provider_gemini_milvus.utils.logs import TaskLogger

__all__ = [
    "ENDED_STATES",
    "INLINE_MAX_BYTES",
    "BatchJobStatus",
    "BatchResults",
    "GeminiConnection",
    "acancel_batch_job",
    "aget_batch_job",
    "cancel_batch_job",
    "check_batch_supported",
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
_STATE_PREFIXES = ("JOB_STATE_", "BATCH_STATE_")

_T = TypeVar("_T")


class GeminiConnection(Protocol):
    """What the Batch API calls need of a connection: its id, settings, SDK client and a logger."""

    gemini_conn_id: str

    @property
    def settings(self) -> GeminiConnectionSettings: ...

    @property
    def log(self) -> TaskLogger: ...

    def get_conn(self) -> genai.Client: ...


@dataclass(frozen=True)
class BatchJobStatus:
    """
    Where a batch job stands.

    :param name: ``batches/...``.
    :param state: ``PENDING``, ``RUNNING``, ``SUCCEEDED``, ``FAILED``, ``CANCELLED``, ``EXPIRED`` (or
        another state the service reports).
    :param error: the job's own error (``code: message``) once it ended without success, key scrubbed.
    """

    name: str
    state: str
    error: str | None = None

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
    """

    refused: tuple[RefusedText, ...]
    reported_tokens: int | None


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
    inline_max_bytes: int = INLINE_MAX_BYTES,
) -> str:
    """
    Create an embedding batch job for ``texts`` and return its name (``batches/...``).

    Input is checked as :meth:`GeminiHook.embed_with_stats` checks it, before anything is sent.

    :param hook: the hook of the ``gemini`` connection (Gemini API, not Vertex AI).
    :param texts: the texts, in the order results will be read.
    :param model: a Gemini embedding model.
    :param task_type: one of the Gemini task types.
    :param output_dimensionality: vector length; ``None`` for the model default.
    :param titles: one title (or ``None``) per text; ``RETRIEVAL_DOCUMENT`` only.
    :param display_name: the job's display name.
    :param inline_max_bytes: request JSON up to this size goes inlined; more as an uploaded JSONL file.
    :raises ValueError: a Vertex AI connection or bad input, naming ``texts[i]``; nothing was sent.
    :raises GeminiAPIError: the upload or the create call failed (the key scrubbed from the message).
    """
    check_batch_supported(hook)
    request = validated_request(model, task_type, output_dimensionality, vertexai=False)
    text_list, title_list = validated_inputs(texts, titles, request)
    bodies = [_request_body(text, title, request) for text, title in _with_titles(text_list, title_list)]
    size = sum(len(json.dumps(body)) for body in bodies)
    from google.genai import types

    config = types.CreateEmbeddingsBatchJobConfig(display_name=display_name)
    if size <= inline_max_bytes:
        src = types.EmbeddingsBatchJobSource(inlined_requests=_inlined(text_list, title_list, request))
        if title_list is not None and len(set(title_list)) > 1:
            # The SDK copies one config onto every request; per-text titles replace the list it built.
            requests = [{"request": body} for body in bodies]
            config.http_options = types.HttpOptions(
                extra_body={"batch": {"inputConfig": {"requests": {"requests": requests}}}}
            )
        source = "inlined"
    else:
        src = types.EmbeddingsBatchJobSource(file_name=_upload_requests(hook, bodies))
        source = "an uploaded JSONL file"
    client = hook.get_conn()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # create_embeddings is marked experimental by the SDK
        job = _sdk_call(
            hook,
            f"creating a batch job of {len(text_list)} texts",
            lambda: client.batches.create_embeddings(model=request.model.name, src=src, config=config),
        )
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
    return job.name


def get_batch_job(hook: GeminiConnection, name: str) -> BatchJobStatus:
    """Where the job ``name`` stands (its own error read when it ended without success)."""
    check_batch_supported(hook)
    client = hook.get_conn()
    job = _sdk_call(hook, f"reading batch job {name}", lambda: client.batches.get(name=name))
    state = _short_state(job.state)
    if state in ENDED_STATES and state != "SUCCEEDED":
        path = f"batches/{name.split('/', 1)[-1]}"
        raw = _sdk_call(
            hook, f"reading batch job {name}", lambda: client._api_client.request("get", path, {})
        )
        return BatchJobStatus(name, state, _job_error(raw.body, hook.settings.secrets))
    return BatchJobStatus(name, state)


async def aget_batch_job(hook: GeminiConnection, name: str) -> BatchJobStatus:
    """:func:`get_batch_job` for the triggerer's event loop (the SDK's async client)."""
    client = hook.get_conn()
    try:
        job = await client.aio.batches.get(name=name)
        state = _short_state(job.state)
        if state in ENDED_STATES and state != "SUCCEEDED":
            path = f"batches/{name.split('/', 1)[-1]}"
            raw = await client._api_client.async_request("get", path, {})
            return BatchJobStatus(name, state, _job_error(raw.body, hook.settings.secrets))
        return BatchJobStatus(name, state)
    except _sdk_errors() as err:
        failure = _api_error(hook, f"reading batch job {name}", err)
    raise failure


def cancel_batch_job(hook: GeminiConnection, name: str) -> bool:
    """
    Cancel the job ``name``; return whether it was still running (a job that has ended stays as it is).

    :raises GeminiAPIError: the cancel call failed for another reason.
    """
    check_batch_supported(hook)
    status = get_batch_job(hook, name)
    if status.done:
        hook.log.info("Gemini batch job %s already ended %s; nothing to cancel", name, status.state)
        return False
    client = hook.get_conn()
    _sdk_call(hook, f"cancelling batch job {name}", lambda: client.batches.cancel(name=name))
    hook.log.info("Cancelled Gemini batch job %s", name)
    return True


async def acancel_batch_job(hook: GeminiConnection, name: str) -> bool:
    """:func:`cancel_batch_job` for the triggerer's event loop."""
    status = await aget_batch_job(hook, name)
    if status.done:
        hook.log.info("Gemini batch job %s already ended %s; nothing to cancel", name, status.state)
        return False
    try:
        await hook.get_conn().aio.batches.cancel(name=name)
    except _sdk_errors() as err:
        failure = _api_error(hook, f"cancelling batch job {name}", err)
    else:
        hook.log.info("Cancelled Gemini batch job %s", name)
        return True
    raise failure


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
    inlined results (file results in the order of the file); return the requests it could not embed.

    :param hook: the hook of the job's connection.
    :param name: the job.
    :param count: how many texts were submitted: every position ``0..count-1`` must be answered once.
    :param dim: the vector length asked for.
    :param on_result: called with a list of positions and a float32 array of their L2-normalised rows.
    :raises GeminiAPIError: the job has not succeeded, a result is missing, repeated, or not a usable vector
        (named ``texts[i]``), or reading failed.
    """
    check_batch_supported(hook)
    client = hook.get_conn()
    job = _sdk_call(hook, f"reading batch job {name}", lambda: client.batches.get(name=name))
    if _short_state(job.state) != "SUCCEEDED":
        raise GeminiAPIError(f"batch job {name} has not succeeded (state {_short_state(job.state)})")
    dest = job.dest
    if dest is not None and dest.file_name:
        with tempfile.TemporaryDirectory(prefix="gemini-batch-") as folder:
            path = os.path.join(folder, "results.jsonl")
            file_name = dest.file_name
            _sdk_call(
                hook,
                f"downloading the results of batch job {name}",
                lambda: client.files.download(file=file_name, destination=path),
            )
            return _deliver(hook, name, count, dim, _file_results(path, count), on_result)
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
        uploaded = _sdk_call(
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


def _file_results(path: str, count: int) -> Iterator[_Result]:
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                result = json.loads(line)
                position = int(result["key"])
            except (ValueError, KeyError, TypeError):
                raise GeminiAPIError(f"line {number} of the batch results has no usable key") from None
            if not 0 <= position < count:
                raise GeminiAPIError(f"line {number} of the batch results names a position out of range")
            response = result.get("response") or {}
            values = (response.get("embedding") or {}).get("values")
            tokens = response.get("tokenCount")
            error = result.get("error")
            error_text = _error_text(error) if error else None
            yield position, values, error_text, int(tokens) if tokens is not None else None


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
    positions: list[int] = []
    rows: list[np.ndarray] = []
    reported: int | None = None
    secrets = hook.settings.secrets
    for position, values, error, tokens in results:
        if position >= count or seen[position]:
            raise GeminiAPIError(
                f"batch job {name} answered texts[{position}] more than once or out of range"
            )
        seen[position] = True
        if tokens is not None:
            reported = (reported or 0) + tokens
        if error is not None or values is None:
            refused.append(RefusedText(position, scrubbed(error or "no embedding in the result", secrets)))
            continue
        try:
            row = checked_rows([_Values(values)], PlannedRequest(0, position, [""], None, 0), dim)
        except UnusableResponse as err:
            raise GeminiAPIError(f"batch job {name}: {scrubbed(str(err), secrets)}") from None
        positions.append(position)
        rows.append(row[0])
        if len(positions) >= RESULT_CHUNK_ROWS:
            on_result(positions, np.stack(rows))
            positions, rows = [], []
    if positions:
        on_result(positions, np.stack(rows))
    missing = np.flatnonzero(~seen)
    if missing.size:
        raise GeminiAPIError(
            f"batch job {name} answered {count - missing.size} of {count} texts; no result for "
            f"texts[{int(missing[0])}]" + (f" and {missing.size - 1} more" if missing.size > 1 else "")
        )
    for item in refused[:20]:
        hook.log.warning(
            "Gemini batch job %s could not embed texts[%d]: %s", name, item.position, item.reason
        )
    return BatchResults(refused=tuple(refused), reported_tokens=reported)


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


# -- calling the SDK without leaking the key ------------------------------------------------------------


def _sdk_errors() -> tuple[type[BaseException], ...]:
    from google.genai import errors

    return (errors.APIError, ValueError, KeyError, OSError, *TRANSIENT_TRANSPORT_ERRORS)


def _api_error(hook: GeminiConnection, what: str, err: BaseException) -> GeminiAPIError:
    from google.genai import errors

    text = scrubbed(f"{type(err).__name__}: {err}", hook.settings.secrets)
    if isinstance(err, errors.APIError):
        return GeminiAPIError(f"{what} failed: {text}", http_status=err.code, status=err.status)
    return GeminiAPIError(f"{what} failed: {text}")


def _sdk_call(hook: GeminiConnection, what: str, call: Callable[[], _T]) -> _T:
    """
    Run one SDK call; its failure is raised as :class:`GeminiAPIError` outside the ``except`` block, so
    it has no ``__cause__`` or ``__context__`` (the SDK's error may hold a gateway's echo of the key).
    """
    try:
        return call()
    except _sdk_errors() as err:
        failure = _api_error(hook, what, err)
    raise failure
