"""
Full-text (BM25) and hybrid search: the schema pieces, the server check and the search request rules. Pure
code: nothing here talks to Milvus.

A collection created with full-text search has, besides the provider's fields (see
:mod:`~airflow_provider_gemini_milvus.milvus.layout`), an analyzer on ``text``, a SPARSE_FLOAT_VECTOR field
``sparse`` and a BM25 function from ``text`` to ``sparse``: Milvus computes the sparse side itself when a row
is written, so nothing is sent to Gemini for it. Milvus 2.5 (and Milvus Lite 3) is the first to have it.

Search modes:

- ``dense``: the query's Gemini vector against ``vector`` (the only mode on other collections);
- ``full_text``: the query's text against ``sparse``, scored with BM25 (exact terms: product codes, names,
  error messages);
- ``hybrid``: both, fused by reciprocal rank (``rrf``, the default: ``1 / (rrf_k + rank)`` summed) or by a
  weighted sum of the normalised scores (``weighted``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, get_args

from airflow_provider_gemini_milvus.exceptions import MilvusCollectionMismatchError
from airflow_provider_gemini_milvus.milvus.layout import FIELD_TEXT, type_name

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = [
    "BM25_FUNCTION",
    "DEFAULT_ANALYZER",
    "DEFAULT_RRF_K",
    "DEFAULT_WEIGHTS",
    "FIELD_SPARSE",
    "FULL_TEXT_MIN_VERSION",
    "FUSIONS",
    "HYBRID_CANDIDATES",
    "MAX_LIMIT",
    "MAX_RRF_K",
    "SEARCH_MODES",
    "Fusion",
    "SearchMode",
    "SearchPlan",
    "add_full_text",
    "add_full_text_index",
    "bm25_score",
    "check_analyzer",
    "check_search",
    "check_search_options",
    "check_texts",
    "has_full_text",
    "parse_server_version",
    "require_full_text",
    "server_supports_full_text",
    "text_field_options",
]

FIELD_SPARSE = "sparse"
"""The SPARSE_FLOAT_VECTOR field the BM25 function fills from ``text``."""
BM25_FUNCTION = "text_bm25"
"""The name of the BM25 function from ``text`` to ``sparse``."""
DEFAULT_ANALYZER: Mapping[str, Any] = {"type": "standard"}
"""Milvus' standard analyzer: splits on word boundaries and lower-cases; every Milvus with BM25 has it."""
FULL_TEXT_MIN_VERSION = (2, 5, 0)
"""The first Milvus with BM25 functions (Milvus Lite 3.x reports its own version, and has them too)."""
#: How a collection is searched: by the queries' vectors, by their words (BM25), or both fused.
SearchMode = Literal["dense", "full_text", "hybrid"]
SEARCH_MODES: tuple[SearchMode, ...] = get_args(SearchMode)
#: How hybrid search fuses its two rankings: reciprocal rank fusion, or a weighted sum of the scores.
Fusion = Literal["rrf", "weighted"]
FUSIONS: tuple[Fusion, ...] = get_args(Fusion)
DEFAULT_RRF_K = 60
DEFAULT_WEIGHTS: tuple[float, float] = (0.5, 0.5)
MAX_RRF_K = 16384
"""Milvus accepts ``0 < k < 16384`` for its RRF ranker."""
MAX_LIMIT = 16384
"""Milvus returns at most this many hits per query (its ``topk`` limit)."""
HYBRID_CANDIDATES = 20
"""Each side of a hybrid search fetches at least this many candidates before fusing, so a row ranked low
on one side and high on the other can still reach the top."""

_VERSION_RE = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")
_LITE_PREFIX = "milvus_lite"


