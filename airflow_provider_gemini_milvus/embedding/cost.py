"""
Know the cost before paying it: what an embedding run would send and cost, and the budget check.

Pure code, no network: the estimate plans the requests the way the hook plans them
(:func:`~airflow_provider_gemini_milvus.gemini.requests.plan_requests`) and counts tokens the way the stats
count them (:func:`~airflow_provider_gemini_milvus.gemini.models.estimate_tokens`, about four characters a
token), so a dry run's numbers match what the run reports afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict

from airflow_provider_gemini_milvus.gemini.models import (
    MAX_TEXTS_PER_REQUEST,
    EmbeddingModel,
    estimate_tokens,
    normalise_task_type,
    resolve_model,
)
from airflow_provider_gemini_milvus.gemini.requests import (
    MediaTokenCounts,
    media_tokens_of,
    mixed_cost_usd,
    plan_requests,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from airflow_provider_gemini_milvus.embedding.inputs import Document, EmbedArguments
    from airflow_provider_gemini_milvus.gemini.media import MediaPart
    from airflow_provider_gemini_milvus.utils.logs import TaskLogger

__all__ = [
    "DryRunReport",
    "RunCostEstimate",
    "check_budget",
    "dry_run_report",
    "estimate_chunks",
    "estimate_planned",
    "estimate_run_cost",
    "usd_text",
]


class DryRunReport(TypedDict):
    """What a dry run returns through XCom: the diff's counts and what the run would send and cost."""

    dry_run: bool
    model: str
    documents: int
    new: int
    changed: int
    metadata_only: int
    unchanged: int
    to_delete: int
    requests: int
    estimated_tokens: int
    estimated_media_tokens: NotRequired[dict[str, int]]
    estimated_cost_usd: float | None
    estimated_sync_cost_usd: float | None
    estimated_batch_cost_usd: float | None
    max_cost_usd: float | None
    over_budget: bool | None


