"""GeminiBatchJobTrigger, run for real (async) against the emulator's batch routes."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from airflow.sdk._shared.module_loading import import_string

from airflow_provider_gemini_milvus.gemini.batch_api import submit_embedding_batch
from airflow_provider_gemini_milvus.hooks.gemini import GeminiHook
from airflow_provider_gemini_milvus.testing.gemini_emulator import GeminiEmulator
from airflow_provider_gemini_milvus.triggers.gemini_batch import MAX_POLL_ERRORS, GeminiBatchJobTrigger

TEXTS = ["first document", "second document"]


def submit(conn_id: str) -> str:
    return submit_embedding_batch(GeminiHook(conn_id), TEXTS, model="gemini-embedding-001")


def trigger_for(job_name: str, conn_id: str = "gemini_default", **settings: Any) -> GeminiBatchJobTrigger:
    return GeminiBatchJobTrigger(
        gemini_conn_id=conn_id,
        job_name=job_name,
        **{"poll_interval": 0.001, "max_poll_interval": 0.002, **settings},
    )


def first_event(trigger: GeminiBatchJobTrigger) -> dict[str, Any]:
    async def run() -> Any:
        return await anext(trigger.run())

    return asyncio.run(run()).payload


def test_serialize_round_trips_and_carries_no_key(
    gemini_connection: str, gemini_emulator: GeminiEmulator
) -> None:
    trigger = trigger_for("batches/abc", gemini_connection, timeout=3600.0)

    classpath, kwargs = trigger.serialize()
    rebuilt = import_string(classpath)(**kwargs)

    assert rebuilt.serialize() == (classpath, kwargs)
    assert classpath == "airflow_provider_gemini_milvus.triggers.gemini_batch.GeminiBatchJobTrigger"
    assert gemini_emulator.api_key not in json.dumps(kwargs)
    assert set(kwargs) == {
        "gemini_conn_id",
        "job_name",
        "poll_interval",
        "max_poll_interval",
        "backoff",
        "timeout",
        "deadline",
    }


def test_a_slow_job_is_polled_until_it_succeeds(
    gemini_connection: str, gemini_emulator: GeminiEmulator
) -> None:
    gemini_emulator.batches.configure(pending_polls=2, running_polls=3)
    name = submit(gemini_connection)

    event = first_event(trigger_for(name))

    assert event == {
        "status": "success",
        "job_name": name,
        "state": "SUCCEEDED",
        "error": None,
        "message": f"Gemini batch job {name} ended SUCCEEDED",
    }
    assert gemini_emulator.batches.jobs()[0].polls == 6
    assert gemini_emulator.stats.embedded_texts == TEXTS


@pytest.mark.parametrize(
    ("knob", "state", "code"), [("fail_next", "FAILED", 13), ("expire_next", "EXPIRED", 4)]
)
def test_a_failed_or_expired_job_fires_its_own_error(
    gemini_connection: str, gemini_emulator: GeminiEmulator, knob: str, state: str, code: int
) -> None:
    getattr(gemini_emulator.batches, knob)()

    event = first_event(trigger_for(submit(gemini_connection)))

    assert (event["status"], event["state"]) == ("failed", state)
    assert event["error"].startswith(f"{code}: ")
    assert event["error"] in event["message"]


def test_a_job_still_running_at_the_timeout_fires_a_timeout(
    gemini_connection: str, gemini_emulator: GeminiEmulator
) -> None:
    gemini_emulator.batches.configure(running_polls=1000)

    event = first_event(trigger_for(submit(gemini_connection), timeout=0.0))

    assert (event["status"], event["state"]) == ("timeout", None)
    assert gemini_emulator.batches.jobs()[0].state == "BATCH_STATE_RUNNING"


def test_a_job_that_cannot_be_read_fires_an_error_without_the_key(
    gemini_connection: str, gemini_emulator: GeminiEmulator
) -> None:
    gemini_emulator.configure(echo_api_key_in_errors=True)

    event = first_event(trigger_for("batches/missing"))

    assert event["status"] == "error"
    assert "404" in event["message"]
    assert gemini_emulator.api_key not in json.dumps(event)


def test_on_kill_cancels_the_job(gemini_connection: str, gemini_emulator: GeminiEmulator) -> None:
    gemini_emulator.batches.configure(running_polls=1000)
    name = submit(gemini_connection)

    asyncio.run(trigger_for(name).on_kill())

    assert gemini_emulator.batches.jobs()[0].state == "BATCH_STATE_CANCELLED"


def test_poll_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="poll_interval"):
        GeminiBatchJobTrigger(gemini_conn_id="g", job_name="batches/a", poll_interval=10, max_poll_interval=5)
    with pytest.raises(ValueError, match="backoff"):
        GeminiBatchJobTrigger(gemini_conn_id="g", job_name="batches/a", backoff=0.5)


def test_transient_errors_while_polling_are_ridden_out(
    gemini_connection: str, gemini_emulator: GeminiEmulator
) -> None:
    gemini_emulator.batches.configure(running_polls=1)
    name = submit(gemini_connection)
    gemini_emulator.batches.fail_next_calls(3, status=503)

    event = first_event(trigger_for(name))

    assert (event["status"], event["state"]) == ("success", "SUCCEEDED")


def test_polling_gives_up_after_too_many_errors_in_a_row(
    gemini_connection: str, gemini_emulator: GeminiEmulator
) -> None:
    name = submit(gemini_connection)
    gemini_emulator.batches.fail_next_calls(MAX_POLL_ERRORS, status=500)

    event = first_event(trigger_for(name))

    assert event["status"] == "error"
    assert "500" in event["message"]


def test_the_deadline_survives_a_triggerer_restart(
    gemini_connection: str, gemini_emulator: GeminiEmulator
) -> None:
    gemini_emulator.batches.configure(running_polls=1000)
    name = submit(gemini_connection)
    trigger = trigger_for(name, gemini_connection, timeout=3600.0)
    classpath, kwargs = trigger.serialize()
    assert kwargs["deadline"] is not None

    # The triggerer restarts an hour later: the trigger rebuilt from its kwargs has the same deadline.
    kwargs["deadline"] -= 3600.0  # as if an hour had passed since it was built
    rebuilt = import_string(classpath)(**kwargs)
    event = first_event(rebuilt)

    assert rebuilt.deadline == kwargs["deadline"]
    assert (event["status"], event["job_name"]) == ("timeout", name)
    assert gemini_emulator.batches.jobs()[0].polls == 1
