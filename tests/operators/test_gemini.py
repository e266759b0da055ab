"""GeminiEmbedOperator against the Gemini emulator and real Milvus Lite."""

from __future__ import annotations

import hashlib
import inspect
import json
from typing import Any

import numpy as np
import pytest

from airflow_provider_gemini_milvus.exceptions import MilvusCollectionMismatchError
from airflow_provider_gemini_milvus.hooks.gemini import GeminiHook
from airflow_provider_gemini_milvus.hooks.milvus import MilvusHook
from airflow_provider_gemini_milvus.operators.gemini import GeminiEmbedOperator
from airflow_provider_gemini_milvus.operators.milvus import MilvusInsertOperator
from airflow_provider_gemini_milvus.testing.gemini_emulator import GeminiEmulator

COLLECTION = "docs"


def embed(documents: Any, **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("output_dimensionality", 768)
    operator = GeminiEmbedOperator(task_id="embed", documents=documents, **kwargs)
    return operator.execute(context={})  # type: ignore[arg-type]


def load(result: dict[str, Any]) -> dict[str, Any]:
    return MilvusInsertOperator(task_id="load", collection_name=COLLECTION, data=result).execute(context={})  # type: ignore[arg-type]


def corpus() -> list[dict[str, Any]]:
    return [
        {"id": "a", "text": "Milvus stores vectors for similarity search.", "lang": "en"},
        {"id": "b", "text": "Airflow schedules data pipelines.", "lang": "en"},
        {"id": "c", "text": "Gemini turns text into embeddings.", "lang": "en"},
    ]


# -- construction --------------------------------------------------------------------------------------


def test_constructor_is_keyword_only_and_does_no_io() -> None:
    operator = GeminiEmbedOperator(task_id="embed", documents=["x"], gemini_conn_id="does_not_exist")
    assert operator.gemini_conn_id == "does_not_exist"
    parameters = inspect.signature(GeminiEmbedOperator.__init__).parameters
    assert all(p.kind == p.KEYWORD_ONLY for name, p in parameters.items() if name not in ("self", "kwargs"))


def test_default_connection_ids_match_the_hooks() -> None:
    defaults = inspect.signature(GeminiEmbedOperator.__init__).parameters
    assert defaults["gemini_conn_id"].default == GeminiHook.default_conn_name
    assert defaults["milvus_conn_id"].default == MilvusHook.default_conn_name


def test_template_fields_cover_everything_that_may_come_from_xcom_or_jinja() -> None:
    fields = set(GeminiEmbedOperator.template_fields)
    assert {"documents", "model", "gemini_task_type", "output_dimensionality", "collection_name"} <= fields
    operator = GeminiEmbedOperator(task_id="embed", documents=["x"])
    for name in fields:
        assert hasattr(operator, name), name


def test_the_hook_is_built_lazily_and_once() -> None:
    operator = GeminiEmbedOperator(task_id="embed", documents=["x"])
    assert "hook" not in operator.__dict__
    assert operator.hook is operator.hook


# -- output --------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("gemini_connection")
def test_strings_become_rows_with_stable_ids_and_unit_vectors() -> None:
    texts = ["first text", "second text"]
    result = embed(texts)

    assert [row["id"] for row in result["rows"]] == [hashlib.sha256(t.encode()).hexdigest() for t in texts]
    assert [row["text"] for row in result["rows"]] == texts
    vectors = np.array([row["vector"] for row in result["rows"]])
    assert vectors.shape == (2, 768)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    assert result["model"] == "gemini-embedding-001/768/RETRIEVAL_DOCUMENT"
    assert all(row["model"] == result["model"] for row in result["rows"])
    assert result["dim"] == 768
    assert result["delete_ids"] == []


@pytest.mark.usefixtures("gemini_connection")
def test_output_is_plain_json() -> None:
    result = embed(corpus())
    assert json.loads(json.dumps(result)) == result


@pytest.mark.usefixtures("gemini_connection")
def test_dicts_keep_their_ids_and_chosen_metadata() -> None:
    documents = [{**doc, "secret_note": "not kept"} for doc in corpus()]
    result = embed(documents, metadata_fields=["lang"])
    assert [row["id"] for row in result["rows"]] == ["a", "b", "c"]
    assert all(row["metadata"] == {"lang": "en"} for row in result["rows"])


@pytest.mark.usefixtures("gemini_connection")
def test_metadata_defaults_to_every_other_field() -> None:
    result = embed(
        [{"id": 7, "text": "hello", "title": "T", "source": "s3://x", "page": 2}], title_field="title"
    )
    assert result["rows"][0]["id"] == "7"
    assert result["rows"][0]["metadata"] == {"source": "s3://x", "page": 2}


@pytest.mark.usefixtures("gemini_connection")
def test_title_field_feeds_document_titles() -> None:
    documents = [{"id": "a", "text": "the tower is tall", "heading": "Paris landmarks"}]
    with_title = embed(documents, title_field="heading")["rows"][0]["vector"]
    without_title = embed(documents)["rows"][0]["vector"]
    assert not np.allclose(with_title, without_title)


@pytest.mark.usefixtures("gemini_connection")
def test_task_type_reaches_gemini(gemini_emulator: GeminiEmulator) -> None:
    result = embed(["is the sky blue?"], task_type="question_answering")
    assert gemini_emulator.stats.task_types == {"QUESTION_ANSWERING": 1}
    assert result["model"].endswith("/QUESTION_ANSWERING")


@pytest.mark.usefixtures("gemini_connection")
def test_stats_report_usage_and_cost() -> None:
    stats = embed(corpus())["stats"]
    assert stats["documents"] == 3
    assert stats["embedded"] == 3
    assert stats["requests"] == 1
    assert stats["estimated_tokens"] > 0
    assert stats["estimated_cost_usd"] == pytest.approx(stats["estimated_tokens"] * 0.15 / 1e6)


@pytest.mark.usefixtures("gemini_connection")
def test_exact_duplicates_are_embedded_once(gemini_emulator: GeminiEmulator) -> None:
    result = embed(["same text", "same text", "other"])
    assert len(result["rows"]) == 2
    assert gemini_emulator.stats.texts == 2


# -- validation before spending -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("documents", "kwargs", "message"),
    [
        ("{{ ti.xcom_pull('x') }}", {}, "documents must be a list .* did not render to a list"),
        ([], {}, "documents is empty"),
        (["ok", 3], {}, r"documents\[1\] must be a string or a dict"),
        ([{"body": "x"}], {}, r"documents\[0\] has no 'text' field"),
        ([{"text": 5}], {}, r"documents\[0\] text must be a string"),
        ([{"text": "ok"}, {"text": "  "}], {}, r"documents\[1\] text is empty"),
        ([{"id": ["x"], "text": "ok"}], {}, r"documents\[0\] field 'id' must be a string or an integer"),
        ([{"id": "", "text": "ok"}], {}, r"documents\[0\]: id must be a non-empty string"),
        ([{"id": "é" * 300, "text": "ok"}], {}, r"documents\[0\]: id is 600 bytes in UTF-8, longer than"),
        (
            ["ok", "bad \ud800 text"],
            {},
            r"documents\[1\] text holds a lone surrogate \(U\+D800 at",
        ),
        ([{"id": "\udc80", "text": "ok"}], {}, r"documents\[0\] id holds a lone surrogate"),
        ([{"text": "ok", "tags": ["x", "\ud800"]}], {}, r"documents\[0\] metadata\['tags'\]\[1\] holds"),
        (
            [{"text": "ok", "title": "\ud800"}],
            {"title_field": "title"},
            r"documents\[0\] title holds a lone surrogate",
        ),
        (
            [{"text": "ok", "title": "t" * 10_000}],
            {"title_field": "title"},
            r"documents\[0\] title is about 2500 tokens",
        ),
        (["ok", "ok", "x" * 10_000], {}, r"documents\[2\] text is about 2500 tokens"),
        (["ok"], {"model": None}, "model must be a non-empty string"),
        (["ok"], {"batch_size": "5.5"}, "batch_size must be an integer from 1 to 100, got '5.5'"),
        (["ok"], {"batch_size": 0}, "batch_size must be an integer from 1 to 100"),
        (["ok"], {"metadata_fields": "lang"}, "metadata_fields must be a list of strings, got the string"),
        (
            ["ok"],
            {"delete_missing": "treu", "collection_name": "c"},
            "delete_missing must be true, false, .corpus.",
        ),
        (["ok"], {"max_delete_fraction": "half"}, "max_delete_fraction must be a number from 0 to 1"),
        (
            [{"id": "a", "text": "one"}, {"id": "a", "text": "two"}],
            {},
            r"documents\[1\] has id 'a', already used by documents\[0\] with different content",
        ),
        (
            [{"text": "ok", "title": 3}],
            {"title_field": "title"},
            r"documents\[0\] field 'title' \(title_field\)",
        ),
        ([{"text": "ok", "tags": {"a"}}], {}, r"documents\[0\] metadata is not JSON-serialisable"),
        ([{"text": "ok", "score": float("nan")}], {}, r"documents\[0\] metadata is not JSON-serialisable"),
        (["ok"], {"task_type": "RETRIEVAL"}, "unknown task_type 'RETRIEVAL'"),
        (["ok"], {"output_dimensionality": 5000}, "output_dimensionality=5000 is out of range"),
        (["ok"], {"title_field": "t", "task_type": "RETRIEVAL_QUERY"}, "title_field is only used with"),
        (["ok"], {"delete_missing": True}, "delete_missing needs collection_name"),
        (["ok", "x" * 10_000], {}, r"documents\[1\] text is about 2500 tokens"),
    ],
)
@pytest.mark.usefixtures("gemini_connection")
def test_bad_documents_fail_before_any_request(
    gemini_emulator: GeminiEmulator, documents: Any, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        embed(documents, **kwargs)
    assert gemini_emulator.stats.requests == 0


# -- incremental mode against real Milvus Lite ----------------------------------------------------------


@pytest.mark.usefixtures("gemini_connection", "milvus_connection")
def test_incremental_first_run_embeds_everything_into_an_empty_target(
    gemini_emulator: GeminiEmulator,
) -> None:
    result = embed(corpus(), collection_name=COLLECTION)
    assert len(result["rows"]) == 3
    assert gemini_emulator.stats.texts == 3


@pytest.mark.usefixtures("gemini_connection", "milvus_connection")
def test_incremental_unchanged_corpus_makes_zero_requests(gemini_emulator: GeminiEmulator) -> None:
    load(embed(corpus(), collection_name=COLLECTION))
    gemini_emulator.reset_stats()

    result = embed(corpus(), collection_name=COLLECTION)

    assert gemini_emulator.stats.requests == 0
    assert result["rows"] == []
    assert result["stats"]["unchanged"] == 3
    assert result["stats"].keys() == embed(corpus())["stats"].keys()
    assert result["stats"]["requests"] == 0
    assert result["stats"]["estimated_cost_usd"] == 0.0
    assert load(result)["written"] == 0


@pytest.mark.usefixtures("gemini_connection", "milvus_connection")
def test_incremental_one_edit_sends_exactly_one_text(gemini_emulator: GeminiEmulator) -> None:
    load(embed(corpus(), collection_name=COLLECTION))
    gemini_emulator.reset_stats()
    edited = corpus()
    edited[1]["text"] = "Airflow schedules and retries data pipelines."

    result = embed(edited, collection_name=COLLECTION)

    assert gemini_emulator.stats.embedded_texts == [edited[1]["text"]]
    assert [row["id"] for row in result["rows"]] == ["b"]
    load(result)
    with MilvusHook() as milvus:
        assert milvus.count(COLLECTION) == 3


@pytest.mark.usefixtures("gemini_connection", "milvus_connection")
def test_incremental_runs_on_a_full_text_collection_keep_bm25_in_step(
    gemini_emulator: GeminiEmulator,
) -> None:
    first = embed(corpus(), collection_name=COLLECTION)
    MilvusInsertOperator(task_id="load", collection_name=COLLECTION, data=first, full_text=True).execute({})
    gemini_emulator.reset_stats()
    edited = corpus()[:2]  # "c" vanished from the source
    edited[1]["text"] = "Airflow schedules and retries data pipelines."

    result = embed(edited, collection_name=COLLECTION, delete_missing=True)

    assert gemini_emulator.stats.embedded_texts == [edited[1]["text"]]  # BM25 costs no text
    assert load(result)["deleted"] == 1
    with MilvusHook() as milvus:
        assert [hit["id"] for hit in milvus.search(COLLECTION, texts=["retries"], mode="full_text")[0]] == [
            "b"
        ]
        assert milvus.search(COLLECTION, texts=["Gemini"], mode="full_text")[0] == []  # not resurrected


@pytest.mark.usefixtures("gemini_connection", "milvus_connection")
def test_incremental_metadata_change_refreshes_the_row(gemini_emulator: GeminiEmulator) -> None:
    load(embed(corpus(), collection_name=COLLECTION))
    gemini_emulator.reset_stats()
    edited = corpus()
    edited[2]["lang"] = "fr"
    result = embed(edited, collection_name=COLLECTION)
    assert [row["id"] for row in result["rows"]] == ["c"]


@pytest.mark.usefixtures("gemini_connection", "milvus_connection")
def test_incremental_task_type_change_re_embeds_everything(gemini_emulator: GeminiEmulator) -> None:
    load(embed(corpus(), collection_name=COLLECTION))
    gemini_emulator.reset_stats()
    result = embed(corpus(), collection_name=COLLECTION, task_type="SEMANTIC_SIMILARITY")
    assert gemini_emulator.stats.texts == 3
    assert load(result)["written"] == 3


@pytest.mark.usefixtures("gemini_connection", "milvus_connection")
def test_incremental_model_change_re_embeds_everything(gemini_emulator: GeminiEmulator) -> None:
    load(embed(corpus(), collection_name=COLLECTION))
    gemini_emulator.reset_stats()
    embed(corpus(), collection_name=COLLECTION, model="gemini-embedding-2")
    assert gemini_emulator.stats.texts == 3


@pytest.mark.usefixtures("gemini_connection", "milvus_connection")
def test_delete_missing_returns_the_ids_gone_from_the_source(gemini_emulator: GeminiEmulator) -> None:
    load(embed(corpus(), collection_name=COLLECTION))
    gemini_emulator.reset_stats()

    result = embed(corpus()[:2], collection_name=COLLECTION, delete_missing=True)

    assert result["delete_ids"] == ["c"]
    assert gemini_emulator.stats.requests == 0
    summary = load(result)
    assert summary["deleted"] == 1
    with MilvusHook() as milvus:
        assert sorted(milvus.list_ids(COLLECTION)) == ["a", "b"]


@pytest.mark.usefixtures("gemini_connection", "milvus_connection")
def test_incremental_refuses_a_collection_of_another_dim_before_any_request(
    gemini_emulator: GeminiEmulator,
) -> None:
    load(embed(corpus(), collection_name=COLLECTION))
    gemini_emulator.reset_stats()
    with pytest.raises(MilvusCollectionMismatchError, match="dim"):
        embed(corpus() + [{"id": "d", "text": "new"}], collection_name=COLLECTION, output_dimensionality=1536)
    assert gemini_emulator.stats.requests == 0


@pytest.mark.usefixtures("gemini_connection", "milvus_connection")
def test_incremental_checks_texts_against_the_collections_own_field_length(
    gemini_emulator: GeminiEmulator,
) -> None:
    with MilvusHook() as milvus:
        milvus.ensure_collection(COLLECTION, 768, text_max_length=16)
    with pytest.raises(ValueError, match=r"documents\[1\]: text is 17 bytes .* max_length 16"):
        embed([{"id": "a", "text": "one"}, {"id": "b", "text": "x" * 17}], collection_name=COLLECTION)
    assert gemini_emulator.stats.requests == 0


@pytest.mark.usefixtures("gemini_connection", "milvus_connection")
def test_delete_missing_refuses_to_delete_most_of_the_collection(gemini_emulator: GeminiEmulator) -> None:
    documents = [{"id": str(n), "text": f"document {n}"} for n in range(10)]
    load(embed(documents, collection_name=COLLECTION))
    gemini_emulator.reset_stats()

    with pytest.raises(ValueError, match=r"delete 8 of the 10 stored rows \(80%\).*max_delete_fraction=0.5"):
        embed(documents[:2], collection_name=COLLECTION, delete_missing=True)

    result = embed(
        documents[:2], collection_name=COLLECTION, delete_missing="true", max_delete_fraction="1.0"
    )
    assert len(result["delete_ids"]) == 8
    assert gemini_emulator.stats.requests == 0


# -- rendered template values ------------------------------------------------------------------------------


@pytest.mark.usefixtures("gemini_connection", "milvus_connection")
def test_rendered_false_deletes_nothing(gemini_emulator: GeminiEmulator) -> None:
    load(embed(corpus(), collection_name=COLLECTION))
    result = embed(corpus()[:2], collection_name=COLLECTION, delete_missing="False")
    assert result["delete_ids"] == []
    result = embed(corpus()[:2], collection_name=COLLECTION, delete_missing="TRUE")
    assert result["delete_ids"] == ["c"]


@pytest.mark.usefixtures("gemini_connection")
def test_rendered_numbers_and_lists_are_converted(gemini_emulator: GeminiEmulator) -> None:
    documents = [{"text": f"text {n}", "lang": "en", "topic": "t"} for n in range(7)]
    result = embed(
        documents,
        batch_size="5",
        max_concurrency="2",
        output_dimensionality="256",
        metadata_fields=["lang"],
        title_field="",
    )
    assert result["dim"] == 256
    assert gemini_emulator.stats.requests == 2
    assert result["rows"][0]["metadata"] == {"lang": "en"}


def test_literal_documents_are_data_never_rendered_as_jinja() -> None:
    documents = [
        {"id": "a", "text": "Write {{ ds }} where the date goes", "tag": "{{ ds }}"},
        "A {% raw %} block opens and never closes",
    ]
    operator = GeminiEmbedOperator(
        task_id="embed", documents=documents, model="{{ params.model }}", output_dimensionality=768
    )

    operator.render_template_fields({"ds": "2026-12-06", "params": {"model": "gemini-embedding-001"}})  # type: ignore[arg-type]

    assert operator.documents == [
        {"id": "a", "text": "Write {{ ds }} where the date goes", "tag": "{{ ds }}"},
        "A {% raw %} block opens and never closes",
    ]
    assert operator.model == "gemini-embedding-001", "the other arguments are still rendered"


def test_a_documents_location_is_still_rendered() -> None:
    operator = GeminiEmbedOperator(task_id="embed", documents="file:///data/{{ ds }}.jsonl")
    operator.render_template_fields({"ds": "2026-12-06"})  # type: ignore[arg-type]
    assert operator.documents == "file:///data/2026-12-06.jsonl"
