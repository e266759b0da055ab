"""The learned-quota record: aging, learners of one job, the JSON form (numbers only)."""

from __future__ import annotations

import json

import pytest

from airflow_provider_gemini_milvus.gemini.learned_rate import (
    FRESH_SECONDS,
    HALF_LIFE_SECONDS,
    MAX_AGE_SECONDS,
    MAX_LEARNERS,
    LearnedQuota,
    LearnerShare,
    trust,
)

NOW = 1_800_000_000.0


def share(learner: str, requests: float, since: float = NOW - 60, until: float = NOW) -> LearnerShare:
    return LearnerShare(learner, requests, requests * 100, since, until)


def test_a_record_is_trusted_whole_while_fresh_then_halved_every_half_life_then_ignored() -> None:
    assert trust(0.0) == trust(FRESH_SECONDS) == 1.0
    assert trust(FRESH_SECONDS + HALF_LIFE_SECONDS) == pytest.approx(0.5)
    assert trust(MAX_AGE_SECONDS + 1) == 0.0
    assert trust(-2 * 3600.0) == 0.0  # written by a clock hours ahead


def test_a_new_hook_starts_from_the_median_share_of_the_last_jobs_learners_aged() -> None:
    record = LearnedQuota((share("a", 2.0), share("b", 2.5), share("c", 2.6), share("d", 9.0)))
    assert record.start_rates(NOW) == pytest.approx((2.55, 255.0))
    assert record.total_requests_per_second == pytest.approx(16.1)
    old = NOW + FRESH_SECONDS + HALF_LIFE_SECONDS
    assert record.start_rates(old) == pytest.approx((2.55 / 2, 255.0 / 2))
    assert record.start_rates(NOW + MAX_AGE_SECONDS + 1) is None


def test_a_learner_writes_beside_those_that_ran_with_it_replaces_its_own_and_drops_an_earlier_jobs() -> None:
    earlier_job = share("old", 9.0, since=NOW - 500, until=NOW - 400)
    neighbour = share("b", 2.5, since=NOW - 70, until=NOW - 5)
    record = LearnedQuota((earlier_job, neighbour, share("a", 1.0, until=NOW - 30)))
    written = record.with_share(share("a", 2.4))
    assert sorted((s.learner, s.requests_per_second) for s in written.learners) == [("a", 2.4), ("b", 2.5)]


def test_a_record_keeps_at_most_the_last_learners() -> None:
    record = LearnedQuota(tuple(share(f"l{n}", 1.0, until=NOW + n) for n in range(MAX_LEARNERS)))
    written = record.with_share(share("new", 1.0, until=NOW + MAX_LEARNERS))
    assert len(written.learners) == MAX_LEARNERS
    assert "l0" not in {s.learner for s in written.learners}


def test_the_json_form_holds_numbers_and_learner_ids_only_and_reads_back() -> None:
    record = LearnedQuota((share("ab12", 2.5), share("cd34", 2.25)))
    text = record.to_json()
    data = json.loads(text)
    assert set(data) == {"version", "learners"}
    for entry in data["learners"]:
        assert set(entry) == {"learner", "requests_per_second", "tokens_per_second", "since", "until"}
        assert all(isinstance(entry[key], float | int) for key in entry if key != "learner")
    assert LearnedQuota.from_json(text) == record


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json at all: sk-secret", "is not JSON"),
        ('{"version": 9, "learners": []}', "not a version 1 record"),
        ('{"version": 1, "learners": []}', "has no learners"),
        ('{"version": 1, "learners": [{"learner": "a"}]}', "has no 'requests_per_second'"),
        (
            (
                '{"version": 1, "learners": [{"learner": "a", "requests_per_second": "fast", '
                '"tokens_per_second": 1, "since": 1, "until": 2}]}'
            ),
            "must be numbers",
        ),
        (
            (
                '{"version": 1, "learners": [{"learner": "a", "requests_per_second": -1, '
                '"tokens_per_second": 1, "since": 1, "until": 2}]}'
            ),
            "positive request rate",
        ),
    ],
)
def test_an_unreadable_record_is_refused_without_quoting_it(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as raised:
        LearnedQuota.from_json(text)
    assert "sk-secret" not in str(raised.value)
