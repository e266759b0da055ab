"""recall@k, reciprocal rank, nDCG@k, their averages over labelled queries, and the logged table."""

from __future__ import annotations

import json
import math

import pytest

from airflow_provider_gemini_milvus.retrieval.labelled import LabelledQuery
from airflow_provider_gemini_milvus.retrieval.metrics import (
    RetrievalScores,
    format_scores_table,
    ndcg_at_k,
    recall_at_k,
    reciprocal_rank,
    score_rankings,
)

RANKED = ["a", "b", "c", "d", "e"]


# -- recall@k ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("relevant", "k", "expected"),
    [
        ({"a"}, 1, 1.0),
        ({"c"}, 2, 0.0),
        ({"c"}, 3, 1.0),
        ({"a", "d"}, 3, 0.5),
        ({"a", "d", "z"}, 5, 2 / 3),
        ({"z"}, 5, 0.0),
    ],
)
def test_recall_counts_the_relevant_ids_in_the_top_k(relevant: set[str], k: int, expected: float) -> None:
    assert recall_at_k(RANKED, relevant, k) == pytest.approx(expected)


def test_recall_divides_by_the_relevant_ids_not_by_k() -> None:
    # three relevant ids, k=2: both places relevant is still 2/3, not 1.0
    assert recall_at_k(["a", "b"], {"a", "b", "c"}, 2) == pytest.approx(2 / 3)


def test_recall_reads_the_keys_of_a_grades_mapping() -> None:
    assert recall_at_k(RANKED, {"b": 3.0, "z": 1.0}, 5) == pytest.approx(0.5)


def test_a_repeated_id_counts_once() -> None:
    assert recall_at_k(["a", "a", "b"], {"a", "b"}, 2) == pytest.approx(1.0)
    assert ndcg_at_k(["a", "a"], {"a": 1.0}, 2) == pytest.approx(1.0)


# -- reciprocal rank --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("relevant", "k", "expected"),
    [({"a"}, 5, 1.0), ({"c", "e"}, 5, 1 / 3), ({"e"}, 4, 0.0), ({"z"}, 5, 0.0), ({"b"}, 2, 0.5)],
)
def test_reciprocal_rank_of_the_first_relevant_id_within_k(
    relevant: set[str], k: int, expected: float
) -> None:
    assert reciprocal_rank(RANKED, relevant, k) == pytest.approx(expected)


# -- nDCG@k -----------------------------------------------------------------------------------------


def test_ndcg_of_a_perfect_ranking_is_one() -> None:
    assert ndcg_at_k(["a", "b", "c"], {"a": 3.0, "b": 2.0, "c": 1.0}, 3) == pytest.approx(1.0)


def test_ndcg_uses_the_log2_discount_and_the_ideal_order_of_the_grades() -> None:
    grades = {"a": 1.0, "c": 3.0}
    dcg = 1.0 / math.log2(2) + 3.0 / math.log2(4)
    ideal = 3.0 / math.log2(2) + 1.0 / math.log2(3)
    assert ndcg_at_k(RANKED, grades, 5) == pytest.approx(dcg / ideal)


def test_ndcg_binary_relevance_found_at_rank_2() -> None:
    assert ndcg_at_k(RANKED, {"b": 1.0}, 10) == pytest.approx(1 / math.log2(3))


def test_ndcg_cuts_the_ideal_at_k() -> None:
    # three relevant ids, k=1: the best possible is one relevant id at rank 1, and "a" is one
    assert ndcg_at_k(RANKED, {"a": 1.0, "x": 1.0, "y": 1.0}, 1) == pytest.approx(1.0)


def test_ndcg_without_relevant_ids_in_the_top_k_is_zero() -> None:
    assert ndcg_at_k(RANKED, {"z": 2.0}, 5) == 0.0
    assert ndcg_at_k([], {"z": 2.0}, 5) == 0.0


@pytest.mark.parametrize("grade", [0, -1.0, float("nan"), True, "2"])
def test_ndcg_refuses_a_grade_that_is_not_positive(grade: object) -> None:
    with pytest.raises(ValueError, match="the grade of 'a' must be a positive number"):
        ndcg_at_k(RANKED, {"a": grade}, 5)  # type: ignore[dict-item]