@dataclass(frozen=True)
class RunCostEstimate(MediaTokenCounts):
    """
    What embedding some documents would send, and its price in synchronous and in batch mode.

    :param model: the model name.
    :param batch: whether the run sends them through the Batch API (:attr:`cost_usd` is then the batch
        price).
    :param documents: documents to embed.
    :param requests: synchronous ``batchEmbedContents`` requests they take.
    :param tokens: estimated input tokens, texts and titles.
    :param usd_per_million_tokens: the model's list price, or None where unpublished.
    :param batch_usd_per_million_tokens: the model's Batch API price, or None where unpublished.
    """

    model: str
    batch: bool
    documents: int = 0
    requests: int = 0
    tokens: int = 0
    usd_per_million_tokens: float | None = None
    batch_usd_per_million_tokens: float | None = None

    @property
    def sync_cost_usd(self) -> float | None:
        """The estimate at the list price, or None when the model has none."""
        media_prices = dict(self.media_usd_per_million_tokens)
        return mixed_cost_usd(self.tokens, self.media_tokens, self.usd_per_million_tokens, media_prices)

    @property
    def batch_cost_usd(self) -> float | None:
        """The estimate at the Batch API price (half the list price), or None when the model has none."""
        media_prices = {modality: price / 2 for modality, price in self.media_usd_per_million_tokens}
        return mixed_cost_usd(self.tokens, self.media_tokens, self.batch_usd_per_million_tokens, media_prices)

    @property
    def cost_usd(self) -> float | None:
        """The estimate at the price of the mode the run uses."""
        return self.batch_cost_usd if self.batch else self.sync_cost_usd

    def __add__(self, other: RunCostEstimate) -> RunCostEstimate:
        return replace(
            self,
            documents=self.documents + other.documents,
            requests=self.requests + other.requests,
            tokens=self.tokens + other.tokens,
            image_tokens=self.image_tokens + other.image_tokens,
            audio_tokens=self.audio_tokens + other.audio_tokens,
            video_tokens=self.video_tokens + other.video_tokens,
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe counts and costs, under the names the run's stats use."""
        media = {modality: tokens for modality, tokens in self.media_tokens.items() if tokens}
        return {
            "requests": self.requests,
            "estimated_tokens": self.tokens,
            **({"estimated_media_tokens": media} if media else {}),
            "estimated_cost_usd": self.cost_usd,
            "estimated_sync_cost_usd": self.sync_cost_usd,
            "estimated_batch_cost_usd": self.batch_cost_usd,
        }


def estimate_run_cost(
    texts: Sequence[str],
    titles: Sequence[str | None] | None = None,
    *,
    model: EmbeddingModel | str,
    batch: bool,
    task_type: str = "RETRIEVAL_DOCUMENT",
    batch_size: int = MAX_TEXTS_PER_REQUEST,
    tokens_per_minute: int | None = None,
    media: Sequence[MediaPart | None] | None = None,
) -> RunCostEstimate:
    """
    Estimate what embedding ``texts`` (with ``titles``) in one call would send and cost.

    ``estimate_run_cost(["a text", ...], model="gemini-embedding-001", batch=False).cost_usd`` is the price
    at the list price; with ``batch=True`` at the Batch API's (half). Titles count as input tokens too.

    :param texts: the texts of the documents to embed.
    :param titles: their titles (None, or None items, where there are none).
    :param model: the model, or its name.
    :param batch: whether the run uses the Batch API.
    :param task_type: the task the vectors are for: a model that takes it in the text (gemini-embedding-2)
        is sent each text with its task prefix (and title), which counts.
    :param batch_size: texts per synchronous request.
    :param tokens_per_minute: the connection's token quota, which splits requests further; None for none.
    :param media: one media item (or None) per text: each counts its own tokens at its own price.
    """
    spec = model if isinstance(model, EmbeddingModel) else resolve_model(model)
    text_list = list(texts)
    title_list = list(titles) if titles is not None else None
    media_list = list(media) if media is not None and any(media) else None
    if spec.task_format == "prompt":
        task = normalise_task_type(task_type)
        titled = title_list if title_list is not None else [None] * len(text_list)
        text_list = [
            spec.sent_text(task, text, title) if text or title else text
            for text, title in zip(text_list, titled, strict=True)
        ]
        title_list = None
    requests = (
        plan_requests(text_list, title_list, batch_size, tokens_per_minute, media_list) if text_list else []
    )
    title_tokens = sum(estimate_tokens(title) for title in title_list or () if title)
    media_tokens = media_tokens_of(requests)
    return RunCostEstimate(
        model=spec.name,
        batch=batch,
        documents=len(text_list),
        requests=len(requests),
        tokens=sum(request.tokens for request in requests) + title_tokens,
        usd_per_million_tokens=spec.usd_per_million_tokens,
        batch_usd_per_million_tokens=spec.batch_usd_per_million_tokens,
        image_tokens=media_tokens["image"],
        audio_tokens=media_tokens["audio"],
        video_tokens=media_tokens["video"],
        media_usd_per_million_tokens=spec.media_usd_per_million_tokens,
    )


def estimate_chunks(
    chunks: Iterable[Sequence[Document]],
    model: EmbeddingModel,
    batch_size: int,
    tokens_per_minute: int | None,
    title_field: str | None,
    *,
    batch: bool = False,
    task_type: str = "RETRIEVAL_DOCUMENT",
) -> RunCostEstimate:
    """
    Add up :func:`estimate_run_cost` of several calls: a staged run sends one call per chunk of documents.

    :param chunks: the documents of each call.
    :param model: the model.
    :param batch_size: texts per synchronous request.
    :param tokens_per_minute: the connection's token quota, or None.
    :param title_field: the operator's ``title_field``: titles are sent only when it is set.
    :param batch: whether the run uses the Batch API.
    :param task_type: the task the vectors are for (see :func:`estimate_run_cost`).
    """
    total = RunCostEstimate(
        model=model.name,
        batch=batch,
        usd_per_million_tokens=model.usd_per_million_tokens,
        batch_usd_per_million_tokens=model.batch_usd_per_million_tokens,
        media_usd_per_million_tokens=model.media_usd_per_million_tokens,
    )
    for documents in chunks:
        total += estimate_run_cost(
            [doc.text for doc in documents],
            [doc.title for doc in documents] if title_field is not None else None,
            model=model,
            batch=batch,
            task_type=task_type,
            batch_size=batch_size,
            tokens_per_minute=tokens_per_minute,
            media=[doc.media.part() if doc.media else None for doc in documents],
        )
    return total


def estimate_planned(
    chunks: Iterable[Sequence[Document]],
    args: EmbedArguments,
    tokens_per_minute: int | None,
    log: TaskLogger,
    *,
    batch: bool,
) -> RunCostEstimate:
    """
    :func:`estimate_chunks` of the operator's planned calls with its arguments, logged as counts.

    :param chunks: the documents of each call.
    :param args: the operator's converted arguments.
    :param tokens_per_minute: the connection's token quota, or None.
    :param log: where the summary goes.
    :param batch: whether the run uses the Batch API.
    """
    estimate = estimate_chunks(
        chunks,
        args.model,
        args.batch_size,
        tokens_per_minute,
        args.title_field,
        batch=batch,
        task_type=args.task_type,
    )
    log.info(
        "Estimate: %d documents in %d requests, about %d tokens, %s at the sync price, %s in batch mode",
        estimate.documents,
        estimate.requests,
        estimate.tokens,
        usd_text(estimate.sync_cost_usd),
        usd_text(estimate.batch_cost_usd),
    )
    return estimate


def check_budget(estimate: RunCostEstimate, max_cost_usd: float | None) -> None:
    """
    Refuse a run whose estimated cost exceeds ``max_cost_usd``, before its first request.

    :param estimate: what the run would send.
    :param max_cost_usd: the budget in US dollars; None for none.
    :raises ValueError: with the documents, requests, tokens, price and estimate in the message; also when
        there is something to embed and the model has no published price for the run's mode.
    """
    if max_cost_usd is None or not estimate.documents:
        return
    mode = "batch" if estimate.batch else "sync"
    price = estimate.batch_usd_per_million_tokens if estimate.batch else estimate.usd_per_million_tokens
    sending = (
        f"{estimate.documents} documents (about {estimate.tokens} tokens in {estimate.requests} requests)"
    )
    cost = estimate.cost_usd
    if price is None or cost is None:
        raise ValueError(
            f"max_cost_usd={max_cost_usd:g} cannot be checked: model {estimate.model!r} has no known "
            f"{mode} price; the run would embed {sending}. Nothing was sent; remove max_cost_usd to run it"
        )
    if cost > max_cost_usd:
        raise ValueError(
            f"the run would embed {sending}, estimated ${cost:.6f} at the {mode} price of "
            f"${price:g} per million tokens, more than max_cost_usd=${max_cost_usd:g}. Nothing was sent; "
            "raise max_cost_usd or embed fewer documents"
        )


def usd_text(cost: float | None) -> str:
    """``$0.001234``, or ``an unknown cost`` for a model without a published price."""
    return "an unknown cost" if cost is None else f"${cost:.6f}"


def dry_run_report(
    fingerprint: str,
    counts: dict[str, int],
    estimate: RunCostEstimate,
    max_cost_usd: float | None,
    log: TaskLogger,
) -> DryRunReport:
    """
    The JSON-safe result of a dry run, logged as counts.

    :param fingerprint: the run's ``model`` value.
    :param counts: ``documents``, ``new``, ``changed``, ``metadata_only``, ``unchanged``, ``to_delete``.
    :param estimate: what the documents to embed would send and cost.
    :param max_cost_usd: the budget, or None; ``over_budget`` says whether the estimate exceeds it.
    :param log: where the summary goes.
    """
    over_budget: bool | None = None
    if max_cost_usd is not None:
        try:
            check_budget(estimate, max_cost_usd)
            over_budget = False
        except ValueError as refusal:
            log.warning("Over budget: %s", refusal)
            over_budget = True
    log.info(
        "Dry run, nothing sent: %d documents, %d new, %d changed, %d metadata-only, %d unchanged, "
        "%d to delete; %d requests, about %d tokens, %s at the sync price, %s in batch mode",
        counts["documents"],
        counts["new"],
        counts["changed"],
        counts["metadata_only"],
        counts["unchanged"],
        counts["to_delete"],
        estimate.requests,
        estimate.tokens,
        usd_text(estimate.sync_cost_usd),
        usd_text(estimate.batch_cost_usd),
    )
    report: DryRunReport = {
        "dry_run": True,
        "model": fingerprint,
        "documents": counts["documents"],
        "new": counts["new"],
        "changed": counts["changed"],
        "metadata_only": counts["metadata_only"],
        "unchanged": counts["unchanged"],
        "to_delete": counts["to_delete"],
        "requests": estimate.requests,
        "estimated_tokens": estimate.tokens,
        "estimated_cost_usd": estimate.cost_usd,
        "estimated_sync_cost_usd": estimate.sync_cost_usd,
        "estimated_batch_cost_usd": estimate.batch_cost_usd,
        "max_cost_usd": max_cost_usd,
        "over_budget": over_budget,
    }
    media = {modality: tokens for modality, tokens in estimate.media_tokens.items() if tokens}
    if media:
        report["estimated_media_tokens"] = media
    return report
