"""Chunking: limits, overlap, heading paths, code fences, and ids that survive edits elsewhere."""

from __future__ import annotations

import random

import pytest

from airflow_provider_gemini_milvus.files.chunking import (
    PROMPT_MARGIN_TOKENS,
    Chunk,
    ChunkingSpec,
    chunk_text,
    source_key,
)
from airflow_provider_gemini_milvus.files.loaders import LoadedText
from airflow_provider_gemini_milvus.gemini.models import estimate_tokens, resolve_model
from airflow_provider_gemini_milvus.milvus.layout import ID_MAX_LENGTH

SOURCE = "s3://bucket/handbook/guide.md"
WORDS = [
    "the",
    "vector",
    "index",
    "query",
    "model",
    "token",
    "chunk",
    "batch",
    "retry",
    "field",
    "search",
    "cost",
    "latency",
    "schema",
]


def loaded(text: str, *, file_format: str = "markdown", source_id: str = SOURCE) -> LoadedText:
    return LoadedText(source_id=source_id, text=text, title="Guide", format=file_format, content_hash="")


def paragraph(rng: random.Random) -> str:
    sentences = [
        " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 20))).capitalize() + "."
        for _ in range(rng.randint(1, 6))
    ]
    return " ".join(sentences)


def long_document(rng: random.Random, chapters: int = 6) -> str:
    parts = ["# Guide"]
    for chapter in range(chapters):
        parts.append(f"## Chapter {chapter}")
        parts.extend(paragraph(rng) for _ in range(rng.randint(20, 50)))
    return "\n\n".join(parts)


def ids(text: str, spec: ChunkingSpec | None = None) -> list[str]:
    return [chunk.id for chunk in chunk_text(loaded(text), spec or ChunkingSpec(max_tokens=128))]


# ---- the spec


def test_spec_checks_its_values() -> None:
    assert ChunkingSpec() == ChunkingSpec(max_tokens=512, overlap_tokens=0, structure_aware=True)
    with pytest.raises(ValueError, match="max_tokens must be at least 32"):
        ChunkingSpec(max_tokens=10)
    with pytest.raises(ValueError, match="overlap_tokens must be between 0 and half of max_tokens \\(64\\)"):
        ChunkingSpec(max_tokens=128, overlap_tokens=65)
    with pytest.raises(ValueError, match="max_tokens must be an integer"):
        ChunkingSpec(max_tokens="512")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="structure_aware must be true or false"):
        ChunkingSpec(structure_aware="yes")  # type: ignore[arg-type]


def test_spec_parses_a_rendered_dict() -> None:
    assert ChunkingSpec.parse({"max_tokens": 256, "overlap_tokens": 32}) == ChunkingSpec(256, 32)
    assert ChunkingSpec.parse(None) == ChunkingSpec()
    with pytest.raises(ValueError, match=r"unknown keys \['size'\]"):
        ChunkingSpec.parse({"size": 3})
    with pytest.raises(ValueError, match="chunking must be a ChunkingSpec or a dict"):
        ChunkingSpec.parse("512")  # type: ignore[arg-type]


def test_spec_fits_the_model_with_room_for_the_title_prompt() -> None:
    small, large = resolve_model("gemini-embedding-001"), resolve_model("gemini-embedding-2")
    ChunkingSpec(max_tokens=1800, overlap_tokens=100).check_model(small)
    ChunkingSpec(max_tokens=7000, overlap_tokens=500).check_model(large)
    with pytest.raises(ValueError, match="exceeds what gemini-embedding-001 embeds: 2048 tokens"):
        ChunkingSpec(max_tokens=2048).check_model(small)
    with pytest.raises(ValueError, match="gemini-embedding-2"):
        ChunkingSpec(max_tokens=8192 - PROMPT_MARGIN_TOKENS, overlap_tokens=1).check_model(large)


# ---- limits, structure


def test_every_chunk_fits_and_no_text_is_lost() -> None:
    rng = random.Random(1)
    text = (
        long_document(rng) + "\n\n" + "x" * 5000 + "\n\n" + "word " * 3000
    )  # a giant token, a giant paragraph
    for spec in (ChunkingSpec(max_tokens=64), ChunkingSpec(max_tokens=300, overlap_tokens=100)):
        chunks = chunk_text(loaded(text), spec)
        assert all(estimate_tokens(chunk.own_text) <= spec.max_tokens for chunk in chunks)
        assert all(estimate_tokens(chunk.text) <= spec.longest_text_tokens() for chunk in chunks)
        assert [chunk.position for chunk in chunks] == list(range(len(chunks)))
        assert "".join("".join(chunk.own_text.split()) for chunk in chunks) == "".join(text.split())


