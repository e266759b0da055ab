"""
Airflow metrics of what each task did: texts embedded, tokens, estimated cost, requests, 429 answers and
retries, rows written, deleted and skipped, searches and their scores.

The figures come from what the operators already return (their XCom); the functions named ``*_metrics``
map a result to :class:`Metric` values and touch nothing, and :func:`record_metrics` sends them through
Airflow's ``Stats``, so they go where the deployment sends Airflow's own metrics: StatsD, Datadog or
OpenTelemetry (``[metrics]`` in ``airflow.cfg``), or nowhere. Names start with :data:`METRIC_PREFIX`, under
Airflow's own prefix (``[metrics] statsd_prefix``, ``airflow`` by default); docs/observability.md lists them.

Sending metrics never fails a task: the first failure stops the sending, is logged once as a warning, and the
task goes on with its result.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = [
    "METRIC_PREFIX",
    "MICRO_USD",
    "Metric",
    "embed_metrics",
    "evaluation_metrics",
    "insert_metrics",
    "model_name",
    "promote_metrics",
    "record_metrics",
    "search_metrics",
    "send_metrics",
]

log = logging.getLogger(__name__)

#: The first part of every metric name (after Airflow's ``[metrics] statsd_prefix``).
METRIC_PREFIX = "gemini_milvus"
#: Micro-dollars in a dollar: the estimated cost is counted in whole micro-dollars, as counters take integers.
MICRO_USD = 1_000_000

#: The embed result's ``stats`` keys sent as counters, by metric name.
_EMBED_COUNTERS = {
    "documents": "documents",
    "embedded": "embedded",
    "unchanged": "unchanged",
    "metadata_only": "metadata_only",
    "refused": "refused",
    "to_delete": "to_delete",
    "tokens": "estimated_tokens",
    "requests": "requests",
    "retries": "retries",
    "rate_limited": "rate_limited",
}


@dataclass(frozen=True)
class Metric:
    """
    One metric to send.

    :param kind: ``counter`` (added to the running total) or ``gauge`` (the last value).
    :param name: the full name, :data:`METRIC_PREFIX` included (``gemini_milvus.embed.tokens``).
    :param value: an integer for a counter; any number for a gauge.
    :param tags: ``dag_id``, ``task_id`` and what the metric is of (``model``, ``collection``, ...).
    """

    kind: Literal["counter", "gauge"]
    name: str
    value: float
    tags: Mapping[str, str]


def _tags(base: Mapping[str, str | None], **more: str | None) -> dict[str, str]:
    """The tags with a value: a missing collection or model is left out rather than sent empty."""
    return {key: str(value) for key, value in {**base, **more}.items() if value is not None and value != ""}


def _counter(name: str, value: Any, tags: Mapping[str, str]) -> Metric:
    return Metric("counter", f"{METRIC_PREFIX}.{name}", int(value), tags)


def _gauge(name: str, value: Any, tags: Mapping[str, str]) -> Metric:
    return Metric("gauge", f"{METRIC_PREFIX}.{name}", float(value), tags)


def model_name(data: Any) -> str | None:
    """
    The Gemini model of embedded data: of its ``model`` value (``gemini-embedding-001/768/RETRIEVAL_DOCUMENT``
    gives ``gemini-embedding-001``), or of that of a result or manifest; None when there is none.

    :param data: a rows' ``model`` value, or what ``GeminiEmbedOperator`` returns.
    """
    if isinstance(data, Mapping):
        data = data.get("model")
    if not isinstance(data, str) or not data:
        return None
    return data.split("/", 1)[0]


def embed_metrics(result: Mapping[str, Any], tags: Mapping[str, str | None]) -> list[Metric]:
    """
    What ``GeminiEmbedOperator`` did, from its result (inline rows or a staged manifest; both carry
    ``stats``). A dry run (it embeds nothing) gives no metrics.

    Counters ``embed.documents``, ``embedded``, ``unchanged``, ``metadata_only``, ``refused``, ``to_delete``,
    ``tokens`` (estimated), ``requests``, ``retries``, ``rate_limited`` (429 answers), ``cost_micro_usd``;
    gauge ``embed.cost_usd`` (this run's estimated cost). The cost is left out when the model has no
    published price. Tagged ``mode`` (``sync`` or ``batch``) besides ``tags``.

    :param result: the operator's return value.
    :param tags: ``dag_id``, ``task_id``, ``model``, ``collection``.
    """
    if result.get("dry_run"):
        return []
    stats: Mapping[str, Any] = result["stats"]
    tagged = _tags(tags, mode=str(stats.get("mode", "sync")))
    metrics = [
        _counter(f"embed.{name}", stats.get(key, 0), tagged)
        for name, key in _EMBED_COUNTERS.items()
        if key in stats
    ]
    cost = stats.get("estimated_cost_usd")
    if cost is not None:
        metrics.append(_counter("embed.cost_micro_usd", round(float(cost) * MICRO_USD), tagged))
        metrics.append(_gauge("embed.cost_usd", cost, tagged))
    return metrics


def insert_metrics(result: Mapping[str, Any], tags: Mapping[str, str | None]) -> list[Metric]:
    """
    What ``MilvusInsertOperator`` did, from its ``LoadResult``: counters ``insert.written``, ``deleted``,
    ``skipped`` and ``batches``, tagged ``collection`` and ``load_method`` besides ``tags``.

    :param result: the operator's return value.
    :param tags: ``dag_id``, ``task_id``, ``model``.
    """
    tagged = _tags(tags, collection=result["collection"], load_method=result.get("load_method"))
    keys = ("written", "deleted", "skipped", "batches")
    return [_counter(f"insert.{key}", result[key], tagged) for key in keys]


def promote_metrics(result: Mapping[str, Any], tags: Mapping[str, str | None]) -> list[Metric]:
    """
    What ``MilvusPromoteAliasOperator`` did, from its ``PromoteResult``: counters ``promote.switched`` (1 when
    the alias moved) and ``promote.dropped`` (old versions dropped); gauges ``promote.rows`` and, with a
    quality gate, ``promote.quality_new`` and ``promote.quality_live`` (tagged ``metric``). Tagged ``alias``
    and ``collection`` (the promoted version) besides ``tags``.

    :param result: the operator's return value.
    :param tags: ``dag_id``, ``task_id``, ``model``.
    """
    tagged = _tags(tags, alias=result["alias"], collection=result["collection"])
    metrics = [
        _counter("promote.switched", 1 if result["switched"] else 0, tagged),
        _counter("promote.dropped", len(result.get("dropped") or ()), tagged),
        _gauge("promote.rows", result["rows"], tagged),
    ]
    quality = result.get("quality")
    if quality:
        scored = {**tagged, "metric": str(quality["metric"])}
        metrics.append(_gauge("promote.quality_new", quality["new"], scored))
        metrics.append(_gauge("promote.quality_live", quality["live"], scored))
    return metrics


def search_metrics(
    result: Sequence[Mapping[str, Any]], tags: Mapping[str, str | None], *, search_mode: str
) -> list[Metric]:
    """
    What ``MilvusSearchOperator`` did, from its list of ``QueryHits``: counters ``search.queries``,
    ``search.queries_embedded`` (none in ``full_text`` mode) and ``search.hits``, tagged ``search_mode``.

    :param result: the operator's return value.
    :param tags: ``dag_id``, ``task_id``, ``model``, ``collection``.
    :param search_mode: ``dense``, ``full_text`` or ``hybrid``.
    """
    tagged = _tags(tags, search_mode=search_mode)
    queries = len(result)
    return [
        _counter("search.queries", queries, tagged),
        _counter("search.queries_embedded", 0 if search_mode == "full_text" else queries, tagged),
        _counter("search.hits", sum(len(query["hits"]) for query in result), tagged),
    ]


def evaluation_metrics(result: Mapping[str, Any], tags: Mapping[str, str | None]) -> list[Metric]:
    """
    What ``MilvusSearchEvaluationOperator`` measured, from its ``EvaluationResult``: counters
    ``evaluation.queries`` and ``evaluation.queries_embedded`` (once, whatever the number of modes; none when
    only ``full_text`` is scored), and a gauge ``evaluation.score`` per mode and metric (tags
    ``search_mode``, ``metric``, ``k``).

    :param result: the operator's return value.
    :param tags: ``dag_id``, ``task_id``, ``model``, ``collection``.
    """
    tagged = _tags(tags, collection=result["collection"])
    scores: Mapping[str, Mapping[str, float]] = result["scores"]
    queries = int(result["queries"])
    embedded = queries if any(mode != "full_text" for mode in scores) else 0
    metrics = [
        _counter("evaluation.queries", queries, tagged),
        _counter("evaluation.queries_embedded", embedded, tagged),
    ]
    for mode, by_metric in scores.items():
        for metric, value in by_metric.items():
            scored = {**tagged, "search_mode": mode, "metric": metric, "k": str(result["k"])}
            metrics.append(_gauge("evaluation.score", value, scored))
    return metrics


def send_metrics(metrics: Sequence[Metric]) -> None:
    """
    Send ``metrics`` through Airflow's ``Stats`` (counters with ``incr``, gauges with ``gauge``), tags given
    as ``tags=``: StatsD sends them with ``statsd_influxdb_enabled``, Datadog with ``metrics_tags``,
    OpenTelemetry as attributes.

    :raises Exception: whatever ``Stats`` raises; :func:`record_metrics` catches it.
    """
    # airflow.sdk.observability.stats: where the Task SDK (Airflow 3.2 and 3.3) keeps Stats; the task
    # runner initialises it from [metrics] before the task runs.
    from airflow.sdk.observability.stats import Stats

    for metric in metrics:
        if metric.kind == "counter":
            Stats.incr(metric.name, int(metric.value), tags=dict(metric.tags))
        else:
            Stats.gauge(metric.name, metric.value, tags=dict(metric.tags))


def record_metrics(
    metrics_of: Callable[..., list[Metric]],
    result: Any,
    tags: Mapping[str, str | None],
    **options: Any,
) -> None:
    """
    Send the metrics of an operator's ``result``; never raises. The first failure stops the sending and is
    logged as one warning, so a broken metrics set-up can neither fail a task nor flood its log.

    :param metrics_of: one of the ``*_metrics`` functions of this module.
    :param result: the operator's return value.
    :param tags: ``dag_id``, ``task_id`` and what the result is of (``model``, ``collection``).
    :param options: passed on to ``metrics_of`` (``search_mode``).
    """
    try:
        send_metrics(metrics_of(result, tags, **options))
    except Exception as error:  # a metric is never worth a failed task
        reason = f"{type(error).__name__}: {error}"
        log.warning("Metrics of this task were not sent (%s); the task goes on", reason)
