"""The spend view's HTML: formatted numbers, escaped names, nothing loaded from elsewhere."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from airflow_provider_gemini_milvus.plugins.spend_data import EmbedRecord, LoadRecord, build_report
from airflow_provider_gemini_milvus.plugins.spend_page import (
    format_count,
    format_share,
    format_time,
    format_usd,
    render_page,
)

WHEN = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


def report_of(dag_id: str = "ingest", collection: str = "docs") -> str:
    record = EmbedRecord(
        dag_id=dag_id,
        run_id="manual__1",
        task_id="embed",
        when=WHEN,
        collection=collection,
        model="gemini-embedding-001/768/RETRIEVAL_DOCUMENT",
        stats={
            "documents": 12345,
            "embedded": 1234,
            "unchanged": 11111,
            "estimated_tokens": 987654,
            "requests": 200,
            "rate_limited": 10,
            "estimated_cost_usd": 1234.5,
        },
    )
    loaded = LoadRecord(dag_id, "manual__1", "load", WHEN, collection, written=1234, deleted=3)
    return render_page(build_report([record], [loaded]), dag_id=None, run_limit=100, nonce="n0nce")


@pytest.mark.parametrize(
    ("value", "text"),
    [(None, "—"), (0.0, "$0.000000"), (0.0000271, "$0.000027"), (0.5, "$0.500000"), (1234.567, "$1,234.57")],
)
def test_format_usd(value: float | None, text: str) -> None:
    assert format_usd(value) == text


def test_other_formats() -> None:
    assert format_count(1234567) == "1,234,567"
    assert format_share(None) == "—"
    assert format_share(0.125) == "12.5%"
    assert format_time(WHEN) == "2026-12-01 09:30 UTC"
    assert format_time(None) == "—"


def test_the_page_shows_the_figures_formatted() -> None:
    page = report_of()

    for shown in ("1,234", "987,654", "$1,234.50", "11,111", "5.0%", "2026-12-01 09:30 UTC"):
        assert shown in page
    assert 'data-col="saved_usd">$11,115.50<' in page, "11,111 texts at $1,234.50 / 1,234"


def test_names_are_escaped() -> None:
    page = report_of(dag_id="<script>alert(1)</script>", collection='x"><img src=y>')

    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img src=y>" not in page


def test_nothing_is_loaded_from_elsewhere_and_inline_code_carries_the_nonce() -> None:
    page = report_of()

    assert not re.search(r"(src|href)=\"(https?:)?//", page)
    assert page.count('nonce="n0nce"') == 2
    assert len(re.findall(r"<script", page)) == len(re.findall(r"<style", page)) == 1


def test_the_filter_box_appears_only_where_scripts_run() -> None:
    page = report_of()

    assert '<p id="filter-box" hidden>' in page
    assert 'getElementById("filter-box").hidden = false' in page


def test_an_empty_report_says_so() -> None:
    page = render_page(build_report([], []), dag_id="quiet", run_limit=100, nonce="n")

    assert page.count("No runs of the provider's tasks here.") == 3
    assert "DAG quiet" in page
    assert "<svg" not in page
