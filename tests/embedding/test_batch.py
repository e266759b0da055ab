"""GeminiEmbedOperator(deferrable=True): one Gemini batch job, a trigger, the same result as sync mode."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from airflow.sdk._shared.module_loading import import_string
from airflow.sdk.exceptions import TaskDeferred

from airflow_provider_gemini_milvus.embedding.batch import BATCH_PLAN_FILE, STATE_STORE_KEY
from airflow_provider_gemini_milvus.exceptions import GeminiAPIError
from airflow_provider_gemini_milvus.hooks.milvus import MilvusHook
from airflow_provider_gemini_milvus.operators.gemini import GeminiEmbedOperator
from airflow_provider_gemini_milvus.operators.milvus import MilvusInsertOperator
from airflow_provider_gemini_milvus.testing.gemini_emulator import GeminiEmulator
from airflow_provider_gemini_milvus.testing.pytest_plugin import GeminiConnectionFactory

COLLECTION = "docs"
FAST_POLLS = {"batch_poll_interval": 0.001}


def corpus(count: int = 5) -> list[dict[str, Any]]:
    return [
        {"id": f"doc-{n}", "text": f"document {n} about topic {n % 3}", "lang": "en"} for n in range(count)
    ]


def operator(documents: Any, staging: Path, **kwargs: Any) -> GeminiEmbedOperator:
    kwargs.setdefault("output_dimensionality", 128)
    kwargs.setdefault("deferrable", True)
    return GeminiEmbedOperator(
        task_id="embed", documents=documents, staging_uri=f"file://{staging}", **{**FAST_POLLS, **kwargs}
    )


def defer(task: GeminiEmbedOperator, context: dict[str, Any]) -> TaskDeferred:
    with pytest.raises(TaskDeferred) as deferred:
        task.execute(context)
    return deferred.value


def fire(deferred: TaskDeferred) -> dict[str, Any]:
    """Rebuild the trigger from its serialised form, as the triggerer does, and run it to its event."""
    classpath, kwargs = deferred.trigger.serialize()
    trigger = import_string(classpath)(**kwargs)

    async def first_event() -> Any:
        return await anext(trigger.run())

    return asyncio.run(first_event()).payload


def run_batch(task: GeminiEmbedOperator, context: dict[str, Any] | None = None) -> dict[str, Any]:
    context = {} if context is None else context
    deferred = defer(task, context)
    assert deferred.method_name == "execute_complete"
    return task.execute_complete(context, event=fire(deferred))


def vectors_by_id(result: dict[str, Any]) -> dict[str, list[float]]:
    return {row["id"]: row["vector"] for row in result["rows"]}


class TaskStateStore:
    """What ``context["task_state_store"]`` offers a task (get, set, delete), kept in a dict."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self.values[key] = value

    def delete(self, key: str) -> None:
        self.values.pop(key, None)


@pytest.mark.usefixtures("gemini_connection")
def test_batch_mode_returns_the_rows_of_sync_mode_at_half_the_price(
    tmp_path: Path, gemini_emulator: GeminiEmulator
) -> None:
    synchronous = operator(corpus(), tmp_path, deferrable=False).execute({})

    batch = run_batch(operator(corpus(), tmp_path))

    assert [row["id"] for row in batch["rows"]] == [row["id"] for row in synchronous["rows"]]
    for doc_id, vector in vectors_by_id(batch).items():
        np.testing.assert_allclose(vector, vectors_by_id(synchronous)[doc_id], atol=1e-6)
    assert [{**row, "vector": None} for row in batch["rows"]] == [
        {**row, "vector": None} for row in synchronous["rows"]
    ]
    assert {key: batch[key] for key in ("dim", "model", "task_type", "delete_ids", "skipped_documents")} == {
        key: synchronous[key] for key in ("dim", "model", "task_type", "delete_ids", "skipped_documents")
    }
    stats = batch["stats"]
    assert (stats["mode"], stats["requests"], stats["embedded"]) == ("batch", 1, 5)
    assert stats["estimated_tokens"] == synchronous["stats"]["estimated_tokens"]
    assert stats["estimated_cost_usd"] == pytest.approx(synchronous["stats"]["estimated_cost_usd"] / 2)
    [job] = gemini_emulator.batches.jobs()
    assert (job.state, job.source, stats["batch_job"]) == ("BATCH_STATE_SUCCEEDED", "inlined", job.name)


