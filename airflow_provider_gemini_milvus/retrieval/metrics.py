"""
Retrieval quality measures over ranked ids: recall@k, reciprocal rank (averaged: MRR) and nDCG@k.

Pure functions, no Airflow and no Milvus: a ranking is the list of ids a search returned, best first; the
labels are the ids a person marked relevant to the query, each with a grade (binary relevance is grade 1).
An id that a ranking repeats counts once, at its first (best) place.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping, Sequence

    from airflow_provider_gemini_milvus.retrieval.labelled import LabelledQuery

__all__ = [
    "RetrievalScores",
    "check_k",
    "format_scores_table",
    "ndcg_at_k",
    "recall_at_k",
    "reciprocal_rank",
    "score_rankings",
]

#: Places kept by :meth:`RetrievalScores.to_dict` and shown by :func:`format_scores_table`.
_PLACES = 4


def check_k(k: Any, name: str = "k") -> int:
    """
    The cut-off of the scores, checked.

    :param k: a whole number of at least 1.
    :param name: the argument's name, for the error.
    :raises ValueError: for anything else (``True`` and ``10.0`` included).
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"{name} must be a whole number of at least 1, got {k!r}")
    return k


def _top_k(ranked_ids: Sequence[str], k: int) -> list[str]:
    """The first ``k`` distinct ids of ``ranked_ids``, in order (a repeated id keeps its best place)."""
    check_k(k)
    seen: set[str] = set()
    top: list[str] = []
    for identifier in ranked_ids:
        if identifier in seen:
            continue
        seen.add(identifier)
        top.append(identifier)
        if len(top) == k:
            break
    return top


def recall_at_k(ranked_ids: Sequence[str], relevant: Collection[str], k: int) -> float:
    """
    The share of the relevant ids found in the top ``k``: relevant ids among the first ``k`` ranked ids,
    divided by the number of relevant ids (not by ``min(k, relevant)``, so a query with more relevant ids
    than ``k`` cannot reach 1.0).

    :param ranked_ids: the ids a search returned, best first.
    :param relevant: the relevant ids (a grades mapping counts its keys).
    :param k: how many ranked ids count, at least 1.
    :raises ValueError: when ``relevant`` is empty or ``k`` is not a whole number of at least 1.
    """
    top = _top_k(ranked_ids, k)
    if not relevant:
        raise ValueError("recall needs at least one relevant id")
    wanted = set(relevant)
    return sum(1 for identifier in top if identifier in wanted) / len(wanted)


def reciprocal_rank(ranked_ids: Sequence[str], relevant: Collection[str], k: int) -> float:
    """
    ``1 / rank`` of the first relevant id within the top ``k`` (rank 1 is the best), else 0.0.

    :param ranked_ids: the ids a search returned, best first.
    :param relevant: the relevant ids (a grades mapping counts its keys).
    :param k: how many ranked ids count, at least 1.
    :raises ValueError: when ``relevant`` is empty or ``k`` is not a whole number of at least 1.
    """
    top = _top_k(ranked_ids, k)
    if not relevant:
        raise ValueError("reciprocal rank needs at least one relevant id")
    wanted = set(relevant)
    for rank, identifier in enumerate(top, start=1):
        if identifier in wanted:
            return 1.0 / rank
    return 0.0


def _dcg(gains: Sequence[float]) -> float:
    return sum(gain / math.log2(rank + 1) for rank, gain in enumerate(gains, start=1))


def ndcg_at_k(ranked_ids: Sequence[str], grades: Mapping[str, float], k: int) -> float:
    """
    Normalised discounted cumulative gain of the top ``k``, for graded relevance.

    DCG sums ``grade / log2(rank + 1)`` over the ranked ids (rank 1 is the best; an id without a grade
    gains 0); the ideal DCG is that of the graded ids sorted by grade, best first, cut at ``k``. The result
    is DCG / ideal DCG, between 0.0 and 1.0. Binary relevance is every grade 1.

    :param ranked_ids: the ids a search returned, best first.
    :param grades: ``{id: grade}``, every grade a positive number.
    :param k: how many ranked ids count, at least 1.
    :raises ValueError: when ``grades`` is empty or holds a grade that is not a positive number, or ``k``
        is not a whole number of at least 1.
    """
    top = _top_k(ranked_ids, k)
    if not grades:
        raise ValueError("nDCG needs at least one graded id")
    for identifier, grade in grades.items():
        if (
            isinstance(grade, bool)
            or not isinstance(grade, int | float)
            or not math.isfinite(grade)
            or grade <= 0
        ):
            raise ValueError(f"the grade of {identifier!r} must be a positive number, got {grade!r}")
    ideal = _dcg(sorted(grades.values(), reverse=True)[:k])
    return _dcg([float(grades.get(identifier, 0.0)) for identifier in top]) / ideal


