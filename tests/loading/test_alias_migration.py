"""Aliases, versioned collections, the switch and retention, on Milvus Lite."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymilvus import MilvusClient, MilvusException

from airflow_provider_gemini_milvus.exceptions import AliasMigrationLockedError, MigrationCheckError
from airflow_provider_gemini_milvus.hooks.milvus import MilvusHook
from airflow_provider_gemini_milvus.loading.alias_lease import (
    PROPERTY_LOCK_EXPIRES_AT,
    PROPERTY_LOCK_OWNER,
    LeaseOwner,
    acquire_lease,
    lock_collection_name,
)
from airflow_provider_gemini_milvus.loading.alias_migration import (
    PROPERTY_ALIAS,
    PROPERTY_MODEL,
    PROPERTY_PROMOTED_AT,
    PROPERTY_RETIRED_AT,
    RetiredVersion,
    alias_target,
    drop_retired_versions,
    embedding_fingerprint,
    retired_versions,
    switch_alias,
    verify_collection,
    versioned_collection_name,
    versions_to_drop,
)
from airflow_provider_gemini_milvus.milvus.layout import NAME_MAX_LENGTH, check_name
from airflow_provider_gemini_milvus.milvus.rows import content_hash
from airflow_provider_gemini_milvus.operators.milvus import MilvusInsertOperator

ALIAS = "docs"
FINGERPRINT = "gemini-embedding-2/4/RETRIEVAL_DOCUMENT/prompt-v1"
START = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


def rows(prefix: str, count: int, model: str = FINGERPRINT) -> list[dict[str, Any]]:
    return [
        {"id": f"{prefix}-{i}", "vector": [1.0, float(i), 0.5, 0.5], "text": f"{prefix} {i}", "model": model}
        for i in range(count)
    ]


def load(collection: str, data: list[dict[str, Any]]) -> None:
    MilvusInsertOperator(task_id="load", collection_name=collection, data=data).execute({})


def properties(hook: MilvusHook, collection: str) -> dict[str, Any]:
    return dict(hook.get_conn().describe_collection(collection).get("properties") or {})


# -- names -----------------------------------------------------------------------------------------


def test_versioned_name_is_the_same_for_the_same_settings_and_differs_for_others() -> None:
    name = versioned_collection_name(ALIAS, "gemini-embedding-001", 768)
    assert name.startswith("docs__gemini_embedding_001_768_retrieval_document_")
    assert name == versioned_collection_name(ALIAS, "models/gemini-embedding-001", 768)
    assert name == versioned_collection_name(ALIAS, "gemini-embedding-001", 768, "retrieval_document")
    others = {
        versioned_collection_name(ALIAS, "gemini-embedding-001", 1536),
        versioned_collection_name(ALIAS, "gemini-embedding-001", 768, "SEMANTIC_SIMILARITY"),
        versioned_collection_name(ALIAS, "gemini-embedding-2", 768),
        versioned_collection_name("docs2", "gemini-embedding-001", 768),
    }
    assert name not in others
    assert len(others) == 4


def test_versioned_name_without_dimensionality_is_the_model_default() -> None:
    assert versioned_collection_name(ALIAS, "gemini-embedding-2") == versioned_collection_name(
        ALIAS, "gemini-embedding-2", 3072
    )
    assert embedding_fingerprint("gemini-embedding-2", None, "retrieval_document") == (
        "gemini-embedding-2/3072/RETRIEVAL_DOCUMENT/prompt-v1"
    )


def test_a_long_alias_keeps_a_valid_name_with_the_settings_hash() -> None:
    alias = "a" * 240
    name = versioned_collection_name(alias, "gemini-embedding-001", 768)
    assert len(name) <= NAME_MAX_LENGTH
    assert check_name(name) == name
    assert name != versioned_collection_name(alias, "gemini-embedding-001", 1536)


@pytest.mark.parametrize(
    ("alias", "model", "dim", "message"),
    [
        ("bad-alias", "gemini-embedding-001", 768, "alias name 'bad-alias' is not valid"),
        (ALIAS, "no-such-model", 768, "unknown embedding model"),
        (ALIAS, "gemini-embedding-001", 5, "out of range"),
    ],
)
def test_versioned_name_refuses_bad_settings(alias: str, model: str, dim: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        versioned_collection_name(alias, model, dim)


# -- aliases on Milvus Lite ------------------------------------------------------------------------

pytestmark_lite = pytest.mark.usefixtures("milvus_connection")


@pytestmark_lite
def test_alias_target_is_none_for_a_missing_alias_and_refuses_a_collection_name() -> None:
    load("docs_v1", rows("old", 2))
    with MilvusHook() as hook:
        assert alias_target(hook, ALIAS) is None
        with pytest.raises(ValueError, match="'docs_v1' is a collection, not an alias"):
            alias_target(hook, "docs_v1")


@pytestmark_lite
def test_reads_and_writes_through_an_alias_reach_its_collection_on_lite() -> None:
    load("docs_v1", rows("old", 3))
    with MilvusHook() as hook:
        switch_alias(hook, ALIAS, "docs_v1", fingerprint=FINGERPRINT, now=START)
        info = hook.describe(ALIAS)
        assert info is not None
        assert info.dim == 4
        assert hook.fetch_fingerprints(ALIAS, ["old-1"]) == {"old-1": (content_hash("old 1"), FINGERPRINT)}
        assert hook.search(ALIAS, [[1.0, 2.0, 0.5, 0.5]], limit=1)[0][0]["id"] == "old-2"
    load(ALIAS, rows("more", 2))
    with MilvusHook() as hook:
        assert hook.delete_ids(ALIAS, ["old-0"]) == 1
        assert hook.count("docs_v1") == 4
        assert sorted(hook.list_ids(ALIAS)) == ["more-0", "more-1", "old-1", "old-2"]
        assert hook.get_conn().list_collections() == ["docs_v1"]


@pytestmark_lite
def test_switch_creates_then_moves_the_alias_and_records_it_in_properties() -> None:
    load("docs_v1", rows("old", 2))
    load("docs_v2", rows("new", 3))
    with MilvusHook() as hook:
        first = switch_alias(hook, ALIAS, "docs_v1", fingerprint=FINGERPRINT, now=START)
        assert (first.previous, first.switched) == (None, True)
        assert alias_target(hook, ALIAS) == "docs_v1"

        later = START + timedelta(hours=1)
        second = switch_alias(hook, ALIAS, "docs_v2", fingerprint=FINGERPRINT, now=later)
        assert (second.previous, second.switched) == ("docs_v1", True)
        assert alias_target(hook, ALIAS) == "docs_v2"
        assert hook.count(ALIAS) == 3
        assert properties(hook, "docs_v2") == {
            PROPERTY_ALIAS: ALIAS,
            PROPERTY_MODEL: FINGERPRINT,
            PROPERTY_PROMOTED_AT: "2026-11-30T09:00:00+00:00",
            PROPERTY_RETIRED_AT: "",
        }
        assert properties(hook, "docs_v1")[PROPERTY_ALIAS] == ALIAS

        again = switch_alias(hook, ALIAS, "docs_v2", fingerprint=FINGERPRINT, now=later)
        assert (again.previous, again.switched) == ("docs_v2", False)


@pytestmark_lite
def test_properties_survive_reopening_the_lite_file() -> None:
    load("docs_v1", rows("old", 2))
    with MilvusHook() as hook:
        switch_alias(hook, ALIAS, "docs_v1", fingerprint=FINGERPRINT, now=START)
    with MilvusHook() as hook:
        assert alias_target(hook, ALIAS) == "docs_v1"
        assert properties(hook, "docs_v1")[PROPERTY_PROMOTED_AT] == "2026-11-30T08:00:00+00:00"


# -- checks ----------------------------------------------------------------------------------------


@pytestmark_lite
def test_verify_names_a_row_count_that_differs_from_the_source() -> None:
    load("docs_v2", rows("new", 3))
    with MilvusHook() as hook:
        assert verify_collection(hook, "docs_v2", expected_rows=3, fingerprint=FINGERPRINT, source="s") == 3
        with pytest.raises(MigrationCheckError, match="'docs_v2' holds 3 rows but the source has 4"):
            verify_collection(hook, "docs_v2", expected_rows=4, fingerprint=FINGERPRINT, source="the source")


@pytestmark_lite
def test_verify_refuses_rows_embedded_with_other_settings_and_missing_collections() -> None:
    load("docs_v2", [*rows("new", 3), *rows("stale", 2, model="gemini-embedding-001/4/RETRIEVAL_DOCUMENT")])
    with MilvusHook() as hook:
        with pytest.raises(MigrationCheckError, match="2 of the 5 rows .* not embedded with " + FINGERPRINT):
            verify_collection(hook, "docs_v2", expected_rows=None, fingerprint=FINGERPRINT, source="s")
        with pytest.raises(MigrationCheckError, match="'docs_v3' does not exist"):
            verify_collection(hook, "docs_v3", expected_rows=None, fingerprint=FINGERPRINT, source="s")


# -- retention -------------------------------------------------------------------------------------


def version(name: str, hours_ago: float) -> RetiredVersion:
    return RetiredVersion(name, START - timedelta(hours=hours_ago))


def test_retention_keeps_the_most_recent_versions_and_those_left_recently() -> None:
    versions = [version("v4", 1), version("v3", 30), version("v2", 50), version("v1", 100)]
    assert versions_to_drop(versions, keep_previous=1, retention_hours=24, now=START) == ["v3", "v2", "v1"]
    assert versions_to_drop(versions, keep_previous=2, retention_hours=24, now=START) == ["v2", "v1"]
    assert versions_to_drop(versions, keep_previous=0, retention_hours=48, now=START) == ["v2", "v1"]
    assert versions_to_drop(versions, keep_previous=0, retention_hours=0, now=START) == [
        "v4",
        "v3",
        "v2",
        "v1",
    ]
    assert versions_to_drop(versions, keep_previous=4, retention_hours=0, now=START) == []


@pytestmark_lite
def test_retention_drops_retired_versions_but_never_an_alias_target_or_an_unswitched_build() -> None:
    for name in ("docs_v1", "docs_v2", "docs_v3", "docs_failed", "other_v1"):
        load(name, rows(name, 1))
    with MilvusHook() as hook:
        for hours, name in enumerate(("docs_v1", "docs_v2", "docs_v3")):
            switch_alias(hook, ALIAS, name, fingerprint=FINGERPRINT, now=START + timedelta(hours=hours))
            drop_retired_versions(
                hook, ALIAS, keep_previous=5, retention_hours=0, now=START + timedelta(hours=hours)
            )
        # Another alias serves docs_v1 as well: it stays whatever the retention says.
        hook.get_conn().create_alias("docs_v1", "docs_archive")
        assert [v.name for v in retired_versions(hook, ALIAS)] == ["docs_v2", "docs_v1"]

        much_later = START + timedelta(days=30)
        dropped = drop_retired_versions(hook, ALIAS, keep_previous=0, retention_hours=0, now=much_later)

        assert dropped == ["docs_v2"]
        assert sorted(hook.get_conn().list_collections()) == ["docs_failed", "docs_v1", "docs_v3", "other_v1"]
        assert alias_target(hook, ALIAS) == "docs_v3"
        assert alias_target(hook, "docs_archive") == "docs_v1"


@pytestmark_lite
def test_retention_waits_for_the_retention_hours_after_the_switch() -> None:
    load("docs_v1", rows("old", 1))
    load("docs_v2", rows("new", 1))
    with MilvusHook() as hook:
        switch_alias(hook, ALIAS, "docs_v1", fingerprint=FINGERPRINT, now=START)
        switch_alias(hook, ALIAS, "docs_v2", fingerprint=FINGERPRINT, now=START)
        kept = drop_retired_versions(hook, ALIAS, keep_previous=0, retention_hours=24, now=START)
        assert kept == []
        assert properties(hook, "docs_v1")[PROPERTY_RETIRED_AT] == "2026-11-30T08:00:00+00:00"
        too_soon = START + timedelta(hours=23)
        assert drop_retired_versions(hook, ALIAS, keep_previous=0, retention_hours=24, now=too_soon) == []
        in_time = START + timedelta(hours=24)
        assert drop_retired_versions(hook, ALIAS, keep_previous=0, retention_hours=24, now=in_time) == [
            "docs_v1"
        ]
        assert hook.get_conn().list_collections() == ["docs_v2"]


@pytestmark_lite
def test_a_rollback_makes_the_old_version_live_again_and_retires_the_new_one() -> None:
    load("docs_v1", rows("old", 1))
    load("docs_v2", rows("new", 1))
    with MilvusHook() as hook:
        switch_alias(hook, ALIAS, "docs_v1", fingerprint=FINGERPRINT, now=START)
        switch_alias(hook, ALIAS, "docs_v2", fingerprint=FINGERPRINT, now=START)
        drop_retired_versions(hook, ALIAS, keep_previous=1, retention_hours=0, now=START)
        back = START + timedelta(hours=2)
        switch_alias(hook, ALIAS, "docs_v1", fingerprint=FINGERPRINT, now=back)

        assert properties(hook, "docs_v1")[PROPERTY_RETIRED_AT] == ""
        dropped = drop_retired_versions(hook, ALIAS, keep_previous=0, retention_hours=0, now=back)
        assert dropped == ["docs_v2"]
        assert alias_target(hook, ALIAS) == "docs_v1"
        assert hook.count(ALIAS) == 1


@pytestmark_lite
def test_retention_never_drops_the_alias_target_even_when_it_is_stamped_retired() -> None:
    load("docs_v1", rows("old", 1))
    load("docs_v2", rows("new", 1))
    with MilvusHook() as hook:
        switch_alias(hook, ALIAS, "docs_v1", fingerprint=FINGERPRINT, now=START)
        switch_alias(hook, ALIAS, "docs_v2", fingerprint=FINGERPRINT, now=START)
        drop_retired_versions(hook, ALIAS, keep_previous=1, retention_hours=0, now=START)
        # Someone moves the alias back by hand: docs_v1 still carries its retired_at stamp.
        hook.get_conn().alter_alias("docs_v1", ALIAS)
        assert properties(hook, "docs_v1")[PROPERTY_RETIRED_AT]

        dropped = drop_retired_versions(hook, ALIAS, keep_previous=0, retention_hours=0, now=START)

        assert dropped == ["docs_v2"]
        assert alias_target(hook, ALIAS) == "docs_v1"
        assert hook.count(ALIAS) == 1


# -- a failed switch, unreadable times ---------------------------------------------------------------


def fail_alter_alias_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the next ``alter_alias`` fail as a server that is briefly unreachable would."""
    real = MilvusClient.alter_alias
    failed: list[bool] = []

    def alter_alias(self: MilvusClient, collection_name: str, alias: str, **kwargs: Any) -> None:
        if not failed:
            failed.append(True)
            raise MilvusException(code=2, message="server unavailable")
        real(self, collection_name, alias, **kwargs)

    monkeypatch.setattr(MilvusClient, "alter_alias", alter_alias)