@pytest.mark.usefixtures("gemini_connection", "milvus_connection")
def test_a_large_run_is_staged_and_loads_like_sync_mode(
    tmp_path: Path, gemini_emulator: GeminiEmulator
) -> None:
    manifest = run_batch(operator(corpus(30), tmp_path, inline_max_rows=10, part_rows=12))

    assert manifest["format"] == "gemini-milvus-staged/1"
    assert [part["rows"] for part in manifest["parts"]] == [12, 12, 6]
    assert manifest["stats"]["mode"] == "batch"
    result = MilvusInsertOperator(task_id="load", collection_name=COLLECTION, data=manifest).execute({})
    assert result["written"] == 30
    assert list(tmp_path.glob(f"**/{BATCH_PLAN_FILE}")) == []  # cleaned up after success


@pytest.mark.usefixtures("gemini_connection", "milvus_connection")
def test_incremental_batch_sends_only_new_and_changed_documents(
    tmp_path: Path, gemini_emulator: GeminiEmulator
) -> None:
    documents = corpus()
    first = operator(documents, tmp_path, deferrable=False, collection_name=COLLECTION).execute({})
    MilvusInsertOperator(task_id="load", collection_name=COLLECTION, data=first).execute({})
    documents[2]["text"] = "an edited document"
    documents.append({"id": "doc-new", "text": "a brand new document", "lang": "en"})

    result = run_batch(operator(documents, tmp_path, collection_name=COLLECTION))

    assert gemini_emulator.batches.jobs()[0].texts == ("an edited document", "a brand new document")
    assert sorted(vectors_by_id(result)) == ["doc-2", "doc-new"]
    assert (result["stats"]["embedded"], result["stats"]["unchanged"]) == (2, 4)


@pytest.mark.usefixtures("gemini_connection", "milvus_connection")
@pytest.mark.parametrize("inline_max_rows", [100, 0], ids=["inline", "staged"])
def test_metadata_only_edits_ride_along_with_their_stored_vectors(
    tmp_path: Path, gemini_emulator: GeminiEmulator, inline_max_rows: int
) -> None:
    documents = corpus()
    first = operator(documents, tmp_path, deferrable=False, collection_name=COLLECTION).execute({})
    MilvusInsertOperator(task_id="load", collection_name=COLLECTION, data=first).execute({})
    documents[1]["lang"] = "fr"  # metadata only
    documents[2]["text"] = "an edited document"

    result = run_batch(
        operator(documents, tmp_path, collection_name=COLLECTION, inline_max_rows=inline_max_rows)
    )
    loaded = MilvusInsertOperator(task_id="load", collection_name=COLLECTION, data=result).execute({})

    assert gemini_emulator.batches.jobs()[0].texts == ("an edited document",)
    assert (result["stats"]["embedded"], result["stats"]["metadata_only"]) == (1, 1)
    assert loaded["written"] == 2
    with MilvusHook() as milvus:
        [row] = milvus.get_conn().get(COLLECTION, ids=["doc-1"], output_fields=["vector", "metadata"])
    np.testing.assert_allclose(row["vector"], vectors_by_id(first)["doc-1"], atol=1e-6)
    assert row["metadata"] == {"lang": "fr"}


@pytest.mark.usefixtures("gemini_connection")
def test_max_cost_usd_is_checked_at_the_batch_price_before_submitting(
    tmp_path: Path, gemini_emulator: GeminiEmulator
) -> None:
    with pytest.raises(ValueError, match=r"at the batch price of \$0.075 per million tokens"):
        operator(corpus(), tmp_path, max_cost_usd="0.000000001").execute({})
    assert gemini_emulator.batches.jobs() == []


