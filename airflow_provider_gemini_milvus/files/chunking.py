"""
A loaded file's text to chunks whose ids survive edits elsewhere in the file.

Greedy packing (fill a chunk up to the limit, start the next) moves every later boundary when an edited
paragraph changes size, so one edit re-embeds the rest of the file. Here a chunk's end is decided by its
own content only, as content-defined chunking does for backups:

1. The text is cut into *units*: the top-level blocks of Markdown (a heading, a paragraph, one list item,
   a fenced code block, a table; parsed with ``markdown-it-py``), or the paragraphs of plain text. A unit
   longer than the limit (a code block alone, a PDF page without blank lines) is split into pieces at
   line, sentence and word boundaries by ``semchunk``; a code block is never split otherwise.
2. A chunk ends before a heading (unless the section before it is small, see :data:`MIN_SECTION_FRACTION`),
   and after any unit whose SHA-256 (of its first :data:`ANCHOR_CHARS` characters: an edit further into
   the unit keeps it) falls under a threshold proportional to its size (a chunk would hold
   :data:`TARGET_FRACTION` of ``max_tokens`` on average before step 3). Both decisions depend on one unit
   or one section only, so the boundaries after an edit fall where they fell before.
3. A group still above ``max_tokens`` is cut at its strongest boundary (a heading first, then the unit with
   the lowest hash score) among those that leave both halves within the limit, else at its strongest, and
   again until every piece fits: the cut depends on the group alone.

A chunk's id is ``<source key>#<first 16 hex of SHA-256 of its own text>`` (``-2``, ``-3``, ... for a
repeated identical text in one source), so it changes only when the chunk's own text does. Overlap (the
end of the previous chunk, prepended) is in the text that is embedded but not in the id: an edit at the end
of a chunk also changes the next chunk's text, which the operator's content hash sees (the row is
re-embedded under the same id), but no id moves.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_gemini_milvus.gemini.models import DOCUMENT_PROMPT, estimate_tokens
from airflow_provider_gemini_milvus.milvus.layout import ID_MAX_LENGTH

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from airflow_provider_gemini_milvus.files.loaders import LoadedText
    from airflow_provider_gemini_milvus.gemini.models import EmbeddingModel

__all__ = [
    "ANCHOR_CHARS",
    "CHUNK_HASH_HEX",
    "DEFAULT_MAX_TOKENS",
    "MIN_MAX_TOKENS",
    "MIN_SECTION_FRACTION",
    "PROMPT_MARGIN_TOKENS",
    "TARGET_FRACTION",
    "Chunk",
    "ChunkingSpec",
    "chunk_id_hash",
    "chunk_text",
    "source_key",
]

DEFAULT_MAX_TOKENS = 512
#: The smallest ``max_tokens`` accepted.
MIN_MAX_TOKENS = 32
#: Average size of a chunk, as a fraction of ``max_tokens``, that the content-defined boundaries aim at.
TARGET_FRACTION = 0.5
#: A heading starts a new chunk only when the section before it holds at least this fraction of
#: ``max_tokens``: a run of tiny sections shares a chunk.
MIN_SECTION_FRACTION = 0.5
#: A unit's boundary draw hashes its first characters only: an edit further in (most edits) keeps the
#: draw, so the chunk boundaries around the edited unit stay where they were.
ANCHOR_CHARS = 64
#: Hex digits of the chunk text's SHA-256 in its id.
CHUNK_HASH_HEX = 16
#: Tokens kept free for gemini-embedding-2's document prompt (``title: ... | text: ``) with a title of up
#: to ``loaders.TITLE_MAX_CHARS`` (200) characters, plus rounding.
PROMPT_MARGIN_TOKENS = estimate_tokens(DOCUMENT_PROMPT.format(title="x" * 200)) + 8

_PARAGRAPHS = re.compile(r"(?:[^\n]*\S[^\n]*(?:\n|\Z))+")
_SPACE = re.compile(r"\s")
_MAX_COUNTER_DIGITS = 6
#: Added to the strength of a boundary inside a long unit: weaker than any boundary between units.
_INSIDE_UNIT = 1e6


@dataclass(frozen=True)
class ChunkingSpec:
    """
    How files are cut into chunks.

    :param max_tokens: the longest chunk, in estimated tokens (about four characters each), overlap not
        counted.
    :param overlap_tokens: how much of the end of the previous chunk is repeated at the start of each
        chunk (0: none). At most half of ``max_tokens``.
    :param structure_aware: follow Markdown / HTML headings and code blocks (True), or read every file as
        plain paragraphs (False).
    """

    max_tokens: int = DEFAULT_MAX_TOKENS
    overlap_tokens: int = 0
    structure_aware: bool = True

    def __post_init__(self) -> None:
        for name in ("max_tokens", "overlap_tokens"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"chunking {name} must be an integer, got {value!r}")
        if self.max_tokens < MIN_MAX_TOKENS:
            raise ValueError(f"chunking max_tokens must be at least {MIN_MAX_TOKENS}, got {self.max_tokens}")
        if not 0 <= self.overlap_tokens <= self.max_tokens // 2:
            raise ValueError(
                f"chunking overlap_tokens must be between 0 and half of max_tokens ({self.max_tokens // 2}), "
                f"got {self.overlap_tokens}"
            )
        if not isinstance(self.structure_aware, bool):
            raise ValueError(f"chunking structure_aware must be true or false, got {self.structure_aware!r}")

    @classmethod
    def parse(cls, value: ChunkingSpec | Mapping[str, Any] | None) -> ChunkingSpec:
        """
        Return ``value`` as a spec: a spec as it is, a dict of its fields (as a rendered template gives
        it), or None for the defaults.

        :raises ValueError: naming an unknown key or a bad value.
        """
        if value is None:
            return cls()
        if isinstance(value, ChunkingSpec):
            return value
        if not isinstance(value, Mapping):
            raise ValueError(
                "chunking must be a ChunkingSpec or a dict such as {'max_tokens': 512, 'overlap_tokens': "
                f"64}}, got {type(value).__name__}"
            )
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(str(key) for key in value if key not in known)
        if unknown:
            raise ValueError(f"chunking has unknown keys {unknown}; known: {sorted(known)}")
        return cls(**{str(key): item for key, item in value.items()})

    def longest_text_tokens(self) -> int:
        """The most estimated tokens a chunk's text (overlap included) can have."""
        return self.max_tokens + self.overlap_tokens

    def check_model(self, model: EmbeddingModel) -> None:
        """
        Raise ``ValueError`` when a chunk (overlap and the document prompt included) may exceed what
        ``model`` embeds (:attr:`EmbeddingModel.max_input_tokens`).

        :param model: the model the chunks are embedded with.
        """
        room = model.max_input_tokens - PROMPT_MARGIN_TOKENS
        if self.longest_text_tokens() > room:
            raise ValueError(
                f"chunking max_tokens {self.max_tokens} + overlap_tokens {self.overlap_tokens} exceeds what "
                f"{model.name} embeds: {model.max_input_tokens} tokens less {PROMPT_MARGIN_TOKENS} kept for "
                f"the title prompt, so at most {room} together"
            )


