"""
Planning and checking Gemini embedding requests: pure code, no network and no SDK.

Everything here runs either before the first request (input validation and batching, so a bad item costs
nothing) or on each answer (vector checks, so a wrong answer is a failed request, never a wrong row).
:class:`~airflow_provider_gemini_milvus.hooks.gemini.GeminiHook` sends what this module plans.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, get_args

import numpy as np

from airflow_provider_gemini_milvus.gemini.media import INLINE_MAX_BYTES
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

if TYPE_CHECKING:
    from airflow_provider_gemini_milvus.gemini.media import MediaPart

__all__ = [
    "ON_DOCUMENT_ERROR_CHOICES",
    "OnDocumentError",
    "PlannedRequest",
    "EmbedRequest",
    "EmbeddingResult",
    "EmbeddingRunStats",
    "MediaTokenCounts",
    "RefusedText",
    "UnusableResponse",
    "check_sendable",
    "checked_rows",
    "content_parts",
    "validated_media",
    "element_tokens",
    "media_tokens_of",
    "mixed_cost_usd",
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
class MediaTokenCounts:
    """
    The part of an estimate's ``tokens`` that media make up, by what they are billed as (images include PDF
    pages), and their prices; keyword-only fields shared by the run stats and the cost estimate.
    """

    image_tokens: int = field(default=0, kw_only=True)
    audio_tokens: int = field(default=0, kw_only=True)
    video_tokens: int = field(default=0, kw_only=True)
    media_usd_per_million_tokens: tuple[tuple[str, float], ...] = field(default=(), kw_only=True)

    @property
    def media_tokens(self) -> dict[str, int]:
        """The media tokens by what they are billed as: ``image``, ``audio``, ``video``."""
        return {"image": self.image_tokens, "audio": self.audio_tokens, "video": self.video_tokens}


@dataclass(frozen=True)
class EmbeddingRunStats(MediaTokenCounts):
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
        return mixed_cost_usd(
            self.tokens,
            self.media_tokens,
            self.usd_per_million_tokens,
            dict(self.media_usd_per_million_tokens),
        )

    def as_dict(self) -> dict[str, Any]:
        media = {modality: tokens for modality, tokens in self.media_tokens.items() if tokens}
        return {
            "model": self.model,
            "texts": self.texts,
            "estimated_tokens": self.tokens,
            **({"estimated_media_tokens": media} if media else {}),
            "requests": self.requests,
            "retries": self.retries,
            "rate_limited": self.rate_limited,
            "refused": self.refused,
            "split_requests": self.split_requests,
            "seconds": round(self.seconds, 3),
            "estimated_cost_usd": self.estimated_cost_usd,
        }


def mixed_cost_usd(
    tokens: int,
    media_tokens: dict[str, int],
    usd_per_million_tokens: float | None,
    media_usd_per_million_tokens: dict[str, float],
) -> float | None:
    """
    The price of ``tokens`` input tokens of which ``media_tokens`` are media, each at its own price; None
    when a kind of token present has no published price.
    """
    media_total = sum(media_tokens.values())
    cost = cost_usd(tokens - media_total, usd_per_million_tokens)
    for modality, count in media_tokens.items():
        if not count:
            continue
        price = cost_usd(count, media_usd_per_million_tokens.get(modality))
        if cost is None or price is None:
            return None
        cost += price
    return cost


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
    """
    One request: ``texts[start : start + len(texts)]`` of the caller's list, with their media (a text is
    empty where a media item goes alone).
    """

    index: int
    start: int
    texts: list[str]
    titles: list[str | None] | None
    tokens: int
    media: list[MediaPart | None] | None = None

    def media_tokens(self) -> dict[str, int]:
        """The part of ``tokens`` its media make up, by what they are billed as."""
        return media_tokens_of([self])

    def with_media(self, media: list[MediaPart | None]) -> PlannedRequest:
        """This request with its media replaced (uploaded ones sent by reference)."""
        return replace(self, media=media)

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
        media = self.media[begin:end] if self.media is not None else None
        return PlannedRequest(
            index=self.index,
            start=self.start + begin,
            texts=texts,
            titles=self.titles[begin:end] if self.titles is not None else None,
            tokens=sum(
                element_tokens(text, media[offset] if media is not None else None)
                for offset, text in enumerate(texts)
            ),
            media=media,
        )


def media_tokens_of(requests: Iterable[PlannedRequest]) -> dict[str, int]:
    """The media tokens of ``requests`` together, by what they are billed as (image, audio, video)."""
    counts = {"image": 0, "audio": 0, "video": 0}
    for request in requests:
        for part in request.media or ():
            if part is not None:
                counts[part.facts.modality] += part.facts.tokens
    return counts


def element_tokens(text: str, media: MediaPart | None = None) -> int:
    """The tokens one request element counts: its text's estimate, plus its media's."""
    if media is None:
        return estimate_tokens(text)
    return (estimate_tokens(text) if text else 0) + media.facts.tokens


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


def validated_texts(
    texts: Sequence[str], model: EmbeddingModel, media: Sequence[MediaPart | None] | None = None
) -> list[str]:
    """
    Return ``texts`` as a list, or raise ``ValueError`` naming the first bad ``texts[i]``.

    :param media: one media item (or None) per text; a text may be empty where it has one.
    """
    if isinstance(texts, (str, bytes)) or not isinstance(texts, Sequence):
        raise ValueError(f"texts must be a list of strings, got {type(texts).__name__}")
    if not texts:
        raise ValueError("texts is empty: nothing to embed")
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValueError(f"texts[{index}] is not a string (got {type(text).__name__})")
        if media is not None and media[index] is not None and not text:
            continue
        if not text.strip():
            raise ValueError(f"texts[{index}] is empty or only whitespace")
        check_sendable(f"texts[{index}]", text, model)
    return list(texts)


def validated_media(
    media: Sequence[MediaPart | None] | None, count: int, model: EmbeddingModel
) -> list[MediaPart | None] | None:
    """
    Return ``media`` as a list (None when no text has any), or raise ``ValueError`` naming the first bad one.

    :param media: one :class:`~.media.MediaPart` (or None) per text.
    :param count: how many texts there are.
    :param model: the model: one that embeds text only refuses them.
    """
    if media is None:
        return None
    from airflow_provider_gemini_milvus.gemini.media import MediaPart

    if isinstance(media, (str, bytes)) or not isinstance(media, Sequence):
        raise ValueError(f"media must be a list with one item (or None) per text, got {type(media).__name__}")
    if len(media) != count:
        raise ValueError(f"got {len(media)} media items for {count} texts; give one (or None) per text")
    for index, part in enumerate(media):
        if part is None:
            continue
        if not isinstance(part, MediaPart):
            raise ValueError(f"media[{index}] is not a MediaPart (got {type(part).__name__})")
        if not model.embeds_media:
            raise ValueError(
                f"{part.where} is {part.facts.mime_type}, but {model.name} embeds text only; use "
                "gemini-embedding-2 for images, PDFs, audio and video"
            )
    return list(media) if any(part is not None for part in media) else None


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
    texts: Sequence[str],
    titles: Sequence[str | None] | None,
    request: EmbedRequest,
    media: Sequence[MediaPart | None] | None = None,
) -> tuple[list[str], list[str | None] | None, list[MediaPart | None] | None]:
    """
    Check ``texts``, ``titles`` and ``media`` and return them as they are sent.

    For a model that takes the task in the text (gemini-embedding-2), each text carries its task prefix
    and, for a document, its title (:func:`~.models.prompted_text`); no title goes as a field. The length
    check and every token estimate then count the prefix. A media item with neither text nor title goes
    alone.

    :raises ValueError: naming the first bad ``texts[i]``, ``titles[i]`` or media item, before any request.
    """
    if isinstance(texts, Sequence) and not isinstance(texts, (str, bytes)):
        media_list = validated_media(media, len(texts), request.model)
    else:
        media_list = None
    text_list = validated_texts(texts, request.model, media_list)
    title_list = validated_titles(titles, len(text_list), request.task_type, request.model)
    if request.model.task_format != "prompt":
        return text_list, title_list, media_list
    sent: list[str] = []
    for index, text in enumerate(text_list):
        title = title_list[index] if title_list is not None else None
        if not text and not title:
            sent.append(text)
            continue
        prompted = request.model.sent_text(request.task_type, text, title)
        check_sendable(f"texts[{index}] with its task prefix", prompted, request.model)
        sent.append(prompted)
    return sent, None, media_list


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
    texts: list[str],
    titles: list[str | None] | None,
    batch_size: int,
    tokens_per_minute: int | None,
    media: list[MediaPart | None] | None = None,
) -> list[PlannedRequest]:
    """
    Split into requests of at most ``batch_size`` texts, at most one minute of token quota, and inline media
    of at most :data:`~.media.INLINE_MAX_BYTES` (a request is at most 20 MB).
    """
    batches: list[PlannedRequest] = []
    start = 0
    while start < len(texts):
        end = start
        tokens = 0
        inline_bytes = 0
        while end < len(texts) and end - start < batch_size:
            part = media[end] if media is not None else None
            text_tokens = element_tokens(texts[end], part)
            if tokens_per_minute is not None and text_tokens > tokens_per_minute:
                raise ValueError(
                    f"texts[{end}] is about {text_tokens} tokens, more than the connection's "
                    f"tokens_per_minute={tokens_per_minute}; it could never be sent"
                )
            if tokens_per_minute is not None and end > start and tokens + text_tokens > tokens_per_minute:
                break
            part_bytes = part.facts.size_bytes if part is not None and part.facts.inline else 0
            if end > start and inline_bytes + part_bytes > INLINE_MAX_BYTES:
                break
            tokens += text_tokens
            inline_bytes += part_bytes
            end += 1
        batches.append(
            PlannedRequest(
                index=len(batches),
                start=start,
                texts=texts[start:end],
                titles=titles[start:end] if titles is not None else None,
                tokens=tokens,
                media=media[start:end] if media is not None else None,
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
    media = batch.media or [None] * len(batch.texts)
    bodies: list[dict[str, Any]] = []
    for text, title, part in zip(batch.texts, titles, media, strict=True):
        config: dict[str, Any] = {"taskType": request.task_type} if request.model.supports_task_type else {}
        if title is not None:
            config["title"] = title
        if request.output_dimensionality is not None:
            config["outputDimensionality"] = request.output_dimensionality
        content = {"parts": content_parts(text, part), "role": "user"}
        if vertexai:
            bodies.append({"content": content, "embedContentConfig": config})
        else:
            bodies.append({"model": f"models/{request.model.name}", "content": content, **config})
    return bodies


def content_parts(text: str, media: MediaPart | None = None) -> list[dict[str, Any]]:
    """The parts of one request element: its text (if any), then its media item (if any)."""
    parts: list[dict[str, Any]] = [{"text": text}] if text or media is None else []
    if media is not None:
        parts.append(media.wire())
    return parts


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
