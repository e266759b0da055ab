"""MilvusPromoteAliasOperator against the Gemini emulator and real Milvus Lite."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from pymilvus import MilvusClient

from airflow_provider_gemini_milvus.exceptions import (
    AliasMigrationLockedError,
    MigrationCheckError,
    MigrationQualityError,
)
from airflow_provider_gemini_milvus.hooks.milvus import MilvusHook
from airflow_provider_gemini_milvus.loading.alias_migration import (
    alias_target,
    probe_task_type,
    versioned_collection_name,
)
from airflow_provider_gemini_milvus.operators.gemini import GeminiEmbedOperator
from airflow_provider_gemini_milvus.operators.milvus import MilvusInsertOperator
from airflow_provider_gemini_milvus.operators.milvus_alias import MilvusPromoteAliasOperator
from airflow_provider_gemini_milvus.testing.gemini_emulator import GeminiEmulator
from airflow_provider_gemini_milvus.testing.search_set import SEARCH_DOCUMENTS, SEARCH_QUERIES

ALIAS = "docs"
OLD: dict[str, Any] = {"model": "gemini-embedding-001", "output_dimensionality": 768}
NEW: dict[str, Any] = {"model": "gemini-embedding-2", "output_dimensionality": 256}
CORPUS = [
    {"id": "milvus", "text": "Milvus stores vectors for similarity search."},
    {"id": "airflow", "text": "Airflow schedules data pipelines every day."},
    {"id": "gemini", "text": "Gemini turns text into embeddings."},
]
PROBES = {"Which database stores vectors?": "milvus"}


def fill(
    settings: dict[str, Any], documents: list[dict[str, Any]] = CORPUS, *, full_text: bool = False
) -> dict[str, Any]:
    """Embed and load the documents into the versioned collection of these settings; return the embedding."""
    collection = versioned_collection_name(ALIAS, **settings)
    result = GeminiEmbedOperator(
        task_id="embed", documents=documents, collection_name=collection, delete_missing=True, **settings
    ).execute({})
    load = MilvusInsertOperator(task_id="load", collection_name=collection, data=result, full_text=full_text)
    load.execute({})
    return result


def promote(settings: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("probe_queries", PROBES)
    operator = MilvusPromoteAliasOperator(task_id="promote", alias=ALIAS, **settings, **kwargs)
    return operator.execute({})


def target() -> str | None:
    with MilvusHook() as hook:
        return alias_target(hook, ALIAS)


# -- arguments -------------------------------------------------------------------------------------


def test_rendered_arguments_are_converted_and_the_collection_derived() -> None:
    operator = MilvusPromoteAliasOperator(
        task_id="promote",
        alias=ALIAS,
        model="gemini-embedding-2",
        output_dimensionality="256",
        task_type="retrieval_document",
        expected_rows="3",
        probe_queries=["a question"],
        probe_limit="3",
        keep_previous="0",
        retention_hours="1.5",
    )
    args = operator.converted_arguments()
    assert args.collection_name == versioned_collection_name(ALIAS, **NEW)
    assert args.fingerprint == "gemini-embedding-2/256/RETRIEVAL_DOCUMENT/prompt-v1"
    assert (args.expected_rows, args.probe_limit, args.keep_previous, args.retention_hours) == (3, 3, 0, 1.5)
    assert args.probes == [("a question", None)]


def test_an_embed_result_gives_the_expected_rows_and_must_match_the_settings() -> None:
    result = {
        "rows": [],
        "model": "gemini-embedding-2/256/RETRIEVAL_DOCUMENT/prompt-v1",
        "stats": {"documents": 7},
    }
    operator = MilvusPromoteAliasOperator(task_id="promote", alias=ALIAS, expected_rows=result, **NEW)
    assert operator.converted_arguments().expected_rows == 7

    refused = {**result, "stats": {"documents": 7, "refused": 2}}
    with_refusals = MilvusPromoteAliasOperator(task_id="promote", alias=ALIAS, expected_rows=refused, **NEW)
    assert with_refusals.converted_arguments().expected_source == (
        "the embedding task's source (of which Gemini refused 2, so they were not loaded)"
    )

    other = MilvusPromoteAliasOperator(task_id="promote", alias=ALIAS, expected_rows=result, **OLD)
    with pytest.raises(
        ValueError, match="embedding with gemini-embedding-2/256/.* promotes gemini-embedding-001/768"
    ):
        other.converted_arguments()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"alias": "bad alias"}, "alias name 'bad alias' is not valid"),
        ({"collection_name": ALIAS}, "collection_name and alias are both 'docs'"),
        ({"keep_previous": "-1"}, "keep_previous must be an integer >= 0"),
        ({"retention_hours": "soon"}, "retention_hours must be a number >= 0"),
        ({"lease_minutes": "0"}, "lease_minutes must be a number from 1 to 10080"),
        ({"probe_queries": "one question"}, "probe_queries must be a list of strings"),
        ({"probe_queries": {"q": ""}}, "probe_queries\\['q'\\] must be the id it should find"),
        ({"expected_rows": {"rows": []}}, "expected_rows is a dict but not an embedding result"),
        ({"output_dimensionality": "big"}, "output_dimensionality must be an integer"),
    ],
)
def test_bad_arguments_are_refused_naming_the_argument(kwargs: dict[str, Any], message: str) -> None:
    kwargs.setdefault("alias", ALIAS)
    operator = MilvusPromoteAliasOperator(task_id="promote", **kwargs)
    with pytest.raises(ValueError, match=message):
        operator.converted_arguments()


def test_probes_of_a_retrieval_corpus_are_queries() -> None:
    assert probe_task_type("RETRIEVAL_DOCUMENT") == "RETRIEVAL_QUERY"
    assert probe_task_type("SEMANTIC_SIMILARITY") == "SEMANTIC_SIMILARITY"


# -- migrations on Milvus Lite ---------------------------------------------------------------------

lite = pytest.mark.usefixtures("gemini_connection", "milvus_connection")


@lite
def test_a_first_run_creates_the_alias_and_a_migration_moves_it(gemini_emulator: GeminiEmulator) -> None:
    first = fill(OLD)
    summary = promote(OLD, expected_rows=first)
    old_collection = versioned_collection_name(ALIAS, **OLD)
    assert summary == {
        "alias": ALIAS,
        "collection": old_collection,
        "previous": None,
        "switched": True,
        "rows": 3,
        "probes": 1,
        "quality": None,
        "dropped": [],
    }
    assert target() == old_collection

    fill(NEW)
    summary = promote(NEW, keep_previous=0, retention_hours=0)  # compared with the alias's current target
    assert (summary["previous"], summary["switched"], summary["rows"]) == (old_collection, True, 3)
    assert summary["dropped"] == [old_collection]
    assert target() == versioned_collection_name(ALIAS, **NEW)
    with MilvusHook() as hook:
        info = hook.describe(ALIAS)
        assert info is not None
        assert info.dim == 256


@lite
def test_a_retry_after_the_switch_checks_nothing_and_sends_nothing(gemini_emulator: GeminiEmulator) -> None:
    promote(OLD, expected_rows=fill(OLD))
    gemini_emulator.reset_stats()

    summary = promote(OLD, expected_rows=3)

    assert (summary["switched"], summary["rows"], summary["probes"]) == (False, 0, 0)
    assert gemini_emulator.stats.requests == 0
    assert target() == versioned_collection_name(ALIAS, **OLD)


@lite
def test_a_row_count_mismatch_leaves_the_alias_where_it_was() -> None:
    promote(OLD, expected_rows=fill(OLD))
    fill(NEW, CORPUS[:2])

    with pytest.raises(MigrationCheckError) as raised:
        promote(NEW, keep_previous=0, retention_hours=0)

    new_collection = versioned_collection_name(ALIAS, **NEW)
    old_collection = versioned_collection_name(ALIAS, **OLD)
    assert str(raised.value) == (
        f"collection {new_collection!r} holds 2 rows but collection {old_collection!r} (the alias's current "
        f"target) has 3: the load is incomplete or the source changed; alias 'docs' still points to "
        f"{old_collection!r}"
    )
    assert target() == old_collection
    with MilvusHook() as hook:
        assert sorted(hook.get_conn().list_collections()) == sorted([old_collection, new_collection])


@lite
def test_a_probe_that_finds_the_wrong_rows_leaves_the_alias_where_it_was() -> None:
    promote(OLD, expected_rows=fill(OLD))
    fill(NEW)

    with pytest.raises(
        MigrationCheckError, match=r"probe_queries\[0\] \('Who schedules pipelines\?'\) did not find"
    ):
        promote(NEW, probe_queries={"Who schedules pipelines?": "milvus"}, probe_limit=1)

    assert target() == versioned_collection_name(ALIAS, **OLD)


@lite
def test_a_first_run_that_fails_its_checks_creates_no_alias() -> None:
    fill(OLD)
    with pytest.raises(MigrationCheckError, match="has 4: .*; alias 'docs' was not created"):
        promote(OLD, expected_rows=4)
    assert target() is None


# -- one migration of an alias at a time ------------------------------------------------------------

THIRD: dict[str, Any] = {"model": "gemini-embedding-001", "output_dimensionality": 256}


def context(run_id: str, try_number: int = 1) -> dict[str, Any]:
    """What the operator reads of a task's context: its task instance."""
    ti = SimpleNamespace(
        dag_id="migrate", run_id=run_id, task_id="promote", map_index=-1, try_number=try_number
    )
    return {"ti": ti}


