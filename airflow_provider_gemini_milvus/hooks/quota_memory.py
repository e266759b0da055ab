"""
Where :class:`~airflow_provider_gemini_milvus.hooks.gemini.GeminiHook` keeps what it learned about an
unconfigured quota, so that the next task, on any worker, starts there instead of in slow start.

The record (:class:`~airflow_provider_gemini_milvus.gemini.learned_rate.LearnedQuota`: per learner, its
request and token rates and when) is kept in an **Airflow Variable**, one per connection and model
(:func:`quota_variable_key`), because:

* a Variable is read and written from any worker through the Task SDK (``airflow.sdk.Variable``, served by
  the API server): the Celery worker of tomorrow's run reads what today's wrote, with no storage to
  configure;
* the task state store (``context["task_state_store"]``) is scoped to one task instance's run: the next
  run cannot read it; an asset's events belong to a task that declares the asset, which a hook used on its
  own has not; the staging root is the embed operator's, unknown to a hook used on its own, and an object
  store write is heavier than a Variable's;
* a person can read it in the UI (*Admin > Variables*), and delete it to make the next job start in slow
  start again.

It costs one read when a hook first embeds with a model, and a write at the end of a call at most every
:data:`MIN_SECONDS_BETWEEN_WRITES` (always after the first call that learned something). The record holds
numbers and random learner ids only: never the key, the connection's secrets or any text.

Outside a task (a hook used in a script or a test, where the Task SDK cannot write Variables) the memory is
off, quietly: the hook starts in slow start as before. In a task, a store that cannot be read or written,
or a record that cannot be understood, is logged once and the hook falls back to slow start: the memory
only ever saves 429s, it never fails a task. The connection extra ``remember_quota: false`` turns it off.

Any object with ``read(key)`` and ``write(key, value)`` (:class:`QuotaStore`) can stand in for the
Variables, e.g. a file that processes of a script share.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import time
from typing import TYPE_CHECKING, Protocol

from airflow_provider_gemini_milvus.gemini.learned_rate import LearnedQuota, LearnerShare

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_gemini_milvus.utils.logs import TaskLogger

__all__ = [
    "MIN_SECONDS_BETWEEN_WRITES",
    "QUOTA_VARIABLE_PREFIX",
    "QuotaMemory",
    "QuotaStore",
    "VariableQuotaStore",
    "quota_variable_key",
]

#: Every learned-quota Variable starts with this.
QUOTA_VARIABLE_PREFIX = "gemini_milvus_learned_quota"

#: A hook writes what it learned at the end of a call, at most this often (a staged run makes many calls).
MIN_SECONDS_BETWEEN_WRITES = 30.0

_UNSAFE_KEY_CHARACTERS = re.compile(r"[^A-Za-z0-9_.-]")


def quota_variable_key(conn_id: str, model: str) -> str:
    """
    The Variable that holds what was learned for ``conn_id`` and ``model`` (e.g. ``gemini-embedding-001``):
    ``gemini_milvus_learned_quota.<conn_id>.<model>``, characters other than letters, digits, ``_.-``
    replaced by ``_``.
    """
    conn_part = _UNSAFE_KEY_CHARACTERS.sub("_", conn_id)
    model_part = _UNSAFE_KEY_CHARACTERS.sub("_", model.removeprefix("models/"))
    return f"{QUOTA_VARIABLE_PREFIX}.{conn_part}.{model_part}"


class QuotaStore(Protocol):
    """Where learned-quota records are kept: text by key."""

    def read(self, key: str) -> str | None:
        """The record under ``key``, or ``None`` when there is none."""
        ...

    def write(self, key: str, value: str) -> None:
        """Keep ``value`` under ``key``."""
        ...


class VariableQuotaStore:
    """Records in Airflow Variables, through the Task SDK; usable inside a running task only."""

    def usable(self) -> bool:
        """Whether this process runs an Airflow task (where the Task SDK can read and write Variables)."""
        from airflow.sdk import get_current_context

        try:
            get_current_context()
        except RuntimeError:
            return False
        return True

    def read(self, key: str) -> str | None:
        from airflow.sdk import Variable

        value = Variable.get(key, default=None)
        return None if value is None else str(value)

    def write(self, key: str, value: str) -> None:
        from airflow.sdk import Variable

        Variable.set(
            key,
            value,
            description="Request and token rates GeminiHook learned for this connection and model "
            "(airflow-provider-gemini-milvus); delete it to start the next job in slow start.",
        )


class QuotaMemory:
    """
    What one hook reads and writes for one connection and model; never raises.

    :param store: where records are kept; ``None``: Airflow Variables, inside a task only.
    :param conn_id: the connection (part of the key).
    :param model: the model (part of the key).
    :param log: the hook's logger.
    :param clock: wall clock in seconds since the epoch (records are read on other machines).
    """

    def __init__(
        self,
        store: QuotaStore | None,
        conn_id: str,
        model: str,
        log: TaskLogger,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.key = quota_variable_key(conn_id, model)
        self.learner = secrets.token_hex(8)
        self._log = log
        self._clock = clock
        self._store: QuotaStore | None = store
        if store is None:
            default = VariableQuotaStore()
            if default.usable():
                self._store = default
            else:
                log.debug("Not in an Airflow task: the learned quota is neither read nor kept")
        self._last_write: float | None = None
        self._failed = False

    @property
    def active(self) -> bool:
        """Whether there is a store to use (it may still fail)."""
        return self._store is not None and not self._failed

    def recall(self) -> LearnedQuota | None:
        """The record for this connection and model, or ``None`` (none, unreadable: logged, too old)."""
        if self._store is None:
            return None
        try:
            text = self._store.read(self.key)
        except Exception as err:
            self._give_up("read", err)
            return None
        if text is None:
            return None
        try:
            return LearnedQuota.from_json(text)
        except ValueError as err:
            # The message describes the record's shape, never quotes it.
            self._log.warning("Ignoring Variable %s, starting in slow start: %s", self.key, err)
            return None

    def now(self) -> float:
        """Seconds since the epoch, by this memory's clock."""
        return self._clock()

    def due(self) -> bool:
        """Whether a write now would not be too soon after the last one."""
        return self.active and (
            self._last_write is None or self.now() - self._last_write >= MIN_SECONDS_BETWEEN_WRITES
        )

    def remember(self, requests_per_second: float, tokens_per_second: float, since: float) -> None:
        """
        Write this hook's share into the record (beside those of learners that ran at the same time).

        :param requests_per_second: successful requests per second it got through.
        :param tokens_per_second: their input tokens per second.
        :param since: when its measure began, seconds since the epoch.
        """
        if self._store is None or self._failed:
            return
        now = self.now()
        try:
            share = LearnerShare(self.learner, requests_per_second, tokens_per_second, min(since, now), now)
        except ValueError:
            return
        try:
            text = self._store.read(self.key)
        except Exception as err:
            self._give_up("read", err)
            return
        record = LearnedQuota((share,))
        if text is not None:
            # An unreadable record (logged when it was read) is replaced.
            with contextlib.suppress(ValueError):
                record = LearnedQuota.from_json(text).with_share(share)
        try:
            self._store.write(self.key, record.to_json())
        except Exception as err:
            self._give_up("write", err)
            return
        self._last_write = now
        self._log.info(
            "Kept the learned quota in Variable %s: %.2f requests/s here, %.2f for %d task(s) together",
            self.key,
            requests_per_second,
            record.total_requests_per_second,
            len(record.learners),
        )

    def _give_up(self, action: str, err: Exception) -> None:
        """Log a store failure once (its type only: a message might echo a value) and stop using it."""
        self._failed = True
        self._log.warning(
            "Could not %s Variable %s (%s); this task learns its quota from slow start",
            action,
            self.key,
            type(err).__name__,
        )