@pytest.mark.usefixtures("gemini_connection", "milvus_connection")
def test_nothing_to_embed_sends_no_job_and_does_not_defer(
    tmp_path: Path, gemini_emulator: GeminiEmulator
) -> None:
    documents = corpus()
    first = operator(documents, tmp_path, deferrable=False, collection_name=COLLECTION).execute({})
    MilvusInsertOperator(task_id="load", collection_name=COLLECTION, data=first).execute({})
    documents[0]["lang"] = "de"  # a metadata-only edit needs no Gemini request either

    result = operator(documents, tmp_path, collection_name=COLLECTION).execute({})

    assert [row["id"] for row in result["rows"]] == ["doc-0"]
    assert gemini_emulator.batches.jobs() == []
    assert gemini_emulator.stats.texts == 5  # the first, synchronous run only


@pytest.mark.parametrize(
    ("knob", "state", "error"),
    [("fail_next", "FAILED", "13: Batch job failed"), ("expire_next", "EXPIRED", "4: Batch job expired")],
)
@pytest.mark.usefixtures("gemini_connection")
def test_a_failed_or_expired_job_fails_the_task_with_its_own_error(
    tmp_path: Path, gemini_emulator: GeminiEmulator, knob: str, state: str, error: str
) -> None:
    getattr(gemini_emulator.batches, knob)()

    with pytest.raises(GeminiAPIError, match=f"ended {state}: {error}"):
        run_batch(operator(corpus(), tmp_path))
    assert gemini_emulator.stats.texts == 0


@pytest.mark.usefixtures("gemini_connection")
def test_a_job_that_outlives_batch_timeout_is_cancelled_and_fails_the_task(
    tmp_path: Path, gemini_emulator: GeminiEmulator
) -> None:
    gemini_emulator.batches.configure(running_polls=1000)

    with pytest.raises(GeminiAPIError, match="did not end within batch_timeout; it was cancelled"):
        run_batch(operator(corpus(), tmp_path, batch_timeout="0"))
    assert gemini_emulator.batches.jobs()[0].state == "BATCH_STATE_CANCELLED"


@pytest.mark.usefixtures("gemini_connection")
def test_on_kill_cancels_the_job_the_task_waits_for(tmp_path: Path, gemini_emulator: GeminiEmulator) -> None:
    gemini_emulator.batches.configure(running_polls=1000)
    task = operator(corpus(), tmp_path)
    defer(task, {})

    task.on_kill()

    assert gemini_emulator.batches.jobs()[0].state == "BATCH_STATE_CANCELLED"


@pytest.mark.usefixtures("gemini_connection")
def test_a_retry_re_attaches_to_the_running_job_and_sends_nothing_again(
    tmp_path: Path, gemini_emulator: GeminiEmulator
) -> None:
    gemini_emulator.batches.configure(running_polls=2)
    first_try = defer(operator(corpus(), tmp_path), {})
    submitted = gemini_emulator.batches.jobs()[0].name

    # The worker died; a retry runs execute again, in a new operator, from the same staging folder.
    retry = operator(corpus(), tmp_path)
    second_try = defer(retry, {})
    result = retry.execute_complete({}, event=fire(second_try))

    assert (
        first_try.trigger.serialize()[1]["job_name"]
        == second_try.trigger.serialize()[1]["job_name"]
        == submitted
    )
    assert len(gemini_emulator.batches.jobs()) == 1
    assert gemini_emulator.stats.texts == 5  # embedded once, by the one job
    assert len(result["rows"]) == 5


