"""The deterministic vectors, computed without HTTP (the protocol tests prove the server answers the same)."""

from __future__ import annotations

import numpy as np
import pytest

from airflow_provider_gemini_milvus.testing.gemini_emulator import emulated_embedding


def cosine(a: list[float], b: list[float]) -> float:
    va, vb = np.asarray(a), np.asarray(b)
    return float(va @ vb / (np.linalg.norm(va) * np.linalg.norm(vb)))


def unit_rows(texts: list[str], task_type: str) -> np.ndarray:
    """The 768-value vectors of ``texts`` as rows, each re-normalised."""
    rows = np.asarray(
        [emulated_embedding(text, task_type=task_type, output_dimensionality=768) for text in texts]
    )
    normalised: np.ndarray = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return normalised


def test_full_dimension_is_unit_length_and_001_truncation_is_a_raw_prefix() -> None:
    full = emulated_embedding("a text about vector databases")
    short = emulated_embedding("a text about vector databases", output_dimensionality=768)

    assert len(full) == 3072
    assert np.linalg.norm(full) == pytest.approx(1.0, abs=1e-5)
    assert len(short) == 768
    assert short == pytest.approx(full[:768], abs=1e-8)
    assert abs(np.linalg.norm(short) - 1.0) > 0.01


def test_gemini_embedding_2_renormalises_truncated_vectors() -> None:
    short = emulated_embedding(
        "a text about vector databases", model="gemini-embedding-2", output_dimensionality=768
    )

    assert len(short) == 768
    assert np.linalg.norm(short) == pytest.approx(1.0, abs=1e-5)


def test_similar_texts_are_neighbours() -> None:
    cat = emulated_embedding("The cat sat on the mat.")
    sitting_cat = emulated_embedding("A cat was sitting on a mat.")
    markets = emulated_embedding("Stock markets fell sharply today.")

    assert cosine(cat, sitting_cat) > 0.5 > cosine(cat, markets)


def test_task_type_changes_the_vector_but_keeps_it_close() -> None:
    query = emulated_embedding("vector search in Milvus", task_type="RETRIEVAL_QUERY")
    document = emulated_embedding("vector search in Milvus", task_type="RETRIEVAL_DOCUMENT")

    assert query != document
    assert cosine(query, document) > 0.8


def test_title_counts_for_retrieval_documents_only() -> None:
    plain = emulated_embedding("Paris guide", task_type="RETRIEVAL_DOCUMENT")
    titled = emulated_embedding("Paris guide", task_type="RETRIEVAL_DOCUMENT", title="Travel")
    titled_query = emulated_embedding("Paris guide", task_type="RETRIEVAL_QUERY", title="Travel")

    assert titled != plain
    assert titled_query == emulated_embedding("Paris guide", task_type="RETRIEVAL_QUERY")


def test_gemini_embedding_2_ignores_task_type_and_reads_instructions_in_the_prompt() -> None:
    model = "gemini-embedding-2"
    plain = emulated_embedding("vector search", model=model)
    with_task_type = emulated_embedding("vector search", model=model, task_type="RETRIEVAL_QUERY")
    prompted = emulated_embedding("task: search result | query: vector search", model=model)

    assert with_task_type == plain
    assert prompted != plain
    assert cosine(prompted, plain) > 0.8


def test_parts_of_one_content_merge_into_one_vector() -> None:
    merged = emulated_embedding(["vector search", "in Milvus"])

    assert merged == emulated_embedding(("vector search", "in Milvus"))
    assert merged != emulated_embedding("vector search")


def test_output_dimensionality_outside_the_model_range_is_refused() -> None:
    with pytest.raises(ValueError, match="128"):
        emulated_embedding("text", output_dimensionality=64)


def test_retrieval_finds_the_answers() -> None:
    documents = [
        "Artificial intelligence was founded as an academic discipline in 1956.",
        "Alan Turing was the first person to conduct substantial research in AI.",
        "Born in Maida Vale, London, Turing was raised in southern England.",
        "Milvus is an open-source vector database built for similarity search.",
        "Apache Airflow schedules and monitors workflows written as Python DAGs.",
        "The Eiffel Tower in Paris was completed in 1889 for the World's Fair.",
        "Photosynthesis converts sunlight, water and carbon dioxide into glucose.",
        "Python is a programming language created by Guido van Rossum in 1991.",
        "Neil Armstrong walked on the Moon during the Apollo 11 landing in 1969.",
    ]
    questions = {"When was artificial intelligence founded": 0, "Where was Alan Turing born?": 2}
    document_matrix = unit_rows(documents, "RETRIEVAL_DOCUMENT")
    query_matrix = unit_rows(list(questions), "RETRIEVAL_QUERY")

    top_hits = (query_matrix @ document_matrix.T).argmax(axis=1).tolist()

    assert top_hits == list(questions.values())
