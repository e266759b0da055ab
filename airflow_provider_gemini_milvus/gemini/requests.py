"""
Planning and checking Gemini embedding requests: pure code, no network and no SDK.

Everything here runs either before the first request (input validation and batching, so a bad item costs
nothing) or on each answer (vector checks, so a wrong answer is a failed request, never a wrong row).
:class:`~airflow_provider_gemini_milvus.hooks.gemini.GeminiHook` sends what this module plans.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np

from airflow_provider_gemini_milvus.gemini.models import (
    MAX_TEXTS_PER_REQUEST,
    EmbeddingModel,
    TaskType,
    cost_usd,
    estimate_tokens,
    normalise_task_type,
    resolve_model,
)
from airflow_provider_gemini_milvus.utils.unicode import check_utf8_encodable

__all__ = [
    "ON_DOCUMENT_ERROR_CHOICES",
    "OnDocumentError",
    "PlannedRequest",
    "EmbedRequest",
    "EmbeddingResult",
    "EmbeddingRunStats",
    "RefusedText",
    "UnusableResponse",
    "check_sendable",
    "checked_rows",
    "per_request_bodies",
    "plan_requests",
    "scrubbed",
    "validated_batch_size",
    "validated_concurrency",
    "validated_inputs",
    "validated_request",
    "validated_texts",
    "validated_titles",
]


#: What a run does with a text Gemini refuses for good: fail the run, or leave the text out.
OnDocumentError = Literal["fail", "skip"]
ON_DOCUMENT_ERROR_CHOICES: tuple[OnDocumentError, ...] = get_args(OnDocumentError)


@dataclass(frozen=True)
class EmbeddingRunStats:
    """
    What one embedding call did; JSON-safe through :meth:`as_dict`.

    ``tokens`` is estimated at about four characters a token (see :func:`~.models.estimate_tokens`).
    ``refused`` counts texts Gemini refused for good and that were skipped (``on_document_error="skip"``);
    ``split_requests`` counts the requests sent to find them (halves of refused batches, retries included;
    they are part of ``requests``).
    """

    model: str = ""
    texts: int = 0
    tokens: int = 0
    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    refused: int = 0
    split_requests: int = 0
    seconds: float = 0.0
    usd_per_million_tokens: float | None = None

    @property
    def estimated_cost_usd(self) -> float | None:
        return cost_usd(self.tokens, self.usd_per_million_tokens)

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "texts": self.texts,
            "estimated_tokens": self.tokens,
            "requests": self.requests,
            "retries": self.retries,
            "rate_limited": self.rate_limited,
            "refused": self.refused,
            "split_requests": self.split_requests,
            "seconds": round(self.seconds, 3),
            "estimated_cost_usd": self.estimated_cost_usd,
        }


@dataclass(frozen=True)
class RefusedText:
    """
    A text Gemini refused for good (400 ``INVALID_ARGUMENT`` when sent alone), skipped.

    :param position: its index in the call's ``texts``.
    :param reason: Gemini's error status and message, with the API key scrubbed out.
    """

    position: int
    reason: str


@dataclass(frozen=True, eq=False)
class EmbeddingResult:
    """
    The vectors of one embedding call and what the call did.

    :param vectors: float32, shape ``(len(texts), dim)``, rows L2-normalised and in input order; an empty
        ``(0, dim)`` array when the vectors went to an ``on_result`` callback instead. Rows of texts skipped
        with ``on_document_error="skip"`` are NaN.
    :param stats: requests, retries, estimated tokens and cost of this call alone.
    :param refused: the texts skipped with ``on_document_error="skip"``, in position order.
    """

    vectors: np.ndarray
    stats: EmbeddingRunStats
    refused: tuple[RefusedText, ...] = ()


@dataclass(frozen=True)
class EmbedRequest:
    """The model settings every request of one call shares, validated."""

    model: EmbeddingModel
    task_type: TaskType
    output_dimensionality: int | None
    dim: int


@dataclass(frozen=True)
class PlannedRequest:
    """One request: ``texts[start : start + len(texts)]`` of the caller's list."""

    index: int
    start: int
    texts: list[str]
    titles: list[str | None] | None
    tokens: int

    def describe(self) -> str:
        """``request 3 (texts[200..249])``: how errors and logs name this request."""
        end = self.start + len(self.texts) - 1
        span = f"texts[{self.start}]" if end == self.start else f"texts[{self.start}..{end}]"
        return f"request {self.index + 1} ({span})"

    def halves(self) -> tuple[PlannedRequest, PlannedRequest]:
        """The first and second half of this request's texts, as requests of their own (same ``index``)."""
        middle = len(self.texts) // 2
        return self._part(0, middle), self._part(middle, len(self.texts))

    def _part(self, begin: int, end: int) -> PlannedRequest:
        texts = self.texts[begin:end]
        return PlannedRequest(
            index=self.index,
            start=self.start + begin,
            texts=texts,
            titles=self.titles[begin:end] if self.titles is not None else None,
            tokens=sum(estimate_tokens(text) for text in texts),
        )