@pytest.mark.usefixtures("gemini_connection")
def test_a_retry_after_the_job_succeeded_reads_its_results_without_deferring(
    tmp_path: Path, gemini_emulator: GeminiEmulator
) -> None:
    store = TaskStateStore()
    first_try = defer(operator(corpus(), tmp_path), {"task_state_store": store})
    assert store.values == {STATE_STORE_KEY: first_try.trigger.serialize()[1]["job_name"]}
    assert fire(first_try)["status"] == "success"  # the job ended; the task died before execute_complete

    result = operator(corpus(), tmp_path).execute({"task_state_store": store})

    assert len(result["rows"]) == 5
    assert len(gemini_emulator.batches.jobs()) == 1
    assert gemini_emulator.stats.texts == 5
    assert store.values == {}  # a later run submits afresh


@pytest.mark.usefixtures("gemini_connection")
def test_a_retry_after_a_failed_job_submits_a_new_one(
    tmp_path: Path, gemini_emulator: GeminiEmulator
) -> None:
    gemini_emulator.batches.fail_next()
    with pytest.raises(GeminiAPIError):
        run_batch(operator(corpus(), tmp_path))

    result = run_batch(operator(corpus(), tmp_path))

    assert [job.state for job in gemini_emulator.batches.jobs()] == [
        "BATCH_STATE_FAILED",
        "BATCH_STATE_SUCCEEDED",
    ]
    assert len(result["rows"]) == 5


@pytest.mark.usefixtures("gemini_connection")
def test_documents_the_job_could_not_embed_are_named_or_skipped(
    tmp_path: Path, gemini_emulator: GeminiEmulator
) -> None:
    gemini_emulator.refuse_texts("document 3", "Text was blocked.")

    with pytest.raises(GeminiAPIError, match=r"could not embed 1 documents: documents\[3\] \(id 'doc-3'\)"):
        run_batch(operator(corpus(), tmp_path))
    # The retry (here with skip) re-attaches to the job, which succeeded: it neither defers nor pays again.
    skipped = operator(corpus(), tmp_path, on_document_error="skip").execute({})

    assert len(gemini_emulator.batches.jobs()) == 1
    assert skipped["skipped_documents"] == [{"index": 3, "id": "doc-3", "reason": "3: Text was blocked."}]
    assert sorted(vectors_by_id(skipped)) == ["doc-0", "doc-1", "doc-2", "doc-4"]
    assert (skipped["stats"]["embedded"], skipped["stats"]["refused"]) == (4, 1)


def test_vertex_ai_is_refused_at_execute_before_anything_is_sent(
    tmp_path: Path, gemini_connection_factory: GeminiConnectionFactory, gemini_emulator: GeminiEmulator
) -> None:
    gemini_connection_factory(vertexai=True)

    with pytest.raises(ValueError, match="batch mode needs the Gemini API"):
        operator(corpus(), tmp_path).execute({})
    assert gemini_emulator.batches.jobs() == []
    assert gemini_emulator.stats.requests == 0


@pytest.mark.usefixtures("gemini_connection")
def test_rendered_arguments_are_converted(tmp_path: Path, gemini_emulator: GeminiEmulator) -> None:
    rendered_false = operator(corpus(), tmp_path, deferrable="False").execute({})
    assert len(rendered_false["rows"]) == 5
    assert gemini_emulator.batches.jobs() == []

    deferred = defer(operator(corpus(), tmp_path, deferrable="True", batch_poll_interval="2.5"), {})
    assert deferred.trigger.serialize()[1]["poll_interval"] == 2.5
    with pytest.raises(ValueError, match="batch_poll_interval"):
        operator(corpus(), tmp_path, batch_poll_interval="soon").execute({})


def test_the_trigger_kwargs_hold_no_key_and_no_documents(
    tmp_path: Path, gemini_connection: str, gemini_emulator: GeminiEmulator
) -> None:
    deferred = defer(operator(corpus(), tmp_path), {})

    kwargs = json.dumps(deferred.trigger.serialize()[1])

    assert gemini_emulator.api_key not in kwargs
    assert "document 1" not in kwargs
    assert list(tmp_path.glob(f"**/{BATCH_PLAN_FILE}"))  # the request plan is staged instead


