"""Operator that measures how well a collection answers labelled queries: recall@k, MRR and nDCG@k."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_gemini_milvus.hooks.milvus import MilvusHook
from airflow_provider_gemini_milvus.observability.metrics import evaluation_metrics, record_metrics
from airflow_provider_gemini_milvus.retrieval.evaluation import check_modes
from airflow_provider_gemini_milvus.retrieval.labelled import labelled_queries
from airflow_provider_gemini_milvus.retrieval.quality import (
    DEFAULT_QUALITY_K,
    EvaluationArguments,
    EvaluationResult,
    evaluate_search_quality,
)
from airflow_provider_gemini_milvus.utils.converters import split_list_text, to_int, to_str, unset_if_none

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.providers.openlineage.extractors import OperatorLineage
    from airflow.sdk import Context

    from airflow_provider_gemini_milvus.hooks.gemini import GeminiHook

__all__ = ["MilvusSearchEvaluationOperator"]


class MilvusSearchEvaluationOperator(BaseOperator):
    """
    Score a collection's search on labelled queries (query -> relevant ids) in each search mode, log the
    scores as a small table, and return them.

    For each mode, every query is searched for its top ``k`` and scored: **recall@k** (the share of its
    relevant rows found), **MRR** (1 / the rank of the first relevant row) and **nDCG@k** (relevant rows
    ranked high count more; grades are used when given), each averaged over the queries. Without
    ``modes``, ``dense`` is scored, plus ``full_text`` and ``hybrid`` on a collection created with
    full-text search.

    Queries are embedded like the collection's rows (the settings come from their ``model`` fingerprint,
    as for :class:`~airflow_provider_gemini_milvus.operators.milvus_search.MilvusSearchOperator`), once
    whatever the number of modes; ``full_text`` alone embeds nothing. Every argument, the labelled
    queries, the collection, its full-text search and the query settings are checked before anything is
    sent to Gemini.

    Returns (XCom) ``{"collection", "k", "queries", "scores": {mode: {"recall", "mrr", "ndcg"}}}``.

    :param collection_name: the collection, or an alias of it.
    :param labelled_queries: the labelled queries: a list of ``{"query", "relevant"}`` (ids, one id, or
        ``{id: grade}``), a ``{query: ids}`` mapping, JSON text of either, or the path of a ``.json`` or
        ``.jsonl`` file (see :func:`~airflow_provider_gemini_milvus.retrieval.labelled.labelled_queries`).
    :param modes: the modes to score (``dense``, ``full_text``, ``hybrid``): a list or comma-separated
        text; None for every mode the collection has.
    :param k: hits per query that count.
    :param filter: a Milvus boolean expression every hit must match.
    :param model: the Gemini model to embed the queries with; None reads it from the rows.
    :param output_dimensionality: their vector length; None for the collection's.
    :param milvus_conn_id: the Milvus connection.
    :param gemini_conn_id: the Gemini connection (not used for ``full_text`` alone).
    """

    template_fields: Sequence[str] = (
        "collection_name",
        "labelled_queries",
        "modes",
        "k",
        "filter",
        "model",
        "output_dimensionality",
        "milvus_conn_id",
        "gemini_conn_id",
    )
    ui_color = "#e8f0fe"

    def __init__(
        self,
        *,
        collection_name: str,
        labelled_queries: Any,
        modes: Sequence[str] | str | None = None,
        k: int | str = DEFAULT_QUALITY_K,
        filter: str = "",
        model: str | None = None,
        output_dimensionality: int | str | None = None,
        milvus_conn_id: str = MilvusHook.default_conn_name,
        gemini_conn_id: str = "gemini_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.collection_name = collection_name
        self.labelled_queries = labelled_queries
        self.modes = modes
        self.k = k
        self.filter = filter
        self.model = model
        self.output_dimensionality = output_dimensionality
        self.milvus_conn_id = milvus_conn_id
        self.gemini_conn_id = gemini_conn_id
        self.evaluation_result: EvaluationResult | None = None  # what execute returned, for the lineage

    @cached_property
    def hook(self) -> MilvusHook:
        """The Milvus hook, created on first use (after templates are rendered)."""
        return MilvusHook(milvus_conn_id=self.milvus_conn_id)

    @cached_property
    def gemini_hook(self) -> GeminiHook:
        """The Gemini hook that embeds the queries (its connection is read only when it embeds)."""
        from airflow_provider_gemini_milvus.hooks.gemini import GeminiHook

        return GeminiHook(gemini_conn_id=self.gemini_conn_id)

    def execute(self, context: Context) -> EvaluationResult:
        args = self.converted_arguments()
        hook = self.hook
        try:
            self.evaluation_result = evaluate_search_quality(hook, self.gemini_hook, args, self.log)
        finally:
            hook.close()
        tags = {"dag_id": self.dag_id, "task_id": self.task_id, "model": args.model}
        record_metrics(evaluation_metrics, self.evaluation_result, tags)
        return self.evaluation_result

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage[Any, Any]:
        """OpenLineage: the collection scored (and the labelled queries' file), the scores as a run facet."""
        from airflow_provider_gemini_milvus.observability.assets import hook_collection_address
        from airflow_provider_gemini_milvus.observability.lineage import evaluation_lineage

        name = to_str(self.collection_name, "collection_name")
        return evaluation_lineage(
            collection=hook_collection_address(self.hook, name),
            labelled_queries=self.labelled_queries,
            result=self.evaluation_result,
        )

    def converted_arguments(self) -> EvaluationArguments:
        """
        Convert every rendered argument and check it, before anything is read or paid for.

        :raises ValueError: naming the first bad argument (``labelled_queries[2]``, ``k``, ...).
        """
        modes = unset_if_none(self.modes)
        if isinstance(modes, str):
            modes = split_list_text(modes, "modes")
        return EvaluationArguments(
            collection_name=to_str(self.collection_name, "collection_name"),
            queries=labelled_queries(self.labelled_queries, "labelled_queries"),
            modes=() if modes is None or modes == [""] else tuple(check_modes(modes, "modes")),
            k=to_int(self.k, "k", minimum=1, maximum=16384),
            filter=(to_str(self.filter, "filter", optional=True) or "").strip(),
            model=to_str(unset_if_none(self.model), "model", optional=True),
            output_dimensionality=to_int(
                unset_if_none(self.output_dimensionality), "output_dimensionality", minimum=1, optional=True
            ),
        )
