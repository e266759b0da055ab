"""evaluate_search scores each mode through the caller's ranking function; compare_scores is the quality
gate's decision, with a message naming both collections and both scores."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from airflow_provider_gemini_milvus.retrieval.evaluation import (
    QUALITY_METRICS,
    SEARCH_MODES,
    QualityVerdict,
    check_modes,
    compare_scores,
    evaluate_search,
)
from airflow_provider_gemini_milvus.retrieval.labelled import LabelledQuery
from airflow_provider_gemini_milvus.retrieval.metrics import RetrievalScores

LABELLED = [LabelledQuery("E-2207", {"kb-020": 1.0}), LabelledQuery("descale", {"kb-022": 1.0})]
#: What each mode "returns" for the two queries above.
ANSWERS = {
    "dense": [["kb-1", "kb-2", "kb-3", "kb-020"], ["kb-022", "kb-1"]],
    "full_text": [["kb-020"], ["kb-1", "kb-2", "kb-022"]],
    "hybrid": [["kb-020", "kb-1"], ["kb-022"]],
}


class Ranker:
    """A ranking function that records its calls (the caller wires the real one to Milvus)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[str]]] = []

    def __call__(self, mode: str, queries: Sequence[str]) -> list[list[str]]:
        self.calls.append((mode, list(queries)))
        return ANSWERS[mode]


def test_the_constants() -> None:
    assert SEARCH_MODES == ("dense", "full_text", "hybrid")
    assert QUALITY_METRICS == ("recall", "mrr", "ndcg")


# -- evaluate_search --------------------------------------------------------------------------------


def test_each_mode_is_ranked_once_with_every_query_and_scored() -> None:
    ranker = Ranker()
    scores = evaluate_search(LABELLED, ranker, modes=["hybrid", "dense", "full_text"], k=3)
    assert ranker.calls == [(mode, ["E-2207", "descale"]) for mode in ("hybrid", "dense", "full_text")]
    assert [score.mode for score in scores] == ["hybrid", "dense", "full_text"]
    hybrid, dense, full_text = scores
    assert (hybrid.recall, hybrid.mrr, hybrid.ndcg) == (1.0, 1.0, 1.0)
    assert dense.recall == pytest.approx(0.5)  # kb-020 is 4th, beyond k=3
    assert dense.mrr == pytest.approx(0.5)
    assert full_text.mrr == pytest.approx((1.0 + 1 / 3) / 2)
    assert all(score.k == 3 and score.queries == 2 for score in scores)


def test_repeated_modes_are_ranked_once() -> None:
    ranker = Ranker()
    scores = evaluate_search(LABELLED, ranker, modes=["dense", "hybrid", "dense"], k=10)
    assert [mode for mode, _ in ranker.calls] == ["dense", "hybrid"]
    assert [score.mode for score in scores] == ["dense", "hybrid"]


def test_one_mode_as_a_string() -> None:
    ranker = Ranker()
    assert [score.mode for score in evaluate_search(LABELLED, ranker, modes="hybrid", k=10)] == ["hybrid"]


def test_an_unknown_mode_is_refused_before_any_ranking() -> None:
    ranker = Ranker()
    with pytest.raises(
        ValueError,
        match=r"^modes names the unknown search mode 'sparse'; choose from dense, full_text, hybrid$",
    ):
        evaluate_search(LABELLED, ranker, modes=["dense", "sparse"], k=10)
    assert ranker.calls == []


def test_no_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="^modes is empty; choose from dense, full_text, hybrid$"):
        evaluate_search(LABELLED, Ranker(), modes=[], k=10)


@pytest.mark.parametrize("k", [0, -3, 2.5, True, "10", None])
def test_a_bad_k_is_refused_before_any_ranking(k: object) -> None:
    ranker = Ranker()
    with pytest.raises(ValueError, match="^k must be a whole number of at least 1, got "):
        evaluate_search(LABELLED, ranker, modes=["dense"], k=k)  # type: ignore[arg-type]
    assert ranker.calls == []


def test_no_labelled_queries_are_refused() -> None:
    with pytest.raises(ValueError, match="no labelled queries"):
        evaluate_search([], Ranker(), modes=["dense"], k=10)


def test_a_ranking_function_that_answers_too_few_rankings_is_named() -> None:
    with pytest.raises(ValueError, match="the hybrid search returned 1 rankings for 2 labelled queries"):
        evaluate_search(LABELLED, lambda mode, queries: [["kb-020"]], modes=["hybrid"], k=10)