# -- inside a DAG ------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("airflow_db", "gemini_connection", "milvus_connection")
def test_dag_test_runs_the_trigger_inline_and_loads_the_rows(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, gemini_emulator: GeminiEmulator
) -> None:
    from airflow.sdk import DagRunState

    from tests.dags.dag_gemini_batch import COLLECTION as DAG_COLLECTION
    from tests.dags.dag_gemini_batch import DOCUMENTS, gemini_batch

    monkeypatch.setenv("AIRFLOW__GEMINI_MILVUS__STAGING_URI", str(tmp_path / "staging"))
    gemini_emulator.batches.configure(pending_polls=1, running_polls=1)

    run = gemini_batch().test()

    assert run.state == DagRunState.SUCCESS
    [job] = gemini_emulator.batches.jobs()
    assert (job.state, job.polls) == ("BATCH_STATE_SUCCEEDED", 3)  # polled by the trigger dag.test ran inline
    with MilvusHook() as milvus:
        assert milvus.count(DAG_COLLECTION) == len(DOCUMENTS)


@pytest.mark.usefixtures("airflow_db", "gemini_connection", "milvus_connection")
def test_dag_test_keeps_the_job_name_in_airflows_task_state_store_for_a_retry(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, gemini_emulator: GeminiEmulator
) -> None:
    # The task state store (AIP-103) came with Airflow 3.3; on 3.2 the staged plan alone keeps the job name.
    task_state_store = pytest.importorskip("airflow.models.task_state_store", reason="Airflow 3.3 and later")
    TaskStateStoreModel = task_state_store.TaskStateStoreModel
    from airflow.sdk import DagRunState
    from airflow.utils.session import create_session

    from tests.dags.dag_gemini_batch import gemini_batch

    monkeypatch.setenv("AIRFLOW__GEMINI_MILVUS__STAGING_URI", str(tmp_path / "staging"))
    gemini_emulator.batches.fail_next()

    run = gemini_batch().test()

    assert run.state == DagRunState.FAILED
    with create_session() as session:
        stored = session.query(TaskStateStoreModel).filter_by(run_id=run.run_id, task_id="embed").all()
    assert [(row.key, json.loads(row.value)) for row in stored] == [
        (STATE_STORE_KEY, gemini_emulator.batches.jobs()[0].name)
    ]


@pytest.mark.usefixtures("gemini_connection", "milvus_connection")
def test_a_staged_completion_writes_the_parts_it_always_wrote(
    tmp_path: Path, gemini_emulator: GeminiEmulator
) -> None:
    """
    Every kind of document at once: new, edited, metadata-only, refused, changed while the job ran and
    vanished while it ran. The parts hold the same rows in the same order as before completion streamed.
    """
    from airflow_provider_gemini_milvus import staging

    documents = corpus(30)
    stored = operator(documents, tmp_path, deferrable=False, collection_name=COLLECTION).execute({})
    MilvusInsertOperator(task_id="load", collection_name=COLLECTION, data=stored).execute({})
    documents = [dict(doc) for doc in documents] + [
        {"id": f"new-{n}", "text": f"a new document {n}", "lang": "en"} for n in range(25)
    ]
    documents[1]["lang"] = "fr"  # metadata only
    documents[3]["lang"] = "de"  # metadata only
    documents[2]["text"] = "an edited document"
    documents[40]["text"] = "please refuse me"
    gemini_emulator.refuse_texts("refuse me")
    task = operator(
        documents,
        tmp_path,
        collection_name=COLLECTION,
        inline_max_rows=0,
        part_rows=7,
        on_document_error="skip",
    )
    deferred = defer(task, {})
    task.documents = [dict(doc) for doc in documents]
    task.documents[45]["text"] = "changed while the job ran"
    task.documents[3] = {"id": "other", "text": "another document"}  # metadata-only doc-3 gone meanwhile

    manifest = task.execute_complete({}, event=fire(deferred))

    parts = [
        [row for rows in staging.iter_part_rows(part["uri"]) for row in rows] for part in manifest["parts"]
    ]
    new = [f"new-{n}" for n in range(25) if n not in (10, 15)]  # refused, changed while the job ran
    assert [[row["id"] for row in rows] for rows in parts] == [
        ["doc-2", *new[:6]],
        new[6:13],
        new[13:20],
        [*new[20:], "doc-1"],
    ]
    assert [part["rows"] for part in manifest["parts"]] == [7, 7, 7, 4]
    assert manifest["rows"] == 25
    assert manifest["skipped_count"] == 1
    assert manifest["skipped_documents"][0]["id"] == "new-10"
    stats = manifest["stats"]
    assert {key: stats[key] for key in ("embedded", "metadata_only", "refused", "changed_during_batch")} == {
        "embedded": 24,
        "metadata_only": 1,
        "refused": 1,
        "changed_during_batch": 1,
    }
    synchronous = operator(task.documents, tmp_path / "sync", deferrable=False, on_document_error="skip")
    expected = vectors_by_id(synchronous.execute({}))
    for row in (row for rows in parts for row in rows):
        np.testing.assert_allclose(row["vector"], expected[row["id"]], atol=1e-6)
    assert parts[3][-1]["metadata"] == {"lang": "fr"}


