"""
Chunking files: the splitter libraries side by side on one Markdown corpus, and what one edit costs.

1. Speed and shape: chunks per second of the provider's chunker (``files.chunking``: markdown-it-py units,
   semchunk for long ones, content-defined boundaries) and of each candidate library's own chunker at the
   same size limit (about four characters a token), on the same generated corpus, with the share of
   chunks that cut a fenced code block in two and the average fill of the limit.
2. Texts sent per edit: random single-paragraph edits, an insertion and a deletion in one long file
   (100+ chunks). A text is sent when its (id, text) pair was not stored before: the provider's ids
   (``<source>#<hash of the chunk's own text>``) against naive position ids (``path#n``) over greedy chunks.

A library that is not installed is reported as such. Ratios and counts only: no absolute time target.

Run: ``.venv/bin/python benchmarks/bench_chunking.py`` (``--quick`` for a smaller corpus).
"""

from __future__ import annotations

import argparse
import functools
import random
import statistics
import time
from typing import TYPE_CHECKING, Any

from airflow_provider_gemini_milvus.files.chunking import ChunkingSpec, chunk_text
from airflow_provider_gemini_milvus.files.loaders import LoadedText
from airflow_provider_gemini_milvus.gemini.models import estimate_tokens

if TYPE_CHECKING:
    from collections.abc import Callable

MAX_TOKENS = 512
SOURCE = "s3://bucket/handbook/long.md"
TARGET_SENT_PER_EDIT = 2

VOCABULARY = (
    "the a of to and in is for on with that by this be are as from at or it an can not which "
    "collection embedding vector index query milvus gemini airflow task operator schedule retry batch "
    "document chunk token model partition field metadata upsert delete search latency throughput cost"
)
WORDS = VOCABULARY.split(" ")


def sentence(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(6, 22))]
    return " ".join(words).capitalize() + rng.choice(".!?.")


def paragraph(rng: random.Random) -> str:
    return " ".join(sentence(rng) for _ in range(rng.randint(1, 7)))


def code_block(rng: random.Random) -> str:
    lines = [
        f"    result_{i} = call('{rng.choice(WORDS)}', retries={rng.randint(0, 9)})"
        for i in range(rng.randint(3, 25))
    ]
    return "```python\ndef step():\n" + "\n".join(lines) + "\n\n    return result_0\n```"


