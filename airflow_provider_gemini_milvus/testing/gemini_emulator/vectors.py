"""
Deterministic, lexically meaningful vectors: the emulator's answer for a text depends only on the model, the
settings and the words, so similar texts are near neighbours and small retrieval tests work.

A text becomes word, character 3-gram and answer-type cue features (``where`` in a question, ``in London``
in a document); each feature is hashed into signed slots spread so that every Matryoshka prefix holds it.

A media part (gemini-embedding-2: an image, a PDF, audio, video) becomes one feature unique to its MIME type
and bytes (``blob:{mime}:{sha256}``) plus the text features of the description found in its bytes (see
:mod:`.media`), so a text question finds a picture whose PNG says what it shows. The parts of one
``Content`` (text and media) merge into one vector, as the model does.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from airflow_provider_gemini_milvus.gemini.models import MODELS, EmbeddingModel
from airflow_provider_gemini_milvus.testing.gemini_emulator.media import inspect_media

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "BLOB_MARKER",
    "QUERY_TASK_TYPES",
    "RENDERED_VECTOR_CACHE_SIZE",
    "RawJson",
    "emulated_embedding",
    "encode_json",
    "media_part",
    "vector_json",
]

#: Task types the emulator treats as questions (they pick up answer-type cues such as "where").
QUERY_TASK_TYPES = frozenset({"RETRIEVAL_QUERY", "QUESTION_ANSWERING", "FACT_VERIFICATION"})

_STOPWORD_LIST = """
a about above after again all also am an and any are as at be been before being below between both
but by can could did do does doing down during each few for from further had has have having he her
here hers him his how i if in into is it its itself just me more most my no nor not now of off on
once only or other our ours out over own same she should so some such than that the their theirs
them then there these they this those through to too under until up us very was we were what when
where which while who whom whose why will with would you your yours
"""
_STOPWORDS = frozenset(_STOPWORD_LIST.split())
_LOCATION_PREPOSITIONS = frozenset({"in", "at", "from"})
_WORD_RE = re.compile(r"[^\W_]+")
_YEAR_RE = re.compile(r"\d{3,4}")
_TASK_PROMPT_RE = re.compile(r"^\s*task:\s*(?P<task>[^|]*?)\s*\|\s*query:\s*", re.IGNORECASE)
_TITLE_PROMPT_RE = re.compile(r"^\s*title:\s*(?P<title>[^|]*?)\s*\|\s*text:\s*", re.IGNORECASE)
#: How a media part (inline or file data) is carried among the texts: this marker, then
#: ``{mime type}:{sha256}``, then ``\x1f`` and the description found in its bytes (see :func:`media_part`).
BLOB_MARKER = "\x00blob:"
_DESCRIPTION_SEPARATOR = "\x1f"

_WORD_WEIGHT = 1.0
_TRIGRAM_WEIGHT = 0.25
_CUE_WEIGHT = 1.0
_TASK_WEIGHT = 0.3
_TITLE_WEIGHT = 0.5
#: Each feature lands in 8 signed slots; slot ``j`` lies in the first ``_SLOT_SPANS[j]`` of the dimensions,
#: so every Matryoshka prefix (down to 1/24 of the full size) still holds every feature.
_SLOT_SPANS = (1 / 24, 1 / 12, 1 / 6, 1 / 4, 1 / 3, 1 / 2, 2 / 3, 1.0)
_SLOT_SCALE = 1 / math.sqrt(len(_SLOT_SPANS))


def _is_capitalised(word: str) -> bool:
    """``London`` and ``McDonald`` are; ``AI`` (an acronym) and ``london`` are not."""
    return word[:1].isupper() and any(char.islower() for char in word[1:])


def _add_cue(features: dict[str, float], cue: str, weight: float) -> None:
    key = f"cue:{cue}"
    features[key] = max(features.get(key, 0.0), _CUE_WEIGHT * weight)


def _add_word(features: dict[str, float], word: str, weight: float) -> None:
    """A word counts once however often it repeats (like a cue), so repetition cannot outvote meaning."""
    key = f"w:{word}"
    if features.get(key, 0.0) >= _WORD_WEIGHT * weight:
        return
    features[key] = _WORD_WEIGHT * weight
    padded = f"<{word}>"
    for start in range(max(1, len(padded) - 2)):
        gram = f"g:{padded[start : start + 3]}"
        features[gram] = features.get(gram, 0.0) + _TRIGRAM_WEIGHT * weight


def media_part(mime_type: str, sha256: str, description: str) -> str:
    """
    How a media part is carried among the text parts of an element (and keyed in the vector caches).

    :param mime_type: its MIME type.
    :param sha256: the hex SHA-256 of its bytes.
    :param description: the description found in its bytes, or ``""``.
    """
    return f"{BLOB_MARKER}{mime_type}:{sha256}{_DESCRIPTION_SEPARATOR}{description}"


def _add_text_features(features: dict[str, float], text: str, *, query_like: bool, weight: float) -> None:
    """Add word, character 3-gram and answer-type cue features of ``text`` to ``features``."""
    if text.startswith(BLOB_MARKER):
        identity, _, description = text[len(BLOB_MARKER) :].partition(_DESCRIPTION_SEPARATOR)
        key = f"blob:{identity}"
        features[key] = features.get(key, 0.0) + _WORD_WEIGHT * weight
        if description:
            _add_text_features(features, description, query_like=False, weight=weight)
        return
    words = _WORD_RE.findall(text)
    content_words: list[str] = []
    for position, word in enumerate(words):
        lower = word.lower()
        previous = words[position - 1].lower() if position else ""
        if previous in _LOCATION_PREPOSITIONS and _is_capitalised(word):
            _add_cue(features, "LOCATION", weight)
        if _YEAR_RE.fullmatch(word):
            _add_cue(features, "TIME", weight)
        if query_like and lower == "where":
            _add_cue(features, "LOCATION", weight)
        if query_like and lower == "when":
            _add_cue(features, "TIME", weight)
        if lower not in _STOPWORDS:
            content_words.append(lower)
    if not content_words:
        content_words = [word.lower() for word in words]
    if not content_words:
        raw = f"raw:{text.strip().lower()}"
        features[raw] = features.get(raw, 0.0) + _WORD_WEIGHT * weight
        return
    for word in content_words:
        _add_word(features, word, weight)


def _split_prompt_prefix(texts: tuple[str, ...]) -> tuple[tuple[str, ...], str | None, str | None]:
    """
    Read gemini-embedding-2's in-prompt instructions (``task: search result | query: ...`` or
    ``title: T | text: ...``) from the first part. Return the texts without the prefix, the task, the title.
    """
    if not texts:
        return texts, None, None
    first = texts[0]
    task_match = _TASK_PROMPT_RE.match(first)
    if task_match:
        return (first[task_match.end() :], *texts[1:]), task_match["task"].strip().lower(), None
    title_match = _TITLE_PROMPT_RE.match(first)
    if title_match:
        title = title_match["title"].strip()
        return (first[title_match.end() :], *texts[1:]), None, None if title.lower() == "none" else title
    return texts, None, None


def _features(
    model: EmbeddingModel, task_type: str | None, title: str | None, texts: tuple[str, ...]
) -> dict[str, float]:
    features: dict[str, float] = {}
    if _ignores_task_type(model):
        texts, prompt_task, prompt_title = _split_prompt_prefix(texts)
        query_like = prompt_task is not None
        task_feature = f"task:prompt:{prompt_task}" if prompt_task else None
        title = prompt_title
    else:
        query_like = task_type in QUERY_TASK_TYPES
        task_feature = f"task:{task_type}" if task_type and task_type != "TASK_TYPE_UNSPECIFIED" else None
        title = title if task_type == "RETRIEVAL_DOCUMENT" else None
    for text in texts:
        _add_text_features(features, text, query_like=query_like, weight=1.0)
    if title:
        _add_text_features(features, title, query_like=False, weight=_TITLE_WEIGHT)
    if task_feature:
        features[task_feature] = _TASK_WEIGHT
    return features


def _ignores_task_type(model: EmbeddingModel) -> bool:
    """
    gemini-embedding-2 (the multimodal generation, marked by ``one_content_per_text``) silently ignores
    ``taskType`` and ``title``; instructions go in the prompt instead. Models without task-type support
    never get here with a task type (the request is refused).
    """
    return model.one_content_per_text


@functools.lru_cache(maxsize=262_144)
def _feature_slots(salt: str, feature: str, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Stable (blake2b) signed slots of one feature: positions and +-1 signs."""
    digest = hashlib.blake2b(f"{salt}\x1f{feature}".encode(), digest_size=4 * len(_SLOT_SPANS)).digest()
    raw = np.frombuffer(digest, dtype="<u4").astype(np.int64)
    spans = np.array([max(1, round(dim * span)) for span in _SLOT_SPANS], dtype=np.int64)
    positions = raw % spans
    signs = 1.0 - 2.0 * ((raw >> 31) & 1).astype(np.float64)
    return positions, signs


