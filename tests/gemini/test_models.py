from __future__ import annotations

import pytest

from airflow_provider_gemini_milvus.gemini.models import (
    MODELS,
    TaskType,
    estimate_tokens,
    get_model,
    prompted_text,
    query_task_type,
    resolve_model,
)


def test_models_prefix_is_optional() -> None:
    assert get_model("models/gemini-embedding-2") is MODELS["gemini-embedding-2"]
    assert get_model("no-such-model") is None


def test_unknown_gemini_embedding_models_follow_the_newest_family_member() -> None:
    model = resolve_model("gemini-embedding-3-preview")
    assert model.name == "gemini-embedding-3-preview"
    assert model.default_dim == 3072
    assert model.one_content_per_text
    assert model.max_input_tokens == 8192  # not 2,048: the limits of gemini-embedding-2
    assert model.task_format == "prompt"


def test_unknown_other_models_are_refused() -> None:
    with pytest.raises(ValueError, match="known models: gemini-embedding-001, gemini-embedding-2, "):
        resolve_model("text-embedding-3-small")


def test_output_dimensionality_must_be_an_integer() -> None:
    with pytest.raises(ValueError, match="must be an integer"):
        MODELS["gemini-embedding-001"].check_output_dimensionality(True)  # type: ignore[arg-type]


def test_token_estimate() -> None:
    assert estimate_tokens("a") == 1
    assert estimate_tokens("abcd" * 10) == 10


@pytest.mark.parametrize("model", [None, 3072, ["gemini-embedding-001"]])
def test_a_model_that_is_not_a_name_is_a_value_error(model: object) -> None:
    with pytest.raises(ValueError, match="model must be a model name such as 'gemini-embedding-001'"):
        resolve_model(model)  # type: ignore[arg-type]


def test_output_dimensionality_is_bounded_by_the_models_default_length() -> None:
    model = MODELS["text-embedding-005"]
    assert model.dim(768) == 768
    with pytest.raises(ValueError, match="it accepts 1 to 768"):
        model.dim(769)


def test_the_batch_price_is_half_the_list_price_where_both_are_known() -> None:
    priced = [model for model in MODELS.values() if model.batch_usd_per_million_tokens is not None]
    assert [model.name for model in priced] == [
        "gemini-embedding-001",
        "gemini-embedding-2",
        "gemini-embedding-2-preview",
    ]
    for model in priced:
        assert model.usd_per_million_tokens is not None
        assert model.batch_usd_per_million_tokens == pytest.approx(model.usd_per_million_tokens / 2)


@pytest.mark.parametrize(
    ("model", "retired_on"),
    [
        ("embedding-001", "2025-08-14"),
        ("models/gemini-embedding-exp-03-07", "2025-08-14"),
        ("text-embedding-004", "2026-01-14"),
    ],
)
def test_a_retired_model_is_refused_with_its_date_and_replacement(model: str, retired_on: str) -> None:
    with pytest.raises(ValueError, match=f"retired by Google on {retired_on}.*use 'gemini-embedding-001'"):
        resolve_model(model)
    with pytest.raises(ValueError, match="retired"):
        resolve_model(model, vertexai=True)


@pytest.mark.parametrize("model", ["text-embedding-005", "text-multilingual-embedding-002"])
def test_vertex_text_models_are_accepted_on_vertex_only(model: str) -> None:
    spec = resolve_model(model, vertexai=True)
    assert (spec.default_dim, spec.max_input_tokens, spec.task_format) == (768, 2048, "field")
    assert resolve_model(model) is spec  # the connection's API not known: no check
    with pytest.raises(ValueError, match="served by Vertex AI only"):
        resolve_model(model, vertexai=False)


def test_gemini_embedding_2_is_priced_and_takes_tasks_as_prompts() -> None:
    for name in ("gemini-embedding-2", "gemini-embedding-2-preview"):
        model = MODELS[name]
        assert (model.usd_per_million_tokens, model.batch_usd_per_million_tokens) == (0.20, 0.10)
        assert (model.max_input_tokens, model.task_format, model.supports_task_type) == (
            8192,
            "prompt",
            False,
        )
        assert model.request_format == "prompt-v1"
    assert MODELS["gemini-embedding-001"].request_format == ""


@pytest.mark.parametrize(
    ("task_type", "title", "expected"),
    [
        ("RETRIEVAL_QUERY", None, "task: search result | query: Why is the sky blue?"),
        ("QUESTION_ANSWERING", None, "task: question answering | query: Why is the sky blue?"),
        ("FACT_VERIFICATION", None, "task: fact checking | query: Why is the sky blue?"),
        ("CODE_RETRIEVAL_QUERY", None, "task: code retrieval | query: Why is the sky blue?"),
        ("CLASSIFICATION", None, "task: classification | query: Why is the sky blue?"),
        ("CLUSTERING", None, "task: clustering | query: Why is the sky blue?"),
        ("SEMANTIC_SIMILARITY", None, "task: sentence similarity | query: Why is the sky blue?"),
        ("RETRIEVAL_DOCUMENT", None, "title: none | text: Why is the sky blue?"),
        ("RETRIEVAL_DOCUMENT", "Optics", "title: Optics | text: Why is the sky blue?"),
    ],
)
def test_the_task_prompts_of_gemini_embedding_2(
    task_type: TaskType, title: str | None, expected: str
) -> None:
    assert prompted_text(task_type, "Why is the sky blue?", title) == expected
    assert MODELS["gemini-embedding-2"].sent_text(task_type, "Why is the sky blue?", title) == expected
    assert (
        MODELS["gemini-embedding-001"].sent_text(task_type, "Why is the sky blue?", title)
        == "Why is the sky blue?"
    )


def test_queries_of_a_retrieval_corpus_take_the_query_task_type() -> None:
    assert query_task_type("RETRIEVAL_DOCUMENT") == "RETRIEVAL_QUERY"
    assert query_task_type("SEMANTIC_SIMILARITY") == "SEMANTIC_SIMILARITY"
    assert query_task_type("CLUSTERING") == "CLUSTERING"
