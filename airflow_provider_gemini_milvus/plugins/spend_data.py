"""
What the spend view shows, worked out from what the provider's tasks returned, without Airflow.

``GeminiEmbedOperator`` returns ``stats`` (documents, texts embedded, unchanged, estimated tokens and cost,
requests, 429s, batch mode ...) and ``MilvusInsertOperator`` a ``LoadResult`` (collection, rows written and
deleted). :func:`build_report` adds them up per DAG run, per DAG and per collection. Only counts and costs
are read: never a document's text, a vector or a connection.

What an incremental run saved is an estimate: the texts it did not send again (unchanged and metadata-only
documents) at the tokens and price of a text it did send, or, for a run that sent nothing, of the texts the
same model embedded in the other runs shown.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from datetime import datetime

__all__ = [
    "UNNAMED_COLLECTION",
    "EmbedFigures",
    "EmbedRecord",
    "LoadRecord",
    "RunSpend",
    "SpendFigures",
    "SpendReport",
    "SpendTotals",
    "build_report",
    "embed_figures",
]

#: The collection shown for an embedding task whose collection is not known (no ``collection_name`` and
#: not exactly one collection loaded in its run).
UNNAMED_COLLECTION = "(not named)"


@dataclass(frozen=True)
class EmbedRecord:
    """
    One ``GeminiEmbedOperator`` task's return value, as read from the metadata database.

    :param dag_id: its DAG.
    :param run_id: its DAG run.
    :param task_id: the task (with ``[i]`` for a mapped task's index).
    :param when: when the run started (or was due), None when unknown.
    :param collection: the task's rendered ``collection_name``, None when it has none.
    :param model: the result's ``model`` (the fingerprint ``name/dimension/task type``).
    :param stats: the result's ``stats``.
    """

    dag_id: str
    run_id: str
    task_id: str
    when: datetime | None
    collection: str | None
    model: str
    stats: Mapping[str, Any]


@dataclass(frozen=True)
class LoadRecord:
    """
    One ``MilvusInsertOperator`` task's ``LoadResult``.

    :param dag_id: its DAG.
    :param run_id: its DAG run.
    :param task_id: the task.
    :param when: when the run started, None when unknown.
    :param collection: the collection written.
    :param written: rows written.
    :param deleted: rows deleted.
    """

    dag_id: str
    run_id: str
    task_id: str
    when: datetime | None
    collection: str
    written: int
    deleted: int


@dataclass(frozen=True)
class EmbedFigures:
    """
    The figures the view takes of one embedding result.

    :param documents: documents the task read.
    :param texts: texts it embedded (``embedded``: sent and not refused).
    :param not_resent: documents it did not send again (``unchanged`` and ``metadata_only``).
    :param tokens: estimated tokens sent.
    :param requests: requests sent, retries included.
    :param rate_limited: requests answered 429.
    :param cost_usd: the estimated cost, None when the model has no known price.
    :param batch: True for a batch-mode run (``mode: "batch"``).
    """

    documents: int = 0
    texts: int = 0
    not_resent: int = 0
    tokens: int = 0
    requests: int = 0
    rate_limited: int = 0
    cost_usd: float | None = 0.0
    batch: bool = False


def _count(value: Any) -> int:
    """A non-negative whole count, 0 for anything else (a missing key, a string, a bool, NaN)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    if isinstance(value, float) and not math.isfinite(value):
        return 0
    return max(int(value), 0)


def _usd(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return max(float(value), 0.0)


def embed_figures(stats: Mapping[str, Any]) -> EmbedFigures:
    """
    The figures the view takes of an embedding result's ``stats``, each checked (a value of the wrong type
    counts as 0, an unusable cost as unknown).

    :param stats: ``GeminiEmbedOperator``'s ``stats``: ``documents``, ``embedded``, ``unchanged``,
        ``metadata_only``, ``estimated_tokens``, ``requests``, ``rate_limited``, ``estimated_cost_usd`` and,
        in batch mode, ``mode: "batch"``.
    """
    texts = _count(stats.get("embedded"))
    cost = _usd(stats.get("estimated_cost_usd"))
    return EmbedFigures(
        documents=_count(stats.get("documents")),
        texts=texts,
        not_resent=_count(stats.get("unchanged")) + _count(stats.get("metadata_only")),
        tokens=_count(stats.get("estimated_tokens")),
        requests=_count(stats.get("requests")),
        rate_limited=_count(stats.get("rate_limited")),
        cost_usd=cost if cost is not None else (0.0 if texts == 0 else None),
        batch=stats.get("mode") == "batch",
    )


class SpendFigures:
    """What a run's figures and a total's have in common: the cost in all, and the 429 share."""

    sync_usd: float | None
    batch_usd: float | None
    requests: int
    rate_limited: int

    @property
    def cost_usd(self) -> float | None:
        """Sync and batch cost together, None when either is unknown."""
        return _add(self.sync_usd, self.batch_usd)

    @property
    def rate_limited_share(self) -> float | None:
        """The share of requests answered 429, None without requests."""
        return self.rate_limited / self.requests if self.requests else None


@dataclass(frozen=True)
class RunSpend(SpendFigures):
    """
    What one DAG run did to one collection.

    :param dag_id: the DAG.
    :param run_id: the run.
    :param when: when the run started, None when unknown.
    :param collection: the collection (:data:`UNNAMED_COLLECTION` when not known).
    :param models: the embedding models (fingerprints) of the run's tasks.
    :param documents: documents the embedding tasks read.
    :param texts: texts sent to Gemini and embedded.
    :param not_resent: documents not sent again: unchanged, or only their metadata changed.
    :param tokens: estimated tokens sent.
    :param requests: Gemini requests sent (retries included).
    :param rate_limited: of those, answered 429.
    :param sync_usd: estimated cost of the synchronous tasks, None when a model has no known price.
    :param batch_usd: estimated cost of the batch-mode tasks, likewise.
    :param saved_usd: estimated cost of the ``not_resent`` texts, None when it cannot be estimated.
    :param written: rows written to the collection.
    :param deleted: rows deleted from it.
    :param batch: True when any of its embedding tasks ran in batch mode.
    """

    dag_id: str
    run_id: str
    when: datetime | None
    collection: str
    models: tuple[str, ...] = ()
    documents: int = 0
    texts: int = 0
    not_resent: int = 0
    tokens: int = 0
    requests: int = 0
    rate_limited: int = 0
    sync_usd: float | None = 0.0
    batch_usd: float | None = 0.0
    saved_usd: float | None = 0.0
    written: int = 0
    deleted: int = 0
    batch: bool = False


@dataclass(frozen=True)
class SpendTotals(SpendFigures):
    """
    Runs added up, for one DAG or one collection (or everything).

    :param key: the DAG id or the collection name.
    :param runs: how many DAG runs (with this collection) are counted.
    :param last: the newest run's time, None when unknown.
    """

    key: str
    runs: int = 0
    last: datetime | None = None
    documents: int = 0
    texts: int = 0
    not_resent: int = 0
    tokens: int = 0
    requests: int = 0
    rate_limited: int = 0
    sync_usd: float | None = 0.0
    batch_usd: float | None = 0.0
    saved_usd: float | None = 0.0
    written: int = 0
    deleted: int = 0
    dag_ids: tuple[str, ...] = ()
    collections: tuple[str, ...] = ()


@dataclass(frozen=True)
class SpendReport:
    """
    Everything the page shows.

    :param runs: per DAG run and collection, newest first.
    :param by_dag: per DAG, the most expensive first.
    :param by_collection: per collection, the most expensive first.
    :param total: everything shown, added up.
    """

    runs: list[RunSpend] = field(default_factory=list)
    by_dag: list[SpendTotals] = field(default_factory=list)
    by_collection: list[SpendTotals] = field(default_factory=list)
    total: SpendTotals = field(default_factory=lambda: SpendTotals(key="all"))


def _add(first: float | None, second: float | None) -> float | None:
    return None if first is None or second is None else first + second


def _model_name(fingerprint: str) -> str:
    return fingerprint.split("/", 1)[0]


@dataclass
class _PerText:
    """The cost per embedded text of one model and mode, learnt from the runs that sent texts."""

    priced_texts: int = 0
    cost_usd: float = 0.0

    def saved(self, not_resent: int) -> float | None:
        if not not_resent:
            return 0.0
        if not self.priced_texts:
            return None
        return not_resent * self.cost_usd / self.priced_texts


def _per_text_rates(embeds: Sequence[tuple[EmbedRecord, EmbedFigures]]) -> dict[tuple[str, bool], _PerText]:
    rates: dict[tuple[str, bool], _PerText] = {}
    for record, figures in embeds:
        rate = rates.setdefault((_model_name(record.model), figures.batch), _PerText())
        if figures.texts and figures.cost_usd is not None:
            rate.priced_texts += figures.texts
            rate.cost_usd += figures.cost_usd
    return rates


def _saved_usd(figures: EmbedFigures, model: str, rates: Mapping[tuple[str, bool], _PerText]) -> float | None:
    """The not re-sent texts at this task's own price per text, else the model's in the runs shown."""
    if figures.texts and figures.cost_usd is not None:
        return figures.not_resent * figures.cost_usd / figures.texts
    return rates.get((_model_name(model), figures.batch), _PerText()).saved(figures.not_resent)


def _collections_of_runs(loads: Iterable[LoadRecord]) -> dict[tuple[str, str], set[str]]:
    found: dict[tuple[str, str], set[str]] = {}
    for load in loads:
        found.setdefault((load.dag_id, load.run_id), set()).add(load.collection)
    return found


def _embed_collection(record: EmbedRecord, loaded: Mapping[tuple[str, str], set[str]]) -> str:
    if record.collection:
        return record.collection
    collections = loaded.get((record.dag_id, record.run_id), set())
    return next(iter(collections)) if len(collections) == 1 else UNNAMED_COLLECTION


def _newest(first: datetime | None, second: datetime | None) -> datetime | None:
    if first is None or second is None:
        return first or second
    return max(first, second)


def _with_embed(run: RunSpend, record: EmbedRecord, figures: EmbedFigures, saved: float | None) -> RunSpend:
    cost = figures.cost_usd
    return replace(
        run,
        models=tuple(sorted({*run.models, record.model})) if record.model else run.models,
        documents=run.documents + figures.documents,
        texts=run.texts + figures.texts,
        not_resent=run.not_resent + figures.not_resent,
        tokens=run.tokens + figures.tokens,
        requests=run.requests + figures.requests,
        rate_limited=run.rate_limited + figures.rate_limited,
        sync_usd=run.sync_usd if figures.batch else _add(run.sync_usd, cost),
        batch_usd=_add(run.batch_usd, cost) if figures.batch else run.batch_usd,
        saved_usd=_add(run.saved_usd, saved),
        batch=run.batch or figures.batch,
    )


def _totals(key: str, runs: Iterable[RunSpend]) -> SpendTotals:
    total = SpendTotals(key=key)
    dags: set[str] = set()
    collections: set[str] = set()
    dag_runs: set[tuple[str, str]] = set()
    for run in runs:
        dags.add(run.dag_id)
        collections.add(run.collection)
        dag_runs.add((run.dag_id, run.run_id))
        total = replace(
            total,
            runs=len(dag_runs),
            last=_newest(total.last, run.when),
            documents=total.documents + run.documents,
            texts=total.texts + run.texts,
            not_resent=total.not_resent + run.not_resent,
            tokens=total.tokens + run.tokens,
            requests=total.requests + run.requests,
            rate_limited=total.rate_limited + run.rate_limited,
            sync_usd=_add(total.sync_usd, run.sync_usd),
            batch_usd=_add(total.batch_usd, run.batch_usd),
            saved_usd=_add(total.saved_usd, run.saved_usd),
            written=total.written + run.written,
            deleted=total.deleted + run.deleted,
        )
    return replace(total, dag_ids=tuple(sorted(dags)), collections=tuple(sorted(collections)))


def _by_cost(totals: SpendTotals) -> tuple[float, str]:
    cost = totals.cost_usd
    return (-(cost if cost is not None else math.inf), totals.key)


def _run_order(run: RunSpend) -> tuple[float, str, str, str]:
    timestamp = run.when.timestamp() if run.when is not None else -math.inf
    return (-timestamp, run.dag_id, run.run_id, run.collection)


def build_report(embeds: Iterable[EmbedRecord], loads: Iterable[LoadRecord]) -> SpendReport:
    """
    Add up the provider's task results per DAG run and collection, per DAG and per collection.

    An embedding task counts towards its ``collection_name``; without one, towards the collection its run
    loaded when the run loaded exactly one, else :data:`UNNAMED_COLLECTION`.

    :param embeds: the embedding tasks' results.
    :param loads: the load tasks' results.
    """
    loads = list(loads)
    figured = [(record, embed_figures(record.stats)) for record in embeds]
    rates = _per_text_rates(figured)
    loaded = _collections_of_runs(loads)
    runs: dict[tuple[str, str, str], RunSpend] = {}

    def run_of(dag_id: str, run_id: str, collection: str, when: datetime | None) -> RunSpend:
        key = (dag_id, run_id, collection)
        run = runs.get(key) or RunSpend(dag_id=dag_id, run_id=run_id, when=when, collection=collection)
        return replace(run, when=_newest(run.when, when))

    for record, figures in figured:
        collection = _embed_collection(record, loaded)
        run = run_of(record.dag_id, record.run_id, collection, record.when)
        saved = _saved_usd(figures, record.model, rates)
        runs[(record.dag_id, record.run_id, collection)] = _with_embed(run, record, figures, saved)
    for load in loads:
        run = run_of(load.dag_id, load.run_id, load.collection, load.when)
        runs[(load.dag_id, load.run_id, load.collection)] = replace(
            run, written=run.written + max(load.written, 0), deleted=run.deleted + max(load.deleted, 0)
        )
    ordered = sorted(runs.values(), key=_run_order)
    dag_ids = sorted({run.dag_id for run in ordered})
    collections = sorted({run.collection for run in ordered})
    return SpendReport(
        runs=ordered,
        by_dag=sorted((_totals(d, (r for r in ordered if r.dag_id == d)) for d in dag_ids), key=_by_cost),
        by_collection=sorted(
            (_totals(c, (r for r in ordered if r.collection == c)) for c in collections), key=_by_cost
        ),
        total=_totals("all", ordered),
    )