@dataclass(frozen=True)
class Chunk:
    """
    One piece of a file, to embed as one document.

    :param id: ``<source key>#<hash of its own text>``: stable while its own text is.
    :param text: what is embedded: the overlap from the previous chunk, then its own text.
    :param source_id: the file's URI.
    :param position: its index among the file's chunks.
    :param heading_path: the headings it sits under, outermost first (``("Install", "From PyPI")``).
    :param title: the file's title (sent as the document's title).
    :param overlap_chars: how many leading characters of ``text`` repeat the previous chunk.
    """

    id: str
    text: str
    source_id: str
    position: int
    heading_path: tuple[str, ...]
    title: str
    overlap_chars: int = 0

    @property
    def own_text(self) -> str:
        """The chunk's text without the overlap: what its id is derived from."""
        return self.text[self.overlap_chars :].lstrip()

    def metadata(self) -> dict[str, Any]:
        """The chunk's metadata for its row: ``source_id``, ``position``, ``heading_path``."""
        return {
            "source_id": self.source_id,
            "position": self.position,
            "heading_path": list(self.heading_path),
        }


@dataclass(frozen=True)
class _Unit:
    start: int
    end: int
    heading_level: int  # 1-6 for a heading, else 0
    path: tuple[str, ...]
    continued: bool = False  # a piece of a unit above the limit, and not its last piece


def source_key(source_id: str) -> str:
    """
    Return the prefix of the ids of ``source_id``'s chunks: the URI itself, or ``sha256:<hex>`` of it when
    the URI is too long for an id of :data:`~airflow_provider_gemini_milvus.milvus.layout.ID_MAX_LENGTH`.

    :param source_id: the file's URI.
    """
    room = ID_MAX_LENGTH - 1 - CHUNK_HASH_HEX - 1 - _MAX_COUNTER_DIGITS
    if len(source_id) <= room and "#" not in source_id:
        return source_id
    return "sha256:" + hashlib.sha256(source_id.encode("utf-8", "surrogatepass")).hexdigest()


def chunk_id_hash(own_text: str) -> str:
    """The hash part of a chunk id: the first :data:`CHUNK_HASH_HEX` hex digits of SHA-256 of its text."""
    return hashlib.sha256(own_text.encode("utf-8", "surrogatepass")).hexdigest()[:CHUNK_HASH_HEX]