def run_promote(settings: dict[str, Any], run_id: str, **kwargs: Any) -> dict[str, Any]:
    operator = MilvusPromoteAliasOperator(task_id="promote", alias=ALIAS, **settings, **kwargs)
    return operator.execute(context(run_id))  # type: ignore[arg-type]


def before_first_call(
    monkeypatch: pytest.MonkeyPatch, method: str, action: Callable[[], None], name: str | None = None
) -> list[BaseException]:
    """
    Run ``action`` (another task) once, right before the first ``MilvusClient.<method>`` call (on
    collection ``name`` when given), as if it ran at that moment; return what it raised.
    """
    real = getattr(MilvusClient, method)
    raised: list[BaseException] = []
    done: list[bool] = []

    def wrapper(self: MilvusClient, collection_name: str, *args: Any, **kwargs: Any) -> Any:
        if not done and (name is None or collection_name == name):
            done.append(True)
            try:
                action()
            except Exception as err:
                raised.append(err)
        return real(self, collection_name, *args, **kwargs)

    monkeypatch.setattr(MilvusClient, method, wrapper)
    return raised


# The other task opens its own hook: on a ``.db`` file its close would stop the Lite server under the
# first task, so both talk to one Lite server over gRPC, as two workers talk to a Milvus server.
grpc = pytest.mark.usefixtures("gemini_connection", "lite_served_over_grpc")


