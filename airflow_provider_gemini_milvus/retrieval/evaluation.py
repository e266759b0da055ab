"""
Search quality on labelled queries, per search mode, and the quality gate's decision.

:func:`evaluate_search` asks a ranking function (the caller wires it to Milvus) for the ranked ids of every
labelled query in each mode and scores them (:mod:`.metrics`). :func:`compare_scores` decides whether a new
collection may replace the live one: it passes when the new score is at least the live score minus the
tolerance. No Airflow here: the operators own logging, XCom and failing the task.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_gemini_milvus.milvus.full_text import SEARCH_MODES
from airflow_provider_gemini_milvus.retrieval.metrics import RetrievalScores, check_k, score_rankings

if TYPE_CHECKING:
    from airflow_provider_gemini_milvus.retrieval.labelled import LabelledQuery

__all__ = [
    "QUALITY_METRICS",
    "SEARCH_MODES",
    "QualityVerdict",
    "check_modes",
    "compare_scores",
    "evaluate_search",
]

#: The scores a quality gate can compare: mean recall@k, MRR and nDCG@k.
QUALITY_METRICS = ("recall", "mrr", "ndcg")
#: Two scores closer than this are equal (float noise in ``live - tolerance``).
_EPSILON = 1e-9

RankFunction = Callable[[str, Sequence[str]], Sequence[Sequence[str]]]


def check_modes(modes: str | Sequence[str], name: str = "modes") -> list[str]:
    """
    The search modes to measure, in the order given, repeats dropped.

    :param modes: one mode or a sequence of them, each one of :data:`SEARCH_MODES`.
    :param name: the argument's name, for the errors.
    :raises ValueError: for an unknown mode (named, with the choices) or no mode at all.
    """
    listed = [modes] if isinstance(modes, str) else list(modes)
    chosen: list[str] = []
    for mode in listed:
        if mode not in SEARCH_MODES:
            raise ValueError(
                f"{name} names the unknown search mode {mode!r}; choose from {', '.join(SEARCH_MODES)}"
            )
        if mode not in chosen:
            chosen.append(mode)
    if not chosen:
        raise ValueError(f"{name} is empty; choose from {', '.join(SEARCH_MODES)}")
    return chosen


def evaluate_search(
    labelled: Sequence[LabelledQuery], rank: RankFunction, *, modes: str | Sequence[str], k: int
) -> list[RetrievalScores]:
    """
    Score each search mode on the labelled queries.

    Modes and ``k`` are checked before ``rank`` is first called, so a typo costs no query embedding.

    :param labelled: the labelled queries (see :func:`~.labelled.labelled_queries`).
    :param rank: ``rank(mode, query_texts)`` returns the ranked ids of each query, best first, in order;
        it should return at least ``k`` ids per query when the collection holds them.
    :param modes: the modes to measure (:data:`SEARCH_MODES`); repeats are dropped.
    :param k: the cut-off of recall@k, MRR and nDCG@k.
    :return: one :class:`~.metrics.RetrievalScores` per mode, in the order of ``modes``.
    :raises ValueError: for an unknown mode, a bad ``k``, no labelled queries, or a ``rank`` answer that does
        not hold one ranking per query.
    """
    chosen = check_modes(modes)
    cut_off = check_k(k)
    if not labelled:
        raise ValueError("no labelled queries to evaluate the search with")
    texts = [query.query for query in labelled]
    return [score_rankings(mode, labelled, rank(mode, texts), cut_off) for mode in chosen]


@dataclass(frozen=True)
class QualityVerdict:
    """
    Whether a new collection searches well enough to replace the live one.

    :param passed: ``new >= live - tolerance``.
    :param metric: the score compared (:data:`QUALITY_METRICS`).
    :param new: the new collection's score.
    :param live: the live collection's score.
    :param tolerance: how much worse the new collection may be.
    :param message: one sentence naming both collections and both scores.
    """

    passed: bool
    metric: str
    new: float
    live: float
    tolerance: float
    message: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe (for XCom), the scores rounded to 4 places."""
        values = asdict(self)
        for key in ("new", "live", "tolerance"):
            values[key] = round(values[key], 4)
        return values


def _metric_label(metric: str, k: int) -> str:
    return {"recall": f"recall@{k}", "mrr": f"MRR@{k}", "ndcg": f"nDCG@{k}"}[metric]


def compare_scores(
    new: RetrievalScores,
    live: RetrievalScores,
    *,
    metric: str,
    tolerance: float,
    new_collection: str,
    live_collection: str,
) -> QualityVerdict:
    """
    The quality gate: pass when the new collection's score is at least the live one's minus ``tolerance``.

    :param new: the new collection's scores.
    :param live: the live collection's scores, same mode, ``k`` and labelled queries.
    :param metric: the score compared, one of :data:`QUALITY_METRICS`.
    :param tolerance: how much worse the new score may be, a finite number of at least 0.
    :param new_collection: the new collection's name, for the message.
    :param live_collection: the live collection's name (or alias), for the message.
    :raises ValueError: for an unknown metric, a bad tolerance, or scores not measured alike.
    """
    if metric not in QUALITY_METRICS:
        raise ValueError(f"unknown quality metric {metric!r}; choose from {', '.join(QUALITY_METRICS)}")
    if (
        isinstance(tolerance, bool)
        or not isinstance(tolerance, int | float)
        or not math.isfinite(tolerance)
        or tolerance < 0
    ):
        raise ValueError(f"the quality tolerance must be a number of at least 0, got {tolerance!r}")
    if (new.mode, new.k, new.queries) != (live.mode, live.k, live.queries):
        raise ValueError(
            f"cannot compare {new.mode} search at k={new.k} over {new.queries} queries with "
            f"{live.mode} search at k={live.k} over {live.queries} queries"
        )
    new_score = float(getattr(new, metric))
    live_score = float(getattr(live, metric))
    passed = new_score + _EPSILON >= live_score - tolerance
    if passed:
        outcome = "no worse" if new_score + _EPSILON >= live_score else "worse, within the tolerance"
    else:
        outcome = f"worse by {live_score - new_score:.4f}, more than the tolerance"
    message = (
        f"{_metric_label(metric, new.k)} ({new.mode} search) of the new collection {new_collection!r} is "
        f"{new_score:.4f}, the live collection {live_collection!r} scores {live_score:.4f} "
        f"(tolerance {float(tolerance):.4f}): {outcome}"
    )
    return QualityVerdict(
        passed=passed,
        metric=metric,
        new=new_score,
        live=live_score,
        tolerance=float(tolerance),
        message=message,
    )