# -- no stuck retries, nothing paid twice ------------------------------------------------------------------


def plan_file(staging: Path) -> Path:
    [path] = staging.glob(f"**/{BATCH_PLAN_FILE}")
    return path


def sync_vectors(staging: Path, documents: Any) -> dict[str, list[float]]:
    return vectors_by_id(operator(documents, staging / "sync", deferrable=False).execute({}))


def assert_rows_of_sync_mode(result: dict[str, Any], expected: dict[str, list[float]]) -> None:
    assert sorted(vectors_by_id(result)) == sorted(expected)
    for doc_id, vector in vectors_by_id(result).items():
        np.testing.assert_allclose(vector, expected[doc_id], atol=1e-6)


@pytest.mark.usefixtures("gemini_connection")
@pytest.mark.parametrize("kind", ["nan", "short", "missing"])
def test_unusable_results_are_sent_again_alone_and_the_usable_ones_kept(
    tmp_path: Path, gemini_emulator: GeminiEmulator, kind: str
) -> None:
    expected = sync_vectors(tmp_path, corpus())
    gemini_emulator.reset_stats()
    gemini_emulator.batches.spoil_next_results(kind)
    task = operator(corpus(), tmp_path)
    first = defer(task, {})

    with pytest.raises(TaskDeferred) as again:  # the spoiled text goes out again, in a job of its own
        task.execute_complete({}, event=fire(first))
    result = task.execute_complete({}, event=fire(again.value))

    spoiled = 4 if kind == "missing" else 0
    assert [job.texts for job in gemini_emulator.batches.jobs()] == [
        tuple(doc["text"] for doc in corpus()),
        (corpus()[spoiled]["text"],),
    ]
    assert gemini_emulator.stats.texts == 6  # the usable four were not paid again
    assert_rows_of_sync_mode(result, expected)
    assert (result["stats"]["embedded"], result["stats"]["requests"]) == (5, 2)
    assert list(tmp_path.glob(f"**/{BATCH_PLAN_FILE}")) == []