@dataclass(frozen=True)
class RetrievalScores:
    """
    The mean scores of one search mode over a labelled set.

    :param mode: the search mode measured (``dense``, ``full_text``, ``hybrid``).
    :param k: the cut-off of recall@k, MRR and nDCG@k.
    :param queries: how many labelled queries were averaged.
    :param recall: mean recall@k.
    :param mrr: mean reciprocal rank within the top k.
    :param ndcg: mean nDCG@k.
    """

    mode: str
    k: int
    queries: int
    recall: float
    mrr: float
    ndcg: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe (for XCom and logs), the scores rounded to 4 places."""
        return {
            "mode": self.mode,
            "k": self.k,
            "queries": self.queries,
            "recall": round(self.recall, _PLACES),
            "mrr": round(self.mrr, _PLACES),
            "ndcg": round(self.ndcg, _PLACES),
        }


def score_rankings(
    mode: str, labelled: Sequence[LabelledQuery], rankings: Sequence[Sequence[str]], k: int
) -> RetrievalScores:
    """
    Average recall@k, reciprocal rank and nDCG@k over the labelled queries.

    :param mode: the search mode that produced ``rankings`` (carried into the result).
    :param labelled: the labelled queries (see :func:`~.labelled.labelled_queries`).
    :param rankings: the ranked ids of each labelled query, in the same order.
    :param k: the cut-off, at least 1.
    :raises ValueError: when there are no queries, ``rankings`` and ``labelled`` differ in length, or ``k``
        is not a whole number of at least 1.
    """
    check_k(k)
    if not labelled:
        raise ValueError(f"no labelled queries to score the {mode} search with")
    if len(rankings) != len(labelled):
        raise ValueError(
            f"the {mode} search returned {len(rankings)} rankings for {len(labelled)} labelled queries"
        )
    recall = mrr = ndcg = 0.0
    for query, ranked in zip(labelled, rankings, strict=True):
        recall += recall_at_k(ranked, query.relevant, k)
        mrr += reciprocal_rank(ranked, query.relevant, k)
        ndcg += ndcg_at_k(ranked, query.relevant, k)
    count = len(labelled)
    return RetrievalScores(
        mode=mode, k=k, queries=count, recall=recall / count, mrr=mrr / count, ndcg=ndcg / count
    )


def format_scores_table(
    scores: Sequence[RetrievalScores], labels: Sequence[str] | None = None, label_header: str = "mode"
) -> str:
    """
    A small fixed-width text table of scores, one row per mode, for the task log::

        mode       queries  recall@10     MRR  nDCG@10
        dense           12     0.5833  0.4861   0.5012

    :param scores: the scores to show, in the order given; all with the same ``k``.
    :param labels: what the first column shows for each row; None shows the mode.
    :param label_header: the first column's header.
    :raises ValueError: when the scores were measured with different cut-offs, or labels do not match.
    """
    names = [score.mode for score in scores] if labels is None else list(labels)
    if len(names) != len(scores):
        raise ValueError(f"{len(names)} labels for {len(scores)} rows of scores")
    cut_offs = {score.k for score in scores}
    if len(cut_offs) > 1:
        raise ValueError(f"scores measured at different cut-offs {sorted(cut_offs)} cannot share one table")
    k = str(cut_offs.pop()) if cut_offs else "k"
    headers = ["queries", f"recall@{k}", "MRR", f"nDCG@{k}"]
    widths = [max(len(header), 6) for header in headers]
    mode_width = max([len(label_header), 9, *(len(name) for name in names)])
    lines = [
        "  ".join(
            [label_header.ljust(mode_width), *(h.rjust(w) for h, w in zip(headers, widths, strict=True))]
        )
    ]
    for name, score in zip(names, scores, strict=True):
        cells = [
            str(score.queries),
            *(f"{value:.{_PLACES}f}" for value in (score.recall, score.mrr, score.ndcg)),
        ]
        lines.append(
            "  ".join([name.ljust(mode_width), *(c.rjust(w) for c, w in zip(cells, widths, strict=True))])
        )
    return "\n".join(lines)