@pytestmark_lite
def test_a_collection_whose_switch_failed_carries_nothing_and_no_later_clean_up_drops_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("docs_v1", "docs_v2", "docs_v3"):
        load(name, rows(name, 1))
    with MilvusHook() as hook:
        switch_alias(hook, ALIAS, "docs_v1", fingerprint=FINGERPRINT, now=START)
        fail_alter_alias_once(monkeypatch)
        with pytest.raises(MilvusException, match="server unavailable"):
            switch_alias(hook, ALIAS, "docs_v2", fingerprint=FINGERPRINT, now=START)
        assert alias_target(hook, ALIAS) == "docs_v1"
        assert properties(hook, "docs_v2") == {}

        # The next migration goes elsewhere: docs_v2 was never live, so it is neither stamped nor dropped,
        # and the version readers left (docs_v1) is the one keep_previous keeps.
        later = START + timedelta(hours=1)
        switch_alias(hook, ALIAS, "docs_v3", fingerprint=FINGERPRINT, now=later)
        assert drop_retired_versions(hook, ALIAS, keep_previous=1, retention_hours=0, now=later) == []
        assert drop_retired_versions(hook, ALIAS, keep_previous=0, retention_hours=0, now=later) == [
            "docs_v1"
        ]
        assert sorted(hook.get_conn().list_collections()) == ["docs_v2", "docs_v3"]
        assert properties(hook, "docs_v2") == {}