def test_check_modes_names_the_argument() -> None:
    with pytest.raises(ValueError, match="^evaluation_modes names the unknown search mode 'Dense'"):
        check_modes(["Dense"], name="evaluation_modes")
    assert check_modes(("full_text", "full_text")) == ["full_text"]


# -- compare_scores: the quality gate ---------------------------------------------------------------


def scores(ndcg: float, *, mode: str = "hybrid", k: int = 10, queries: int = 12) -> RetrievalScores:
    return RetrievalScores(mode=mode, k=k, queries=queries, recall=0.9, mrr=ndcg / 2, ndcg=ndcg)


def compare(new: RetrievalScores, live: RetrievalScores, **options: object) -> QualityVerdict:
    arguments: dict[str, object] = {
        "metric": "ndcg",
        "tolerance": 0.02,
        "new_collection": "docs_v2",
        "live_collection": "docs_v1",
        **options,
    }
    return compare_scores(new, live, **arguments)  # type: ignore[arg-type]


def test_a_worse_new_collection_fails_naming_both_scores() -> None:
    verdict = compare(scores(0.412), scores(0.631))
    assert not verdict.passed
    assert verdict.message == (
        "nDCG@10 (hybrid search) of the new collection 'docs_v2' is 0.4120, the live collection 'docs_v1' "
        "scores 0.6310 (tolerance 0.0200): worse by 0.2190, more than the tolerance"
    )
    assert (verdict.metric, verdict.new, verdict.live, verdict.tolerance) == ("ndcg", 0.412, 0.631, 0.02)


def test_a_better_new_collection_passes() -> None:
    verdict = compare(scores(0.7), scores(0.6))
    assert verdict.passed
    assert verdict.message.endswith("(tolerance 0.0200): no worse")


def test_a_slightly_worse_new_collection_passes_within_the_tolerance() -> None:
    verdict = compare(scores(0.62), scores(0.63))
    assert verdict.passed
    assert verdict.message.endswith("worse, within the tolerance")


def test_exactly_the_tolerance_worse_passes() -> None:
    # 0.18 is 0.2 - 0.02, though in floats 0.2 - 0.02 = 0.18000000000000002
    assert compare(scores(0.18), scores(0.2)).passed
    assert not compare(scores(0.1799), scores(0.2)).passed


def test_equal_scores_pass_with_no_tolerance() -> None:
    assert compare(scores(0.5), scores(0.5), tolerance=0).passed


@pytest.mark.parametrize(
    ("metric", "label", "value"), [("recall", "recall@10", "0.9000"), ("mrr", "MRR@10", "0.2500")]
)
def test_the_other_metrics(metric: str, label: str, value: str) -> None:
    verdict = compare(scores(0.5), scores(0.5), metric=metric)
    assert verdict.message.startswith(f"{label} (hybrid search) of the new collection 'docs_v2' is {value}")
    assert verdict.passed


def test_an_unknown_metric_is_refused() -> None:
    with pytest.raises(ValueError, match="^unknown quality metric 'map'; choose from recall, mrr, ndcg$"):
        compare(scores(0.5), scores(0.5), metric="map")


@pytest.mark.parametrize("tolerance", [-0.01, float("nan"), float("inf"), "0.1", True, None])
def test_a_bad_tolerance_is_refused(tolerance: object) -> None:
    with pytest.raises(ValueError, match="^the quality tolerance must be a number of at least 0"):
        compare(scores(0.5), scores(0.5), tolerance=tolerance)


@pytest.mark.parametrize(
    "live",
    [scores(0.5, mode="dense"), scores(0.5, k=5), scores(0.5, queries=11)],
    ids=["mode", "k", "queries"],
)
def test_scores_measured_differently_are_not_compared(live: RetrievalScores) -> None:
    with pytest.raises(ValueError, match="^cannot compare hybrid search at k=10 over 12 queries with"):
        compare(scores(0.5), live)


def test_the_verdict_is_json_safe() -> None:
    assert compare(scores(0.412345), scores(0.631)).to_dict() == {
        "passed": False,
        "metric": "ndcg",
        "new": 0.4123,
        "live": 0.631,
        "tolerance": 0.02,
        "message": compare(scores(0.412345), scores(0.631)).message,
    }