@grpc
def test_a_second_migration_of_the_alias_fails_naming_the_first_and_drops_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run_promote(OLD, "run_0", expected_rows=fill(OLD), probe_queries=PROBES)
    fill(NEW)
    fill(THIRD)
    # While the first migration switches the alias onto NEW, a second one moves it to THIRD and cleans up.
    second = before_first_call(
        monkeypatch,
        "alter_alias",
        lambda: run_promote(THIRD, "run_2", keep_previous=0, retention_hours=0),
    )

    summary = run_promote(NEW, "run_1", keep_previous=0, retention_hours=0, probe_queries=PROBES)

    assert len(second) == 1
    assert isinstance(second[0], AliasMigrationLockedError)
    assert str(second[0]).startswith(
        "alias 'docs' is being migrated by task 'promote' of DAG 'migrate', run 'run_1', try 1, on host "
    )
    assert summary["dropped"] == [versioned_collection_name(ALIAS, **OLD)]
    assert target() == versioned_collection_name(ALIAS, **NEW)
    with MilvusHook() as hook:
        assert sorted(hook.get_conn().list_collections()) == sorted(
            [versioned_collection_name(ALIAS, **NEW), versioned_collection_name(ALIAS, **THIRD)]
        )
        assert hook.count(ALIAS) == len(CORPUS)