@pytest.mark.usefixtures("gemini_connection")
def test_results_unusable_every_time_end_as_refused_documents(
    tmp_path: Path, gemini_emulator: GeminiEmulator
) -> None:
    gemini_emulator.batches.spoil_next_results("nan", count=3)
    task = operator(corpus(), tmp_path)
    deferred = defer(task, {})
    for _ in range(2):
        with pytest.raises(TaskDeferred) as again:
            task.execute_complete({}, event=fire(deferred))
        deferred = again.value

    with pytest.raises(GeminiAPIError, match=r"documents\[0\] \(id 'doc-0'\).*unusable result.*skip"):
        task.execute_complete({}, event=fire(deferred))
    skipped = operator(corpus(), tmp_path, on_document_error="skip").execute({})

    assert len(gemini_emulator.batches.jobs()) == 3  # the retry re-attached: nothing sent a fourth time
    assert [doc["id"] for doc in skipped["skipped_documents"]] == ["doc-0"]
    assert sorted(vectors_by_id(skipped)) == ["doc-1", "doc-2", "doc-3", "doc-4"]


@pytest.mark.usefixtures("gemini_connection")
def test_a_retry_whose_job_the_service_does_not_know_submits_again(
    tmp_path: Path, gemini_emulator: GeminiEmulator
) -> None:
    gemini_emulator.batches.configure(running_polls=1000)
    defer(operator(corpus(), tmp_path), {})
    gemini_emulator.batches.forget(gemini_emulator.batches.jobs()[0].name)  # purged, or another key's
    gemini_emulator.batches.configure(running_polls=0)

    retry = operator(corpus(), tmp_path)
    result = retry.execute_complete({}, event=fire(defer(retry, {})))

    assert len(result["rows"]) == 5
    assert [job.state for job in gemini_emulator.batches.jobs()] == ["BATCH_STATE_SUCCEEDED"]


@pytest.mark.usefixtures("gemini_connection")
@pytest.mark.parametrize("garbage", ["{not json", '{"job_name": "batches/x"}', "[1, 2]", ""])
def test_an_unreadable_plan_is_discarded_and_its_job_found_by_display_name(
    tmp_path: Path, gemini_emulator: GeminiEmulator, garbage: str
) -> None:
    gemini_emulator.batches.configure(running_polls=2)
    first = defer(operator(corpus(), tmp_path), {})
    plan_file(tmp_path).write_text(garbage)

    retry = operator(corpus(), tmp_path)
    second = defer(retry, {})
    result = retry.execute_complete({}, event=fire(second))

    assert second.trigger.serialize()[1]["job_name"] == first.trigger.serialize()[1]["job_name"]
    assert len(gemini_emulator.batches.jobs()) == 1
    assert gemini_emulator.stats.texts == 5
    assert len(result["rows"]) == 5


@pytest.mark.usefixtures("gemini_connection")
def test_a_lost_create_answer_is_found_by_display_name_and_paid_once(
    tmp_path: Path, gemini_emulator: GeminiEmulator
) -> None:
    gemini_emulator.batches.lose_next_answers("create")  # the job is created; the connection drops

    result = run_batch(operator(corpus(), tmp_path))

    [job] = gemini_emulator.batches.jobs()
    assert job.state == "BATCH_STATE_SUCCEEDED"
    assert gemini_emulator.stats.texts == 5
    assert len(result["rows"]) == 5


@pytest.mark.usefixtures("gemini_connection")
def test_a_plan_pointing_at_another_job_is_not_trusted(
    tmp_path: Path, gemini_emulator: GeminiEmulator
) -> None:
    from airflow_provider_gemini_milvus.gemini.batch_api import submit_embedding_batch
    from airflow_provider_gemini_milvus.hooks.gemini import GeminiHook

    expected = sync_vectors(tmp_path, corpus())
    other = submit_embedding_batch(
        GeminiHook(), [f"another text {n}" for n in range(5)], model="gemini-embedding-001"
    )
    gemini_emulator.batches.configure(running_polls=2)
    defer(operator(corpus(), tmp_path), {})  # Airflow 3.2: no task state store, the plan alone
    plan = json.loads(plan_file(tmp_path).read_text())
    if "jobs" in plan:
        plan["jobs"][-1]["name"] = other
    else:
        plan["job_name"] = other
    plan_file(tmp_path).write_text(json.dumps(plan))

    retry = operator(corpus(), tmp_path)
    result = retry.execute_complete({}, event=fire(defer(retry, {})))

    assert_rows_of_sync_mode(result, expected)
    assert len(gemini_emulator.batches.jobs()) == 2  # the other job, and this plan's, found again


