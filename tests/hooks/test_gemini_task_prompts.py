"""How each model takes the task, on the wire: fields for gemini-embedding-001, text prefixes for -2."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from airflow_provider_gemini_milvus.gemini.models import TASK_TYPES, TaskType, prompted_text
from airflow_provider_gemini_milvus.gemini.requests import (
    PlannedRequest,
    per_request_bodies,
    validated_inputs,
    validated_request,
)
from airflow_provider_gemini_milvus.hooks.gemini import GeminiHook
from airflow_provider_gemini_milvus.hooks.milvus import MilvusHook
from airflow_provider_gemini_milvus.milvus.rows import content_hash
from airflow_provider_gemini_milvus.operators.gemini import GeminiEmbedOperator
from airflow_provider_gemini_milvus.operators.milvus import MilvusInsertOperator
from airflow_provider_gemini_milvus.testing.gemini_emulator import GeminiEmulator

TEXT = "Why is the sky blue?"


def bodies(model: str, task_type: str, titles: list[str | None] | None) -> list[dict[str, Any]]:
    request = validated_request(model, task_type, 768)
    texts, sent_titles, _ = validated_inputs([TEXT], titles, request)
    planned = PlannedRequest(index=0, start=0, texts=texts, titles=sent_titles, tokens=0)
    return per_request_bodies(planned, request, vertexai=False)


@pytest.mark.parametrize("task_type", TASK_TYPES)
def test_gemini_embedding_2_gets_the_task_as_a_prefix_and_no_task_or_title_field(task_type: TaskType) -> None:
    titles: list[str | None] | None = ["Optics"] if task_type == "RETRIEVAL_DOCUMENT" else None
    (body,) = bodies("gemini-embedding-2", task_type, titles)
    assert "taskType" not in body
    assert "title" not in body
    assert body["content"]["parts"] == [
        {"text": prompted_text(task_type, TEXT, "Optics" if titles else None)}
    ]


@pytest.mark.parametrize("task_type", TASK_TYPES)
def test_gemini_embedding_001_gets_the_task_as_a_field_and_no_prefix(task_type: TaskType) -> None:
    titles: list[str | None] | None = ["Optics"] if task_type == "RETRIEVAL_DOCUMENT" else None
    (body,) = bodies("gemini-embedding-001", task_type, titles)
    assert body["taskType"] == task_type
    assert body.get("title") == ("Optics" if titles else None)
    assert body["content"]["parts"] == [{"text": TEXT}]


@pytest.mark.parametrize("task_type", TASK_TYPES)
@pytest.mark.usefixtures("gemini_connection")
def test_what_the_emulator_receives_for_each_task_type(
    gemini_emulator: GeminiEmulator, task_type: TaskType
) -> None:
    for model, expected_text, expected_task in [
        ("gemini-embedding-2", prompted_text(task_type, TEXT), "TASK_TYPE_UNSPECIFIED"),
        ("gemini-embedding-001", TEXT, task_type),
    ]:
        gemini_emulator.reset_stats()
        GeminiHook().embed([TEXT], model=model, task_type=task_type, output_dimensionality=768)
        stats = gemini_emulator.stats
        assert stats.embedded_texts == [expected_text]
        assert dict(stats.task_types) == {expected_task: 1}


@pytest.mark.usefixtures("gemini_connection")
def test_query_and_document_vectors_of_gemini_embedding_2_differ() -> None:
    hook = GeminiHook()
    query = hook.encode_queries([TEXT], model="gemini-embedding-2", output_dimensionality=768)[0]
    document = hook.encode_documents([TEXT], model="gemini-embedding-2", output_dimensionality=768)[0]
    titled = hook.encode_documents(
        [TEXT], model="gemini-embedding-2", output_dimensionality=768, titles=["Rayleigh scattering"]
    )[0]
    assert float(np.dot(query, document)) < 0.99
    assert float(np.dot(document, titled)) < 0.99  # the title is not lost


@pytest.mark.usefixtures("gemini_connection")
def test_the_task_prefix_counts_in_the_length_limit_and_the_token_estimate(
    gemini_emulator: GeminiEmulator,
) -> None:
    longest = "a" * (8192 * 4)  # exactly 8,192 estimated tokens: fits alone, not with a prefix
    with pytest.raises(ValueError, match=r"texts\[0\] with its task prefix is about 8200 tokens"):
        GeminiHook().encode_queries([longest], model="gemini-embedding-2")
    assert gemini_emulator.stats.requests == 0

    result = GeminiHook().embed_with_stats([TEXT], model="gemini-embedding-2", task_type="RETRIEVAL_QUERY")
    assert result.stats.tokens == gemini_emulator.stats.tokens > len(TEXT) // 4 + 1


@pytest.mark.parametrize("model", ["text-embedding-004", "embedding-001", "gemini-embedding-exp-03-07"])
@pytest.mark.usefixtures("gemini_connection")
def test_a_retired_model_is_refused_before_any_request(gemini_emulator: GeminiEmulator, model: str) -> None:
    with pytest.raises(ValueError, match="retired by Google on"):
        GeminiHook().embed([TEXT], model=model)
    with pytest.raises(ValueError, match="retired by Google on"):
        GeminiEmbedOperator(task_id="embed", documents=[TEXT], model=model).execute(context={})  # type: ignore[arg-type]
    assert gemini_emulator.stats.requests == 0


@pytest.mark.usefixtures("gemini_connection")
def test_a_vertex_only_model_is_refused_on_a_gemini_api_connection(gemini_emulator: GeminiEmulator) -> None:
    with pytest.raises(ValueError, match="served by Vertex AI only"):
        GeminiEmbedOperator(task_id="embed", documents=[TEXT], model="text-embedding-005").execute(
            context={}  # type: ignore[arg-type]
        )
    assert gemini_emulator.stats.requests == 0


@pytest.mark.usefixtures("gemini_connection", "milvus_connection")
def test_rows_embedded_without_prefixes_are_embedded_again_once(gemini_emulator: GeminiEmulator) -> None:
    documents = [{"id": f"d{n}", "text": f"Document number {n} about the sky."} for n in range(3)]
    settings = {"model": "gemini-embedding-2", "output_dimensionality": 768, "collection_name": "docs"}
    # Rows as an earlier release stored them: gemini-embedding-2 vectors without task prefixes.
    old = [
        {
            "id": doc["id"],
            "text": doc["text"],
            "vector": [1.0] + [0.0] * 767,
            "metadata": {},
            "content_hash": content_hash(doc["text"], metadata={}),
            "model": "gemini-embedding-2/768/RETRIEVAL_DOCUMENT",
        }
        for doc in documents
    ]
    MilvusInsertOperator(task_id="seed", collection_name="docs", data=old).execute(context={})  # type: ignore[arg-type]

    report = GeminiEmbedOperator(task_id="embed", documents=documents, dry_run=True, **settings).execute(
        context={}  # type: ignore[arg-type]
    )
    assert (report["changed"], report["unchanged"]) == (3, 0)  # type: ignore[typeddict-item]
    assert gemini_emulator.stats.requests == 0

    result = GeminiEmbedOperator(task_id="embed", documents=documents, **settings).execute(context={})  # type: ignore[arg-type]
    assert gemini_emulator.stats.texts == 3
    assert result["model"] == "gemini-embedding-2/768/RETRIEVAL_DOCUMENT/prompt-v1"  # type: ignore[typeddict-item]
    MilvusInsertOperator(task_id="load", collection_name="docs", data=result).execute(context={})  # type: ignore[arg-type]

    gemini_emulator.reset_stats()
    again = GeminiEmbedOperator(task_id="embed", documents=documents, **settings).execute(context={})  # type: ignore[arg-type]
    assert gemini_emulator.stats.requests == 0
    assert again["stats"]["unchanged"] == 3  # type: ignore[typeddict-item]
    with MilvusHook() as milvus:
        assert milvus.count("docs") == 3
