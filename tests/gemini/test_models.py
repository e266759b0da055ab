from __future__ import annotations

import pytest

from airflow_provider_gemini_milvus.gemini.models import (
    MODELS,
    estimate_tokens,
    get_model,
    resolve_model,
)


def test_models_prefix_is_optional() -> None:
    assert get_model("models/embedding-001") is MODELS["embedding-001"]
    assert get_model("no-such-model") is None


def test_unknown_gemini_embedding_models_follow_the_family() -> None:
    model = resolve_model("gemini-embedding-3-preview")
    assert model.default_dim == 3072
    assert model.one_content_per_text


def test_unknown_other_models_are_refused() -> None:
    with pytest.raises(ValueError, match="known models: embedding-001, gemini-embedding-001"):
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
    model = MODELS["text-embedding-004"]
    assert model.dim(768) == 768
    with pytest.raises(ValueError, match="it accepts 1 to 768"):
        model.dim(769)


def test_the_batch_price_is_half_the_list_price_where_both_are_known() -> None:
    priced = [model for model in MODELS.values() if model.batch_usd_per_million_tokens is not None]
    assert [model.name for model in priced] == ["gemini-embedding-001"]
    for model in priced:
        assert model.usd_per_million_tokens is not None
        assert model.batch_usd_per_million_tokens == pytest.approx(model.usd_per_million_tokens / 2)