@pytestmark_lite
def test_a_switch_retried_after_it_failed_completes_and_records_it(monkeypatch: pytest.MonkeyPatch) -> None:
    load("docs_v1", rows("old", 1))
    load("docs_v2", rows("new", 1))
    with MilvusHook() as hook:
        switch_alias(hook, ALIAS, "docs_v1", fingerprint=FINGERPRINT, now=START)
        fail_alter_alias_once(monkeypatch)
        with pytest.raises(MilvusException):
            switch_alias(hook, ALIAS, "docs_v2", fingerprint=FINGERPRINT, now=START)

        retry = switch_alias(hook, ALIAS, "docs_v2", fingerprint=FINGERPRINT, now=START)

        assert (retry.previous, retry.switched) == ("docs_v1", True)
        assert properties(hook, "docs_v2")[PROPERTY_PROMOTED_AT] == "2026-11-30T08:00:00+00:00"
        assert drop_retired_versions(hook, ALIAS, keep_previous=0, retention_hours=0, now=START) == [
            "docs_v1"
        ]


@pytestmark_lite
def test_a_live_collection_a_crash_left_untagged_is_tagged_when_found_as_the_target() -> None:
    load("docs_v1", rows("old", 1))
    with MilvusHook() as hook:
        hook.get_conn().create_alias("docs_v1", ALIAS)  # switched, then the task died before recording it

        again = switch_alias(hook, ALIAS, "docs_v1", fingerprint=FINGERPRINT, now=START)

        assert again.switched is False
        assert properties(hook, "docs_v1") == {
            PROPERTY_ALIAS: ALIAS,
            PROPERTY_MODEL: FINGERPRINT,
            PROPERTY_PROMOTED_AT: "2026-11-30T08:00:00+00:00",
            PROPERTY_RETIRED_AT: "",
        }


