"""
One migration of an alias at a time: a lease held in Milvus itself, as a small lock collection.

Milvus has no transactions, but creating a collection whose name exists fails: the lease of alias ``docs`` is
the collection ``docs__migration_lock``, created with its owner and expiry in its properties in the same
call (:func:`acquire_lease`). A second migration of ``docs`` finds it and fails at once
(:class:`~airflow_provider_gemini_milvus.exceptions.AliasMigrationLockedError`) naming the holder, when
its lease expires and how to clear it. The lease ends when the migration drops the collection
(:meth:`AliasLease.release`); a killed task leaves it behind, so a lease past its expiry is taken over,
and the retry of the task that holds it (the same task instance, another try) takes it over at once.

The holder renews the lease before each step that changes what readers see (:meth:`AliasLease.confirm`):
a holder whose lease was taken over in the meantime stops instead of acting beside the new holder.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow_provider_gemini_milvus.exceptions import AliasMigrationLockedError
from airflow_provider_gemini_milvus.milvus.layout import NAME_MAX_LENGTH, check_name
from airflow_provider_gemini_milvus.utils.times import iso_time, parse_iso_time

if TYPE_CHECKING:
    from airflow_provider_gemini_milvus.hooks.milvus import MilvusHook
    from airflow_provider_gemini_milvus.utils.logs import TaskLogger

__all__ = [
    "DEFAULT_LEASE_MINUTES",
    "PROPERTY_LOCK_EXPIRES_AT",
    "PROPERTY_LOCK_KEY",
    "PROPERTY_LOCK_OF",
    "PROPERTY_LOCK_OWNER",
    "PROPERTY_LOCK_TAKEN_AT",
    "PROPERTY_LOCK_TOKEN",
    "AliasLease",
    "LeaseOwner",
    "acquire_lease",
    "lock_collection_name",
]

DEFAULT_LEASE_MINUTES = 60.0
PROPERTY_LOCK_OF = "gemini_milvus.lock_of"
PROPERTY_LOCK_OWNER = "gemini_milvus.lock_owner"
PROPERTY_LOCK_KEY = "gemini_milvus.lock_key"
PROPERTY_LOCK_TOKEN = "gemini_milvus.lock_token"
PROPERTY_LOCK_TAKEN_AT = "gemini_milvus.lock_taken_at"
PROPERTY_LOCK_EXPIRES_AT = "gemini_milvus.lock_expires_at"
_LOCK_SUFFIX = "__migration_lock"
_ATTEMPTS = 3


@dataclass(frozen=True)
class LeaseOwner:
    """
    Who migrates an alias.

    :param key: the same for every try of one task instance (dag, run, task, map index): a retry takes
        over the lease its killed try left.
    :param description: how other migrations name the holder in their error.
    """

    key: str
    description: str


def lock_collection_name(alias: str) -> str:
    """
    The lock collection of ``alias``: ``<alias>__migration_lock``, or a name from the alias's hash when that
    is too long.

    :param alias: the alias.
    """
    name = f"{alias}{_LOCK_SUFFIX}"
    if len(name) > NAME_MAX_LENGTH:
        name = f"gemini_milvus_lock_{hashlib.sha256(alias.encode('utf-8')).hexdigest()[:32]}"
    return check_name(name)


@dataclass
class AliasLease:
    """
    The lease of one migration of ``alias`` (from :func:`acquire_lease`).

    :param hook: the Milvus hook.
    :param alias: the alias.
    :param owner: the holder.
    :param token: this acquisition: the lock collection carries it while the lease is this one's.
    :param minutes: how long the lease lasts after each renewal.
    :param expires_at: when it expires unless renewed (UTC).
    """

    hook: MilvusHook
    alias: str
    owner: LeaseOwner
    token: str
    minutes: float
    expires_at: datetime

    @property
    def name(self) -> str:
        """The lock collection."""
        return lock_collection_name(self.alias)

    def confirm(self) -> None:
        """
        Check the lease is still this one's and renew it: call before each step readers would notice.

        :raises AliasMigrationLockedError: another migration took the lease over (this one's had expired):
            nothing more may be changed.
        """
        held = _read_lock(self.hook, self.alias)
        if held is None or held.get(PROPERTY_LOCK_TOKEN) != self.token:
            holder = _holder(held) if held else "nobody (its lock collection was dropped)"
            raise AliasMigrationLockedError(
                f"this task no longer holds the migration lease of alias {self.alias!r} (held by {holder} "
                f"now; this task's lease ran until {iso_time(self.expires_at)}): it stopped before changing "
                "anything more. Raise lease_minutes if a migration takes longer, and run it again once the "
                "other migration is over"
            )
        expires_at = datetime.now(UTC) + timedelta(minutes=self.minutes)
        self.hook.get_conn().alter_collection_properties(
            self.name, {PROPERTY_LOCK_EXPIRES_AT: iso_time(expires_at)}, timeout=self.hook.timeout
        )
        self.expires_at = expires_at

    def release(self) -> None:
        """End the lease: drop the lock collection if it is still this one's."""
        held = _read_lock(self.hook, self.alias)
        if held is not None and held.get(PROPERTY_LOCK_TOKEN) == self.token:
            _drop_lock(self.hook, self.alias)


def acquire_lease(
    hook: MilvusHook,
    alias: str,
    owner: LeaseOwner,
    *,
    minutes: float = DEFAULT_LEASE_MINUTES,
    now: datetime | None = None,
    log: TaskLogger | None = None,
) -> AliasLease:
    """
    Take the migration lease of ``alias``, or fail naming the migration that holds it.

    A lease past its expiry, or held by an earlier try of the same task instance (``owner.key``), is taken
    over with a warning.

    :param hook: the Milvus hook.
    :param alias: the alias.
    :param owner: who takes it.
    :param minutes: how long the lease lasts unless renewed.
    :param now: the current time (UTC); the wall clock when None.
    :param log: where a take-over is reported; the hook's logger when None.
    :raises AliasMigrationLockedError: another migration holds a lease that has not expired.
    :raises ValueError: a collection of the lock's name exists and is not a lock.
    """
    log = log or hook.log
    name = lock_collection_name(alias)
    token = uuid.uuid4().hex
    held: dict[str, Any] | None = None
    for _ in range(_ATTEMPTS):
        moment = now or datetime.now(UTC)
        expires_at = moment + timedelta(minutes=minutes)
        _create_lock(hook, alias, owner, token, moment, expires_at)
        held = _read_lock(hook, alias)
        if held is None:  # released between the two calls: try again
            continue
        if held.get(PROPERTY_LOCK_TOKEN) == token:
            log.info("Took the migration lease of alias %s until %s (%s)", alias, iso_time(expires_at), name)
            return AliasLease(hook, alias, owner, token, minutes, expires_at)
        held_expiry = parse_iso_time(held.get(PROPERTY_LOCK_EXPIRES_AT))
        if held.get(PROPERTY_LOCK_KEY) == owner.key:
            log.warning("Taking over the migration lease of alias %s from an earlier try of this task", alias)
        elif held_expiry is None or held_expiry <= moment:
            log.warning(
                "Taking over the migration lease of alias %s from %s: it expired at %s",
                alias,
                _holder(held),
                held.get(PROPERTY_LOCK_EXPIRES_AT),
            )
        else:
            raise AliasMigrationLockedError(
                f"alias {alias!r} is being migrated by {_holder(held)}, since "
                f"{held.get(PROPERTY_LOCK_TAKEN_AT)}: only one migration of an alias runs at a time. Run "
                f"this one again once that one is over. If that task is no longer running, its lease "
                f"expires at {iso_time(held_expiry)}; to clear it now, drop the lock collection: "
                f"MilvusClient(...).drop_collection({name!r})"
            )
        _drop_lock(hook, alias)
    raise AliasMigrationLockedError(
        f"could not take the migration lease of alias {alias!r}: other migrations kept taking it"
        + (f" (last held by {_holder(held)})" if held else "")
    )


def _create_lock(
    hook: MilvusHook, alias: str, owner: LeaseOwner, token: str, taken_at: datetime, expires_at: datetime
) -> None:
    """Create the lock collection carrying this lease, or leave the one that exists (creating it fails)."""
    from pymilvus import DataType

    client = hook.get_conn()
    name = lock_collection_name(alias)
    if client.has_collection(name, timeout=hook.timeout):
        return  # held (checked first: a refused create makes pymilvus log an ERROR traceback)
    # The token in the description too: a server that answers a second create of an identical schema with
    # success (idempotent create) sees another schema here. Who holds it is read back from the properties.
    schema = client.create_schema(auto_id=False, description=f"migration lease of alias {alias} ({token})")
    schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=64)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=2)
    properties = {
        PROPERTY_LOCK_OF: alias,
        PROPERTY_LOCK_OWNER: owner.description,
        PROPERTY_LOCK_KEY: owner.key,
        PROPERTY_LOCK_TOKEN: token,
        PROPERTY_LOCK_TAKEN_AT: iso_time(taken_at),
        PROPERTY_LOCK_EXPIRES_AT: iso_time(expires_at),
    }
    try:
        client.create_collection(name, schema=schema, properties=properties, timeout=hook.timeout)
    except Exception as err:
        if not client.has_collection(name, timeout=hook.timeout):
            raise AliasMigrationLockedError(
                f"could not create the migration lock {name!r} of alias {alias!r}: {hook.safe_message(err)}"
            ) from None