def test_an_empty_file_has_no_chunks() -> None:
    assert chunk_text(loaded("  \n\n ")) == []


def test_chunks_carry_source_title_and_heading_path() -> None:
    text = (
        "# Guide\n\nIntro.\n\n## Install\n\n"
        + "Install words here. " * 40
        + "\n\n### From PyPI\n\n"
        + "Run pip. " * 60
    )
    chunks = chunk_text(loaded(text), ChunkingSpec(max_tokens=128))
    assert all(chunk.source_id == SOURCE and chunk.title == "Guide" for chunk in chunks)
    pypi = [chunk for chunk in chunks if chunk.own_text.startswith("### From PyPI")]
    assert pypi
    assert pypi[0].heading_path == ("Guide", "Install", "From PyPI")
    later = chunks[-1]
    assert later.heading_path == ("Guide", "Install", "From PyPI")
    assert chunks[0].metadata() == {"source_id": SOURCE, "position": 0, "heading_path": ["Guide"]}


def test_a_heading_starts_a_chunk_and_stays_with_its_text() -> None:
    text = "## One\n\n" + "Alpha words. " * 80 + "\n\n## Two\n\n" + "Beta words. " * 80
    chunks = chunk_text(loaded(text), ChunkingSpec(max_tokens=512))
    assert [chunk.own_text.split("\n")[0] for chunk in chunks] == ["## One", "## Two"]
    assert [chunk.heading_path for chunk in chunks] == [("One",), ("Two",)]


def test_tiny_sections_share_a_chunk() -> None:
    text = "\n\n".join(f"## Option {n}\n\nShort." for n in range(10))
    assert len(chunk_text(loaded(text), ChunkingSpec(max_tokens=512))) == 1


def test_code_fences_are_never_split_unless_alone_too_long() -> None:
    rng = random.Random(2)
    fence = (
        "```python\n" + "\n".join(f"x_{n} = compute({n})\n" for n in range(25)) + "```"
    )  # blank lines inside
    parts = []
    for _ in range(30):
        parts.extend([paragraph(rng), fence])
    chunks = chunk_text(loaded("\n\n".join(parts)), ChunkingSpec(max_tokens=200))
    assert estimate_tokens(fence) < 200
    for chunk in chunks:
        assert chunk.own_text.count("```") % 2 == 0, chunk.own_text
    huge = "```\n" + "\n".join(f"line {n} of a very long listing" for n in range(400)) + "\n```"
    pieces = chunk_text(loaded(huge), ChunkingSpec(max_tokens=200))
    assert len(pieces) > 1
    assert all(estimate_tokens(piece.text) <= 200 for piece in pieces)


def test_plain_text_ignores_markdown_syntax() -> None:
    text = "# not a heading in a text file\n\nbody"
    (chunk,) = chunk_text(loaded(text, file_format="text"))
    assert chunk.heading_path == ()
    (structured,) = chunk_text(loaded(text))
    assert structured.heading_path == ("not a heading in a text file",)
    (flat,) = chunk_text(loaded(text), ChunkingSpec(structure_aware=False))
    assert flat.heading_path == ()


# ---- overlap


def test_overlap_repeats_the_end_of_the_previous_chunk_outside_the_id() -> None:
    rng = random.Random(3)
    text = long_document(rng, chapters=2)
    plain = chunk_text(loaded(text), ChunkingSpec(max_tokens=128))
    overlapped = chunk_text(loaded(text), ChunkingSpec(max_tokens=128, overlap_tokens=32))
    assert [chunk.id for chunk in plain] == [chunk.id for chunk in overlapped]
    assert overlapped[0].overlap_chars == 0
    for previous, chunk in zip(overlapped, overlapped[1:], strict=False):
        assert 0 < chunk.overlap_chars <= 32 * 4
        overlap = chunk.text[: chunk.overlap_chars]
        assert previous.own_text.endswith(overlap)
        assert chunk.own_text == plain[chunk.position].own_text
        assert not overlap[:1].isspace()
        assert chunk.text[chunk.overlap_chars : chunk.overlap_chars + 2] == "\n\n"