def chunk_text(loaded: LoadedText, spec: ChunkingSpec | None = None) -> list[Chunk]:
    """
    Cut a loaded file into chunks (see the module docstring); an empty file has none.

    :param loaded: the file's text, title and format (from :func:`.loaders.load_file`).
    :param spec: sizes and overlap; None means :class:`ChunkingSpec`'s defaults.
    """
    spec = spec or ChunkingSpec()
    text = loaded.text
    structured = spec.structure_aware and loaded.is_markdown
    units = _markdown_units(text) if structured else _paragraph_units(text)
    units = _split_long_units(text, units, spec.max_tokens)
    spans = _group(text, units, spec.max_tokens)
    key = source_key(loaded.source_id)
    seen: dict[str, int] = {}
    chunks: list[Chunk] = []
    previous_start = 0
    for position, (first, last) in enumerate(spans):
        start, end = units[first].start, units[last].end
        own = text[start:end].strip()
        digest = chunk_id_hash(own)
        seen[digest] = seen.get(digest, 0) + 1
        chunk_id = f"{key}#{digest}" if seen[digest] == 1 else f"{key}#{digest}-{seen[digest]}"
        overlap_start = _overlap_start(text, previous_start, start, end, spec)
        overlap = text[overlap_start:start].strip() if overlap_start < start else ""
        full = f"{overlap}\n\n{own}" if overlap else own
        chunks.append(
            Chunk(
                id=chunk_id,
                text=full,
                source_id=loaded.source_id,
                position=position,
                heading_path=units[first].path,
                title=loaded.title,
                overlap_chars=len(overlap),
            )
        )
        previous_start = start
    return chunks


def _overlap_start(text: str, previous_start: int, start: int, end: int, spec: ChunkingSpec) -> int:
    """Where the overlap of the chunk ``text[start:end]`` begins: a word start in the previous chunk."""
    if spec.overlap_tokens == 0 or start <= previous_start:
        return start
    budget = spec.overlap_tokens * 4
    begin = max(previous_start, start - budget)
    if begin > previous_start and not text[begin - 1].isspace():
        match = _SPACE.search(text, begin, start)
        begin = match.end() if match else start
    return begin


def _markdown_units(text: str) -> list[_Unit]:
    """Top-level Markdown blocks (each list item on its own), with the headings above each."""
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    line_starts = [0]
    line_starts.extend(match.end() for match in re.finditer("\n", text))
    line_starts.append(len(text))

    def offset(line: int) -> int:
        return line_starts[min(line, len(line_starts) - 1)]

    units: list[_Unit] = []
    headings: list[tuple[int, str]] = []
    list_depth = 0
    for index, token in enumerate(tokens):
        if token.type in ("bullet_list_open", "ordered_list_open"):
            list_depth += 1
        elif token.type in ("bullet_list_close", "ordered_list_close"):
            list_depth -= 1
        if token.map is None or token.nesting == -1:
            continue
        is_item = token.type == "list_item_open" and token.level == 1 and list_depth == 1
        if not (
            is_item or (token.level == 0 and token.type not in ("bullet_list_open", "ordered_list_open"))
        ):
            continue
        start, end = offset(token.map[0]), offset(token.map[1])
        while end > start and text[end - 1].isspace():
            end -= 1
        if end <= start:
            continue
        level = 0
        if token.type == "heading_open":
            level = int(token.tag[1:])
            title = " ".join(tokens[index + 1].content.split())
            headings = [entry for entry in headings if entry[0] < level]
            headings.append((level, title))
        units.append(_Unit(start, end, level, tuple(title for _, title in headings)))
    return _cover_gaps(text, units)


def _cover_gaps(text: str, units: list[_Unit]) -> list[_Unit]:
    """Units for text no block covers (link definitions, a list's own lines), so no text is lost."""
    covered: list[_Unit] = []
    cursor = 0
    for unit in units:
        if unit.start < cursor:  # a unit nested in one already taken
            continue
        gap = text[cursor : unit.start]
        if gap.strip():
            covered.extend(
                _paragraph_units(gap, offset=cursor, path=unit.path if not covered else covered[-1].path)
            )
        covered.append(unit)
        cursor = unit.end
    if text[cursor:].strip():
        covered.extend(
            _paragraph_units(text[cursor:], offset=cursor, path=covered[-1].path if covered else ())
        )
    return covered


def _paragraph_units(text: str, *, offset: int = 0, path: tuple[str, ...] = ()) -> list[_Unit]:
    """Runs of non-blank lines."""
    units = []
    for match in _PARAGRAPHS.finditer(text):
        start, end = match.start(), match.end()
        while end > start and text[end - 1].isspace():
            end -= 1
        while start < end and text[start].isspace():
            start += 1
        if end > start:
            units.append(_Unit(start + offset, end + offset, 0, path))
    return units