@pytest.mark.usefixtures("gemini_connection")
def test_the_state_stores_job_is_cancelled_when_no_plan_uses_it(
    tmp_path: Path, gemini_emulator: GeminiEmulator
) -> None:
    store = TaskStateStore()
    gemini_emulator.batches.configure(running_polls=1000)
    defer(operator(corpus(), tmp_path), {"task_state_store": store})
    abandoned = store.values[STATE_STORE_KEY]
    plan_file(tmp_path).unlink()  # the staging folder was cleared between tries...
    documents = corpus()
    documents[0]["text"] = "an edited document"  # ...and the source changed: the old job is of no use

    gemini_emulator.batches.configure(running_polls=0)
    retry = operator(documents, tmp_path)
    result = retry.execute_complete(
        {"task_state_store": store}, event=fire(defer(retry, {"task_state_store": store}))
    )

    states = {job.name: job.state for job in gemini_emulator.batches.jobs()}
    assert states.pop(abandoned) == "BATCH_STATE_CANCELLED"
    assert list(states.values()) == ["BATCH_STATE_SUCCEEDED"]
    assert vectors_by_id(result).keys() == {doc["id"] for doc in documents}


@pytest.mark.usefixtures("gemini_connection")
def test_one_503_on_create_does_not_fail_the_try(tmp_path: Path, gemini_emulator: GeminiEmulator) -> None:
    gemini_emulator.batches.fail_next_calls(1, 503, kind="create")

    result = run_batch(operator(corpus(), tmp_path))

    assert len(result["rows"]) == 5
    assert len(gemini_emulator.batches.jobs()) == 1


@pytest.mark.usefixtures("gemini_connection")
def test_one_503_in_on_kill_still_cancels_the_job(tmp_path: Path, gemini_emulator: GeminiEmulator) -> None:
    gemini_emulator.batches.configure(running_polls=1000)
    task = operator(corpus(), tmp_path)
    defer(task, {})
    gemini_emulator.batches.fail_next_calls(1, 503, kind="cancel")

    task.on_kill()

    assert gemini_emulator.batches.jobs()[0].state == "BATCH_STATE_CANCELLED"


@pytest.mark.usefixtures("gemini_connection")
def test_batch_timeout_counts_from_submission_across_tries_and_airflow_backs_it_up(
    tmp_path: Path, gemini_emulator: GeminiEmulator
) -> None:
    gemini_emulator.batches.configure(running_polls=1000)
    first = defer(operator(corpus(), tmp_path, batch_timeout="3600"), {})
    retry = defer(operator(corpus(), tmp_path, batch_timeout="3600"), {})

    deadline = first.trigger.serialize()[1]["deadline"]
    assert deadline is not None
    assert retry.trigger.serialize()[1]["deadline"] == deadline  # the re-attached job keeps its deadline
    assert first.timeout is not None
    assert first.timeout.total_seconds() > 3600  # Airflow's own timeout, after the trigger's


@pytest.mark.usefixtures("gemini_connection")
def test_uploaded_and_result_files_are_deleted_once_the_rows_are_handed_on(
    tmp_path: Path, gemini_emulator: GeminiEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_gemini_milvus.gemini import batch_api

    monkeypatch.setattr(batch_api, "INLINE_MAX_BYTES", 0)  # every job goes as an uploaded JSONL file
    task = operator(corpus(), tmp_path)
    deferred = defer(task, {})
    assert len(gemini_emulator.batches.files.names()) == 1  # the uploaded requests

    result = task.execute_complete({}, event=fire(deferred))

    assert len(result["rows"]) == 5
    assert gemini_emulator.batches.jobs()[0].source == "file"
    assert gemini_emulator.batches.files.names() == []