# ---- ids


def test_ids_are_unique_within_limits_and_count_repeats() -> None:
    repeated = "\n\n".join(["## Same\n\n" + "Identical body text. " * 30] * 3)
    chunk_ids = ids(repeated, ChunkingSpec(max_tokens=256))
    assert len(chunk_ids) == 3
    assert len(set(chunk_ids)) == 3
    assert chunk_ids[1] == chunk_ids[0] + "-2"
    assert chunk_ids[2] == chunk_ids[0] + "-3"
    assert all(chunk_id.startswith(SOURCE + "#") for chunk_id in chunk_ids)


def test_long_source_ids_are_hashed_into_the_id() -> None:
    long_source = "s3://bucket/" + "deep/" * 120 + "file.md"
    assert len(long_source) > ID_MAX_LENGTH
    chunks = chunk_text(loaded("text " * 900, source_id=long_source), ChunkingSpec(max_tokens=64))
    assert all(len(chunk.id) <= ID_MAX_LENGTH for chunk in chunks)
    assert all(chunk.id.startswith("sha256:") and chunk.source_id == long_source for chunk in chunks)
    assert source_key(long_source) != source_key(long_source + "x")
    assert source_key("s3://b/a#b.md").startswith("sha256:")  # a '#' would make the id ambiguous


def changed(before: list[Chunk], after: list[Chunk]) -> int:
    """Texts to send: (id, text) pairs not stored before."""
    return len({(chunk.id, chunk.text) for chunk in after} - {(chunk.id, chunk.text) for chunk in before})


def edit_cases(text: str, rng: random.Random, count: int) -> list[tuple[str, str]]:
    paragraphs = text.split("\n\n")
    prose = [index for index, part in enumerate(paragraphs) if not part.startswith("#")]
    cases = []
    for _ in range(count):
        index = rng.choice(prose)
        words = paragraphs[index].split(" ")
        spot = rng.randrange(len(words) + 1)
        kind = rng.choice(["edit", "insert", "delete"])
        edited = list(paragraphs)
        if kind == "edit":
            edited[index] = " ".join(
                words[:spot] + [rng.choice(WORDS) for _ in range(rng.randint(1, 15))] + words[spot:]
            )
        elif kind == "insert":
            edited.insert(index, paragraph(rng))
        else:
            del edited[index]
        cases.append((f"{kind} paragraph {index}", "\n\n".join(edited)))
    return cases


@pytest.mark.parametrize("overlap", [0, 32])
def test_an_edit_anywhere_in_a_long_file_sends_about_one_chunk(overlap: int) -> None:
    rng = random.Random(19 + overlap)
    text = long_document(rng, chapters=12)
    spec = ChunkingSpec(max_tokens=256, overlap_tokens=overlap)
    before = chunk_text(loaded(text), spec)
    assert len(before) >= 100
    counts = []
    for what, edited in edit_cases(text, rng, 150):
        after = chunk_text(loaded(edited), spec)
        assert len({chunk.id for chunk in after}) == len(after), what
        counts.append(changed(before, after))
        # without overlap, every chunk that is sent has a new id: nothing is re-embedded in place
        if not overlap:
            assert counts[-1] == len({chunk.id for chunk in after} - {chunk.id for chunk in before}), what
    assert sum(counts) / len(counts) <= 1.5
    # at most 2 texts, bar a few edits that push a group over the limit and re-split it (3 texts then)
    assert sum(1 for count in counts if count > 2) <= len(counts) * 0.05
    assert max(counts) <= 3


def test_position_ids_would_resend_the_rest_of_the_file() -> None:
    """The baseline the ids are built against: an insertion near the start moves every path#n id."""
    rng = random.Random(5)
    text = long_document(rng)
    paragraphs = text.split("\n\n")
    edited = "\n\n".join(paragraphs[:3] + [paragraph(rng)] + paragraphs[3:])
    spec = ChunkingSpec(max_tokens=128)
    before, after = chunk_text(loaded(text), spec), chunk_text(loaded(edited), spec)
    by_position = {(f"{SOURCE}#{chunk.position}", chunk.text) for chunk in before}
    moved = {(f"{SOURCE}#{chunk.position}", chunk.text) for chunk in after} - by_position
    assert len(moved) > len(after) // 2
    assert changed(before, after) <= 2