@functools.lru_cache(maxsize=16)
def _piece_chunker(piece_tokens: int) -> Callable[..., Any]:
    from semchunk.semchunk import chunkerify

    return chunkerify(estimate_tokens, chunk_size=piece_tokens)


def _piece_tokens(max_tokens: int) -> int:
    """Size of the pieces a unit longer than the limit is split into: small, so that boundaries stay local."""
    return max(8, min(64, max_tokens // 8))


def _split_long_units(text: str, units: list[_Unit], max_tokens: int) -> list[_Unit]:
    """Units above ``max_tokens`` split by semchunk at line, sentence and word boundaries, in small pieces."""
    result: list[_Unit] = []
    for unit in units:
        if estimate_tokens(text[unit.start : unit.end]) <= max_tokens:
            result.append(unit)
            continue
        chunker = _piece_chunker(_piece_tokens(max_tokens))
        _, offsets = chunker(text[unit.start : unit.end], offsets=True)
        for number, (piece_start, piece_end) in enumerate(offsets, start=1):
            continued = number < len(offsets)
            result.append(_Unit(unit.start + piece_start, unit.start + piece_end, 0, unit.path, continued))
    return result


def _unit_score(text: str, unit: _Unit, target_tokens: float) -> float:
    """
    A uniform draw from the SHA-256 of the unit's first :data:`ANCHOR_CHARS` characters, divided by its
    share of the target size: below 1, the unit ends a chunk. Larger units end chunks more often, so
    chunks average ``target_tokens`` whatever the units' sizes.
    """
    anchor = text[unit.start : unit.end].lstrip()[:ANCHOR_CHARS]
    digest = hashlib.sha256(anchor.encode("utf-8", "surrogatepass")).digest()
    draw = int.from_bytes(digest[:8], "big") / 2**64
    return draw * target_tokens / max(1, estimate_tokens(text[unit.start : unit.end]))


def _group(text: str, units: Sequence[_Unit], max_tokens: int) -> list[tuple[int, int]]:
    """Spans ``(first unit, last unit)`` of the chunks, cut where the content says (module docstring)."""
    if not units:
        return []
    target = max_tokens * TARGET_FRACTION
    min_section = max_tokens * MIN_SECTION_FRACTION
    scores = [_unit_score(text, unit, target) for unit in units]
    # A boundary "after unit i": its strength for a forced cut (lower is stronger), None where forbidden.
    strengths: list[float | None] = []
    cuts: list[bool] = []
    section_start = 0
    for index in range(len(units) - 1):
        unit, following = units[index], units[index + 1]
        if unit.heading_level:
            strengths.append(None)  # a heading stays with what follows it
            cuts.append(False)
            continue
        if unit.continued:  # inside a long unit: cut only where it must be, so it spans few chunks
            strengths.append(_INSIDE_UNIT + scores[index])
            cuts.append(False)
            continue
        if following.heading_level:
            section_tokens = estimate_tokens(text[units[section_start].start : unit.end])
            strengths.append(-10.0 + following.heading_level)
            cuts.append(section_tokens >= min_section)
            section_start = index + 1
            continue
        strengths.append(scores[index])
        cuts.append(scores[index] < 1.0)
    spans: list[tuple[int, int]] = []
    first = 0
    for index, cut in enumerate(cuts):
        if cut:
            spans.extend(_fit(text, units, strengths, first, index, max_tokens))
            first = index + 1
    spans.extend(_fit(text, units, strengths, first, len(units) - 1, max_tokens))
    return spans


def _fit(
    text: str,
    units: Sequence[_Unit],
    strengths: Sequence[float | None],
    first: int,
    last: int,
    max_tokens: int,
) -> list[tuple[int, int]]:
    """
    The span split at its strongest boundaries until every part fits ``max_tokens``: in two when some
    boundary leaves both halves within the limit (the strongest such one), so that a span just over the
    limit becomes two chunks and an edit in it changes at most those two; else at the strongest boundary,
    and the halves again.
    """

    def tokens(start: int, end: int) -> int:
        return estimate_tokens(text[units[start].start : units[end].end])

    if first == last or tokens(first, last) <= max_tokens:
        return [(first, last)]
    candidates = [index for index in range(first, last) if strengths[index] is not None]
    if not candidates:  # only headings inside: cut after one anyway
        candidates = list(range(first, last))

    def strength(index: int) -> tuple[float, int]:
        value = strengths[index]
        return (value if value is not None else 0.0, index)

    halves = [index for index in candidates if tokens(first, index) <= max_tokens >= tokens(index + 1, last)]
    best = min(halves or candidates, key=strength)
    return _fit(text, units, strengths, first, best, max_tokens) + _fit(
        text, units, strengths, best + 1, last, max_tokens
    )
