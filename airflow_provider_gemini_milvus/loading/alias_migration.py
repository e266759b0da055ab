"""
Milvus aliases for zero-downtime model migrations: versioned collections, checks, the switch, retention.

Readers search an alias (``docs``). A migration fills a collection named after the alias and the embedding
settings (:func:`versioned_collection_name`), checks it (:func:`verify_collection`), moves the alias onto it
in one call (:func:`switch_alias`), and later drops the collections the alias left
(:func:`drop_retired_versions`). Each step is a function taking a :class:`~.hooks.milvus.MilvusHook`.

What a migration records lives in the collections' own properties, so it survives restarts and needs no
other store: ``gemini_milvus.alias`` (the alias the collection served or serves), ``gemini_milvus.model``
(the embedding settings), ``gemini_milvus.promoted_at`` and ``gemini_milvus.retired_at`` (UTC ISO times
the alias moved onto and away from it; an empty ``retired_at`` means live). A collection is tagged only
once the alias points to it (after the switch, or when found as the alias's target), never before: one
whose checks failed, or whose switch failed, carries nothing and is left alone. Only collections that were
live, carry a readable ``retired_at`` for the alias and no alias points to (checked again right before
each drop) are ever dropped.

:func:`promote` holds the alias's migration lease (:mod:`.alias_lease`) from before its checks to the end
of the clean-up: a second migration of the same alias fails at once, so it neither drops the first one's
collection nor moves the alias between the first one's checks and its drops.

Milvus Lite resolves an alias wherever a collection name is taken (describe, query, search, upsert, delete)
and its ``drop_collection`` silently drops an alias together with its target; so does ``drop_collection``
called with the alias name. Nothing here drops by any name other than a checked, alias-free collection's.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypedDict

from airflow_provider_gemini_milvus.exceptions import MigrationCheckError, MigrationQualityError
from airflow_provider_gemini_milvus.gemini.models import normalise_task_type, query_task_type, resolve_model
from airflow_provider_gemini_milvus.loading.alias_lease import (
    DEFAULT_LEASE_MINUTES,
    AliasLease,
    LeaseOwner,
    acquire_lease,
)
from airflow_provider_gemini_milvus.milvus.layout import (
    FIELD_MODEL,
    FIELD_VECTOR,
    NAME_MAX_LENGTH,
    check_name,
    search_hits,
)
from airflow_provider_gemini_milvus.milvus.rows import milvus_string_literal, model_fingerprint
from airflow_provider_gemini_milvus.retrieval.quality import QualityGate, judge_quality
from airflow_provider_gemini_milvus.retrieval.search import QuerySettings, stored_query_settings
from airflow_provider_gemini_milvus.utils.times import iso_time, parse_iso_time

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow_provider_gemini_milvus.hooks.gemini import GeminiHook
    from airflow_provider_gemini_milvus.hooks.milvus import MilvusHook
    from airflow_provider_gemini_milvus.utils.logs import TaskLogger

__all__ = [
    "PromoteArguments",
    "PromoteResult",
    "QualityResult",
    "probe_task_type",
    "promote",
    "PROPERTY_ALIAS",
    "PROPERTY_MODEL",
    "PROPERTY_PROMOTED_AT",
    "PROPERTY_RETIRED_AT",
    "AliasSwitch",
    "RetiredVersion",
    "alias_target",
    "drop_retired_versions",
    "embedding_fingerprint",
    "mark_retired",
    "probe_search",
    "record_live",
    "retired_versions",
    "switch_alias",
    "verify_collection",
    "versioned_collection_name",
    "versions_to_drop",
]

PROPERTY_ALIAS = "gemini_milvus.alias"
PROPERTY_MODEL = "gemini_milvus.model"
PROPERTY_PROMOTED_AT = "gemini_milvus.promoted_at"
PROPERTY_RETIRED_AT = "gemini_milvus.retired_at"
_SLUG_UNSAFE = re.compile(r"[^a-z0-9]+")
_HASH_CHARS = 8


@dataclass(frozen=True)
class AliasSwitch:
    """
    What :func:`switch_alias` did.

    :param previous: the collection the alias pointed to before, or None when it was created.
    :param switched: True when the alias was created or moved; False when it already pointed there.
    """

    previous: str | None
    switched: bool


@dataclass(frozen=True)
class RetiredVersion:
    """A collection the alias moved away from, and when (UTC)."""

    name: str
    retired_at: datetime


class PromoteResult(TypedDict):
    """What a promotion returns (``MilvusPromoteAliasOperator``'s XCom)."""

    alias: str
    collection: str
    previous: str | None
    switched: bool
    rows: int
    probes: int
    quality: QualityResult | None
    dropped: list[str]


class QualityResult(TypedDict):
    """What the quality gate measured: both collections' score on its metric, and the verdict."""

    metric: str
    mode: str
    k: int
    queries: int
    new: float
    live: float
    tolerance: float
    passed: bool


def probe_task_type(document_task_type: str) -> str:
    """The task type of probe queries: ``RETRIEVAL_QUERY`` for a retrieval corpus, else the documents' own."""
    return query_task_type(normalise_task_type(document_task_type))


@dataclass(frozen=True)
class PromoteArguments:
    """The operator's arguments after rendering, converted and checked once."""

    alias: str
    collection_name: str
    fingerprint: str
    model: str
    output_dimensionality: int | None
    task_type: str
    expected_rows: int | None
    expected_source: str
    probes: list[tuple[str, str | None]]
    probe_limit: int
    keep_previous: int
    retention_hours: float
    lease_minutes: float = DEFAULT_LEASE_MINUTES
    quality_gate: QualityGate | None = None


def embedding_fingerprint(model: str, output_dimensionality: int | None, task_type: str) -> str:
    """
    The ``model`` field of rows embedded with these settings: ``gemini-embedding-001/768/RETRIEVAL_DOCUMENT``.

    ``output_dimensionality=None`` means the model's default: the same fingerprint as that number.

    :param model: the Gemini embedding model.
    :param output_dimensionality: vector length, or None for the model's default.
    :param task_type: the documents' task type.
    :raises ValueError: for an unknown model or task type, or a dimensionality the model refuses.
    """
    resolved = resolve_model(model)
    resolved.check_output_dimensionality(output_dimensionality)
    return model_fingerprint(
        resolved.name,
        resolved.dim(output_dimensionality),
        normalise_task_type(task_type),
        resolved.request_format,
    )


def versioned_collection_name(
    alias: str, model: str, output_dimensionality: int | None = None, task_type: str = "RETRIEVAL_DOCUMENT"
) -> str:
    """
    The collection a migration of ``alias`` to these settings fills: the same for every run and retry.

    ``versioned_collection_name("docs", "gemini-embedding-001", 768)`` is
    ``docs__gemini_embedding_001_768_retrieval_document_<8 hex>``: readable, and the hash of the exact
    settings keeps two settings that read alike apart. Too long a name keeps the alias and the hash.

    :param alias: the alias readers search.
    :param model: the Gemini embedding model.
    :param output_dimensionality: vector length, or None for the model's default.
    :param task_type: the documents' task type.
    :raises ValueError: for an alias Milvus refuses as a name, or bad embedding settings.
    """
    check_name(alias, "alias")
    fingerprint = embedding_fingerprint(model, output_dimensionality, task_type)
    digest = hashlib.sha256(fingerprint.encode("utf-8")).hexdigest()[:_HASH_CHARS]
    slug = _SLUG_UNSAFE.sub("_", fingerprint.lower()).strip("_")
    name = f"{alias}__{slug}_{digest}"
    if len(name) > NAME_MAX_LENGTH:
        name = f"{alias}__{digest}"
    return check_name(name)


def alias_target(hook: MilvusHook, alias: str) -> str | None:
    """
    The collection ``alias`` points to, or None when there is no such alias.

    :param hook: the Milvus hook.
    :param alias: the alias name.
    :raises ValueError: when ``alias`` names a collection: readers must search an alias, which a
        collection of that name would shadow.
    """
    check_name(alias, "alias")
    client = hook.get_conn()
    # ``list_aliases`` first: ``describe_alias`` of a missing alias makes pymilvus log an ERROR traceback.
    if alias in client.list_aliases(timeout=hook.timeout).get("aliases", []):
        return str(client.describe_alias(alias, timeout=hook.timeout)["collection_name"])
    if hook.has_collection(alias):
        raise ValueError(
            f"{alias!r} is a collection, not an alias: a migration moves an alias readers search. Pick "
            f"another alias name, or load {alias!r} under a versioned name and point readers at the alias"
        )
    return None


def verify_collection(
    hook: MilvusHook, collection: str, *, expected_rows: int | None, fingerprint: str, source: str
) -> int:
    """
    Check a filled collection before readers see it: it exists, holds ``expected_rows`` rows (when known,
    else at least one), all embedded with ``fingerprint``. Probe searches are the caller's (they need Gemini).

    :param hook: the Milvus hook.
    :param collection: the new collection.
    :param expected_rows: how many rows the source has; None when nothing to compare with.
    :param fingerprint: the ``model`` every row must carry (:func:`embedding_fingerprint`).
    :param source: where ``expected_rows`` came from, for the message.
    :raises MigrationCheckError: naming the collection and what differs.
    :return: the collection's row count.
    """
    if not hook.has_collection(collection):
        raise MigrationCheckError(f"collection {collection!r} does not exist: load it before the switch")
    rows = hook.count(collection)
    if expected_rows is not None and rows != expected_rows:
        raise MigrationCheckError(
            f"collection {collection!r} holds {rows} rows but {source} has {expected_rows}: "
            "the load is incomplete or the source changed"
        )
    if rows == 0:
        raise MigrationCheckError(f"collection {collection!r} is empty")
    other = hook.get_conn().query(
        collection,
        filter=f"{FIELD_MODEL} != {milvus_string_literal(fingerprint)}",
        output_fields=["count(*)"],
        consistency_level="Strong",
        timeout=hook.timeout,
    )
    stale = int(other[0]["count(*)"]) if other else 0
    if stale:
        raise MigrationCheckError(
            f"{stale} of the {rows} rows of collection {collection!r} were not embedded with {fingerprint}"
        )
    return rows


def probe_search(
    hook: MilvusHook, collection: str, vectors: Sequence[Sequence[float]], *, limit: int
) -> list[list[str]]:
    """
    The ids of the nearest rows for each probe vector, read with Strong consistency: on a server the default
    (Bounded) may not show rows written seconds ago yet, and a probe would find nothing in a full collection.

    :param hook: the Milvus hook.
    :param collection: the collection to search.
    :param vectors: the embedded probe queries.
    :param limit: hits per probe.
    """
    hook.ensure_loaded(collection)
    results = hook.get_conn().search(
        collection,
        data=[list(map(float, vector)) for vector in vectors],
        limit=limit,
        output_fields=[],
        anns_field=FIELD_VECTOR,
        consistency_level="Strong",
        timeout=hook.timeout,
    )
    return [[str(hit["id"]) for hit in hits] for hits in search_hits(results, ())]


def switch_alias(
    hook: MilvusHook, alias: str, collection: str, *, fingerprint: str, now: datetime
) -> AliasSwitch:
    """
    Point ``alias`` at ``collection`` in one call (``create_alias`` the first time, else ``alter_alias``),
    and record the move in both collections' properties.

    :param hook: the Milvus hook.
    :param alias: the alias readers search.
    :param collection: the checked collection.
    :param fingerprint: the new collection's embedding settings, recorded with it.
    :param now: the switch time (UTC).
    """
    client = hook.get_conn()
    previous = alias_target(hook, alias)
    if previous == collection:
        record_live(hook, alias, collection, fingerprint=fingerprint, now=now)
        return AliasSwitch(previous, switched=False)
    if previous is None:
        client.create_alias(collection, alias, timeout=hook.timeout)
    else:
        # The live version is tagged before the move (true whether or not the move then succeeds), so a
        # crash right after the move still leaves it recognisable as a version the alias left.
        record_live(hook, alias, previous, fingerprint=None, now=now)
        client.alter_alias(collection, alias, timeout=hook.timeout)
    # Tagged only now that readers see it: a collection whose switch failed was never live and carries
    # nothing a clean-up could mistake for a retired version. A crash before this line leaves the live
    # collection untagged; the retry (or the next migration, through ``previous``) tags it.
    record_live(hook, alias, collection, fingerprint=fingerprint, now=now, promoted=True)
    return AliasSwitch(previous, switched=True)


def record_live(
    hook: MilvusHook,
    alias: str,
    collection: str,
    *,
    fingerprint: str | None,
    now: datetime,
    promoted: bool = False,
) -> None:
    """
    Record in ``collection``'s properties that ``alias`` points to it: only call while it does.

    An empty ``retired_at`` marks it live (again, after a rollback); setting it, rather than deleting the
    key, works on servers older than Milvus 2.4.18 too. A ``promoted_at`` already there is kept unless
    ``promoted`` (the alias just moved onto it); so is a ``model``, unless ``fingerprint`` is given and the
    alias just moved. Nothing is written when nothing changes.

    :param hook: the Milvus hook.
    :param alias: the alias.
    :param collection: the collection the alias points to.
    :param fingerprint: its embedding settings, when known (checked by this migration).
    :param now: the time to record (UTC).
    :param promoted: True right after the alias moved onto it.
    """
    properties = _properties(hook, collection) or {}
    wanted: dict[str, str] = {PROPERTY_ALIAS: alias, PROPERTY_RETIRED_AT: ""}
    if promoted or not properties.get(PROPERTY_PROMOTED_AT):
        wanted[PROPERTY_PROMOTED_AT] = iso_time(now)
    if fingerprint is not None and (promoted or not properties.get(PROPERTY_MODEL)):
        wanted[PROPERTY_MODEL] = fingerprint
    changes = {key: value for key, value in wanted.items() if properties.get(key) != value}
    if changes:
        hook.get_conn().alter_collection_properties(collection, changes, timeout=hook.timeout)


def mark_retired(hook: MilvusHook, alias: str, now: datetime) -> list[str]:
    """
    Stamp ``retired_at`` on every collection that was live for ``alias`` (tagged with it and a
    ``promoted_at``), that it no longer points to and is not stamped yet (the one it just left, or one a
    crash left unstamped); return their names. A collection that was never live is never stamped.

    :param hook: the Milvus hook.
    :param alias: the alias.
    :param now: the time to record (UTC).
    """
    target = alias_target(hook, alias)
    stamped = []
    for name in hook.get_conn().list_collections(timeout=hook.timeout):
        properties = _properties(hook, name)
        if (
            properties is None
            or name == target
            or properties.get(PROPERTY_ALIAS) != alias
            or not properties.get(PROPERTY_PROMOTED_AT)
            or properties.get(PROPERTY_RETIRED_AT)
        ):
            continue
        hook.get_conn().alter_collection_properties(
            name, {PROPERTY_RETIRED_AT: iso_time(now)}, timeout=hook.timeout
        )
        stamped.append(name)
    return stamped


def retired_versions(hook: MilvusHook, alias: str, log: TaskLogger | None = None) -> list[RetiredVersion]:
    """
    The collections ``alias`` moved away from, most recently left first.

    A ``retired_at`` that is not an ISO time with a time zone is skipped with a warning: that collection
    is never dropped on the strength of a time that cannot be read, and the other versions are unaffected.

    :param hook: the Milvus hook.
    :param alias: the alias.
    :param log: where the warning goes; the hook's logger when None.
    """
    log = log or hook.log
    versions = []
    for name in hook.get_conn().list_collections(timeout=hook.timeout):
        properties = _properties(hook, name)
        if properties is None or properties.get(PROPERTY_ALIAS) != alias:
            continue
        stamp = properties.get(PROPERTY_RETIRED_AT)
        if not stamp:
            continue
        retired_at = parse_iso_time(stamp)
        if retired_at is None:
            log.warning(
                "Keeping collection %s: its %s %r is not an ISO time with a time zone, so retention "
                "cannot tell its age. Set it (e.g. %r) or drop the collection yourself",
                name,
                PROPERTY_RETIRED_AT,
                str(stamp)[:64],
                iso_time(datetime.now(UTC)),
            )
            continue
        versions.append(RetiredVersion(name, retired_at))
    return sorted(versions, key=lambda version: (version.retired_at, version.name), reverse=True)


def versions_to_drop(
    versions: Sequence[RetiredVersion], *, keep_previous: int, retention_hours: float, now: datetime
) -> list[str]:
    """
    Which retired versions retention drops: all but the ``keep_previous`` most recently left, and of those
    only the ones left at least ``retention_hours`` ago.

    :param versions: retired versions, most recently left first (:func:`retired_versions`).
    :param keep_previous: how many of the most recently left versions to keep whatever their age.
    :param retention_hours: how long a version stays after the alias left it.
    :param now: the current time (UTC).
    """
    cutoff = now - timedelta(hours=retention_hours)
    return [version.name for version in versions[keep_previous:] if version.retired_at <= cutoff]


def drop_retired_versions(
    hook: MilvusHook,
    alias: str,
    *,
    keep_previous: int,
    retention_hours: float,
    now: datetime,
    lease: AliasLease | None = None,
    log: TaskLogger | None = None,
) -> list[str]:
    """
    Drop what :func:`versions_to_drop` picks, skipping any collection an alias points to; return the names.

    Each collection is checked again right before its drop: no alias (this one or any other) points to
    it, and it is still a retired version of ``alias``. Milvus Lite (and Milvus 2.3) would drop an alias
    with its collection. With ``lease``, the lease is renewed before each drop and the clean-up stops if
    another migration took it over.

    :param hook: the Milvus hook.
    :param alias: the alias.
    :param keep_previous: see :func:`versions_to_drop`.
    :param retention_hours: see :func:`versions_to_drop`.
    :param now: the current time (UTC).
    :param lease: the alias's migration lease held by the caller.
    :param log: the task's logger; the hook's when None.
    :raises AliasMigrationLockedError: ``lease`` was taken over; nothing more was dropped.
    """
    log = log or hook.log
    mark_retired(hook, alias, now)
    candidates = versions_to_drop(
        retired_versions(hook, alias, log),
        keep_previous=keep_previous,
        retention_hours=retention_hours,
        now=now,
    )
    client = hook.get_conn()
    dropped = []
    for name in candidates:
        if lease is not None:
            lease.confirm()
        reason = _reason_to_keep(hook, alias, name)
        if reason:
            log.info("Keeping %s: %s", name, reason)
            continue
        client.drop_collection(name, timeout=hook.timeout)
        log.info("Dropped collection %s, a retired version of alias %s", name, alias)
        dropped.append(name)
    return dropped


def _reason_to_keep(hook: MilvusHook, alias: str, name: str) -> str | None:
    """Why ``name`` must not be dropped now, read right before the drop; None when it may go."""
    if name == alias_target(hook, alias):
        return f"alias {alias} points to it"
    aliases = hook.get_conn().list_aliases(name, timeout=hook.timeout).get("aliases") or []
    if aliases:
        return f"alias {', '.join(map(str, aliases))} points to it"
    properties = _properties(hook, name)
    if properties is None:
        return "it is gone already"
    if properties.get(PROPERTY_ALIAS) != alias or parse_iso_time(properties.get(PROPERTY_RETIRED_AT)) is None:
        return f"it is no longer a retired version of alias {alias}"
    return None


def _properties(hook: MilvusHook, name: str) -> dict[str, Any] | None:
    """The collection's properties, or None when it was dropped since it was listed."""
    client = hook.get_conn()
    try:
        description = client.describe_collection(name, timeout=hook.timeout)
    except Exception:
        if not client.has_collection(name, timeout=hook.timeout):
            return None
        raise
    return dict(description.get("properties") or {})


def promote(
    hook: MilvusHook,
    gemini_hook: GeminiHook,
    args: PromoteArguments,
    log: TaskLogger,
    owner: LeaseOwner | None = None,
) -> PromoteResult:
    """
    Take the alias's migration lease, check the new collection, switch the alias onto it and drop the
    versions past retention; then end the lease.

    :param hook: the hook of the collection's connection (the caller closes it).
    :param gemini_hook: embeds the probe queries.
    :param args: the operator's converted arguments.
    :param log: the task's logger.
    :param owner: who migrates (the task instance), named to a second migration of the alias; None for a
        migration no retry takes over.
    :raises AliasMigrationLockedError: another migration of the alias is running (before any check or
        probe), or took the lease over from this one (before the switch or a drop).
    :raises MigrationCheckError: a check failed; the alias was not moved.
    """
    check_name(args.alias, "alias")
    owner = owner or LeaseOwner(key=uuid.uuid4().hex, description="an unnamed migration")
    lease = acquire_lease(hook, args.alias, owner, minutes=args.lease_minutes, log=log)
    try:
        return _promote(hook, gemini_hook, args, log, lease)
    finally:
        try:
            lease.release()
        except Exception as err:
            log.warning(
                "Could not end the migration lease of alias %s (%s); it expires at %s, or drop collection "
                "%s to clear it",
                args.alias,
                hook.safe_message(err),
                lease.expires_at.isoformat(timespec="seconds"),
                lease.name,
            )


def _promote(
    hook: MilvusHook, gemini_hook: GeminiHook, args: PromoteArguments, log: TaskLogger, lease: AliasLease
) -> PromoteResult:
    now = datetime.now(UTC)
    current = alias_target(hook, args.alias)
    rows = probes = 0
    quality: QualityResult | None = None
    if current == args.collection_name:
        log.info("Alias %s already points to %s: nothing to check or switch", args.alias, current)
        # A crash between the switch and its record left the collection untagged: record it now.
        record_live(hook, args.alias, args.collection_name, fingerprint=args.fingerprint, now=now)
        switched = False
    else:
        expected, source = args.expected_rows, args.expected_source
        if expected is None and current is not None:
            expected, source = hook.count(current), f"collection {current!r} (the alias's current target)"
        try:
            rows = verify_collection(
                hook,
                args.collection_name,
                expected_rows=expected,
                fingerprint=args.fingerprint,
                source=source,
            )
            log.info(
                "Collection %s holds %s rows, all embedded with %s",
                args.collection_name,
                rows,
                args.fingerprint,
            )
            _check_full_text_kept(hook, args.collection_name, current)
            probes = _run_probes(hook, gemini_hook, args, log)
            if args.quality_gate is not None:
                quality = _check_quality(hook, gemini_hook, args, args.quality_gate, current, log)
        except MigrationCheckError as err:
            where = f"still points to {current!r}" if current else "was not created"
            raise type(err)(f"{err}; alias {args.alias!r} {where}") from None
        lease.confirm()
        switch = switch_alias(hook, args.alias, args.collection_name, fingerprint=args.fingerprint, now=now)
        switched = switch.switched
        log.info(
            "Alias %s now points to %s (%s)",
            args.alias,
            args.collection_name,
            f"was {switch.previous}" if switch.previous else "created",
        )
    dropped = drop_retired_versions(
        hook,
        args.alias,
        keep_previous=args.keep_previous,
        retention_hours=args.retention_hours,
        now=now,
        lease=lease,
        log=log,
    )
    return {
        "alias": args.alias,
        "collection": args.collection_name,
        "previous": current,
        "switched": switched,
        "rows": rows,
        "probes": probes,
        "quality": quality,
        "dropped": dropped,
    }


def _run_probes(hook: MilvusHook, gemini_hook: GeminiHook, args: PromoteArguments, log: TaskLogger) -> int:
    """Embed the probe queries with the new settings and search the new collection with each."""
    if not args.probes:
        return 0
    vectors = gemini_hook.embed(
        [query for query, _ in args.probes],
        model=args.model,
        task_type=probe_task_type(args.task_type),
        output_dimensionality=args.output_dimensionality,
    )
    results = probe_search(hook, args.collection_name, vectors.tolist(), limit=args.probe_limit)
    for index, ((query, expected_id), found) in enumerate(zip(args.probes, results, strict=True)):
        if not found:
            raise MigrationCheckError(
                f"probe_queries[{index}] ({query!r}) found nothing in collection {args.collection_name!r}"
            )
        if expected_id is not None and expected_id not in found:
            raise MigrationCheckError(
                f"probe_queries[{index}] ({query!r}) did not find {expected_id!r} in the top "
                f"{args.probe_limit} of collection {args.collection_name!r} (found {found})"
            )
    log.info("%s probe queries found their rows in %s", len(args.probes), args.collection_name)
    return len(args.probes)


def _check_full_text_kept(hook: MilvusHook, new: str, live: str | None) -> None:
    """Readers of a live collection with full-text search keep it: the new collection must have it too."""
    if live is None:
        return
    live_info, new_info = hook.describe(live), hook.describe(new)
    if live_info is not None and live_info.full_text and new_info is not None and not new_info.full_text:
        raise MigrationCheckError(
            f"collection {new!r} has no full-text search, but the live collection {live!r} has it and its "
            "readers may search in the full_text or hybrid mode: create the new collection with "
            "MilvusInsertOperator(full_text=True)"
        )


def _check_quality(
    hook: MilvusHook,
    gemini_hook: GeminiHook,
    args: PromoteArguments,
    gate: QualityGate,
    live: str | None,
    log: TaskLogger,
) -> QualityResult | None:
    """Refuse the switch when the new collection answers the labelled queries worse than the live one."""
    if live is None:
        log.info(
            "Alias %s points nowhere yet: the quality gate has no live collection to compare", args.alias
        )
        return None
    live_settings = stored_query_settings(hook, live)
    if live_settings is None:
        raise MigrationCheckError(
            f"the live collection {live!r} has rows without a model fingerprint, so the quality gate cannot "
            "embed its queries as its rows were; promote once without quality_queries"
        )
    if gate.mode != "dense":
        for name in (args.collection_name, live):
            info = hook.describe(name)
            if info is None or not info.full_text:
                raise MigrationCheckError(
                    f"quality_mode {gate.mode!r} needs full-text search, which collection {name!r} lacks"
                )
    new_settings = QuerySettings(
        model=args.model,
        output_dimensionality=resolve_model(args.model).dim(args.output_dimensionality),
        task_type=query_task_type(normalise_task_type(args.task_type)),
    )
    verdict = judge_quality(
        hook,
        gemini_hook,
        gate,
        new=args.collection_name,
        new_settings=new_settings,
        live=live,
        live_settings=live_settings,
        log=log,
    )
    if not verdict.passed:
        raise MigrationQualityError(f"search quality check failed: {verdict.message}")
    log.info("Quality gate passed: %s", verdict.message)
    return {
        "metric": verdict.metric,
        "mode": gate.mode,
        "k": gate.k,
        "queries": len(gate.queries),
        "new": verdict.new,
        "live": verdict.live,
        "tolerance": verdict.tolerance,
        "passed": True,
    }