def _read_lock(hook: MilvusHook, alias: str) -> dict[str, Any] | None:
    """The lock's properties, or None when there is no lock collection."""
    client = hook.get_conn()
    name = lock_collection_name(alias)
    if name in client.list_aliases(timeout=hook.timeout).get("aliases", []):
        raise ValueError(
            f"{name!r} is an alias: rename it, the migration lock of alias {alias!r} needs that name"
        )
    if not client.has_collection(name, timeout=hook.timeout):
        return None
    try:
        description = client.describe_collection(name, timeout=hook.timeout)
    except Exception:
        if not client.has_collection(name, timeout=hook.timeout):
            return None  # dropped between the two calls
        raise
    properties = dict(description.get("properties") or {})
    if properties.get(PROPERTY_LOCK_OF) != alias:
        raise ValueError(
            f"collection {name!r} exists but is not the migration lock of alias {alias!r}: rename it, the "
            "lock needs that name"
        )
    return properties


def _drop_lock(hook: MilvusHook, alias: str) -> None:
    """Drop the lock collection (only ever a collection carrying this alias's lock properties)."""
    if _read_lock(hook, alias) is not None:
        hook.get_conn().drop_collection(lock_collection_name(alias), timeout=hook.timeout)


def _holder(held: dict[str, Any]) -> str:
    return str(held.get(PROPERTY_LOCK_OWNER) or "an unnamed migration")