def block(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.12:
        return code_block(rng)
    if kind < 0.22:
        return "\n".join(f"- {sentence(rng)}" for _ in range(rng.randint(2, 6)))
    if kind < 0.26:
        rows = "\n".join(f"| {rng.choice(WORDS)} | {rng.randint(1, 999)} |" for _ in range(rng.randint(2, 8)))
        return "| name | value |\n|---|---|\n" + rows
    return paragraph(rng)


def document(rng: random.Random, sections: int) -> str:
    parts = [f"# Handbook {rng.randint(1, 99)}", paragraph(rng)]
    for section in range(sections):
        parts.append(f"## Section {section}: {sentence(rng)[:40]}")
        for sub in range(rng.randint(0, 3)):
            parts.append(f"### Part {section}.{sub}")
            parts.extend(block(rng) for _ in range(rng.randint(1, 6)))
        parts.extend(block(rng) for _ in range(rng.randint(1, 5)))
    return "\n\n".join(parts) + "\n"


def chapters(rng: random.Random, count: int) -> str:
    """Long chapters: a heading, then 30 to 60 paragraphs (a book, a report, a PDF's text)."""
    parts = [f"# Report {rng.randint(1, 99)}"]
    for chapter in range(count):
        parts.append(f"## Chapter {chapter}")
        parts.extend(paragraph(rng) for _ in range(rng.randint(30, 60)))
    return "\n\n".join(parts) + "\n"


def loaded(text: str, source_id: str = SOURCE) -> LoadedText:
    return LoadedText(source_id=source_id, text=text, title="Handbook", format="markdown", content_hash="")


# Each chunker: text -> list of chunk texts, at MAX_TOKENS estimated tokens.
def ours(text: str) -> list[str]:
    return [chunk.text for chunk in chunk_text(loaded(text), ChunkingSpec(max_tokens=MAX_TOKENS))]


def candidates() -> dict[str, Callable[[str], list[str]] | str]:
    found: dict[str, Callable[[str], list[str]] | str] = {"provider (files.chunking)": ours}
    try:
        from semchunk.semchunk import chunkerify

        splitter = chunkerify(estimate_tokens, chunk_size=MAX_TOKENS)
        found["semchunk"] = lambda text: [str(chunk) for chunk in splitter(text)]
    except ImportError:
        found["semchunk"] = "not installed"
    try:
        from semantic_text_splitter import MarkdownSplitter

        markdown_splitter = MarkdownSplitter(MAX_TOKENS * 4)  # characters: the same ~4 characters a token
        found["semantic-text-splitter"] = lambda text: list(markdown_splitter.chunks(text))
    except ImportError:
        found["semantic-text-splitter"] = "not installed"
    try:
        from chonkie import RecursiveChunker

        chonker = RecursiveChunker(tokenizer="character", chunk_size=MAX_TOKENS * 4)
        found["chonkie"] = lambda text: [chunk.text for chunk in chonker.chunk(text)]
    except ImportError:
        found["chonkie"] = "not installed"
    try:
        from langchain_text_splitters import Language, RecursiveCharacterTextSplitter

        recursive = RecursiveCharacterTextSplitter.from_language(
            Language.MARKDOWN, chunk_size=MAX_TOKENS, chunk_overlap=0, length_function=estimate_tokens
        )
        found["langchain-text-splitters"] = recursive.split_text
    except ImportError:
        found["langchain-text-splitters"] = "not installed"
    return found


def cuts_a_fence(chunk: str) -> bool:
    return sum(1 for line in chunk.splitlines() if line.lstrip().startswith("```")) % 2 == 1


def speed(corpus: list[str], chunkers: dict[str, Any]) -> None:
    characters = sum(len(text) for text in corpus)
    print(
        f"\n1. Speed and shape: {len(corpus)} Markdown files, {characters / 1e6:.1f} M characters, "
        f"limit {MAX_TOKENS} tokens"
    )
    print(
        f"  {'chunker':28s} {'chunks/s':>10s} {'vs provider':>12s} {'chunks':>7s} {'mean fill':>10s} "
        f"{'over limit':>10s} {'fence cut':>10s}"
    )
    reference = None
    for name, chunker in chunkers.items():
        if isinstance(chunker, str):
            print(f"  {name:28s} {chunker}")
            continue
        chunker(corpus[0])  # warm up (imports, caches)
        started = time.perf_counter()
        chunks = [chunk for text in corpus for chunk in chunker(text)]
        rate = len(chunks) / (time.perf_counter() - started)
        reference = reference or rate
        fill = statistics.mean(estimate_tokens(chunk) for chunk in chunks) / MAX_TOKENS
        over = sum(1 for chunk in chunks if estimate_tokens(chunk) > MAX_TOKENS)
        fences = sum(1 for chunk in chunks if cuts_a_fence(chunk)) / len(chunks)
        print(
            f"  {name:28s} {rate:10.0f} {rate / reference:11.2f}x {len(chunks):7d} {fill:9.0%} "
            f"{over:10d} {fences:9.1%}"
        )


def edits(text: str, rng: random.Random, count: int) -> list[tuple[str, str]]:
    """``count`` single-paragraph edits, then an insertion and a deletion: (what, new text)."""
    paragraphs = text.split("\n\n")
    prose = [i for i, p in enumerate(paragraphs) if p[:1].isalpha() and not p.startswith("#")]
    changed = []
    for _ in range(count):
        index = rng.choice(prose)
        edited = list(paragraphs)
        words = edited[index].split(" ")
        spot = rng.randrange(len(words))
        words[spot:spot] = [rng.choice(WORDS) for _ in range(rng.randint(1, 12))]
        edited[index] = " ".join(words)
        changed.append((f"edit paragraph {index}", "\n\n".join(edited)))
    index = rng.choice(prose)
    changed.append(
        (
            f"insert after paragraph {index}",
            "\n\n".join(paragraphs[: index + 1] + [paragraph(rng)] + paragraphs[index + 1 :]),
        )
    )
    index = rng.choice(prose)
    changed.append((f"delete paragraph {index}", "\n\n".join(paragraphs[:index] + paragraphs[index + 1 :])))
    return changed


def sent(before: list[tuple[str, str]], after: list[tuple[str, str]]) -> int:
    """Texts to embed: (id, text) pairs of ``after`` not stored in ``before``."""
    return len(set(after) - set(before))


def provider_pairs(text: str, overlap: int) -> list[tuple[str, str]]:
    spec = ChunkingSpec(max_tokens=MAX_TOKENS, overlap_tokens=overlap)
    return [(chunk.id, chunk.text) for chunk in chunk_text(loaded(text), spec)]


def position_pairs(chunker: Callable[[str], list[str]], text: str) -> list[tuple[str, str]]:
    return [(f"{SOURCE}#{n}", chunk) for n, chunk in enumerate(chunker(text))]


def content_pairs(chunker: Callable[[str], list[str]], text: str) -> list[tuple[str, str]]:
    """Greedy chunks under content ids: what changes is only what moved."""
    return [(chunk, chunk) for chunk in chunker(text)]


def stability(chunkers: dict[str, Any], rng: random.Random, count: int) -> None:
    files = {
        "handbook (a heading every few blocks)": document(rng, sections=70),
        "report (chapters of 30-60 paragraphs)": chapters(rng, 10),
    }
    contenders: dict[str, Callable[[str], list[tuple[str, str]]]] = {
        "provider ids, no overlap": functools.partial(provider_pairs, overlap=0),
        "provider ids, overlap 64": functools.partial(provider_pairs, overlap=64),
    }
    for name, chunker in chunkers.items():
        if not isinstance(chunker, str) and name != "provider (files.chunking)":
            contenders[f"{name}, path#n ids"] = functools.partial(position_pairs, chunker)
            contenders[f"{name}, content ids"] = functools.partial(content_pairs, chunker)
    contenders["provider chunks, path#n ids"] = functools.partial(position_pairs, ours)
    print(
        f"\n2. Texts sent per edit: {count} random one-paragraph edits, 1 insertion, 1 deletion in one long "
        f"file (target: at most {TARGET_SENT_PER_EDIT} texts a change)"
    )
    for label, text in files.items():
        changes = edits(text, rng, count)
        print(
            f"\n  {label}: {len(text) / 1000:.0f} k characters, "
            f"{len(provider_pairs(text, 0))} provider chunks"
        )
        print(
            f"  {'chunker and ids':44s} {'mean':>6s} {'max':>5s} {'insert':>7s} {'delete':>7s} "
            f"{'<= target':>10s}"
        )
        for name, pairs in contenders.items():
            before = pairs(text)
            counts = [sent(before, pairs(changed)) for _, changed in changes]
            within = sum(1 for n in counts if n <= TARGET_SENT_PER_EDIT) / len(counts)
            edits_only = counts[:-2]
            print(
                f"  {name:44s} {statistics.mean(edits_only):6.2f} {max(edits_only):5d} {counts[-2]:7d} "
                f"{counts[-1]:7d} {within:9.1%}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a smaller corpus and fewer edits")
    args = parser.parse_args()
    rng = random.Random(19)
    corpus = [document(rng, sections=rng.randint(3, 30)) for _ in range(40 if args.quick else 300)]
    chunkers = candidates()
    speed(corpus, chunkers)
    stability(chunkers, rng, 20 if args.quick else 200)


if __name__ == "__main__":
    main()
