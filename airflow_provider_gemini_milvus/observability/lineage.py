"""
OpenLineage of the operators: what each task read and wrote (datasets) and what it did (run facets), built
from its arguments and its result, never from document texts, queries or keys.

Datasets follow the OpenLineage naming conventions: a Milvus collection is namespace ``milvus://host:port``
(``milvus:///abs/path/milvus.db`` for Milvus Lite), name ``database.collection``
(:mod:`~airflow_provider_gemini_milvus.observability.assets`); a local file or folder is namespace
``file``, name its absolute path; an object in storage is namespace ``scheme://bucket``, name its key.

The OpenLineage provider (``apache-airflow-providers-openlineage``) is optional: this module imports it
only inside its functions, which its listener alone calls. Without it the facet classes are plain attrs
classes, and nothing here is used.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import attrs

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage
    from openlineage.client.event_v2 import Dataset, InputDataset, OutputDataset
    from openlineage.client.facet_v2 import RunFacet

    from airflow_provider_gemini_milvus.observability.assets import CollectionAddress
else:
    try:
        from openlineage.client.facet_v2 import RunFacet
    except ImportError:  # the OpenLineage provider is not installed: the facets are never sent
        RunFacet = object

__all__ = [
    "EMBEDDING_FACET",
    "EVALUATION_FACET",
    "PROMOTION_FACET",
    "SEARCH_FACET",
    "WRITE_FACET",
    "GeminiEmbeddingRunFacet",
    "MilvusAliasPromotionRunFacet",
    "MilvusSearchEvaluationRunFacet",
    "MilvusSearchRunFacet",
    "MilvusWriteRunFacet",
    "collection_dataset",
    "document_source_datasets",
    "embedding_lineage",
    "embedding_run_facet",
    "evaluation_lineage",
    "insert_lineage",
    "location_dataset",
    "promotion_lineage",
    "search_lineage",
]

#: The run facets' keys in an OpenLineage event (``run.facets``).
EMBEDDING_FACET = "geminiEmbedding"
WRITE_FACET = "milvusWrite"
PROMOTION_FACET = "milvusAliasPromotion"
SEARCH_FACET = "milvusSearch"
EVALUATION_FACET = "milvusSearchEvaluation"


@attrs.define
class GeminiEmbeddingRunFacet(RunFacet):  # type: ignore[misc,unused-ignore]
    """
    What a ``GeminiEmbedOperator`` run embedded and spent (its result's ``stats``).

    ``estimatedTokens`` and ``estimatedCostUsd`` are the provider's estimate (about four characters a
    token, at the model's published price: the batch price in batch mode); ``batchJobName`` is the Gemini
    Batch API job of a batch run.
    """

    model: str
    dimension: int
    taskType: str  # noqa: N815
    mode: str = "sync"
    dryRun: bool = False  # noqa: N815
    documents: int | None = None
    embedded: int | None = None
    unchanged: int | None = None
    metadataOnly: int | None = None  # noqa: N815
    toDelete: int | None = None  # noqa: N815
    refused: int | None = None
    textsEmbedded: int | None = None  # noqa: N815
    estimatedTokens: int | None = None  # noqa: N815
    estimatedCostUsd: float | None = None  # noqa: N815
    requests: int | None = None
    retries: int | None = None
    rateLimited: int | None = None  # noqa: N815
    batchJobName: str | None = None  # noqa: N815
    stagedRows: int | None = None  # noqa: N815


@attrs.define
class MilvusWriteRunFacet(RunFacet):  # type: ignore[misc,unused-ignore]
    """What a ``MilvusInsertOperator`` run wrote and deleted (its result)."""

    written: int
    skipped: int
    deleted: int
    created: bool
    mode: str
    loadMethod: str  # noqa: N815
    parts: int
    dimension: int | None = None


@attrs.define
class MilvusAliasPromotionRunFacet(RunFacet):  # type: ignore[misc,unused-ignore]
    """What a ``MilvusPromoteAliasOperator`` run checked, switched and dropped."""

    alias: str
    collection: str
    previous: str | None
    switched: bool
    rows: int
    probes: int
    dropped: list[str] = attrs.field(factory=list)
    qualityMetric: str | None = None  # noqa: N815
    qualityNew: float | None = None  # noqa: N815
    qualityLive: float | None = None  # noqa: N815
    qualityPassed: bool | None = None  # noqa: N815


@attrs.define
class MilvusSearchRunFacet(RunFacet):  # type: ignore[misc,unused-ignore]
    """What a ``MilvusSearchOperator`` run searched: how many queries and hits (never the query texts)."""

    mode: str
    queries: int
    limit: int
    hits: int | None = None
    filtered: bool = False


@attrs.define
class MilvusSearchEvaluationRunFacet(RunFacet):  # type: ignore[misc,unused-ignore]
    """A ``MilvusSearchEvaluationOperator`` run's scores: ``{mode: {"recall", "mrr", "ndcg"}}`` at ``k``."""

    k: int
    queries: int
    scores: dict[str, dict[str, float]] = attrs.field(factory=dict)


# -- datasets --------------------------------------------------------------------------------------------


def location_dataset(location: Any) -> Dataset | None:
    """
    The dataset of a file, folder or object-storage location (a URI, a path or an ObjectStoragePath):
    ``file`` and the absolute path for local files, ``s3://bucket`` and the key for object storage (the
    Airflow connection id in ``s3://conn_id@bucket/key`` is dropped: it does not name the data). None for
    anything that is not a location.
    """
    from openlineage.client.event_v2 import Dataset

    if not isinstance(location, (str, os.PathLike)):
        return None
    text = str(location).strip()
    if not text:
        return None
    parts = urlsplit(text)
    if parts.scheme in ("", "file", "local"):
        path = parts.path if parts.scheme else text
        return Dataset(namespace="file", name=os.path.abspath(os.path.expanduser(path)).rstrip("/") or "/")
    bucket = parts.hostname or ""
    return Dataset(namespace=f"{parts.scheme}://{bucket}", name=parts.path.strip("/") or "/")


def document_source_datasets(documents: Any) -> list[Dataset]:
    """
    The datasets ``GeminiEmbedOperator`` read its documents from: its file, folder or object-storage
    location. Documents given as a list (in the DAG file, or an upstream task's XCom) are no dataset: the
    upstream task's own lineage says where they came from. None are named here.
    """
    if isinstance(documents, (list, tuple, Mapping)):
        return []
    dataset = location_dataset(documents)
    return [dataset] if dataset is not None else []


def collection_dataset(address: CollectionAddress) -> Dataset:
    """The dataset of a Milvus collection: namespace the server, name ``database.collection``."""
    from openlineage.client.event_v2 import Dataset

    return Dataset(namespace=address.namespace, name=address.dataset_name)


def _input(dataset: Dataset) -> InputDataset:
    from openlineage.client.event_v2 import InputDataset

    return InputDataset(namespace=dataset.namespace, name=dataset.name, facets=dataset.facets)


def _output(
    dataset: Dataset, *, rows: int | None = None, facets: Mapping[str, Any] | None = None
) -> OutputDataset:
    from openlineage.client.event_v2 import OutputDataset
    from openlineage.client.facet_v2 import output_statistics_output_dataset

    output_facets: dict[str, Any] = {}
    if rows is not None:
        output_facets["outputStatistics"] = (
            output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(rowCount=rows)
        )
    return OutputDataset(
        namespace=dataset.namespace,
        name=dataset.name,
        facets={**(dataset.facets or {}), **(facets or {})},
        outputFacets=output_facets,
    )


def _lifecycle(change: str, previous: Dataset | None = None) -> dict[str, Any]:
    from openlineage.client.facet_v2 import lifecycle_state_change_dataset as lifecycle

    previous_identifier = (
        lifecycle.PreviousIdentifier(name=previous.name, namespace=previous.namespace) if previous else None
    )
    return {
        "lifecycleStateChange": lifecycle.LifecycleStateChangeDatasetFacet(
            lifecycleStateChange=lifecycle.LifecycleStateChange(change),
            previousIdentifier=previous_identifier,
        )
    }


def _lineage(
    inputs: Sequence[Dataset], outputs: Sequence[Dataset], run_facets: Mapping[str, Any]
) -> OperatorLineage[Any, Any]:
    from airflow.providers.openlineage.extractors import OperatorLineage

    return OperatorLineage(
        inputs=[_input(dataset) for dataset in inputs],
        outputs=list(outputs),
        run_facets=dict(run_facets),
    )


# -- one function per operator -----------------------------------------------------------------------------


def _int(stats: Mapping[str, Any], key: str) -> int | None:
    value = stats.get(key)
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def embedding_run_facet(
    *, model: str, dimension: int, task_type: str, result: Mapping[str, Any] | None
) -> GeminiEmbeddingRunFacet:
    """
    The run facet of an embedding run from its arguments and its result (an inline result, a staged
    manifest or a dry-run report; None when the run failed before it returned).
    """
    result = result or {}
    dry = bool(result.get("dry_run"))
    stats: Mapping[str, Any] = result if dry else (result.get("stats") or {})
    cost = stats.get("estimated_cost_usd")
    job = stats.get("batch_job")
    rows = result.get("rows")
    return GeminiEmbeddingRunFacet(
        model=model,
        dimension=dimension,
        taskType=task_type,
        mode=str(stats.get("mode") or "sync"),
        dryRun=dry,
        documents=_int(stats, "documents"),
        embedded=_int(stats, "embedded")
        if not dry
        else (_int(stats, "new") or 0) + (_int(stats, "changed") or 0),
        unchanged=_int(stats, "unchanged"),
        metadataOnly=_int(stats, "metadata_only"),
        toDelete=_int(stats, "to_delete"),
        refused=_int(stats, "refused"),
        # Results hand on ``embedded`` (texts sent, less those Gemini refused); ``texts`` where given.
        textsEmbedded=_int(stats, "texts") if "texts" in stats else _int(stats, "embedded"),
        estimatedTokens=_int(stats, "estimated_tokens"),
        estimatedCostUsd=float(cost) if isinstance(cost, (int, float)) else None,
        requests=_int(stats, "requests"),
        retries=_int(stats, "retries"),
        rateLimited=_int(stats, "rate_limited"),
        batchJobName=str(job) if job else None,
        stagedRows=int(rows) if isinstance(rows, int) and not isinstance(rows, bool) else None,
    )


def embedding_lineage(
    *,
    documents: Any,
    model: str,
    dimension: int,
    task_type: str,
    result: Mapping[str, Any] | None,
    collection: CollectionAddress | None = None,
) -> OperatorLineage[Any, Any]:
    """
    ``GeminiEmbedOperator``'s lineage: inputs are the document location (none for documents given as a
    list) and, in incremental mode, the collection it compared with; outputs the staged folder of a staged
    run (which ``MilvusInsertOperator`` then reads), none for rows handed on in XCom.

    :param documents: the rendered ``documents`` argument.
    :param collection: the collection of an incremental run (``collection_name``), or None.
    """
    inputs = document_source_datasets(documents)
    if collection is not None:
        inputs.append(collection_dataset(collection))
    outputs = []
    folder = (result or {}).get("folder")
    if (result or {}).get("format") and (staged := location_dataset(folder)) is not None:
        outputs.append(_output(staged, rows=_int(result or {}, "rows")))
    facet = embedding_run_facet(model=model, dimension=dimension, task_type=task_type, result=result)
    return _lineage(inputs, outputs, {EMBEDDING_FACET: facet})


def insert_lineage(
    *, collection: CollectionAddress, data: Any, result: Mapping[str, Any] | None
) -> OperatorLineage[Any, Any]:
    """
    ``MilvusInsertOperator``'s lineage: input the staged folder when it loaded a manifest (rows in XCom
    are no dataset), output the collection, with its row count written and a ``CREATE`` lifecycle facet
    when the task created it.
    """
    inputs = []
    if isinstance(data, Mapping) and data.get("format") and (staged := location_dataset(data.get("folder"))):
        inputs.append(staged)
    facets = _lifecycle("CREATE") if result and result.get("created") else {}
    output = _output(
        collection_dataset(collection), rows=result["written"] if result else None, facets=facets
    )
    run_facets: dict[str, Any] = {}
    if result:
        run_facets[WRITE_FACET] = MilvusWriteRunFacet(
            written=result["written"],
            skipped=result["skipped"],
            deleted=result["deleted"],
            created=result["created"],
            mode=result["mode"],
            loadMethod=result["load_method"],
            parts=result["parts"],
            dimension=result.get("dim"),
        )
    return _lineage(inputs, [output], run_facets)


def promotion_lineage(
    *, collection: CollectionAddress, alias: str, result: Mapping[str, Any] | None
) -> OperatorLineage[Any, Any]:
    """
    ``MilvusPromoteAliasOperator``'s lineage: input the new collection (checked, then served), output the
    alias as a dataset of its own (``database.alias``, a ``symlinks`` facet naming the collection it now
    points to) and each retired collection it dropped (a ``DROP`` lifecycle facet).
    """
    from openlineage.client.event_v2 import Dataset
    from openlineage.client.facet_v2 import symlinks_dataset

    served = collection_dataset(collection)
    alias_dataset = Dataset(
        namespace=collection.namespace,
        name=f"{collection.database}.{alias}",
        facets={
            "symlinks": symlinks_dataset.SymlinksDatasetFacet(
                identifiers=[
                    symlinks_dataset.Identifier(namespace=served.namespace, name=served.name, type="TABLE")
                ]
            )
        },
    )
    outputs = [_output(alias_dataset)]
    run_facets: dict[str, Any] = {}
    if result:
        for name in result.get("dropped") or []:
            dropped = Dataset(namespace=collection.namespace, name=f"{collection.database}.{name}")
            outputs.append(_output(dropped, facets=_lifecycle("DROP")))
        quality = result.get("quality") or {}
        run_facets[PROMOTION_FACET] = MilvusAliasPromotionRunFacet(
            alias=result["alias"],
            collection=result["collection"],
            previous=result.get("previous"),
            switched=bool(result["switched"]),
            rows=int(result["rows"]),
            probes=int(result["probes"]),
            dropped=list(result.get("dropped") or []),
            qualityMetric=quality.get("metric"),
            qualityNew=quality.get("new"),
            qualityLive=quality.get("live"),
            qualityPassed=quality.get("passed"),
        )
    return _lineage([served], outputs, run_facets)


def search_lineage(
    *,
    collection: CollectionAddress,
    mode: str,
    queries: int,
    limit: int,
    filtered: bool,
    result: Sequence[Mapping[str, Any]] | None,
) -> OperatorLineage[Any, Any]:
    """``MilvusSearchOperator``'s lineage: input the collection searched; counts only, never the queries."""
    hits = sum(len(item.get("hits") or ()) for item in result) if result is not None else None
    facet = MilvusSearchRunFacet(mode=mode, queries=queries, limit=limit, hits=hits, filtered=filtered)
    return _lineage([collection_dataset(collection)], [], {SEARCH_FACET: facet})


def evaluation_lineage(
    *, collection: CollectionAddress, labelled_queries: Any, result: Mapping[str, Any] | None
) -> OperatorLineage[Any, Any]:
    """
    ``MilvusSearchEvaluationOperator``'s lineage: inputs the collection scored and the labelled queries'
    file when they came from one; the scores as a run facet.
    """
    inputs = [collection_dataset(collection)]
    from_file = isinstance(labelled_queries, (str, os.PathLike)) and str(
        labelled_queries
    ).strip().lower().endswith((".json", ".jsonl"))
    if from_file and (source := location_dataset(labelled_queries)) is not None:
        inputs.append(source)
    run_facets: dict[str, Any] = {}
    if result:
        run_facets[EVALUATION_FACET] = MilvusSearchEvaluationRunFacet(
            k=int(result["k"]), queries=int(result["queries"]), scores=dict(result["scores"])
        )
    return _lineage(inputs, [], run_facets)