@pytestmark_lite
@pytest.mark.parametrize("stamp", ["last tuesday", "2026-11-01T08:00:00", "1e309"])
def test_an_unreadable_retired_at_is_skipped_with_a_warning_and_never_dropped(
    stamp: str, caplog: pytest.LogCaptureFixture
) -> None:
    for name in ("docs_v1", "docs_v2", "docs_v3"):
        load(name, rows(name, 1))
    with MilvusHook() as hook:
        for hours, name in enumerate(("docs_v1", "docs_v2", "docs_v3")):
            switch_alias(hook, ALIAS, name, fingerprint=FINGERPRINT, now=START + timedelta(hours=hours))
        hook.get_conn().alter_collection_properties("docs_v1", {PROPERTY_RETIRED_AT: stamp})

        with caplog.at_level(logging.WARNING):
            dropped = drop_retired_versions(
                hook, ALIAS, keep_previous=0, retention_hours=0, now=START, log=logging.getLogger("task")
            )

        assert dropped == ["docs_v2"]
        assert sorted(hook.get_conn().list_collections()) == ["docs_v1", "docs_v3"]
        assert "Keeping collection docs_v1: its gemini_milvus.retired_at" in caplog.text
        assert [v.name for v in retired_versions(hook, ALIAS)] == []


