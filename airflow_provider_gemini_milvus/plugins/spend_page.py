"""
The spend view's page: plain HTML with inline CSS, an inline SVG bar chart and a few lines of inline
script (a row filter), nothing loaded from elsewhere. Every value is escaped; the page shows counts, costs,
DAG, run, task and collection names only.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import urlencode

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow_provider_gemini_milvus.plugins.spend_data import RunSpend, SpendReport, SpendTotals

__all__ = ["CHART_RUNS", "format_count", "format_share", "format_time", "format_usd", "render_page"]

#: The chart shows at most this many runs, the newest.
CHART_RUNS = 40

_CSS = """
:root { color-scheme: light dark; --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --bg: #fff;
  --card: #f6f8fa; --sync: #2f6fdb; --batch: #1a7f37; --saved: #9a6700; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6edf3; --muted: #9198a1; --line: #3d444d;
  --bg: #0d1117; --card: #151b23; --sync: #4493f8; --batch: #3fb950; --saved: #d29922; } }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg);
  background: var(--bg); margin: 16px 24px; }
h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 24px 0 8px; }
p.note { color: var(--muted); margin: 0 0 12px; max-width: 70em; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 12px 0; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: 8px 14px;
  min-width: 150px; }
.card .label { color: var(--muted); font-size: 12px; } .card .value { font-size: 18px; font-weight: 600; }
table { border-collapse: collapse; margin: 4px 0 8px; font-variant-numeric: tabular-nums; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 10px; text-align: right; white-space: nowrap; }
th { font-weight: 600; background: var(--card); position: sticky; top: 0; }
td.name, th.name { text-align: left; } td.empty { text-align: left; color: var(--muted); }
.legend span { display: inline-block; width: 10px; height: 10px; margin: 0 4px 0 12px; border-radius: 2px; }
.sync { fill: var(--sync); background: var(--sync); } .batch { fill: var(--batch); background: var(--batch); }
.saved { fill: var(--saved); background: var(--saved); }
svg text { fill: var(--muted); font-size: 11px; }
input[type=search] { padding: 4px 8px; border: 1px solid var(--line); border-radius: 6px; min-width: 260px;
  background: var(--bg); color: var(--fg); }
