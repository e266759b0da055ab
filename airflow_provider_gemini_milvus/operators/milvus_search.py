"""Operator that searches a Milvus collection with query texts: dense, full-text or hybrid."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_gemini_milvus.hooks.milvus import MilvusHook
from airflow_provider_gemini_milvus.milvus.full_text import check_texts
from airflow_provider_gemini_milvus.observability.metrics import record_metrics, search_metrics
from airflow_provider_gemini_milvus.retrieval.search import (
    DEFAULT_LIMIT,
    DEFAULT_OUTPUT_FIELDS,
    DEFAULT_RRF_K,
    FUSIONS,
    MAX_LIMIT,
    MAX_RRF_K,
    SEARCH_MODES,
    QueryHits,
    SearchArguments,
    search_collection,
)
from airflow_provider_gemini_milvus.utils.converters import (
    is_list_text,
    split_list_text,
    to_choice,
    to_float,
    to_int,
    to_str,
    to_str_list,
    unset_if_none,
)

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage
    from airflow.sdk import Context, XComArg

    from airflow_provider_gemini_milvus.hooks.gemini import GeminiHook

__all__ = ["MilvusSearchOperator"]

_RENDERED_LIST_HINT = (
    "a Jinja template renders to a string: pass the upstream task's output (an XComArg) itself, or set "
    "render_template_as_native_obj=True on the DAG"
)


class MilvusSearchOperator(BaseOperator):
    """
    Search a collection (or an alias of one) with query texts; return the hits of each query.

    Three modes:

    - ``dense`` (default): the queries are embedded by Gemini, the way the collection's documents were, and
      the nearest vectors are found;
    - ``full_text``: Milvus ranks rows by BM25 over their ``text`` (exact terms: product codes, names,
      error messages); nothing is sent to Gemini. The collection must have been created with full-text
      search (``MilvusInsertOperator(full_text=True)``), or the task fails before any query is embedded;
    - ``hybrid``: both, fused by reciprocal rank fusion (``fusion="rrf"``, with ``rrf_k``) or a weighted sum
      of the scores (``fusion="weighted"``, with ``weights``: the dense and full-text weights).

    Queries are embedded with the collection's own settings, read from its rows' ``model`` fingerprint:
    the same model and dimension, and the query side of the documents' task type (``RETRIEVAL_QUERY`` for
    ``RETRIEVAL_DOCUMENT`` documents; gemini-embedding-2's query prompt). ``model`` and
    ``output_dimensionality`` are needed only for rows loaded without a fingerprint; given settings that
    disagree with the fingerprint are refused, naming both, before anything is sent to Gemini. Distinct
    queries are embedded once, in one call.

    Every argument is checked before Gemini is called: each query must be a non-empty string (a bad one is
    named, ``queries[2]``), the collection must exist, the output fields be its own, and the filter
    evaluate on it. An empty collection finds nothing and costs nothing.

    Returns (XCom) one ``{"query", "hits"}`` per query, in order; each hit is ``{"id", "score", <output
    fields>}``, best first. ``score`` is what Milvus ranks by: the cosine (or inner-product) similarity,
    an L2 distance (smaller is better), the BM25 score, or the fused score in hybrid mode.

    :param collection_name: the collection, or an alias of it (search follows the alias).
    :param queries: the query texts: a list, one string (one query), or an upstream task's output.
    :param mode: ``dense``, ``full_text`` or ``hybrid``.
    :param limit: hits per query, 1 to 16,384.
    :param filter: a Milvus boolean expression the hits must match (``metadata["topic"] == "history"``);
        empty means every row.
    :param output_fields: the fields each hit carries besides ``id`` and ``score``.
    :param fusion: hybrid mode: ``rrf`` or ``weighted``.
    :param rrf_k: reciprocal rank fusion's ``k`` (1 to 16,383): larger flattens the rank differences.
    :param weights: ``fusion="weighted"`` only: ``[dense, full_text]`` weights, each 0 to 1; None for
        ``[0.5, 0.5]``.
    :param model: the Gemini model to embed the queries with; None (the default) reads it from the rows.
    :param output_dimensionality: their vector length; None for the collection's.
    :param milvus_conn_id: the Milvus connection.
    :param gemini_conn_id: the Gemini connection (not used in ``full_text`` mode).
    """

    template_fields: Sequence[str] = (
        "collection_name",
        "queries",
        "mode",
        "limit",
        "filter",
        "output_fields",
        "fusion",
        "rrf_k",
        "weights",
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
        queries: Sequence[str] | str | XComArg,
        mode: str = "dense",
        limit: int | str = DEFAULT_LIMIT,
        filter: str = "",
        output_fields: Sequence[str] = DEFAULT_OUTPUT_FIELDS,
        fusion: str = "rrf",
        rrf_k: int | str = DEFAULT_RRF_K,
        weights: Sequence[float | str] | None = None,
        model: str | None = None,
        output_dimensionality: int | str | None = None,
        milvus_conn_id: str = MilvusHook.default_conn_name,
        gemini_conn_id: str = "gemini_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.collection_name = collection_name
        self.queries = queries
        self.mode = mode
        self.limit = limit
        self.filter = filter
        self.output_fields = output_fields
        self.fusion = fusion
        self.rrf_k = rrf_k
        self.weights = weights
        self.model = model
        self.output_dimensionality = output_dimensionality
        self.milvus_conn_id = milvus_conn_id
        self.gemini_conn_id = gemini_conn_id
        self.search_result: list[QueryHits] | None = None  # what execute returned, for the lineage

    @cached_property
    def hook(self) -> MilvusHook:
        """The Milvus hook, created on first use (after templates are rendered)."""
        return MilvusHook(milvus_conn_id=self.milvus_conn_id)

    @cached_property
    def gemini_hook(self) -> GeminiHook:
        """The Gemini hook that embeds the queries (its connection is read only when it embeds)."""
        from airflow_provider_gemini_milvus.hooks.gemini import GeminiHook

        return GeminiHook(gemini_conn_id=self.gemini_conn_id)

    def execute(self, context: Context) -> list[QueryHits]:
        args = self.converted_arguments()
        hook = self.hook
        try:
            self.search_result = search_collection(hook, self.gemini_hook, args, self.log)
        finally:
            hook.close()
        tags = {"dag_id": self.dag_id, "task_id": self.task_id, "model": args.model}
        tags["collection"] = args.collection_name
        record_metrics(search_metrics, self.search_result, tags, search_mode=args.mode)
        return self.search_result

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage[Any, Any]:
        """OpenLineage: the collection searched, and how many queries and hits (never the query texts)."""
        from airflow_provider_gemini_milvus.observability.assets import hook_collection_address
        from airflow_provider_gemini_milvus.observability.lineage import search_lineage

        args = self.converted_arguments()
        return search_lineage(
            collection=hook_collection_address(self.hook, args.collection_name),
            mode=args.mode,
            queries=len(args.queries),
            limit=args.limit,
            filtered=bool(args.filter),
            result=self.search_result,
        )

    def converted_arguments(self) -> SearchArguments:
        """
        Convert every rendered argument and check it, before anything is read or paid for.

        :raises ValueError: naming the first bad argument (``queries[1]``, ``limit``, ...).
        """
        mode = to_choice(self.mode, "mode", SEARCH_MODES)
        fusion = to_choice(self.fusion, "fusion", FUSIONS)
        return SearchArguments(
            collection_name=to_str(self.collection_name, "collection_name"),
            queries=self._queries(),
            mode=mode,
            limit=to_int(self.limit, "limit", minimum=1, maximum=MAX_LIMIT),
            filter=self._filter(),
            output_fields=self._output_fields(),
            fusion=fusion,
            rrf_k=to_int(self.rrf_k, "rrf_k", minimum=1, maximum=MAX_RRF_K - 1),
            weights=self._weights(),
            model=to_str(unset_if_none(self.model), "model", optional=True),
            output_dimensionality=to_int(
                unset_if_none(self.output_dimensionality),
                "output_dimensionality",
                minimum=1,
                optional=True,
            ),
        )

    def _queries(self) -> tuple[str, ...]:
        value = self.queries
        if isinstance(value, str):
            if is_list_text(value):
                raise ValueError(
                    f"queries is the text of a list, not a list of queries ({_RENDERED_LIST_HINT})"
                )
            return check_texts([value], "queries")
        if not isinstance(value, Sequence):
            raise ValueError(
                f"queries must be a list of query texts or one query text, got {type(value).__name__}"
            )
        return check_texts(value, "queries")

    def _filter(self) -> str:
        value = self.filter
        if value is None:
            return ""
        if not isinstance(value, str):
            raise ValueError(
                f"filter must be a Milvus boolean expression (a string), got {type(value).__name__}"
            )
        return value.strip()

    def _output_fields(self) -> tuple[str, ...]:
        value = self.output_fields
        if isinstance(value, str):
            value = split_list_text(value, "output_fields")
        return tuple(to_str_list(value, "output_fields"))

    def _weights(self) -> tuple[float, float] | None:
        value = unset_if_none(self.weights)
        if value is None:
            return None
        if isinstance(value, str):
            value = split_list_text(value, "weights")
        if not isinstance(value, Sequence) or len(value) != 2:
            raise ValueError(f"weights must be two numbers, [dense, full_text], got {self.weights!r}")
        dense, full_text = (
            to_float(item, f"weights[{index}]", minimum=0, maximum=1) for index, item in enumerate(value)
        )
        return dense, full_text
