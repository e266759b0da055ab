"""
What GeminiHook keeps of a learned quota, and where: the next hook (the next task) starts from it. Against
the emulator enforcing a quota; counts and stored values, never times.
"""

from __future__ import annotations

import json
import logging
import time

import pytest

from airflow_provider_gemini_milvus.gemini.learned_rate import (
    FRESH_SECONDS,
    HALF_LIFE_SECONDS,
    MAX_AGE_SECONDS,
    LearnedQuota,
    LearnerShare,
)
from airflow_provider_gemini_milvus.hooks.gemini import GeminiHook
from airflow_provider_gemini_milvus.hooks.quota_memory import QuotaMemory, quota_variable_key
from airflow_provider_gemini_milvus.testing.gemini_emulator import GeminiEmulator
from airflow_provider_gemini_milvus.testing.pytest_plugin import GeminiConnectionFactory

KEY = quota_variable_key("gemini_default", "gemini-embedding-001")
# Quotas counted over a 1-second window: 600 a minute allows 10 requests in any second.
QUOTA = {"requests_per_minute": 600, "quota_window_seconds": 1.0}
RETRIES = {"max_retries": 50, "retry_initial_delay": 0.01, "retry_max_delay": 0.2}
REQUESTS = 60


class DictStore:
    """A store in this process's memory (the hook's ``quota_store``), as a script outside Airflow may pass."""

    def __init__(self, records: dict[str, str] | None = None) -> None:
        self.records = dict(records or {})
        self.writes = 0

    def read(self, key: str) -> str | None:
        return self.records.get(key)

    def write(self, key: str, value: str) -> None:
        self.records[key] = value
        self.writes += 1


class BrokenStore:
    """A store that cannot be reached (the API server down, a Variable backend refusing)."""

    def read(self, key: str) -> str | None:
        raise ConnectionError("api server unreachable: sk-not-to-be-logged")

    def write(self, key: str, value: str) -> None:
        raise ConnectionError("api server unreachable: sk-not-to-be-logged")