a { color: var(--sync); }
"""

_SCRIPT = """
document.getElementById("filter-box").hidden = false;
document.getElementById("filter").addEventListener("input", function (event) {
  var needle = event.target.value.toLowerCase();
  document.querySelectorAll("tbody tr[data-row]").forEach(function (row) {
    row.hidden = needle !== "" && row.textContent.toLowerCase().indexOf(needle) === -1;
  });
});
"""


def format_count(value: int) -> str:
    """``1,234``."""
    return f"{value:,}"


def format_usd(value: float | None) -> str:
    """``$1,234.57`` from a dollar up, ``$0.000027`` below (six decimals), ``—`` when unknown."""
    if value is None:
        return "—"
    if value >= 1:
        return f"${value:,.2f}"
    return f"${value:.6f}"


def format_share(value: float | None) -> str:
    """``12.5%``, ``—`` when there is nothing to share."""
    return "—" if value is None else f"{value:.1%}"


def format_time(value: datetime | None) -> str:
    """``2026-12-06 23:28 UTC``, ``—`` when unknown."""
    if value is None:
        return "—"
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%d %H:%M UTC")


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _cell(text: str, *, name: bool = False, column: str = "") -> str:
    css = ' class="name"' if name else ""
    data = f' data-col="{_e(column)}"' if column else ""
    return f"<td{css}{data}>{_e(text)}</td>"


def _link(label: str, **query: str) -> str:
    return f'<a href="?{_e(urlencode(query))}">{_e(label)}</a>'


_TOTAL_COLUMNS = (
    "runs",
    "documents",
    "texts embedded",
    "tokens",
    "cost sync",
    "cost batch",
    "429 share",
    "not re-sent",
    "≈ saved",
    "rows written",
    "rows deleted",
)


def _total_cells(totals: SpendTotals) -> str:
    return "".join(
        (
            _cell(format_count(totals.runs), column="runs"),
            _cell(format_count(totals.documents), column="documents"),
            _cell(format_count(totals.texts), column="texts"),
            _cell(format_count(totals.tokens), column="tokens"),
            _cell(format_usd(totals.sync_usd), column="sync_usd"),
            _cell(format_usd(totals.batch_usd), column="batch_usd"),
            _cell(format_share(totals.rate_limited_share), column="rate_limited_share"),
            _cell(format_count(totals.not_resent), column="not_resent"),
            _cell(format_usd(totals.saved_usd), column="saved_usd"),
            _cell(format_count(totals.written), column="written"),
            _cell(format_count(totals.deleted), column="deleted"),
        )
    )


def _head(names: Sequence[str], first: Sequence[str]) -> str:
    cells = [f'<th class="name">{_e(name)}</th>' for name in first]
    cells += [f"<th>{_e(name)}</th>" for name in names]
    return f"<thead><tr>{''.join(cells)}</tr></thead>"


def _empty_row(columns: int) -> str:
    return f'<tr><td class="empty" colspan="{columns}">No runs of the provider\'s tasks here.</td></tr>'


def _dag_table(rows: Sequence[SpendTotals]) -> str:
    body = "".join(
        f'<tr data-row data-dag="{_e(row.key)}"><td class="name">{_link(row.key, dag_id=row.key)}</td>'
        f"{_cell(', '.join(row.collections), name=True)}{_total_cells(row)}"
        f"{_cell(format_time(row.last))}</tr>"
        for row in rows
    ) or _empty_row(len(_TOTAL_COLUMNS) + 3)
    head = _head((*_TOTAL_COLUMNS, "last run"), ("DAG", "collections"))
    return f'<table id="by-dag">{head}<tbody>{body}</tbody></table>'


def _collection_table(rows: Sequence[SpendTotals]) -> str:
    body = "".join(
        f'<tr data-row data-collection="{_e(row.key)}">{_cell(row.key, name=True)}'
        f"{_cell(', '.join(row.dag_ids), name=True)}{_total_cells(row)}{_cell(format_time(row.last))}</tr>"
        for row in rows
    ) or _empty_row(len(_TOTAL_COLUMNS) + 3)
    head = _head((*_TOTAL_COLUMNS, "last run"), ("collection", "DAGs"))
    return f'<table id="by-collection">{head}<tbody>{body}</tbody></table>'


def _mode(run: RunSpend) -> str:
    if not run.models:
        return "load only"
    return "batch" if run.batch else "sync"


def _run_table(runs: Sequence[RunSpend]) -> str:
    body = "".join(
        f'<tr data-row data-dag="{_e(run.dag_id)}" data-run="{_e(run.run_id)}" '
        f'data-collection="{_e(run.collection)}">'
        f"{_cell(format_time(run.when), name=True)}"
        f'<td class="name">{_link(run.dag_id, dag_id=run.dag_id)}</td>'
        f"{_cell(run.run_id, name=True)}{_cell(run.collection, name=True)}"
        f"{_cell(', '.join(run.models) or '—', name=True)}{_cell(_mode(run), name=True)}"
        f"{_cell(format_count(run.documents), column='documents')}"
        f"{_cell(format_count(run.texts), column='texts')}"
        f"{_cell(format_count(run.tokens), column='tokens')}"
        f"{_cell(format_usd(run.cost_usd), column='cost_usd')}"
        f"{_cell(f'{run.rate_limited:,} / {run.requests:,}', column='rate_limited')}"
        f"{_cell(format_count(run.not_resent), column='not_resent')}"
        f"{_cell(format_usd(run.saved_usd), column='saved_usd')}"
        f"{_cell(format_count(run.written), column='written')}"
        f"{_cell(format_count(run.deleted), column='deleted')}</tr>"
        for run in runs
    ) or _empty_row(15)
    head = _head(
        (
            "documents",
            "texts embedded",
            "tokens",
            "cost",
            "429s / requests",
            "not re-sent",
            "≈ saved",
            "rows written",
            "rows deleted",
        ),
        ("started", "DAG", "run", "collection", "model", "mode"),
    )
    return f'<table id="runs">{head}<tbody>{body}</tbody></table>'


def _chart(runs: Sequence[RunSpend]) -> str:
    """Cost per run, oldest on the left: sync and batch stacked, the estimated saving beside them."""
    shown = list(reversed(runs[:CHART_RUNS]))
    if not shown:
        return ""
    highest = max(max(run.cost_usd or 0.0, run.saved_usd or 0.0) for run in shown) or 1.0
    height, top, bottom, left, slot = 140, 8, 22, 70, 24
    width = max(left + slot * len(shown) + 10, 520)  # room for the first and last run's time
    parts = [
        (
            f'<svg id="chart" role="img" width="{width}" height="{height + top + bottom}" '
            'aria-label="Estimated cost per run">'
        ),
        f'<text x="{left - 6}" y="{top + 10}" text-anchor="end">{_e(format_usd(highest))}</text>',
        f'<text x="{left - 6}" y="{top + height}" text-anchor="end">$0</text>',
        (
            f'<line x1="{left}" y1="{top + height}" x2="{width - 10}" y2="{top + height}" '
            'stroke="currentColor" stroke-opacity="0.3"/>'
        ),
    ]
    for index, run in enumerate(shown):
        x = left + slot * index + 3
        base: float = top + height
        label = (
            f"{run.dag_id} {run.run_id} ({run.collection}): sync {format_usd(run.sync_usd)}, "
            f"batch {format_usd(run.batch_usd)}, saved ≈ {format_usd(run.saved_usd)}"
        )
        parts.append(f"<g><title>{_e(label)}</title>")
        for css, value in (("sync", run.sync_usd), ("batch", run.batch_usd)):
            bar = round(height * (value or 0.0) / highest, 1)
            if bar > 0:
                base -= bar
                parts.append(f'<rect class="{css}" x="{x}" y="{base}" width="10" height="{bar}"/>')
        saved = round(height * (run.saved_usd or 0.0) / highest, 1)
        if saved > 0:
            parts.append(
                f'<rect class="saved" x="{x + 11}" y="{top + height - saved}" width="6" height="{saved}"/>'
            )
        parts.append("</g>")
    first, last = shown[0].when, shown[-1].when
    parts.append(f'<text x="{left}" y="{top + height + 16}">{_e(format_time(first))}</text>')
    if len(shown) > 1:
        parts.append(
            f'<text x="{width - 10}" y="{top + height + 16}" text-anchor="end">{_e(format_time(last))}</text>'
        )
    parts.append("</svg>")
    legend = (
        '<div class="legend"><span class="sync"></span>sync cost<span class="batch"></span>batch cost'
        '<span class="saved"></span>≈ saved by not re-sending unchanged documents</div>'
    )
    return "".join(parts) + legend


def _cards(total: SpendTotals) -> str:
    cards = (
        ("texts embedded", format_count(total.texts), "texts"),
        ("tokens (estimated)", format_count(total.tokens), "tokens"),
        ("cost sync", format_usd(total.sync_usd), "sync_usd"),
        ("cost batch", format_usd(total.batch_usd), "batch_usd"),
        ("429 share", format_share(total.rate_limited_share), "rate_limited_share"),
        ("≈ saved by incremental runs", format_usd(total.saved_usd), "saved_usd"),
    )
    return (
        '<div class="cards" id="totals">'
        + "".join(
            f'<div class="card" data-col="{key}"><div class="label">{_e(label)}</div>'
            f'<div class="value">{_e(value)}</div></div>'
            for label, value, key in cards
        )
        + "</div>"
    )


def render_page(report: SpendReport, *, dag_id: str | None, run_limit: int, nonce: str) -> str:
    """
    The whole page.

    :param report: what to show.
    :param dag_id: the DAG the page is limited to, None for every DAG the user may read.
    :param run_limit: how many of the newest runs were read.
    :param nonce: the Content-Security-Policy nonce of the inline script and style.
    """
    scope = f"DAG {_e(dag_id)} ({_link('all DAGs')})" if dag_id else "every DAG you may read"
    total = report.total
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Embedding spend</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style nonce="{_e(nonce)}">{_CSS}</style></head>
<body>
<h1>Embedding spend</h1>
<p class="note">{format_count(total.runs)} runs of {scope}, the newest {format_count(run_limit)} runs with a
Gemini or Milvus task of this provider at most, read from the tasks' return values. Tokens and costs are the
operators' estimates (about four characters a token, list prices; batch mode at the Batch API price).
“Not re-sent” counts unchanged and metadata-only documents an incremental run did not embed again;
“≈ saved” is what they would have cost at the same price per text.</p>
{_cards(total)}
<h2>Cost per run</h2>
{_chart(report.runs)}
<p id="filter-box" hidden><input type="search" id="filter"
  placeholder="Filter rows (DAG, run, collection, model)"></p>
<h2>Per DAG</h2>
{_dag_table(report.by_dag)}
<h2>Per collection</h2>
{_collection_table(report.by_collection)}
<h2>Per run</h2>
{_run_table(report.runs)}
<script nonce="{_e(nonce)}">{_SCRIPT}</script>
</body></html>
"""