class UnusableResponse(Exception):
    """
    Gemini answered 200 with something that is not one finite, non-zero vector of the right length per text.

    The hook treats it like a failed request: retried within the retry budget, then reported.
    """


# -- validation (all of it runs before the first request) -----------------------------------------------


def validated_request(
    model: str, task_type: str, output_dimensionality: int | None, *, vertexai: bool | None = None
) -> EmbedRequest:
    """
    Resolve the model and check the task type and dimension; ``ValueError`` names what is wrong.

    :param model: the model name.
    :param task_type: the task type, in any case.
    :param output_dimensionality: the vector length, or None for the model's default.
    :param vertexai: whether the connection calls Vertex AI (a model its API does not serve is refused);
        None when not known.
    """
    spec = resolve_model(model, vertexai=vertexai)
    return EmbedRequest(
        model=spec,
        task_type=normalise_task_type(task_type),
        output_dimensionality=output_dimensionality,
        dim=spec.dim(output_dimensionality),
    )


def check_sendable(where: str, value: str, model: EmbeddingModel) -> None:
    """
    Refuse a text or title that cannot be sent as UTF-8 or is longer than ``model`` accepts.

    :param where: how the message names the item, e.g. ``texts[3]`` or ``documents[7] title``.
    :param value: the string.
    :param model: the model it is for.
    :raises ValueError: naming ``where``: a lone surrogate (with its position) or the token estimate.
    """
    check_utf8_encodable(value, where)
    tokens = estimate_tokens(value)
    if tokens > model.max_input_tokens:
        raise ValueError(
            f"{where} is about {tokens} tokens; {model.name} accepts at most "
            f"{model.max_input_tokens} tokens per text (split it into chunks)"
        )


def validated_texts(texts: Sequence[str], model: EmbeddingModel) -> list[str]:
    """Return ``texts`` as a list, or raise ``ValueError`` naming the first bad ``texts[i]``."""
    if isinstance(texts, (str, bytes)) or not isinstance(texts, Sequence):
        raise ValueError(f"texts must be a list of strings, got {type(texts).__name__}")
    if not texts:
        raise ValueError("texts is empty: nothing to embed")
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValueError(f"texts[{index}] is not a string (got {type(text).__name__})")
        if not text.strip():
            raise ValueError(f"texts[{index}] is empty or only whitespace")
        check_sendable(f"texts[{index}]", text, model)
    return list(texts)


def validated_titles(
    titles: Sequence[str | None] | None, count: int, task_type: str, model: EmbeddingModel
) -> list[str | None] | None:
    """Return ``titles`` as a list (or ``None``), or raise ``ValueError`` naming the first bad title."""
    if titles is None:
        return None
    if isinstance(titles, str) or not isinstance(titles, Sequence):
        raise ValueError(f"titles must be a list with one title per text, got {type(titles).__name__}")
    if task_type != "RETRIEVAL_DOCUMENT":
        raise ValueError(f"titles are only accepted with task_type RETRIEVAL_DOCUMENT, not {task_type}")
    if len(titles) != count:
        raise ValueError(f"got {len(titles)} titles for {count} texts; give one title (or None) per text")
    for index, title in enumerate(titles):
        if title is None:
            continue
        if not isinstance(title, str):
            raise ValueError(f"titles[{index}] is not a string (got {type(title).__name__})")
        check_sendable(f"titles[{index}]", title, model)
    return list(titles)


def validated_inputs(
    texts: Sequence[str], titles: Sequence[str | None] | None, request: EmbedRequest
) -> tuple[list[str], list[str | None] | None]:
    """
    Check ``texts`` and ``titles`` and return them as they are sent.

    For a model that takes the task in the text (gemini-embedding-2), each text carries its task prefix
    and, for a document, its title (:func:`~.models.prompted_text`); no title goes as a field. The length
    check and every token estimate then count the prefix.

    :raises ValueError: naming the first bad ``texts[i]`` or ``titles[i]``, before any request.
    """
    text_list = validated_texts(texts, request.model)
    title_list = validated_titles(titles, len(text_list), request.task_type, request.model)
    if request.model.task_format != "prompt":
        return text_list, title_list
    sent = []
    for index, text in enumerate(text_list):
        title = title_list[index] if title_list is not None else None
        prompted = request.model.sent_text(request.task_type, text, title)
        check_sendable(f"texts[{index}] with its task prefix", prompted, request.model)
        sent.append(prompted)
    return sent, None


def validated_batch_size(batch_size: int) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int):
        raise ValueError(f"batch_size must be an integer, got {type(batch_size).__name__}")
    if not 1 <= batch_size <= MAX_TEXTS_PER_REQUEST:
        raise ValueError(f"batch_size must be between 1 and {MAX_TEXTS_PER_REQUEST}, got {batch_size}")
    return batch_size


