"""
Search a filled collection with query texts: dense (the queries embedded by Gemini), full-text (BM25, which
Milvus computes from the text: nothing is sent to Gemini) or hybrid (both, fused).

The engine of :class:`~airflow_provider_gemini_milvus.operators.milvus_search.MilvusSearchOperator`.
Queries are embedded the way the collection's documents were: same model, same dimension, and the query
side of the task (``RETRIEVAL_QUERY`` for ``RETRIEVAL_DOCUMENT`` documents, gemini-embedding-2's query
prompt, which the Gemini hook adds itself). Those settings are read from the rows' ``model`` fingerprint
(:func:`stored_query_settings`); settings given by the user that disagree with it are refused before
anything is sent to Gemini, and so is every other bad argument.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Required, TypedDict, cast

from airflow_provider_gemini_milvus.exceptions import MilvusCollectionMismatchError
from airflow_provider_gemini_milvus.gemini.models import (
    TASK_TYPES,
    TaskType,
    normalise_task_type,
    query_task_type,
    resolve_model,
)
from airflow_provider_gemini_milvus.milvus.full_text import (
    DEFAULT_RRF_K,
    DEFAULT_WEIGHTS,
    FUSIONS,
    MAX_LIMIT,
    MAX_RRF_K,
    SEARCH_MODES,
    Fusion,
    SearchMode,
    check_search_options,
    check_texts,
    require_full_text,
)
from airflow_provider_gemini_milvus.milvus.layout import (
    FIELD_ID,
    FIELD_METADATA,
    FIELD_MODEL,
    FIELD_TEXT,
    CollectionInfo,
)
from airflow_provider_gemini_milvus.milvus.rows import milvus_string_literal, parse_model_fingerprint

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow_provider_gemini_milvus.hooks.gemini import GeminiHook
    from airflow_provider_gemini_milvus.hooks.milvus import MilvusHook
    from airflow_provider_gemini_milvus.utils.logs import TaskLogger

__all__ = [
    "DEFAULT_LIMIT",
    "DEFAULT_OUTPUT_FIELDS",
    "DEFAULT_RRF_K",
    "DEFAULT_WEIGHTS",
    "FUSIONS",
    "MAX_LIMIT",
    "MAX_RRF_K",
    "SEARCH_BATCH",
    "SEARCH_MODES",
    "Fusion",
    "QueryHits",
    "QuerySettings",
    "SearchArguments",
    "SearchHit",
    "SearchMode",
    "resolve_query_settings",
    "search_collection",
    "stored_query_settings",
]


DEFAULT_LIMIT = 5
DEFAULT_OUTPUT_FIELDS: tuple[str, ...] = (FIELD_TEXT, FIELD_METADATA)
#: Queries per search request: a large list is searched in several requests, each of bounded size.
SEARCH_BATCH = 100

_VECTOR_TYPE_SUFFIX = "_VECTOR"


@dataclass(frozen=True)
class QuerySettings:
    """
    How the queries of a search are embedded.

    :param model: the Gemini model, as the catalogue names it (``gemini-embedding-001``).
    :param output_dimensionality: the vector length, the collection's.
    :param task_type: the queries' task type: ``RETRIEVAL_QUERY`` for ``RETRIEVAL_DOCUMENT`` documents.
    """

    model: str
    output_dimensionality: int
    task_type: TaskType


class SearchHit(TypedDict, total=False):
    """
    One row a query found, JSON-safe: its ``id``, its ``score`` (the hook's ``distance``: the cosine or
    inner-product similarity, an L2 distance, the BM25 score, or the fused score; best first either way),
    and the output fields asked for (``text`` and ``metadata`` by default).
    """

    id: Required[str]
    score: Required[float]
    text: str
    metadata: dict[str, Any]


class QueryHits(TypedDict):
    """What one query found: the query text and its hits, best first."""

    query: str
    hits: list[SearchHit]


@dataclass(frozen=True)
class SearchArguments:
    """
    A search, its arguments converted and checked once (construction raises ``ValueError`` naming the
    first bad one, before anything is read or paid for).

    :param collection_name: the collection, or an alias of one.
    :param queries: the query texts, each non-empty.
    :param mode: ``dense``, ``full_text`` or ``hybrid``.
    :param limit: hits per query, 1 to :data:`MAX_LIMIT`.
    :param filter: a Milvus boolean expression the hits must match; empty means every row.
    :param output_fields: the fields each hit carries besides ``id`` and ``score``.
    :param fusion: hybrid only: ``rrf`` (reciprocal rank fusion) or ``weighted``.
    :param rrf_k: reciprocal rank fusion's ``k``, 1 to :data:`MAX_RRF_K` - 1.
    :param weights: ``fusion="weighted"`` only: the weights of the dense and full-text scores, each 0 to 1;
        None for :data:`DEFAULT_WEIGHTS`.
    :param model: the Gemini model the queries are embedded with; None reads it from the collection's rows.
    :param output_dimensionality: their vector length; None for the collection's.
    """

    collection_name: str
    queries: tuple[str, ...]
    mode: SearchMode = "dense"
    limit: int = DEFAULT_LIMIT
    filter: str = ""
    output_fields: tuple[str, ...] = DEFAULT_OUTPUT_FIELDS
    fusion: Fusion = "rrf"
    rrf_k: int = DEFAULT_RRF_K
    weights: tuple[float, float] | None = None
    model: str | None = None
    output_dimensionality: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "queries", check_texts(self.queries, "queries"))
        object.__setattr__(self, "output_fields", tuple(dict.fromkeys(self.output_fields)))
        if self.weights is not None and (self.mode != "hybrid" or self.fusion != "weighted"):
            raise ValueError(
                "weights apply to mode='hybrid' with fusion='weighted' only; this search is "
                f"mode={self.mode!r}, fusion={self.fusion!r}"
            )
        _, _, weights = check_search_options(
            mode=self.mode,
            limit=self.limit,
            fusion=self.fusion,
            rrf_k=self.rrf_k,
            weights=DEFAULT_WEIGHTS if self.weights is None else self.weights,
        )
        if self.weights is not None:
            object.__setattr__(self, "weights", weights)
        for index, name in enumerate(self.output_fields):
            if not isinstance(name, str) or not name.strip():
                raise ValueError(f"output_fields[{index}] must be a field name, got {name!r}")
        if not isinstance(self.filter, str):
            raise ValueError(f"filter must be a Milvus boolean expression (a string), got {self.filter!r}")
        if self.model is not None:
            resolve_model(self.model)
        if self.output_dimensionality is not None and (
            isinstance(self.output_dimensionality, bool)
            or not isinstance(self.output_dimensionality, int)
            or self.output_dimensionality < 1
        ):
            raise ValueError(
                f"output_dimensionality must be a positive integer, got {self.output_dimensionality!r}"
            )

    @property
    def embeds(self) -> bool:
        """Whether the search embeds its queries with Gemini (dense and hybrid; full-text never does)."""
        return self.mode != "full_text"


def _one_row(milvus_hook: MilvusHook, collection: str, where: str) -> dict[str, Any] | None:
    rows = milvus_hook.get_conn().query(
        collection,
        filter=where,
        output_fields=[FIELD_ID, FIELD_MODEL],
        limit=1,
        consistency_level="Strong",
        timeout=milvus_hook.timeout,
    )
    return dict(rows[0]) if rows else None


def stored_query_settings(milvus_hook: MilvusHook, collection: str) -> QuerySettings | None:
    """
    The settings queries must be embedded with to search ``collection``, read from one row's ``model``
    fingerprint (what the embed operator records): the same model and dimension, and the query side of
    the documents' task type. None when no row carries a fingerprint (an empty collection, or rows
    loaded with an empty or hand-made ``model`` field).

    :param milvus_hook: the Milvus hook.
    :param collection: the collection, or an alias of one.
    :raises ValueError: when the rows were embedded with a model Gemini no longer serves, naming it.
    """
    milvus_hook.ensure_loaded(collection)
    row = _one_row(milvus_hook, collection, f"{FIELD_MODEL} != {milvus_string_literal('')}")
    stored = str(row.get(FIELD_MODEL) or "") if row else ""
    fingerprint = parse_model_fingerprint(stored)
    if fingerprint is None or fingerprint.task_type not in TASK_TYPES:
        return None
    try:
        model = resolve_model(fingerprint.model)
    except ValueError as err:
        raise ValueError(f"collection {collection!r} was embedded with {stored!r}: {err}") from None
    return QuerySettings(
        model=model.name,
        output_dimensionality=fingerprint.dim,
        task_type=query_task_type(normalise_task_type(fingerprint.task_type)),
    )


def resolve_query_settings(
    milvus_hook: MilvusHook,
    info: CollectionInfo,
    *,
    model: str | None = None,
    output_dimensionality: int | None = None,
) -> QuerySettings:
    """
    The settings queries are embedded with to search a collection: those of its rows' fingerprint
    (:func:`stored_query_settings`), checked against the ones the user gives, and against its dimension.

    :param milvus_hook: the Milvus hook.
    :param info: the collection (or alias), described.
    :param model: the model the user asks for; None takes the stored one.
    :param output_dimensionality: the dimension the user asks for; None takes the stored one.
    :raises MilvusCollectionMismatchError: when the user's settings disagree with the collection.
    :raises ValueError: when neither the rows nor the user name a model.
    """
    collection = info.name
    stored = stored_query_settings(milvus_hook, collection)
    if model is not None:
        spec = resolve_model(model)
    elif stored is not None:
        spec = resolve_model(stored.model)
    else:
        raise ValueError(
            f"collection {collection!r} records no embedding model in its rows' model field (they were "
            "loaded without one): give model (and output_dimensionality) to embed the queries with"
        )
    if output_dimensionality is not None:
        dim = output_dimensionality
    elif stored is not None:
        dim = stored.output_dimensionality
    else:
        dim = info.dim or spec.default_dim
    if stored is not None and (spec.name, dim) != (stored.model, stored.output_dimensionality):
        raise MilvusCollectionMismatchError(
            f"collection {collection!r} was embedded with {stored.model} at {stored.output_dimensionality} "
            f"dimensions, but this search asks for {spec.name} at {dim}: queries must be embedded like the "
            "documents (leave model and output_dimensionality unset to use the collection's)"
        )
    if info.dim is not None and dim != info.dim:
        raise MilvusCollectionMismatchError(
            f"collection {collection!r} holds {info.dim}-dimension vectors, but this search would embed its "
            f"queries with {spec.name} at {dim}"
        )
    try:
        spec.check_output_dimensionality(dim)
    except ValueError as err:
        raise MilvusCollectionMismatchError(
            f"collection {collection!r} holds {dim}-dimension vectors, which {spec.name} cannot give: {err}"
        ) from None
    return QuerySettings(
        model=spec.name,
        output_dimensionality=dim,
        task_type=stored.task_type if stored is not None else "RETRIEVAL_QUERY",
    )


def _check_output_fields(info: CollectionInfo, output_fields: Sequence[str]) -> None:
    readable = sorted(
        name for name, kind in info.field_types.items() if not kind.endswith(_VECTOR_TYPE_SUFFIX)
    )
    for index, name in enumerate(output_fields):
        if name not in readable:
            raise ValueError(
                f"output_fields[{index}] {name!r} is not a field hits can carry in collection "
                f"{info.name!r}; its fields: {', '.join(readable)}"
            )


def _check_filter(milvus_hook: MilvusHook, collection: str, where: str) -> None:
    """Run the filter once on Milvus (one row at most), so a bad expression fails before Gemini is paid."""
    try:
        _one_row(milvus_hook, collection, where)
    except Exception as err:
        raise ValueError(
            f"filter {where!r} is not an expression collection {collection!r} can evaluate: "
            f"{milvus_hook.safe_message(err)}"
        ) from None


def _hit(raw: dict[str, Any], output_fields: Sequence[str]) -> SearchHit:
    hit: dict[str, Any] = {"id": str(raw[FIELD_ID]), "score": float(raw["distance"])}
    hit.update((name, raw.get(name)) for name in output_fields if name != FIELD_ID)
    return cast("SearchHit", hit)


def search_collection(
    milvus_hook: MilvusHook, gemini_hook: GeminiHook, args: SearchArguments, log: TaskLogger
) -> list[QueryHits]:
    """
    Search ``args.collection_name`` with each query; return what each found, in the queries' order.

    Before anything is sent to Gemini: the collection (or alias) must exist, the output fields be its
    own, the full-text modes find full-text search on it, the filter evaluate on it, and the embedding
    settings match its rows' fingerprint (when the user gives them) and its vector dimension. The
    distinct queries are then embedded in one call (dense and hybrid only) and searched
    :data:`SEARCH_BATCH` at a time. An empty collection finds nothing and sends nothing to Gemini.

    :param milvus_hook: the Milvus hook.
    :param gemini_hook: the Gemini hook that embeds the queries (not called in ``full_text`` mode).
    :param args: the search.
    :param log: where counts are logged (never the query texts).
    :raises ValueError: for a missing collection, an unknown output field, a bad filter, or no embedding
        settings to use.
    :raises MilvusCollectionMismatchError: when the settings disagree with the collection, or a
        ``full_text`` or ``hybrid`` search meets a collection created without full-text search.
    """
    if not args.queries:
        log.info("No queries: nothing searched")
        return []
    collection = args.collection_name
    info = milvus_hook.describe(collection)
    if info is None:
        raise ValueError(f"collection {collection!r} does not exist (neither a collection nor an alias)")
    _check_output_fields(info, args.output_fields)
    if args.mode != "dense":
        require_full_text(info.full_text, collection, f"{args.mode} search")
    milvus_hook.ensure_loaded(collection)
    if _one_row(milvus_hook, collection, "") is None:
        log.info("Collection %s is empty: %s queries found nothing", collection, len(args.queries))
        return [{"query": query, "hits": []} for query in args.queries]
    settings = (
        resolve_query_settings(
            milvus_hook, info, model=args.model, output_dimensionality=args.output_dimensionality
        )
        if args.embeds
        else None
    )
    if args.filter:
        _check_filter(milvus_hook, collection, args.filter)

    distinct = list(dict.fromkeys(args.queries))
    vectors: list[list[float]] | None = None
    if settings is not None:
        vectors = gemini_hook.embed(
            distinct,
            model=settings.model,
            task_type=settings.task_type,
            output_dimensionality=settings.output_dimensionality,
        ).tolist()
        log.info(
            "Embedded %s distinct queries with %s (%s dimensions, %s)",
            len(distinct),
            settings.model,
            settings.output_dimensionality,
            settings.task_type,
        )
    found: dict[str, list[SearchHit]] = {}
    for start in range(0, len(distinct), SEARCH_BATCH):
        batch = distinct[start : start + SEARCH_BATCH]
        results = milvus_hook.search(
            collection,
            None if vectors is None else vectors[start : start + SEARCH_BATCH],
            texts=batch if args.mode != "dense" else None,
            mode=args.mode,
            limit=args.limit,
            output_fields=args.output_fields,
            filter=args.filter,
            fusion=args.fusion,
            rrf_k=args.rrf_k,
            weights=args.weights or DEFAULT_WEIGHTS,
        )
        for query, hits in zip(batch, results, strict=True):
            found[query] = [_hit(hit, args.output_fields) for hit in hits]
    answers: list[QueryHits] = [{"query": query, "hits": list(found[query])} for query in args.queries]
    log.info(
        "Searched %s (%s): %s queries, %s hits",
        collection,
        args.mode,
        len(answers),
        sum(len(answer["hits"]) for answer in answers),
    )
    return answers