# -- the migration lease ---------------------------------------------------------------------------

FIRST = LeaseOwner(key="migrate/run_1/promote/-1", description="task 'promote' of DAG 'migrate', run 'run_1'")
SECOND = LeaseOwner(
    key="migrate/run_2/promote/-1", description="task 'promote' of DAG 'migrate', run 'run_2'"
)


def lock_properties(hook: MilvusHook) -> dict[str, Any]:
    return properties(hook, lock_collection_name(ALIAS))


@pytestmark_lite
def test_a_held_lease_refuses_a_second_migration_naming_the_first_and_how_to_clear_it() -> None:
    with MilvusHook() as hook:
        now = datetime.now(UTC)
        lease = acquire_lease(hook, ALIAS, FIRST, minutes=60, now=now)
        assert hook.get_conn().list_collections() == ["docs__migration_lock"]
        assert lock_properties(hook)[PROPERTY_LOCK_OWNER] == FIRST.description

        with pytest.raises(AliasMigrationLockedError) as raised:
            acquire_lease(hook, ALIAS, SECOND, minutes=60, now=now)

        expiry = (now + timedelta(minutes=60)).isoformat(timespec="seconds")
        message = str(raised.value)
        assert message.startswith(f"alias 'docs' is being migrated by {FIRST.description}, since ")
        assert f"its lease expires at {expiry}" in message
        assert "drop_collection('docs__migration_lock')" in message
        lease.release()
        assert hook.get_conn().list_collections() == []
        acquire_lease(hook, ALIAS, SECOND).release()