def logged(caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> str:
    """What was logged: through logging, or printed by Airflow's structured task logger."""
    captured = capsys.readouterr()
    return caplog.text + captured.out + captured.err


def corpus(count: int) -> list[str]:
    return [f"private text {index} on subject {index % 5}" for index in range(count)]


def record(requests_per_second: float, age_seconds: float = 60.0) -> str:
    until = time.time() - age_seconds
    share = LearnerShare("earlier", requests_per_second, requests_per_second * 10, until - 60, until)
    return LearnedQuota((share,)).to_json()


@pytest.fixture
def quota(gemini_emulator: GeminiEmulator, gemini_connection_factory: GeminiConnectionFactory):
    gemini_emulator.configure(latency_seconds=0.05, **QUOTA)

    def connect(**extra: object) -> None:
        gemini_connection_factory(**{**RETRIES, **extra})

    connect()
    return connect


def run(emulator: GeminiEmulator, hook: GeminiHook) -> int:
    emulator.reset_quotas()
    result = hook.embed_with_stats(corpus(REQUESTS), batch_size=1, output_dimensionality=128)
    assert result.vectors.shape == (REQUESTS, 128)
    return result.stats.rate_limited


@pytest.mark.usefixtures("quota")
def test_the_next_hook_starts_from_the_rate_the_first_learned_and_meets_fewer_429s(
    gemini_emulator: GeminiEmulator,
) -> None:
    store = DictStore()
    first = GeminiHook(quota_store=store)
    first_429s = run(gemini_emulator, first)
    assert first.adaptive_window().start_rate is None  # slow start: nothing was known
    assert first_429s > 0
    learned = LearnedQuota.from_json(store.records[KEY])
    [share] = learned.learners
    assert share.requests_per_second > 0

    second = GeminiHook(quota_store=store)
    second_429s = run(gemini_emulator, second)
    window = second.adaptive_window()
    assert window.started_from_rate
    assert window.start_rate == pytest.approx(share.requests_per_second, rel=1e-3)
    assert second_429s < first_429s
    # The second hook wrote its own share; the first one's (an earlier job) is gone.
    assert [s.learner for s in LearnedQuota.from_json(store.records[KEY]).learners] != [share.learner]


@pytest.mark.usefixtures("quota")
def test_a_record_keeps_no_secret_and_no_text(gemini_emulator: GeminiEmulator) -> None:
    store = DictStore()
    run(gemini_emulator, GeminiHook(quota_store=store))
    [(key, text)] = store.records.items()
    assert key == "gemini_milvus_learned_quota.gemini_default.gemini-embedding-001"
    assert gemini_emulator.api_key not in text
    assert "private text" not in text
    for learner in json.loads(text)["learners"]:
        assert set(learner) == {"learner", "requests_per_second", "tokens_per_second", "since", "until"}


def test_a_quota_configured_on_the_connection_caps_the_remembered_rate(
    quota, gemini_emulator: GeminiEmulator
) -> None:
    quota(requests_per_minute=300)
    hook = GeminiHook(quota_store=DictStore({KEY: record(50.0)}))
    hook.embed(corpus(20), batch_size=1, output_dimensionality=128)
    assert hook.adaptive_window().start_rate == pytest.approx(300 / 60)


@pytest.mark.usefixtures("quota")
def test_the_remembered_token_rate_caps_the_start_in_requests_of_this_calls_size() -> None:
    # record() keeps 10 tokens a request at 50 a second; this call's requests carry 5 texts.
    hook = GeminiHook(quota_store=DictStore({KEY: record(50.0)}))
    hook.embed(corpus(20), batch_size=5, output_dimensionality=128)
    assert hook.adaptive_window().start_rate < 50.0


@pytest.mark.usefixtures("quota")
@pytest.mark.parametrize(
    ("age", "share"),
    [(60.0, 1.0), (FRESH_SECONDS + HALF_LIFE_SECONDS, 0.5), (MAX_AGE_SECONDS + 60, None)],
)
def test_the_memory_ages(age: float, share: float | None) -> None:
    hook = GeminiHook(quota_store=DictStore({KEY: record(8.0, age_seconds=age)}))
    hook.embed(corpus(5), batch_size=1, output_dimensionality=128)
    start = hook.adaptive_window().start_rate
    assert start == (None if share is None else pytest.approx(8.0 * share, rel=1e-3))


@pytest.mark.usefixtures("quota")
def test_an_unreadable_record_falls_back_to_slow_start_with_a_log_line(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    hook = GeminiHook(quota_store=DictStore({KEY: "{not json: sk-secret"}))
    hook.embed(corpus(5), batch_size=1, output_dimensionality=128)
    assert hook.adaptive_window().start_rate is None
    text = logged(caplog, capsys)
    assert f"Ignoring Variable {KEY}, starting in slow start: the learned quota record is not JSON" in text
    assert "sk-secret" not in text


@pytest.mark.usefixtures("quota")
def test_a_broken_store_falls_back_to_slow_start_with_one_log_line_and_the_call_succeeds(
    gemini_emulator: GeminiEmulator, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    hook = GeminiHook(quota_store=BrokenStore())
    run(gemini_emulator, hook)
    run(gemini_emulator, hook)
    assert hook.adaptive_window().start_rate is None
    text = logged(caplog, capsys)
    line = f"Could not read Variable {KEY} (ConnectionError); this task learns its quota from slow start"
    assert line in text
    assert "Could not write" not in text  # given up after the first failure: one line
    assert "sk-not-to-be-logged" not in text


@pytest.mark.usefixtures("quota")
def test_outside_a_task_without_a_store_the_hook_starts_in_slow_start_quietly(
    gemini_emulator: GeminiEmulator, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.INFO)
    hook = GeminiHook()
    run(gemini_emulator, hook)
    run(gemini_emulator, hook)
    assert hook.adaptive_window().start_rate is None
    assert "Variable" not in logged(caplog, capsys)


def test_remember_quota_false_neither_reads_nor_writes(quota, gemini_emulator: GeminiEmulator) -> None:
    quota(remember_quota=False)
    store = DictStore({KEY: record(8.0)})
    hook = GeminiHook(quota_store=store)
    run(gemini_emulator, hook)
    assert hook.adaptive_window().start_rate is None
    assert store.writes == 0


def test_the_variable_key_names_connection_and_model_only() -> None:
    assert quota_variable_key("my conn/1", "models/gemini-embedding-001") == (
        "gemini_milvus_learned_quota.my_conn_1.gemini-embedding-001"
    )


def test_writes_are_spaced_and_a_write_joins_the_learners_that_ran_beside_it() -> None:
    now = [1_800_000_000.0]
    neighbour = LearnerShare("neighbour", 2.5, 250.0, now[0] - 100, now[0] - 10)  # ran beside it
    store = DictStore({KEY: LearnedQuota((neighbour,)).to_json()})
    log = logging.getLogger(__name__)
    memory = QuotaMemory(store, "gemini_default", "gemini-embedding-001", log, clock=lambda: now[0])
    assert memory.due()
    memory.remember(2.0, 200.0, since=now[0] - 120)
    assert not memory.due()
    now[0] += 60
    assert memory.due()
    assert store.writes == 1
    assert len(LearnedQuota.from_json(store.records[KEY]).learners) == 2


# -- inside Airflow: an Airflow Variable, under dag.test() --------------------------------------------------


@pytest.mark.usefixtures("airflow_db", "quota")
def test_dag_test_the_second_run_starts_from_what_the_first_kept_in_an_airflow_variable(
    gemini_emulator: GeminiEmulator,
) -> None:
    from airflow.models.variable import Variable
    from airflow.sdk import DagRunState
    from airflow.utils.session import create_session

    from airflow_provider_gemini_milvus.testing.xcom import xcom_return_value
    from tests.dags.dag_gemini_quota_memory import gemini_quota_memory

    with create_session() as session:
        session.query(Variable).filter(Variable.key == KEY).delete()

    first = gemini_quota_memory().test()
    assert first.state == DagRunState.SUCCESS
    returned = xcom_return_value("gemini_quota_memory", "embed", first.run_id)
    assert returned["start_rate"] is None
    assert returned["rate_limited"] > 0
    with create_session() as session:
        stored = session.query(Variable).filter(Variable.key == KEY).one().val
    assert gemini_emulator.api_key not in stored
    [share] = LearnedQuota.from_json(stored).learners

    gemini_emulator.reset_quotas()
    second = gemini_quota_memory().test()
    assert second.state == DagRunState.SUCCESS
    returned = xcom_return_value("gemini_quota_memory", "embed", second.run_id)
    # The stored token rate is rounded: the start from it is a hair under the request rate.
    assert returned["start_rate"] == pytest.approx(share.requests_per_second, rel=1e-3)