def validated_concurrency(max_concurrency: int | None, default: int) -> int:
    if max_concurrency is None:
        return default
    if isinstance(max_concurrency, bool) or not isinstance(max_concurrency, int) or max_concurrency < 1:
        raise ValueError(f"max_concurrency must be a positive integer, got {max_concurrency!r}")
    return max_concurrency


def plan_requests(
    texts: list[str], titles: list[str | None] | None, batch_size: int, tokens_per_minute: int | None
) -> list[PlannedRequest]:
    """Split into requests of at most ``batch_size`` texts, and at most one minute of token quota."""
    batches: list[PlannedRequest] = []
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
            PlannedRequest(
                index=len(batches),
                start=start,
                texts=texts[start:end],
                titles=titles[start:end] if titles is not None else None,
                tokens=tokens,
            )
        )
        start = end
    return batches


# -- the wire -------------------------------------------------------------------------------------------


def per_request_bodies(
    batch: PlannedRequest, request: EmbedRequest, *, vertexai: bool
) -> list[dict[str, Any]]:
    """
    The wire bodies of ``batch``'s texts, one per text, as the SDK builds them.

    On the Gemini API they are the ``requests`` of a ``batchEmbedContents`` call the hook sends through the
    client. The SDK copies one config onto every request of a call, so on Vertex AI per-text titles go
    through ``HttpOptions.extra_body``, which replaces the ``requests`` list it would have built.
    """
    titles = batch.titles or [None] * len(batch.texts)
    bodies: list[dict[str, Any]] = []
    for text, title in zip(batch.texts, titles, strict=True):
        config: dict[str, Any] = {"taskType": request.task_type} if request.model.supports_task_type else {}
        if title is not None:
            config["title"] = title
        if request.output_dimensionality is not None:
            config["outputDimensionality"] = request.output_dimensionality
        content = {"parts": [{"text": text}], "role": "user"}
        if vertexai:
            bodies.append({"content": content, "embedContentConfig": config})
        else:
            bodies.append({"model": f"models/{request.model.name}", "content": content, **config})
    return bodies


def checked_rows(embeddings: Sequence[Any] | None, batch: PlannedRequest, dim: int) -> np.ndarray:
    """
    Check one answer's vectors and return them L2-normalised as float32 (Gemini's truncations are not unit).

    :param embeddings: the response's ``embeddings`` (objects with a ``values`` list).
    :param batch: the request they answer.
    :param dim: the vector length asked for.
    :raises UnusableResponse: a vector is missing, ``null``, of the wrong length, holds NaN or infinity (also
        after the float32 cast), or is all zeros; the message names the text, never its content.
    """
    received = list(embeddings or [])
    if len(received) != len(batch.texts):
        raise UnusableResponse(f"Gemini answered with {len(received)} vectors for {len(batch.texts)} texts")
    for offset, embedding in enumerate(received):
        values = getattr(embedding, "values", None)
        where = f"texts[{batch.start + offset}]"
        if values is None:
            raise UnusableResponse(f"Gemini answered with no values for {where}")
        if len(values) != dim:
            raise UnusableResponse(f"Gemini answered with {len(values)} values for {where}; expected {dim}")
    try:
        with np.errstate(over="ignore"):  # a value beyond float32 becomes inf here, and is refused below
            rows = np.array([embedding.values for embedding in received], dtype=np.float32)
    except (TypeError, ValueError):
        raise UnusableResponse("Gemini answered with values that are not numbers") from None
    finite = np.isfinite(rows).all(axis=1)
    if not finite.all():
        where = f"texts[{batch.start + int(np.flatnonzero(~finite)[0])}]"
        raise UnusableResponse(f"Gemini answered with NaN or infinity in the vector for {where}")
    # Sum the squares in float64: large float32 values would overflow the norm.
    norms = np.sqrt(np.einsum("ij,ij->i", rows, rows, dtype=np.float64))
    zero = norms == 0
    if zero.any():
        raise UnusableResponse(
            f"Gemini answered with an all-zero vector for texts[{batch.start + int(np.flatnonzero(zero)[0])}]"
        )
    # Divide in place: each value is computed in float64 and stored back as float32.
    np.divide(rows, norms[:, np.newaxis], out=rows, casting="same_kind")
    return rows


def scrubbed(text: str, secrets: str | Sequence[str] | None) -> str:
    """
    ``text`` with each secret replaced by ``***``, should any layer have echoed it.

    :param text: an error message or log text.
    :param secrets: one secret, or several (a connection's ``GeminiConnectionSettings.secrets``, longest
        first); ``None`` or empty ones are skipped.
    """
    for secret in [secrets] if isinstance(secrets, str) else secrets or ():
        if secret:
            text = text.replace(secret, "***")
    return text