@pytestmark_lite
def test_an_expired_lease_is_taken_over_and_its_holder_stops_before_changing_anything(
    caplog: pytest.LogCaptureFixture,
) -> None:
    for name in ("docs_v1", "docs_v2"):
        load(name, rows(name, 1))
    with MilvusHook() as hook:
        switch_alias(hook, ALIAS, "docs_v1", fingerprint=FINGERPRINT, now=START)
        switch_alias(hook, ALIAS, "docs_v2", fingerprint=FINGERPRINT, now=START)
        killed = acquire_lease(hook, ALIAS, FIRST, minutes=60, now=datetime.now(UTC) - timedelta(hours=2))

        with caplog.at_level(logging.WARNING):
            lease = acquire_lease(hook, ALIAS, SECOND, minutes=60, log=logging.getLogger("task"))

        assert "Taking over the migration lease of alias docs from task 'promote' of DAG" in caplog.text
        assert lock_properties(hook)[PROPERTY_LOCK_OWNER] == SECOND.description
        # The first holder wakes up: it may change nothing more, and cannot end the other's lease.
        with pytest.raises(AliasMigrationLockedError, match="no longer holds the migration lease of alias"):
            drop_retired_versions(hook, ALIAS, keep_previous=0, retention_hours=0, now=START, lease=killed)
        killed.release()
        assert "docs_v1" in hook.get_conn().list_collections()
        assert lock_properties(hook)[PROPERTY_LOCK_OWNER] == SECOND.description

        dropped = drop_retired_versions(
            hook, ALIAS, keep_previous=0, retention_hours=0, now=START, lease=lease
        )
        assert dropped == ["docs_v1"]
        lease.release()


@pytestmark_lite
def test_a_retry_of_the_same_task_takes_over_its_lease_at_once() -> None:
    with MilvusHook() as hook:
        acquire_lease(hook, ALIAS, FIRST, minutes=60)  # the try that was killed
        retry = LeaseOwner(key=FIRST.key, description=FIRST.description.replace("run_1", "run_1, try 2"))
        lease = acquire_lease(hook, ALIAS, retry, minutes=60)
        assert lock_properties(hook)[PROPERTY_LOCK_OWNER] == retry.description
        before = lock_properties(hook)[PROPERTY_LOCK_EXPIRES_AT]
        lease.confirm()
        assert lock_properties(hook)[PROPERTY_LOCK_EXPIRES_AT] >= before
        lease.release()
        assert hook.get_conn().list_collections() == []


@pytestmark_lite
def test_a_collection_or_alias_with_the_lock_name_is_not_taken_for_a_lock() -> None:
    load("docs__migration_lock", rows("user", 1))
    with MilvusHook() as hook, pytest.raises(ValueError, match="is not the migration lock of alias 'docs'"):
        acquire_lease(hook, ALIAS, FIRST)
    with MilvusHook() as hook:
        hook.get_conn().create_alias("docs__migration_lock", "other__migration_lock")
        with pytest.raises(ValueError, match="'other__migration_lock' is an alias"):
            acquire_lease(hook, "other", FIRST)
        assert hook.count("docs__migration_lock") == 1


def test_a_long_alias_gets_a_valid_lock_name_of_its_own() -> None:
    name = lock_collection_name("a" * 250)
    assert check_name(name) == name
    assert name != lock_collection_name("a" * 251)
