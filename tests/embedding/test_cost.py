"""Know the cost before paying it: the estimate, the budget, and GeminiEmbedOperator's dry run."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_gemini_milvus.embedding.cost import check_budget, estimate_run_cost
from airflow_provider_gemini_milvus.gemini.models import MODELS, estimate_tokens
from airflow_provider_gemini_milvus.hooks.milvus import MilvusHook
from airflow_provider_gemini_milvus.operators.gemini import GeminiEmbedOperator
from airflow_provider_gemini_milvus.operators.milvus import MilvusInsertOperator
from airflow_provider_gemini_milvus.testing.gemini_emulator import GeminiEmulator
from airflow_provider_gemini_milvus.testing.pytest_plugin import GeminiConnectionFactory

COLLECTION = "docs"


def corpus(count: int = 30) -> list[dict[str, Any]]:
    return [{"id": f"doc-{n}", "text": f"document {n} " + "word " * n, "lang": "en"} for n in range(count)]


def embed(documents: Any, **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("output_dimensionality", 128)
    operator = GeminiEmbedOperator(task_id="embed", documents=documents, **kwargs)
    return operator.execute(context={})  # type: ignore[arg-type]


def load(data: Any) -> dict[str, Any]:
    return MilvusInsertOperator(task_id="load", collection_name=COLLECTION, data=data).execute(context={})  # type: ignore[arg-type]


# -- the estimate, pure ----------------------------------------------------------------------------------


def test_the_estimate_counts_requests_tokens_and_both_prices() -> None:
    texts = [f"text number {n} " * (n + 1) for n in range(250)]
    estimate = estimate_run_cost(texts, model="gemini-embedding-001", batch=False)

    tokens = sum(estimate_tokens(text) for text in texts)
    assert (estimate.documents, estimate.requests, estimate.tokens) == (250, 3, tokens)
    assert estimate.sync_cost_usd == pytest.approx(tokens * 0.15 / 1e6)
    assert estimate.batch_cost_usd == pytest.approx(tokens * 0.075 / 1e6)
    assert estimate.cost_usd == estimate.sync_cost_usd
    assert (
        estimate_run_cost(texts, model="gemini-embedding-001", batch=True).cost_usd == estimate.batch_cost_usd
    )
    assert estimate.as_dict() == {
        "requests": 3,
        "estimated_tokens": tokens,
        "estimated_cost_usd": estimate.sync_cost_usd,
        "estimated_sync_cost_usd": estimate.sync_cost_usd,
        "estimated_batch_cost_usd": estimate.batch_cost_usd,
    }


def test_titles_count_and_the_token_quota_splits_requests() -> None:
    texts = ["a" * 400] * 10  # 100 tokens each
    plain = estimate_run_cost(texts, model=MODELS["gemini-embedding-001"], batch=False)
    titled = estimate_run_cost(texts, ["t" * 40] * 10, model=MODELS["gemini-embedding-001"], batch=False)
    assert titled.tokens == plain.tokens + 10 * 10
    quota = estimate_run_cost(texts, model="gemini-embedding-001", batch=False, tokens_per_minute=250)
    assert quota.requests == 5
    assert estimate_run_cost(texts, model="gemini-embedding-001", batch=False, batch_size=3).requests == 4


def test_a_model_without_a_price_has_no_cost_and_cannot_be_budgeted() -> None:
    estimate = estimate_run_cost(["x"], model="text-embedding-005", batch=False)
    assert (estimate.sync_cost_usd, estimate.batch_cost_usd) == (None, None)
    with pytest.raises(ValueError, match="has no known sync price"):
        check_budget(estimate, 1.0)


def test_the_budget_refuses_with_the_numbers() -> None:
    estimate = estimate_run_cost(["a" * 4000] * 1000, model="gemini-embedding-001", batch=False)
    assert estimate.tokens == 1_000_000
    check_budget(estimate, None)
    check_budget(estimate, 0.15)
    with pytest.raises(ValueError, match="more than max_cost_usd") as refusal:
        check_budget(estimate, 0.1)
    assert str(refusal.value) == (
        "the run would embed 1000 documents (about 1000000 tokens in 10 requests), estimated $0.150000 at "
        "the sync price of $0.15 per million tokens, more than max_cost_usd=$0.1. Nothing was sent; raise "
        "max_cost_usd or embed fewer documents"
    )
    in_batch = estimate_run_cost(["a" * 4000] * 1000, model="gemini-embedding-001", batch=True)
    check_budget(in_batch, 0.1)  # half the price fits
    with pytest.raises(ValueError, match=r"\$0.075000 at the batch price of \$0.075"):
        check_budget(in_batch, 0.05)
    check_budget(estimate_run_cost([], model="gemini-embedding-001", batch=False), 0.0)


# -- the operator: dry run against the emulator and Milvus Lite ----------------------------------------------


@pytest.mark.usefixtures("gemini_connection", "milvus_connection")
def test_a_dry_run_reports_the_diff_and_its_cost_and_spends_nothing(gemini_emulator: GeminiEmulator) -> None:
    load(embed(corpus(), collection_name=COLLECTION))
    gemini_emulator.reset_stats()
    edited = corpus()[1:] + [{"id": "doc-new", "text": "a brand new document", "lang": "en"}]
    edited[0]["text"] = "an edited text"  # doc-1
    edited[1]["lang"] = "fr"  # doc-2: metadata only

    report = embed(edited, collection_name=COLLECTION, dry_run=True, delete_missing=True)

    assert gemini_emulator.stats.requests == 0
    texts = ["an edited text", "a brand new document"]
    tokens = sum(estimate_tokens(text) for text in texts)
    assert report == {
        "dry_run": True,
        "model": "gemini-embedding-001/128/RETRIEVAL_DOCUMENT",
        "documents": 30,
        "new": 1,
        "changed": 1,
        "metadata_only": 1,
        "unchanged": 27,
        "to_delete": 1,
        "requests": 1,
        "estimated_tokens": tokens,
        "estimated_cost_usd": pytest.approx(tokens * 0.15 / 1e6),
        "estimated_sync_cost_usd": pytest.approx(tokens * 0.15 / 1e6),
        "estimated_batch_cost_usd": pytest.approx(tokens * 0.075 / 1e6),
        "max_cost_usd": None,
        "over_budget": None,
    }
    assert json.loads(json.dumps(report)) == report
    with MilvusHook() as milvus:
        assert milvus.count(COLLECTION) == 30

    # The run itself sends exactly what the dry run announced, at the estimated cost.
    stats = embed(edited, collection_name=COLLECTION, delete_missing=True)["stats"]
    assert gemini_emulator.stats.tokens == tokens
    assert (stats["requests"], stats["estimated_tokens"]) == (1, tokens)
    assert stats["estimated_cost_usd"] == pytest.approx(report["estimated_cost_usd"])


@pytest.mark.usefixtures("gemini_connection")
def test_a_staged_dry_run_writes_no_part(tmp_path: Path, gemini_emulator: GeminiEmulator) -> None:
    report = embed(
        corpus(), dry_run="True", inline_max_rows=0, batch_size=7, staging_uri=f"file://{tmp_path}"
    )
    assert (report["new"], report["requests"]) == (30, math.ceil(30 / 7))
    assert report["estimated_tokens"] == sum(estimate_tokens(doc["text"]) for doc in corpus())
    assert gemini_emulator.stats.requests == 0
    assert list(tmp_path.iterdir()) == []


@pytest.mark.usefixtures("gemini_connection")
def test_a_dry_run_in_batch_mode_reports_the_batch_price_and_creates_no_job(
    tmp_path: Path, gemini_emulator: GeminiEmulator
) -> None:
    tokens = sum(estimate_tokens(doc["text"]) for doc in corpus())
    batch_cost = tokens * 0.075 / 1e6

    report = embed(
        corpus(),
        deferrable="True",
        dry_run="True",
        max_cost_usd=str(batch_cost * 1.5),  # the batch estimate fits; the sync one (twice) would not
        staging_uri=f"file://{tmp_path}",
    )

    assert report["estimated_cost_usd"] == pytest.approx(batch_cost)
    assert report["estimated_batch_cost_usd"] == pytest.approx(batch_cost)
    assert report["estimated_sync_cost_usd"] == pytest.approx(2 * batch_cost)
    assert report["over_budget"] is False
    assert gemini_emulator.stats.requests == 0
    assert gemini_emulator.batches.jobs() == []
    assert list(tmp_path.iterdir()) == []


@pytest.mark.usefixtures("gemini_connection")
def test_a_dry_run_says_whether_the_budget_holds(gemini_emulator: GeminiEmulator) -> None:
    assert embed(corpus(), dry_run=True, max_cost_usd="0.5")["over_budget"] is False
    assert embed(corpus(), dry_run=True, max_cost_usd="0")["over_budget"] is True
    assert gemini_emulator.stats.requests == 0


# -- the budget on a real run --------------------------------------------------------------------------------


@pytest.mark.parametrize("staged", [False, True], ids=["inline", "staged"])
@pytest.mark.usefixtures("gemini_connection")
def test_a_run_over_budget_fails_before_the_first_request(
    tmp_path: Path, gemini_emulator: GeminiEmulator, staged: bool
) -> None:
    staging = {"inline_max_rows": 0, "staging_uri": f"file://{tmp_path}"} if staged else {}
    tokens = sum(estimate_tokens(doc["text"]) for doc in corpus())

    with pytest.raises(ValueError, match="Nothing was sent") as refusal:
        embed(corpus(), max_cost_usd=0.000001, **staging)

    assert gemini_emulator.stats.requests == 0
    assert f"the run would embed 30 documents (about {tokens} tokens in 1 requests)" in str(refusal.value)
    assert "more than max_cost_usd=$1e-06" in str(refusal.value)
    result = embed(corpus(), max_cost_usd="0.5", **staging)
    assert result["stats"]["embedded"] == 30
    assert gemini_emulator.stats.texts == 30


@pytest.mark.usefixtures("gemini_connection", "milvus_connection")
def test_the_budget_counts_only_what_the_incremental_run_sends(gemini_emulator: GeminiEmulator) -> None:
    load(embed(corpus(), collection_name=COLLECTION))
    gemini_emulator.reset_stats()
    edited = corpus()
    edited[3]["lang"] = "fr"
    edited[4]["text"] = "short"

    result = embed(edited, collection_name=COLLECTION, max_cost_usd=0.000001)

    assert gemini_emulator.stats.embedded_texts == ["short"]
    assert result["stats"]["metadata_only"] == 1


@pytest.mark.usefixtures("gemini_connection_factory")
def test_the_estimate_follows_the_connections_token_quota(
    gemini_connection_factory: GeminiConnectionFactory, gemini_emulator: GeminiEmulator
) -> None:
    gemini_connection_factory(tokens_per_minute=20)
    documents = [{"id": str(n), "text": "a" * 40} for n in range(6)]  # 10 tokens each
    assert embed(documents, dry_run=True)["requests"] == 3


# -- rendered arguments ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dry_run": "yes"}, "dry_run must be true or false"),
        ({"max_cost_usd": "-1"}, "max_cost_usd must be a number >= 0"),
        ({"max_cost_usd": "lots"}, "max_cost_usd must be a number >= 0, got 'lots'"),
        ({"max_cost_usd": 1, "model": "text-embedding-005"}, "max_cost_usd cannot be checked: model"),
    ],
)
@pytest.mark.usefixtures("gemini_connection")
def test_bad_cost_arguments_fail_before_any_request(
    gemini_emulator: GeminiEmulator, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        embed(corpus(), **kwargs)
    assert gemini_emulator.stats.requests == 0


@pytest.mark.usefixtures("gemini_connection")
def test_rendered_false_runs_for_real(gemini_emulator: GeminiEmulator) -> None:
    result = embed(corpus(3), dry_run="False", max_cost_usd="")
    assert len(result["rows"]) == 3
    assert gemini_emulator.stats.texts == 3