@functools.lru_cache(maxsize=2048)
def _full_vector(
    model_name: str, task_type: str | None, title: str | None, texts: tuple[str, ...]
) -> np.ndarray:
    """The unit-length vector of ``default_dim`` values for one request element (read-only, cached)."""
    model = MODELS[model_name]
    dim = model.default_dim
    features = _features(model, task_type, title, texts)
    positions: list[np.ndarray] = []
    values: list[np.ndarray] = []
    for feature, weight in features.items():
        slots, signs = _feature_slots(model_name, feature, dim)
        positions.append(slots)
        values.append(signs * (weight * _SLOT_SCALE))
    vector: np.ndarray = np.bincount(
        np.concatenate(positions), weights=np.concatenate(values), minlength=dim
    ).astype(np.float64)
    norm = float(np.linalg.norm(vector))
    if norm < 1e-12:
        vector = np.zeros(dim)
        vector[0] = 1.0
        norm = 1.0
    result = (vector / norm).astype(np.float32)
    result.setflags(write=False)
    return result


def _output_array(full: np.ndarray, model: EmbeddingModel, output_dimensionality: int | None) -> np.ndarray:
    """Truncate from the end; re-normalise only for models that do; round to about 8 significant digits."""
    dim = output_dimensionality or model.default_dim
    vector = full[:dim].astype(np.float64)
    if dim < model.default_dim and model.normalises_truncated:
        norm = float(np.linalg.norm(vector))
        if norm > 0:
            vector = vector / norm
    return np.round(vector, 9)


