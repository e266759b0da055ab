"""Operator that checks a freshly filled collection and moves a Milvus alias onto it: a model migration."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_gemini_milvus.gemini.models import DEFAULT_MODEL
from airflow_provider_gemini_milvus.hooks.milvus import MilvusHook
from airflow_provider_gemini_milvus.loading.alias_lease import DEFAULT_LEASE_MINUTES, LeaseOwner
from airflow_provider_gemini_milvus.loading.alias_migration import (
    PromoteArguments,
    PromoteResult,
    embedding_fingerprint,
    promote,
    versioned_collection_name,
)
from airflow_provider_gemini_milvus.observability.metrics import promote_metrics, record_metrics
from airflow_provider_gemini_milvus.retrieval.evaluation import QUALITY_METRICS, SEARCH_MODES
from airflow_provider_gemini_milvus.retrieval.labelled import labelled_queries
from airflow_provider_gemini_milvus.retrieval.quality import DEFAULT_QUALITY_K, QualityGate
from airflow_provider_gemini_milvus.utils.converters import to_choice, to_float, to_int, to_str, to_str_list

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage
    from airflow.sdk import Context, XComArg

    from airflow_provider_gemini_milvus.hooks.gemini import GeminiHook

__all__ = ["MilvusPromoteAliasOperator", "versioned_collection_name"]

DEFAULT_KEEP_PREVIOUS = 1
DEFAULT_RETENTION_HOURS = 24.0
DEFAULT_PROBE_LIMIT = 5


class MilvusPromoteAliasOperator(BaseOperator):
    """
    Check a newly filled collection, move the alias readers search onto it, and drop old versions.

    The last step of a model migration (see the docs' "Model migration" page): upstream tasks fill
    ``collection_name``, by default the
    :func:`~airflow_provider_gemini_milvus.loading.alias_migration.versioned_collection_name` of the alias
    and the embedding settings; this task then

    1. **checks** the collection: its row count equals ``expected_rows`` (by default the row count of the
       collection the alias points to now), every row carries the new settings' ``model`` fingerprint, and
       each probe query, embedded with the new settings, finds at least one row (or, for a
       ``{query: id}`` probe, that id among the top ``probe_limit``). A failed check raises
       ``MigrationCheckError`` and leaves the alias where it was;
    2. **switches** the alias in one ``alter_alias`` call (``create_alias`` on the first run), recording
       the time in the collections' properties;
    3. **cleans up**: collections the alias left are dropped, except the ``keep_previous`` most recently
       left, and only once ``retention_hours`` have passed since the alias left them. The collection an
       alias points to is never dropped, nor one a failed migration left unswitched.

    With ``quality_queries`` (labelled queries: query -> relevant ids), step 1 also scores the new and
    the live collection on them (``quality_metric`` over the top ``quality_k`` in ``quality_mode`` search,
    each collection's queries embedded as its rows were) and raises ``MigrationQualityError``, naming both
    scores, when the new one scores more than ``quality_tolerance`` below the live one: a migration that
    makes search worse never reaches readers. A live collection with full-text search also requires it of
    the new one.

    Only one migration of an alias runs at a time: the task holds a lease recorded in Milvus (the
    collection ``<alias>__migration_lock``) from before its checks to the end of the clean-up. A second
    migration of the alias fails at once with ``AliasMigrationLockedError`` naming the first. A lease a
    killed task left expires ``lease_minutes`` after it was last renewed, and the retry of that task takes
    it over at once.

    A retry after the switch finds the alias on the collection already: it checks nothing, sends no probe,
    and only runs the clean-up.

    Returns (XCom) ``{"alias", "collection", "previous", "switched", "rows", "probes", "quality",
    "dropped"}``; ``quality`` is the gate's ``{"metric", "mode", "k", "queries", "new", "live",
    "tolerance", "passed"}``, or None when no gate ran.

    :param alias: the alias readers search.
    :param collection_name: the new collection; None derives it from the alias and embedding settings.
    :param model: the Gemini model the collection was embedded with (also embeds the probes).
    :param output_dimensionality: its vector length; None for the model's default.
    :param task_type: the documents' task type; probes use ``RETRIEVAL_QUERY`` for ``RETRIEVAL_DOCUMENT``,
        else the same.
    :param expected_rows: the source's row count: an int, or the embedding task's result (its
        ``stats.documents``, e.g. ``embed.output``); None compares with the collection the alias points to
        now (and, on the first run, only requires rows).
    :param probe_queries: query texts that must each find a row, or ``{query: expected id}``.
    :param probe_limit: hits per probe search.
    :param keep_previous: retired versions kept whatever their age (1 allows an instant rollback).
    :param retention_hours: hours a retired version beyond ``keep_previous`` is kept after the switch.
    :param lease_minutes: how long the migration lease lasts after each renewal (renewed before the switch
        and each drop): how long a killed task's lease blocks other migrations of the alias.
    :param quality_queries: labelled queries for the quality gate (see
        :func:`~airflow_provider_gemini_milvus.retrieval.labelled.labelled_queries`: a list of
        ``{"query", "relevant"}``, a ``{query: ids}`` mapping, JSON text, or a ``.json``/``.jsonl`` file);
        None runs no gate.
    :param quality_metric: ``ndcg`` (default), ``mrr`` or ``recall``.
    :param quality_mode: the search mode scored: ``dense`` (default), ``full_text`` or ``hybrid``.
    :param quality_k: hits per query that count.
    :param quality_tolerance: how far (0 to 1) the new score may fall below the live one.
    :param milvus_conn_id: the Milvus connection.
    :param gemini_conn_id: the Gemini connection, to embed the probes and the quality queries.
    """

    template_fields: Sequence[str] = (
        "alias",
        "collection_name",
        "model",
        "output_dimensionality",
        "gemini_task_type",
        "expected_rows",
        "probe_queries",
        "probe_limit",
        "keep_previous",
        "retention_hours",
        "lease_minutes",
        "quality_queries",
        "quality_metric",
        "quality_mode",
        "quality_k",
        "quality_tolerance",
        "milvus_conn_id",
        "gemini_conn_id",
    )
    ui_color = "#e6f4ea"

    def __init__(
        self,
        *,
        alias: str,
        collection_name: str | None = None,
        model: str = DEFAULT_MODEL,
        output_dimensionality: int | str | None = None,
        task_type: str = "RETRIEVAL_DOCUMENT",
        expected_rows: int | str | Mapping[str, Any] | XComArg | None = None,
        probe_queries: Sequence[str] | Mapping[str, str] = (),
        probe_limit: int | str = DEFAULT_PROBE_LIMIT,
        keep_previous: int | str = DEFAULT_KEEP_PREVIOUS,
        retention_hours: float | str = DEFAULT_RETENTION_HOURS,
        lease_minutes: float | str = DEFAULT_LEASE_MINUTES,
        quality_queries: Any = None,
        quality_metric: str = "ndcg",
        quality_mode: str = "dense",
        quality_k: int | str = DEFAULT_QUALITY_K,
        quality_tolerance: float | str = 0.0,
        milvus_conn_id: str = MilvusHook.default_conn_name,
        gemini_conn_id: str = "gemini_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.alias = alias
        self.collection_name = collection_name
        self.model = model
        self.output_dimensionality = output_dimensionality
        # ``task_type`` is a read-only property of BaseOperator (the class name).
        self.gemini_task_type = task_type
        self.expected_rows = expected_rows
        self.probe_queries = probe_queries
        self.probe_limit = probe_limit
        self.keep_previous = keep_previous
        self.retention_hours = retention_hours
        self.lease_minutes = lease_minutes
        self.quality_queries = quality_queries
        self.quality_metric = quality_metric
        self.quality_mode = quality_mode
        self.quality_k = quality_k
        self.quality_tolerance = quality_tolerance
        self.milvus_conn_id = milvus_conn_id
        self.gemini_conn_id = gemini_conn_id
        self.promote_result: PromoteResult | None = None  # what execute returned, for the lineage

    @cached_property
    def hook(self) -> MilvusHook:
        """The Milvus hook, created on first use (after templates are rendered)."""
        return MilvusHook(milvus_conn_id=self.milvus_conn_id)

    @cached_property
    def gemini_hook(self) -> GeminiHook:
        """The Gemini hook that embeds the probe queries."""
        from airflow_provider_gemini_milvus.hooks.gemini import GeminiHook

        return GeminiHook(gemini_conn_id=self.gemini_conn_id)

    def execute(self, context: Context) -> PromoteResult:
        args = self.converted_arguments()
        hook = self.hook
        try:
            self.promote_result = promote(
                hook, self.gemini_hook, args, self.log, owner=self.lease_owner(context)
            )
        finally:
            hook.close()
        tags = {"dag_id": self.dag_id, "task_id": self.task_id, "model": args.model}
        record_metrics(promote_metrics, self.promote_result, tags)
        return self.promote_result

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage[Any, Any]:
        """OpenLineage: the collection checked, the alias moved onto it, the retired collections dropped."""
        from airflow_provider_gemini_milvus.observability.assets import hook_collection_address
        from airflow_provider_gemini_milvus.observability.lineage import promotion_lineage

        args = self.converted_arguments()
        return promotion_lineage(
            collection=hook_collection_address(self.hook, args.collection_name),
            alias=args.alias,
            result=self.promote_result,
        )

    def lease_owner(self, context: Context | Mapping[str, Any]) -> LeaseOwner:
        """
        Who holds the alias's migration lease: this task instance, the same for each of its tries (so a
        retry takes over the lease of a killed try), named with its try and host for other migrations.

        :param context: the task's context; without a task instance the owner is unique to this call.
        """
        ti = context.get("ti")
        host = socket.gethostname()
        if ti is None:
            return LeaseOwner(
                key=f"{self.task_id}/{uuid.uuid4().hex}", description=f"task {self.task_id!r} on host {host}"
            )
        map_index = getattr(ti, "map_index", -1)
        mapped = f", map index {map_index}" if map_index is not None and map_index >= 0 else ""
        return LeaseOwner(
            key=f"{ti.dag_id}/{ti.run_id}/{ti.task_id}/{map_index}",
            description=(
                f"task {ti.task_id!r} of DAG {ti.dag_id!r}, run {ti.run_id!r}{mapped}, try "
                f"{getattr(ti, 'try_number', '?')}, on host {host}"
            ),
        )

    def converted_arguments(self) -> PromoteArguments:
        """
        Convert every rendered argument and check it, before anything is read or paid for.

        :raises ValueError: naming the first bad argument.
        """
        alias = to_str(self.alias, "alias")
        model = to_str(self.model, "model")
        output_dimensionality = to_int(self.output_dimensionality, "output_dimensionality", optional=True)
        task_type = to_str(self.gemini_task_type, "task_type").upper()
        fingerprint = embedding_fingerprint(model, output_dimensionality, task_type)
        collection_name = to_str(self.collection_name, "collection_name", optional=True)
        if collection_name is None:
            collection_name = versioned_collection_name(alias, model, output_dimensionality, task_type)
        if collection_name == alias:
            raise ValueError(f"collection_name and alias are both {alias!r}: the alias needs a collection")
        expected_rows, expected_source = self._expected_rows(fingerprint)
        return PromoteArguments(
            alias=alias,
            collection_name=collection_name,
            fingerprint=fingerprint,
            model=model,
            output_dimensionality=output_dimensionality,
            task_type=task_type,
            expected_rows=expected_rows,
            expected_source=expected_source,
            probes=self._probes(),
            probe_limit=to_int(self.probe_limit, "probe_limit", minimum=1, maximum=16384),
            keep_previous=to_int(self.keep_previous, "keep_previous", minimum=0),
            retention_hours=to_float(self.retention_hours, "retention_hours", minimum=0),
            lease_minutes=to_float(self.lease_minutes, "lease_minutes", minimum=1, maximum=7 * 24 * 60),
            quality_gate=self._quality_gate(),
        )

    def _quality_gate(self) -> QualityGate | None:
        metric = to_choice(self.quality_metric, "quality_metric", QUALITY_METRICS)
        mode = to_choice(self.quality_mode, "quality_mode", SEARCH_MODES)
        k = to_int(self.quality_k, "quality_k", minimum=1, maximum=16384)
        tolerance = to_float(self.quality_tolerance, "quality_tolerance", minimum=0, maximum=1)
        value = self.quality_queries
        if value is None or value == "" or value == "None":
            return None
        queries = labelled_queries(value, "quality_queries")
        return QualityGate(queries=queries, metric=metric, mode=mode, k=k, tolerance=tolerance)

    def _expected_rows(self, fingerprint: str) -> tuple[int | None, str]:
        value = self.expected_rows
        if isinstance(value, Mapping):
            stats = value.get("stats")
            if not isinstance(stats, Mapping) or "documents" not in stats:
                raise ValueError(
                    "expected_rows is a dict but not an embedding result: it has no stats.documents "
                    f"(keys {sorted(map(str, value))})"
                )
            if value.get("model") not in (None, fingerprint):
                raise ValueError(
                    f"expected_rows is the result of an embedding with {value.get('model')}, but this "
                    f"task promotes {fingerprint}: give both tasks the same model settings"
                )
            refused = int(stats.get("refused") or 0)
            source = "the embedding task's source"
            if refused:
                source += f" (of which Gemini refused {refused}, so they were not loaded)"
            return int(stats["documents"]), source
        rows = to_int(value, "expected_rows", minimum=0, optional=True)
        return rows, "expected_rows"

    def _probes(self) -> list[tuple[str, str | None]]:
        value = self.probe_queries
        if isinstance(value, Mapping):
            probes: list[tuple[str, str | None]] = []
            for query, expected_id in value.items():
                if not isinstance(query, str) or not query.strip():
                    raise ValueError(f"probe_queries keys must be non-empty query texts, got {query!r}")
                if not isinstance(expected_id, str) or not expected_id.strip():
                    raise ValueError(
                        f"probe_queries[{query!r}] must be the id it should find, got {expected_id!r}"
                    )
                probes.append((query, expected_id))
            return probes
        return [(query, None) for query in to_str_list(value, "probe_queries") or []]
