"""
Fault matrix of batch mode: at each stage a try fails (or dies), then a retry runs; the outcome is asserted
as rows in Milvus, jobs billed and texts sent (emulator stats), and files left behind (the request plan in
the staging folder, the Files API copies).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk._shared.module_loading import import_string
from airflow.sdk.exceptions import TaskDeferred

from airflow_provider_gemini_milvus.embedding.batch import BATCH_PLAN_FILE
from airflow_provider_gemini_milvus.exceptions import GeminiAPIError
from airflow_provider_gemini_milvus.gemini import batch_api
from airflow_provider_gemini_milvus.hooks.milvus import MilvusHook
from airflow_provider_gemini_milvus.operators.gemini import GeminiEmbedOperator
from airflow_provider_gemini_milvus.operators.milvus import MilvusInsertOperator
from airflow_provider_gemini_milvus.testing.gemini_emulator import GeminiEmulator
from airflow_provider_gemini_milvus.testing.pytest_plugin import GeminiConnectionFactory

COLLECTION = "batch_faults"
DOCUMENTS = [{"id": f"doc-{n}", "text": f"document {n} on topic {n % 4}"} for n in range(12)]


def operator(staging: Path) -> GeminiEmbedOperator:
    return GeminiEmbedOperator(
        task_id="embed",
        documents=DOCUMENTS,
        deferrable=True,
        batch_poll_interval=0.001,
        output_dimensionality=128,
        staging_uri=f"file://{staging}",
        inline_max_rows=5,  # staged parts: a retry rewrites them whole
        part_rows=5,
    )


def fire(deferred: TaskDeferred) -> dict[str, Any]:
    classpath, kwargs = deferred.trigger.serialize()
    trigger = import_string(classpath)(**kwargs)

    async def first_event() -> Any:
        return await anext(trigger.run())

    return asyncio.run(first_event()).payload


def run_try(staging: Path) -> dict[str, Any]:
    """One try of the task: execute, then (deferred) the trigger and execute_complete, until a result."""
    task = operator(staging)
    try:
        return task.execute({})  # type: ignore[return-value]
    except TaskDeferred as deferred:
        pending = deferred
    while True:
        try:
            return task.execute_complete({}, event=fire(pending))
        except TaskDeferred as again:
            pending = again


def _before_submit(emulator: GeminiEmulator, factory: GeminiConnectionFactory) -> None:
    factory(max_retries=0)
    emulator.batches.fail_next_calls(1, 503, kind="create")  # the plan is staged, the create refused


def _after_submit_before_the_answer(emulator: GeminiEmulator, factory: GeminiConnectionFactory) -> None:
    factory(max_retries=0)
    emulator.batches.lose_next_answers("create")  # created and billed, the answer lost...
    emulator.batches.fail_next_calls(1, 503, kind="list")  # ...and the try dies before finding it


def _while_polling(emulator: GeminiEmulator, factory: GeminiConnectionFactory) -> None:
    emulator.batches.configure(pending_polls=1)
    emulator.batches.fail_next_calls(1, 403, kind="get")  # the trigger gives up: the try fails


def _job_purged_while_polling(emulator: GeminiEmulator, factory: GeminiConnectionFactory) -> None:
    emulator.batches.configure(pending_polls=1)
    emulator.batches.fail_next_calls(1, 404, kind="get")


def _mid_completion(emulator: GeminiEmulator, factory: GeminiConnectionFactory) -> None:
    factory(max_retries=0)
    emulator.batches.fail_next_calls(1, 503, kind="download")  # results cannot be read this try


def _unusable_results(emulator: GeminiEmulator, factory: GeminiConnectionFactory) -> None:
    emulator.batches.spoil_next_results("nan")  # recovered within the try: one text sent again


STAGES: dict[str, tuple[Callable[[GeminiEmulator, GeminiConnectionFactory], None], bool, int, int]] = {
    # stage: (fault, the first try fails, jobs billed, texts sent)
    "before submit": (_before_submit, True, 1, 12),
    "after submit before the answer": (_after_submit_before_the_answer, True, 1, 12),
    "while polling": (_while_polling, True, 1, 12),
    "job purged while polling": (_job_purged_while_polling, True, 1, 12),
    "mid completion": (_mid_completion, True, 1, 12),
    "unusable results": (_unusable_results, False, 2, 13),
}


@pytest.mark.usefixtures("milvus_connection")
@pytest.mark.parametrize("stage", list(STAGES))
def test_a_failure_at_each_stage_then_a_retry(
    stage: str,
    tmp_path: Path,
    gemini_emulator: GeminiEmulator,
    gemini_connection_factory: GeminiConnectionFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(batch_api, "INLINE_MAX_BYTES", 0)  # uploaded request files and result files
    gemini_connection_factory()
    fault, first_try_fails, jobs_billed, texts_sent = STAGES[stage]
    fault(gemini_emulator, gemini_connection_factory)

    if first_try_fails:
        with pytest.raises(GeminiAPIError):
            run_try(tmp_path)
        if stage == "job purged while polling":
            gemini_emulator.batches.forget(gemini_emulator.batches.jobs()[0].name)
        gemini_connection_factory()  # the retry, with the default retry policy
    manifest = run_try(tmp_path)
    loaded = MilvusInsertOperator(task_id="load", collection_name=COLLECTION, data=manifest).execute({})

    billed = [job for job in gemini_emulator.batches.jobs() if job.state == "BATCH_STATE_SUCCEEDED"]
    assert len(billed) == jobs_billed
    assert gemini_emulator.stats.texts == texts_sent
    assert loaded["written"] == len(DOCUMENTS)
    with MilvusHook() as milvus:
        assert milvus.count(COLLECTION) == len(DOCUMENTS)
    assert list(tmp_path.glob(f"**/{BATCH_PLAN_FILE}")) == []
    assert gemini_emulator.batches.files.names() == []
    assert [job.state for job in gemini_emulator.batches.jobs() if job.state != "BATCH_STATE_SUCCEEDED"] == []