def text_field_options(full_text: bool, analyzer: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """
    The extra ``add_field`` options of ``text``: an analyzer for a full-text collection, none otherwise.

    :param full_text: whether the collection gets full-text search.
    :param analyzer: Milvus analyzer parameters; None for :data:`DEFAULT_ANALYZER`.
    """
    if not full_text:
        return {}
    return {"enable_analyzer": True, "analyzer_params": dict(analyzer or DEFAULT_ANALYZER)}


def add_full_text(schema: Any) -> None:
    """
    Add the ``sparse`` field and the BM25 function from ``text`` to a ``CollectionSchema``.

    :param schema: a schema whose ``text`` field was added with :func:`text_field_options`.
    """
    from pymilvus import DataType, Function, FunctionType

    schema.add_field(FIELD_SPARSE, DataType.SPARSE_FLOAT_VECTOR)
    schema.add_function(
        Function(
            name=BM25_FUNCTION,
            function_type=FunctionType.BM25,
            input_field_names=[FIELD_TEXT],
            output_field_names=[FIELD_SPARSE],
        )
    )


def add_full_text_index(index_params: Any) -> None:
    """
    Add the BM25 index on ``sparse`` to an ``IndexParams``.

    :param index_params: from ``MilvusClient.prepare_index_params()``.
    """
    index_params.add_index(field_name=FIELD_SPARSE, index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")


def check_analyzer(analyzer: Any) -> dict[str, Any] | None:
    """
    Return the analyzer parameters as a JSON-safe dict, or None for the default.

    :param analyzer: a mapping such as ``{"type": "standard"}`` or ``{"tokenizer": "jieba"}``, JSON text
        of one, or None.
    :raises ValueError: for anything else.
    """
    if analyzer is None or analyzer == "":
        return None
    if isinstance(analyzer, str):
        try:
            analyzer = json.loads(analyzer)
        except ValueError:
            raise ValueError(
                f"full_text_analyzer must be a mapping of Milvus analyzer parameters, e.g. "
                f'{{"type": "standard"}}; got the text {analyzer!r}'
            ) from None
    if not isinstance(analyzer, dict) or not analyzer:
        raise ValueError(
            "full_text_analyzer must be a non-empty mapping of Milvus analyzer parameters, e.g. "
            f'{{"type": "standard"}}; got {analyzer!r}'
        )
    try:
        json.dumps(analyzer)
    except (TypeError, ValueError) as err:
        raise ValueError(f"full_text_analyzer must be JSON-serialisable: {err}") from None
    return dict(analyzer)


def has_full_text(description: Mapping[str, Any]) -> bool:
    """
    True when a ``describe_collection`` result has the full-text layout: an analyzer on ``text``, a
    SPARSE_FLOAT_VECTOR ``sparse`` and a BM25 function from the one to the other.

    :param description: what ``MilvusClient.describe_collection`` returns.
    """
    fields = {field.get("name"): field for field in description.get("fields", [])}
    text, sparse = fields.get(FIELD_TEXT), fields.get(FIELD_SPARSE)
    if text is None or sparse is None or type_name(sparse.get("type")) != "SPARSE_FLOAT_VECTOR":
        return False
    if str((text.get("params") or {}).get("enable_analyzer", "")).lower() != "true":
        return False
    return any(
        type_name(function.get("type")) == "BM25"
        and list(function.get("input_field_names") or []) == [FIELD_TEXT]
        and list(function.get("output_field_names") or []) == [FIELD_SPARSE]
        for function in description.get("functions") or []
    )


def require_full_text(full_text: bool, collection: str, what: str) -> None:
    """
    Raise :class:`MilvusCollectionMismatchError` when a collection without full-text search is asked for it.

    :param full_text: whether the collection has it (:attr:`CollectionInfo.full_text`).
    :param collection: the collection (or alias) name, for the message.
    :param what: what needed it, e.g. ``"hybrid search"``.
    """
    if not full_text:
        raise MilvusCollectionMismatchError(
            f"collection {collection!r} has no full-text search (an analyzer on 'text', a sparse field "
            f"{FIELD_SPARSE!r} and a BM25 function), which {what} needs. Milvus cannot add it to an existing "
            "collection: create a new one with MilvusInsertOperator(full_text=True), fill it, and move the "
            "alias onto it with MilvusPromoteAliasOperator (docs: Searching)."
        )


def parse_server_version(version: str) -> tuple[int, int, int] | None:
    """
    The ``(major, minor, patch)`` of a ``get_server_version()`` answer (``v2.3.5``, ``2.5.4``,
    ``milvus_lite-3.2.2``), or None when it holds no version number.

    :param version: what the server reported.
    """
    match = _VERSION_RE.search(str(version))
    if match is None:
        return None
    major, minor, patch = match.groups()
    return int(major), int(minor), int(patch or 0)


def server_supports_full_text(version: str) -> bool | None:
    """
    Whether a server of this version has BM25 functions: True, False, or None when the answer is not a
    version this check can read (a managed service may answer otherwise; the create call then decides).

    :param version: what ``get_server_version()`` reported.
    """
    parsed = parse_server_version(version)
    if parsed is None:
        return None
    if str(version).startswith(_LITE_PREFIX):
        return parsed >= (2, 5, 0)
    return parsed >= FULL_TEXT_MIN_VERSION


@dataclass(frozen=True)
class SearchPlan:
    """
    A search request, checked: how many queries it holds and how each side fetches.

    :param mode: ``dense``, ``full_text`` or ``hybrid``.
    :param queries: the number of queries.
    :param limit: hits returned per query.
    :param candidates: rows each side of a hybrid search fetches before fusing.
    :param fusion: ``rrf`` or ``weighted`` (hybrid only).
    :param rrf_k: the RRF constant.
    :param weights: the weighted fusion's (dense, full-text) weights.
    """

    mode: str
    queries: int
    limit: int
    candidates: int
    fusion: str
    rrf_k: int
    weights: tuple[float, float]

    def ranker(self) -> Any:
        """The pymilvus ranker of a hybrid search: ``RRFRanker(rrf_k)`` or ``WeightedRanker(*weights)``."""
        from pymilvus import RRFRanker, WeightedRanker

        if self.fusion == "rrf":
            return RRFRanker(self.rrf_k)
        return WeightedRanker(*self.weights)


def check_texts(texts: Sequence[Any], name: str = "texts") -> tuple[str, ...]:
    """
    Return the query texts as a tuple, or raise ``ValueError`` naming the first that is not a non-empty
    string (``texts[2]``, or ``queries[2]`` with ``name="queries"``).

    :param texts: the query texts.
    :param name: the argument's name, for the error.
    """
    for index, text in enumerate(texts):
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"{name}[{index}] must be a non-empty string, got {text!r}")
    return tuple(texts)


def check_search_options(
    *,
    mode: Any,
    limit: Any,
    fusion: Any = "rrf",
    rrf_k: Any = DEFAULT_RRF_K,
    weights: Sequence[Any] = DEFAULT_WEIGHTS,
) -> tuple[SearchMode, Fusion, tuple[float, float]]:
    """
    Check a search's options (case-sensitive) and return the mode, the fusion and the weights as floats.

    :param mode: one of :data:`SEARCH_MODES`.
    :param limit: hits per query, 1 to :data:`MAX_LIMIT`.
    :param fusion: one of :data:`FUSIONS`.
    :param rrf_k: the RRF constant, 1 to :data:`MAX_RRF_K` - 1.
    :param weights: two numbers from 0 to 1 (as Milvus' weighted ranker takes them), not both zero: the
        dense and the full-text side's weight.
    :raises ValueError: naming the option that is wrong.
    """
    chosen_mode = next((known for known in SEARCH_MODES if known == mode), None)
    if chosen_mode is None:
        raise ValueError(f"mode must be one of {list(SEARCH_MODES)}, got {mode!r}")
    chosen_fusion = next((known for known in FUSIONS if known == fusion), None)
    if chosen_fusion is None:
        raise ValueError(f"fusion must be one of {list(FUSIONS)}, got {fusion!r}")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be an integer from 1 to {MAX_LIMIT}, got {limit!r}")
    if isinstance(rrf_k, bool) or not isinstance(rrf_k, int) or not 1 <= rrf_k < MAX_RRF_K:
        raise ValueError(f"rrf_k must be an integer from 1 to {MAX_RRF_K - 1}, got {rrf_k!r}")
    return chosen_mode, chosen_fusion, _weights(weights)


def check_search(
    *,
    mode: Any,
    vectors: Sequence[Sequence[float]] | None,
    texts: Sequence[str] | None,
    limit: Any,
    fusion: Any = "rrf",
    rrf_k: Any = DEFAULT_RRF_K,
    weights: Sequence[Any] = DEFAULT_WEIGHTS,
) -> SearchPlan:
    """
    Check a search request before anything is sent and return its plan.

    :param mode: ``dense`` (needs ``vectors``), ``full_text`` (needs ``texts``) or ``hybrid`` (both, aligned);
        in any case.
    :param vectors: the query vectors.
    :param texts: the query texts.
    :param limit: hits per query, 1 to 16,384.
    :param fusion: ``rrf`` or ``weighted``, in any case.
    :param rrf_k: the RRF constant, 1 to 16,383.
    :param weights: see :func:`check_search_options`.
    :raises ValueError: naming the argument that is wrong.
    """
    mode_name, fusion_name, pair = check_search_options(
        mode=str(mode).lower(), limit=limit, fusion=str(fusion).lower(), rrf_k=rrf_k, weights=weights
    )
    needs_vectors = mode_name in ("dense", "hybrid")
    needs_texts = mode_name in ("full_text", "hybrid")
    if needs_vectors and vectors is None:
        raise ValueError(f"{mode_name} search needs the query vectors")
    if needs_texts and texts is None:
        raise ValueError(f"{mode_name} search needs the query texts")
    if needs_texts:
        check_texts(texts or ())
    queries = len(vectors) if needs_vectors and vectors is not None else len(texts or ())
    if mode_name == "hybrid" and len(texts or ()) != queries:
        raise ValueError(
            f"hybrid search needs one text per query vector: {queries} vectors, {len(texts or ())} texts"
        )
    return SearchPlan(
        mode=mode_name,
        queries=queries,
        limit=limit,
        candidates=max(limit, HYBRID_CANDIDATES),
        fusion=fusion_name,
        rrf_k=rrf_k,
        weights=pair,
    )


def _weights(weights: Sequence[Any]) -> tuple[float, float]:
    values = list(weights) if not isinstance(weights, str | bytes) else []
    if (
        len(values) != 2
        or any(
            isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1
            for value in values
        )
        or not any(values)
    ):
        raise ValueError(
            "weights must be two numbers from 0 to 1, not both 0: the weights of the dense and the "
            f"full-text scores, got {weights!r}"
        )
    return float(values[0]), float(values[1])


def bm25_score(distance: Any) -> float:
    """
    A BM25 hit's score, positive as on a Milvus server (Milvus Lite 3 reports it negated, for its sort).

    :param distance: the hit's ``distance``.
    """
    return abs(float(distance))
