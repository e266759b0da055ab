"""
How well a collection answers labelled queries, measured through Milvus: the engine of the evaluation
operator and of the promote operator's quality gate.

The queries are embedded once per collection (with the settings its rows were embedded with) and reused by
every mode that needs vectors; ``full_text`` needs no embedding at all. The scores come from
:mod:`.metrics`, the comparison from :mod:`.evaluation`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, TypedDict

from airflow_provider_gemini_milvus.milvus.full_text import SEARCH_MODES, require_full_text
from airflow_provider_gemini_milvus.retrieval.evaluation import (
    QualityVerdict,
    compare_scores,
    evaluate_search,
)
from airflow_provider_gemini_milvus.retrieval.metrics import RetrievalScores, format_scores_table
from airflow_provider_gemini_milvus.retrieval.search import resolve_query_settings

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import numpy as np

    from airflow_provider_gemini_milvus.hooks.gemini import GeminiHook
    from airflow_provider_gemini_milvus.hooks.milvus import MilvusHook
    from airflow_provider_gemini_milvus.retrieval.labelled import LabelledQuery
    from airflow_provider_gemini_milvus.retrieval.search import QuerySettings
    from airflow_provider_gemini_milvus.utils.logs import TaskLogger

__all__ = [
    "DEFAULT_QUALITY_K",
    "EvaluationArguments",
    "EvaluationResult",
    "QualityGate",
    "collection_ranker",
    "evaluate_collection",
    "evaluate_search_quality",
    "judge_quality",
]

DEFAULT_QUALITY_K = 10


@dataclass(frozen=True)
class QualityGate:
    """
    The promote operator's quality gate: the new collection may score at most ``tolerance`` below the live
    one on ``metric`` over ``queries``, searched in ``mode`` with the top ``k``.

    :param queries: the labelled queries.
    :param metric: ``recall``, ``mrr`` or ``ndcg``.
    :param mode: ``dense``, ``full_text`` or ``hybrid``.
    :param k: hits per query that count.
    :param tolerance: how far below the live score the new one may fall.
    """

    queries: Sequence[LabelledQuery]
    metric: str = "ndcg"
    mode: str = "dense"
    k: int = DEFAULT_QUALITY_K
    tolerance: float = 0.0


def collection_ranker(
    milvus_hook: MilvusHook,
    gemini_hook: GeminiHook | None,
    collection: str,
    settings: QuerySettings | None,
    *,
    k: int,
    filter: str = "",
) -> Callable[[str, Sequence[str]], list[list[str]]]:
    """
    A ``rank(mode, queries)`` for :func:`~.evaluation.evaluate_search` that searches ``collection`` and
    returns the ranked ids per query. Query vectors are embedded on first need and reused by every mode.

    :param milvus_hook: the collection's hook.
    :param gemini_hook: embeds the queries; None when only ``full_text`` is ranked.
    :param collection: the collection (or alias) to search.
    :param settings: the query embedding settings of the collection's rows; None when only ``full_text`` is
        ranked.
    :param k: hits per query.
    :param filter: a Milvus boolean expression every hit must match.
    """
    embedded: dict[tuple[str, ...], np.ndarray] = {}

    def vectors(queries: Sequence[str]) -> np.ndarray:
        key = tuple(queries)
        if key not in embedded:
            if gemini_hook is None or settings is None:
                raise ValueError(f"searching collection {collection!r} by vector needs the query settings")
            embedded[key] = gemini_hook.embed(
                list(queries),
                model=settings.model,
                task_type=settings.task_type,
                output_dimensionality=settings.output_dimensionality,
            )
        return embedded[key]

    def rank(mode: str, queries: Sequence[str]) -> list[list[str]]:
        query_vectors = vectors(queries).tolist() if mode != "full_text" else None
        hits = milvus_hook.search(
            collection,
            query_vectors,
            texts=list(queries),
            mode=mode,
            limit=k,
            output_fields=(),
            filter=filter,
        )
        return [[str(hit["id"]) for hit in query_hits] for query_hits in hits]

    return rank


def evaluate_collection(
    milvus_hook: MilvusHook,
    gemini_hook: GeminiHook | None,
    collection: str,
    labelled: Sequence[LabelledQuery],
    *,
    modes: Sequence[str],
    k: int,
    settings: QuerySettings | None,
    filter: str = "",
) -> list[RetrievalScores]:
    """
    Score ``collection`` on the labelled queries in each mode (recall@k, MRR, nDCG@k).

    :param milvus_hook: the collection's hook.
    :param gemini_hook: embeds the queries (once, whatever the number of modes).
    :param collection: the collection (or alias).
    :param labelled: the labelled queries.
    :param modes: the search modes to score.
    :param k: hits per query that count.
    :param settings: the query embedding settings of the collection's rows.
    :param filter: a Milvus boolean expression every hit must match.
    """
    rank = collection_ranker(milvus_hook, gemini_hook, collection, settings, k=k, filter=filter)
    return evaluate_search(labelled, rank, modes=modes, k=k)


def judge_quality(
    milvus_hook: MilvusHook,
    gemini_hook: GeminiHook,
    gate: QualityGate,
    *,
    new: str,
    new_settings: QuerySettings,
    live: str,
    live_settings: QuerySettings,
    log: TaskLogger,
) -> QualityVerdict:
    """
    Score the new and the live collection on the gate's queries and compare them; log both as a table.

    :param milvus_hook: the hook of both collections.
    :param gemini_hook: embeds the queries, for each collection with its own settings.
    :param gate: the gate.
    :param new: the new collection.
    :param new_settings: the query settings of the new collection's rows.
    :param live: the collection readers search now.
    :param live_settings: the query settings of the live collection's rows.
    :param log: the task's logger.
    """
    scores = {}
    for name, settings in ((new, new_settings), (live, live_settings)):
        (scores[name],) = evaluate_collection(
            milvus_hook, gemini_hook, name, gate.queries, modes=[gate.mode], k=gate.k, settings=settings
        )
    log.info(
        "Search quality on %s labelled queries (%s search), new %s and live %s:\n%s",
        len(gate.queries),
        gate.mode,
        new,
        live,
        format_scores_table(
            [scores[new], scores[live]], labels=[f"new {new}", f"live {live}"], label_header="collection"
        ),
    )
    return compare_scores(
        scores[new],
        scores[live],
        metric=gate.metric,
        tolerance=gate.tolerance,
        new_collection=new,
        live_collection=live,
    )


@dataclass(frozen=True)
class EvaluationArguments:
    """
    The evaluation operator's arguments, converted and checked.

    :param collection_name: the collection (or alias) to score.
    :param queries: the labelled queries.
    :param modes: the modes to score; empty scores every mode the collection has.
    :param k: hits per query that count.
    :param filter: a Milvus boolean expression every hit must match.
    :param model: the model to embed the queries with; None takes the rows' fingerprint.
    :param output_dimensionality: their dimension; None takes the rows' fingerprint.
    """

    collection_name: str
    queries: Sequence[LabelledQuery]
    modes: Sequence[str] = ()
    k: int = DEFAULT_QUALITY_K
    filter: str = ""
    model: str | None = None
    output_dimensionality: int | None = None


class EvaluationResult(TypedDict):
    """What the evaluation operator returns: the scores of each mode, as plain numbers."""

    collection: str
    k: int
    queries: int
    scores: dict[str, dict[str, float]]


def evaluate_search_quality(
    milvus_hook: MilvusHook, gemini_hook: GeminiHook, args: EvaluationArguments, log: TaskLogger
) -> EvaluationResult:
    """
    Score a collection on labelled queries in each mode, log the table and return the scores.

    Checked before any query is embedded: the collection exists, has full-text search for the modes that
    need it, and the query settings agree with its rows. Without ``modes``, ``dense`` is scored, plus
    ``full_text`` and ``hybrid`` on a collection with full-text search.

    :param milvus_hook: the collection's hook.
    :param gemini_hook: embeds the queries (once, whatever the number of modes; never for ``full_text``).
    :param args: the converted arguments.
    :param log: the task's logger.
    :raises ValueError: for a missing collection, or no model to embed the queries with.
    :raises MilvusCollectionMismatchError: a full-text mode on a collection without it, or query settings
        that disagree with the rows.
    """
    name = args.collection_name
    info = milvus_hook.describe(name)
    if info is None:
        raise ValueError(f"collection {name!r} does not exist (neither a collection nor an alias)")
    modes = list(args.modes) or [mode for mode in SEARCH_MODES if info.full_text or mode == "dense"]
    for mode in modes:
        if mode != "dense":
            require_full_text(info.full_text, name, f"{mode} search")
    embeds = any(mode != "full_text" for mode in modes)
    settings = (
        resolve_query_settings(
            milvus_hook, info, model=args.model, output_dimensionality=args.output_dimensionality
        )
        if embeds
        else None
    )
    scores = evaluate_collection(
        milvus_hook,
        gemini_hook if embeds else None,
        name,
        args.queries,
        modes=modes,
        k=args.k,
        settings=settings,
        filter=args.filter,
    )
    log.info(
        "Search quality of %s on %s labelled queries:\n%s",
        name,
        len(args.queries),
        format_scores_table(scores),
    )
    return {
        "collection": name,
        "k": args.k,
        "queries": len(args.queries),
        "scores": {
            score.mode: {metric: score.to_dict()[metric] for metric in ("recall", "mrr", "ndcg")}
            for score in scores
        },
    }