@pytest.mark.parametrize("k", [0, -1, 1.5, True, "10"])
def test_every_metric_refuses_a_bad_k(k: object) -> None:
    for metric in (recall_at_k, reciprocal_rank, ndcg_at_k):
        with pytest.raises(ValueError, match="k must be a whole number of at least 1"):
            metric(RANKED, {"a": 1.0}, k)  # type: ignore[operator]


def test_every_metric_refuses_an_empty_relevant_set() -> None:
    for metric in (recall_at_k, reciprocal_rank, ndcg_at_k):
        with pytest.raises(ValueError, match="at least one"):
            metric(RANKED, {}, 5)


# -- averages over labelled queries -----------------------------------------------------------------

LABELLED = [
    LabelledQuery("q1", {"a": 1.0}),
    LabelledQuery("q2", {"c": 1.0, "x": 1.0}),
]


def test_score_rankings_averages_over_the_queries() -> None:
    scores = score_rankings("hybrid", LABELLED, [["a", "b"], ["b", "c"]], k=2)
    assert scores.mode == "hybrid"
    assert scores.k == 2
    assert scores.queries == 2
    assert scores.recall == pytest.approx((1.0 + 0.5) / 2)
    assert scores.mrr == pytest.approx((1.0 + 0.5) / 2)
    second_ndcg = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    assert scores.ndcg == pytest.approx((1.0 + second_ndcg) / 2)


def test_score_rankings_refuses_rankings_that_do_not_match_the_queries() -> None:
    with pytest.raises(ValueError, match="the dense search returned 1 rankings for 2 labelled queries"):
        score_rankings("dense", LABELLED, [["a"]], k=10)


def test_score_rankings_refuses_no_queries() -> None:
    with pytest.raises(ValueError, match="no labelled queries"):
        score_rankings("dense", [], [], k=10)


def test_scores_to_dict_is_json_safe_and_rounded() -> None:
    scores = RetrievalScores(mode="dense", k=10, queries=3, recall=2 / 3, mrr=0.123456, ndcg=1.0)
    as_dict = scores.to_dict()
    assert as_dict == {"mode": "dense", "k": 10, "queries": 3, "recall": 0.6667, "mrr": 0.1235, "ndcg": 1.0}
    assert json.loads(json.dumps(as_dict)) == as_dict


# -- the logged table -------------------------------------------------------------------------------


def test_the_table_has_a_header_and_one_aligned_row_per_mode() -> None:
    table = format_scores_table(
        [
            RetrievalScores(mode="dense", k=10, queries=12, recall=0.58333, mrr=0.48611, ndcg=0.50123),
            RetrievalScores(mode="full_text", k=10, queries=12, recall=0.75, mrr=0.7, ndcg=0.71),
            RetrievalScores(mode="hybrid", k=10, queries=12, recall=1.0, mrr=0.9, ndcg=0.95),
        ]
    )
    lines = table.splitlines()
    assert lines[0].split() == ["mode", "queries", "recall@10", "MRR", "nDCG@10"]
    assert lines[1].split() == ["dense", "12", "0.5833", "0.4861", "0.5012"]
    assert lines[2].split()[0] == "full_text"
    assert len({len(line) for line in lines}) == 1  # fixed width
    # numbers are right-aligned under their headers
    assert all(line.endswith(("nDCG@10", "0.5012", "0.7100", "0.9500")) for line in lines)


def test_the_table_refuses_scores_of_different_cut_offs() -> None:
    with pytest.raises(ValueError, match=r"different cut-offs \[5, 10\]"):
        format_scores_table(
            [
                RetrievalScores(mode="dense", k=10, queries=1, recall=1, mrr=1, ndcg=1),
                RetrievalScores(mode="hybrid", k=5, queries=1, recall=1, mrr=1, ndcg=1),
            ]
        )


def test_the_table_can_label_its_rows() -> None:
    scores = [RetrievalScores(mode="dense", k=5, queries=2, recall=1, mrr=1, ndcg=1)] * 2
    table = format_scores_table(scores, labels=["new docs_v2", "live docs_v1"], label_header="collection")
    assert [line.split()[:2] for line in table.splitlines()] == [
        ["collection", "queries"],
        ["new", "docs_v2"],
        ["live", "docs_v1"],
    ]
    with pytest.raises(ValueError, match="1 labels for 2 rows"):
        format_scores_table(scores, labels=["one"])


def test_an_empty_table_is_its_header() -> None:
    assert format_scores_table([]).split() == ["mode", "queries", "recall@k", "MRR", "nDCG@k"]