@grpc
def test_a_rollback_started_during_the_clean_up_fails_and_the_alias_survives(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    old, new = versioned_collection_name(ALIAS, **OLD), versioned_collection_name(ALIAS, **NEW)
    run_promote(OLD, "run_0", expected_rows=fill(OLD), probe_queries=PROBES)
    fill(NEW)
    # The clean-up found OLD retired and is about to drop it: a rollback to OLD starts right then.
    rollback = before_first_call(
        monkeypatch, "drop_collection", lambda: run_promote(OLD, "rollback", probe_queries=PROBES), name=old
    )

    summary = run_promote(NEW, "run_1", keep_previous=0, retention_hours=0, probe_queries=PROBES)

    assert len(rollback) == 1
    assert isinstance(rollback[0], AliasMigrationLockedError)
    assert summary["dropped"] == [old]
    assert target() == new
    with MilvusHook() as hook:
        assert hook.get_conn().list_collections() == [new]
        assert hook.count(ALIAS) == len(CORPUS)


@lite
def test_a_retry_of_a_killed_try_takes_its_lease_over_and_another_run_waits(
    gemini_emulator: GeminiEmulator,
) -> None:
    from airflow_provider_gemini_milvus.loading.alias_lease import LeaseOwner, acquire_lease

    promote(OLD, expected_rows=fill(OLD))
    fill(NEW)
    operator = MilvusPromoteAliasOperator(task_id="promote", alias=ALIAS, **NEW)
    killed = operator.lease_owner(context("run_1"))  # type: ignore[arg-type]
    with MilvusHook() as hook:
        acquire_lease(hook, ALIAS, LeaseOwner(killed.key, killed.description), minutes=60)
    gemini_emulator.reset_stats()

    with pytest.raises(AliasMigrationLockedError, match="drop_collection\\('docs__migration_lock'\\)"):
        run_promote(NEW, "run_2")
    assert gemini_emulator.stats.requests == 0  # refused before any probe was paid for

    summary = operator.execute(context("run_1", try_number=2))  # type: ignore[arg-type]

    assert summary["switched"] is True
    assert target() == versioned_collection_name(ALIAS, **NEW)
    with MilvusHook() as hook:
        assert "docs__migration_lock" not in hook.get_conn().list_collections()


# -- the quality gate --------------------------------------------------------------------------------

#: A chunker bug in the new pipeline: every document cut to its first four words.
CUT_SHORT = [{**doc, "text": " ".join(doc["text"].split()[:4])} for doc in SEARCH_DOCUMENTS]


def test_quality_arguments_are_converted_from_their_rendered_form() -> None:
    operator = MilvusPromoteAliasOperator(
        task_id="promote",
        alias=ALIAS,
        quality_queries=json.dumps(SEARCH_QUERIES),  # what Jinja renders
        quality_metric="mrr",
        quality_mode="hybrid",
        quality_k="5",
        quality_tolerance="0.02",
        **NEW,
    )
    gate = operator.converted_arguments().quality_gate
    assert gate is not None
    assert (len(gate.queries), gate.metric, gate.mode, gate.k, gate.tolerance) == (
        12,
        "mrr",
        "hybrid",
        5,
        0.02,
    )
    for nothing in (None, "", "None"):
        unset = MilvusPromoteAliasOperator(task_id="p", alias=ALIAS, quality_queries=nothing, **NEW)
        assert unset.converted_arguments().quality_gate is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"quality_metric": "map"}, "quality_metric must be one of"),
        ({"quality_mode": "sparse"}, "quality_mode must be one of"),
        ({"quality_k": "0"}, "quality_k must be an integer from 1 to 16384"),
        ({"quality_tolerance": "-0.1"}, "quality_tolerance must be"),
        ({"quality_queries": [{"query": "pumps"}]}, r'quality_queries\[0\] has no "relevant"'),
    ],
)
def test_bad_quality_arguments_are_refused_naming_them(kwargs: dict[str, Any], message: str) -> None:
    operator = MilvusPromoteAliasOperator(task_id="promote", alias=ALIAS, **NEW, **kwargs)
    with pytest.raises(ValueError, match=message):
        operator.converted_arguments()


@lite
def test_a_migration_that_makes_search_worse_is_refused_naming_both_scores(
    gemini_emulator: GeminiEmulator,
) -> None:
    old, new = versioned_collection_name(ALIAS, **OLD), versioned_collection_name(ALIAS, **NEW)
    assert promote(OLD, expected_rows=fill(OLD, SEARCH_DOCUMENTS), probe_queries={})["quality"] is None
    fill(NEW, CUT_SHORT)

    with pytest.raises(MigrationQualityError) as refused:
        promote(NEW, probe_queries={}, quality_queries=SEARCH_QUERIES)

    assert isinstance(refused.value, MigrationCheckError)  # no retry can fix it
    message = str(refused.value)
    assert re.search(
        rf"nDCG@10 \(dense search\) of the new collection '{new}' is 0\.\d{{4}}, the live collection "
        rf"'{old}' scores 0\.\d{{4}} \(tolerance 0\.0000\)",
        message,
    ), message
    assert message.endswith(f"alias 'docs' still points to '{old}'")
    assert target() == old


@lite
def test_a_migration_as_good_as_the_live_one_passes_and_reports_both_scores() -> None:
    old = versioned_collection_name(ALIAS, **OLD)
    promote(OLD, expected_rows=fill(OLD, SEARCH_DOCUMENTS, full_text=True), probe_queries={})
    fill(NEW, SEARCH_DOCUMENTS, full_text=True)

    summary = promote(
        NEW, probe_queries={}, quality_queries=SEARCH_QUERIES, quality_mode="hybrid", quality_tolerance="0.1"
    )

    assert summary["switched"] is True
    assert summary["previous"] == old
    quality = summary["quality"]
    assert quality is not None
    assert (quality["metric"], quality["mode"], quality["k"], quality["queries"]) == (
        "ndcg",
        "hybrid",
        10,
        12,
    )
    assert quality["passed"] is True
    assert quality["new"] >= quality["live"] - 0.1
    assert json.loads(json.dumps(summary)) == summary


@lite
def test_a_live_collection_with_full_text_requires_it_of_the_new_one() -> None:
    old, new = versioned_collection_name(ALIAS, **OLD), versioned_collection_name(ALIAS, **NEW)
    promote(OLD, expected_rows=fill(OLD, full_text=True))
    fill(NEW)
    with pytest.raises(
        MigrationCheckError, match=rf"collection '{new}' has no full-text search, but the live"
    ):
        promote(NEW)
    assert target() == old