class RawJson(str):
    """Already-encoded JSON, spliced verbatim by :func:`encode_json`."""

    __slots__ = ()


#: Rendered vectors kept (about 4.5 KB each at 768 dimensions, 14 KB at 3072). Rendering one costs about
#: 0.2 ms, so an answer of 100 would cost 20 ms of the emulator's CPU, which shares the machine with the
#: client under test (a remote API's does not). Enough for a benchmark's corpus of a few thousand texts sent
#: again and again: an LRU cache smaller than a corpus sent in a loop never hits.
RENDERED_VECTOR_CACHE_SIZE = 8192


@functools.lru_cache(maxsize=RENDERED_VECTOR_CACHE_SIZE)
def vector_json(
    model_name: str,
    task_type: str | None,
    title: str | None,
    parts: tuple[str, ...],
    output_dimensionality: int | None,
) -> RawJson:
    """The JSON array of one returned vector (cached: retried calls cost nothing). Zeros are cheap."""
    model = MODELS[model_name]
    values = _output_array(_full_vector(model_name, task_type, title, parts), model, output_dimensionality)
    rendered = ["0.0"] * len(values)
    nonzero = np.flatnonzero(values)
    for position, value in zip(nonzero.tolist(), values[nonzero].tolist(), strict=True):
        rendered[position] = repr(value)
    return RawJson(f"[{','.join(rendered)}]")


def encode_json(value: Any) -> str:
    """``json.dumps`` that splices :class:`RawJson` values in as they are."""
    if isinstance(value, RawJson):
        return str(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(key)}:{encode_json(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(encode_json(item) for item in value) + "]"
    return json.dumps(value)


def _media_list(media: tuple[str, bytes] | Sequence[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """One ``(mime_type, bytes)`` or a sequence of them, as a list."""
    if len(media) == 2 and isinstance(media[0], str):
        return [cast("tuple[str, bytes]", media)]
    return list(cast("Sequence[tuple[str, bytes]]", media))


def emulated_embedding(
    text: str | Sequence[str],
    *,
    model: str = "gemini-embedding-001",
    task_type: str | None = None,
    title: str | None = None,
    output_dimensionality: int | None = None,
    media: tuple[str, bytes] | Sequence[tuple[str, bytes]] = (),
) -> list[float]:
    """
    Return exactly the vector the emulator answers for one request element, without any HTTP.

    :param text: the text, or the texts of the parts of one ``Content`` (merged into one vector); ``[]``
        for a media part alone.
    :param model: a model of the catalogue, with or without ``models/``.
    :param task_type: the ``taskType`` sent, if any.
    :param title: the ``title`` sent, if any (used with ``RETRIEVAL_DOCUMENT`` only).
    :param output_dimensionality: the ``outputDimensionality`` sent, if any.
    :param media: ``(mime_type, bytes)`` of a media part sent after the text parts, or a sequence of them
        (in part order); the same vector whether the bytes go inline or through the Files API. Only for
        models that take media (gemini-embedding-2).
    """
    catalogue_entry = MODELS[model.removeprefix("models/")]
    catalogue_entry.check_output_dimensionality(output_dimensionality)
    texts = (text,) if isinstance(text, str) else tuple(text)
    media_parts = _media_list(media)
    if media_parts and not catalogue_entry.one_content_per_text:
        raise ValueError(f"models/{catalogue_entry.name} only supports text content.")
    for mime_type, data in media_parts:
        facts = inspect_media(mime_type, bytes(data))
        texts = (*texts, media_part(facts.mime_type, facts.sha256, facts.description))
    full = _full_vector(catalogue_entry.name, task_type, title, texts)
    values: list[float] = _output_array(full, catalogue_entry, output_dimensionality).tolist()
    return values
