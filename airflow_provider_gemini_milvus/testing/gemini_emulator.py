"""
A local HTTP server that speaks the Gemini embedding REST API, for offline tests and DAG development.

The real ``google-genai`` SDK talks to it through ``HttpOptions(base_url=emulator.base_url)``:

.. code-block:: python

    from google import genai
    from google.genai import types

    with GeminiEmulator() as emulator:
        options = types.HttpOptions(base_url=emulator.base_url)
        client = genai.Client(api_key=emulator.api_key, http_options=options)
        result = client.models.embed_content(model="gemini-embedding-001", contents=["hello", "world"])

What it serves (any version prefix, e.g. ``v1``, ``v1beta``, ``v1beta1``):

* ``POST /{ver}/models/{model}:batchEmbedContents`` and ``:embedContent`` (Gemini Developer API);
* ``GET /{ver}/models/{model}`` and ``GET /{ver}/models`` (``client.models.get`` / ``client.models.list``);
* Vertex AI express mode (``genai.Client(vertexai=True, api_key=...)``):
  ``POST /{ver}/[projects/{p}/locations/{l}/]publishers/google/models/{model}:batchEmbedContents``,
  ``:embedContent`` and ``:predict``, and ``GET`` on the model.

It enforces the model catalogue in :mod:`airflow_provider_gemini_milvus.gemini_models` (dimensions, input
length, task types, at most 100 texts a call), answers with Google's error envelopes, and can simulate
latency, per-minute and per-day quotas, random and queued faults, corrupted answers (NaN, short or missing
vectors, HTML, cut JSON), gateways that echo the API key in errors, and dropped connections. Vectors are
deterministic and lexically meaningful: similar texts are near neighbours, so small retrieval tests work.

Run it from a shell with ``python -m airflow_provider_gemini_milvus.testing.gemini_emulator --port 8765``.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import functools
import hashlib
import json
import logging
import math
import random
import re
import signal
import socket
import sys
import threading
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import numpy as np

from airflow_provider_gemini_milvus.gemini_models import (
    MAX_TEXTS_PER_REQUEST,
    MODELS,
    TASK_TYPES,
    EmbeddingModel,
    estimate_tokens,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from types import FrameType, TracebackType

log = logging.getLogger(__name__)

DEFAULT_API_KEY = "emulator-key"

#: Vertex AI accepts more instances per call than the Gemini Developer API.
VERTEX_MAX_INSTANCES_PER_REQUEST = 250

#: Statuses ``fail_next`` and ``fault_statuses`` can produce.
SUPPORTED_FAULT_STATUSES = (400, 403, 404, 429, 500, 503, 504)

#: Ways ``corrupt_next`` can spoil a successful embed answer.
CORRUPTION_KINDS = ("nan", "inf", "zero", "short", "null", "missing", "html", "truncated")

_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

_FAULT_MESSAGES = {
    400: "Request contains an invalid argument.",
    403: "The caller does not have permission",
    404: "Requested entity was not found.",
    429: (
        "You exceeded your current quota, please check your plan and billing details. For more "
        "information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits."
    ),
    500: (
        "An internal error has occurred. Please retry or report in "
        "https://developers.generativeai.google/guide/troubleshooting"
    ),
    503: "The model is overloaded. Please try again later.",
    504: "Deadline expired before operation could complete.",
}

_MISSING_KEY_MESSAGE = (
    "Method doesn't allow unregistered callers (callers without established identity). "
    "Please use API Key or other form of API consumer identity to call this API."
)
_VERTEX_MISSING_CREDENTIAL_MESSAGE = (
    "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie "
    "or other valid authentication credential. "
    "See https://developers.google.com/identity/sign-in/web/devconsole-project."
)
_INVALID_KEY_MESSAGE = "API key not valid. Please pass a valid API key."
_QUOTA_MESSAGE_HEAD = (
    "You exceeded your current quota, please check your plan and billing details. For more information "
    "on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits. To monitor your current "
    "usage, head to: https://ai.dev/rate-limit. "
)
_BATCH_TOO_LARGE_MESSAGE = (
    f"* BatchEmbedContentsRequest.requests: at most {MAX_TEXTS_PER_REQUEST} requests can be in one batch\n"
)
_GEMINI_SERVICE = "generativelanguage.googleapis.com"
_VERTEX_SERVICE = "aiplatform.googleapis.com"
_PROTO_PACKAGE = "google.ai.generativelanguage"

#: Task types the emulator treats as questions (they pick up answer-type cues such as "where").
QUERY_TASK_TYPES = frozenset({"RETRIEVAL_QUERY", "QUESTION_ANSWERING", "FACT_VERIFICATION"})
_ACCEPTED_TASK_TYPES = frozenset((*TASK_TYPES, "TASK_TYPE_UNSPECIFIED"))


# --------------------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------------------


class ApiError(Exception):
    """
    An error answered in Google's envelope ``{"error": {"code", "message", "status", "details"?}}``.

    :param code: HTTP status.
    :param message: the ``error.message`` text.
    :param details: optional ``error.details`` entries (``google.rpc`` messages with an ``@type``).
    :param status: the canonical status name; derived from ``code`` when omitted.
    """

    def __init__(
        self, code: int, message: str, details: list[dict[str, Any]] | None = None, status: str | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details
        self.status = status or _STATUS_NAMES.get(code, "UNKNOWN")

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message, "status": self.status}
        if self.details:
            error["details"] = self.details
        return {"error": error}


def _invalid_argument(
    message: str, field_path: str | None = None, description: str | None = None
) -> ApiError:
    """A 400 INVALID_ARGUMENT, with a ``BadRequest`` detail naming the field when there is one."""
    details = None
    if field_path is not None:
        details = [
            {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": field_path, "description": description or message.strip()}],
            }
        ]
    return ApiError(400, message, details)


def _invalid_key_error(service: str) -> ApiError:
    return ApiError(
        400,
        _INVALID_KEY_MESSAGE,
        [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": service},
            },
            {
                "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                "locale": "en-US",
                "message": _INVALID_KEY_MESSAGE,
            },
        ],
    )


def _format_delay(seconds: float) -> str:
    """Render a ``google.protobuf.Duration`` the way Google does (``"1.25s"``, ``"15s"``)."""
    millis = max(1, math.ceil(seconds * 1000))
    whole, rest = divmod(millis, 1000)
    if rest == 0:
        return f"{whole}s"
    return f"{whole}.{rest:03d}".rstrip("0") + "s"


def _quota_error(
    *,
    model: str,
    metric: str,
    quota_id: str,
    limit: float,
    retry_delay: float | None,
) -> ApiError:
    limit_text = f"{limit:g}"
    message = (
        f"{_QUOTA_MESSAGE_HEAD}\n* Quota exceeded for metric: {_GEMINI_SERVICE}/{metric}, "
        f"limit: {limit_text}, model: {model}"
    )
    if retry_delay is not None:
        message += f"\nPlease retry in {_format_delay(retry_delay)[:-1]}s."
    details: list[dict[str, Any]] = [
        {
            "@type": "type.googleapis.com/google.rpc.Help",
            "links": [
                {
                    "description": "Learn more about Gemini API quotas",
                    "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
                }
            ],
        },
        {
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            "violations": [
                {
                    "quotaMetric": f"{_GEMINI_SERVICE}/{metric}",
                    "quotaId": quota_id,
                    "quotaDimensions": {"model": model, "location": "global"},
                    "quotaValue": limit_text,
                }
            ],
        },
    ]
    if retry_delay is not None:
        details.append(
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": _format_delay(retry_delay)}
        )
    return ApiError(429, message, details)


def _fault_error(status: int, model: str, retry_delay: float | None) -> ApiError:
    if status == 429 and retry_delay is not None:
        return _quota_error(
            model=model,
            metric="embed_content_requests",
            quota_id="EmbedContentRequestsPerMinutePerProjectPerModel",
            limit=0,
            retry_delay=retry_delay,
        )
    return ApiError(status, _FAULT_MESSAGES[status])


# --------------------------------------------------------------------------------------------------------
# Vectors
# --------------------------------------------------------------------------------------------------------

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
_BLOB_MARKER = "\x00blob:"

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


def _add_text_features(features: dict[str, float], text: str, *, query_like: bool, weight: float) -> None:
    """Add word, character 3-gram and answer-type cue features of ``text`` to ``features``."""
    if text.startswith(_BLOB_MARKER):
        features[text] = features.get(text, 0.0) + _WORD_WEIGHT * weight
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


class _RawJson(str):
    """Already-encoded JSON, spliced verbatim by :func:`_encode_json`."""

    __slots__ = ()


@functools.lru_cache(maxsize=2048)
def _vector_json(
    model_name: str,
    task_type: str | None,
    title: str | None,
    parts: tuple[str, ...],
    output_dimensionality: int | None,
) -> _RawJson:
    """The JSON array of one returned vector (cached: retried calls cost nothing). Zeros are cheap."""
    model = MODELS[model_name]
    values = _output_array(_full_vector(model_name, task_type, title, parts), model, output_dimensionality)
    rendered = ["0.0"] * len(values)
    nonzero = np.flatnonzero(values)
    for position, value in zip(nonzero.tolist(), values[nonzero].tolist(), strict=True):
        rendered[position] = repr(value)
    return _RawJson(f"[{','.join(rendered)}]")


def _encode_json(value: Any) -> str:
    """``json.dumps`` that splices :class:`_RawJson` values in as they are."""
    if isinstance(value, _RawJson):
        return str(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(key)}:{_encode_json(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_encode_json(item) for item in value) + "]"
    return json.dumps(value)


def emulated_embedding(
    text: str | Sequence[str],
    *,
    model: str = "gemini-embedding-001",
    task_type: str | None = None,
    title: str | None = None,
    output_dimensionality: int | None = None,
) -> list[float]:
    """
    Return exactly the vector the emulator answers for one request element, without any HTTP.

    :param text: the text, or the texts of the parts of one ``Content`` (merged into one vector).
    :param model: a model of the catalogue, with or without ``models/``.
    :param task_type: the ``taskType`` sent, if any.
    :param title: the ``title`` sent, if any (used with ``RETRIEVAL_DOCUMENT`` only).
    :param output_dimensionality: the ``outputDimensionality`` sent, if any.
    """
    catalogue_entry = MODELS[model.removeprefix("models/")]
    catalogue_entry.check_output_dimensionality(output_dimensionality)
    texts = (text,) if isinstance(text, str) else tuple(text)
    full = _full_vector(catalogue_entry.name, task_type, title, texts)
    values: list[float] = _output_array(full, catalogue_entry, output_dimensionality).tolist()
    return values


# --------------------------------------------------------------------------------------------------------
# Requests
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _EmbedItem:
    """One element to embed: the parts of one ``Content`` and its settings."""

    parts: tuple[str, ...]
    task_type: str | None
    title: str | None
    output_dimensionality: int | None
    truncated: bool = False

    @property
    def texts(self) -> list[str]:
        return [part for part in self.parts if not part.startswith(_BLOB_MARKER)]

    @property
    def tokens(self) -> int:
        return sum(estimate_tokens(text) for text in self.texts)


@dataclass(frozen=True)
class _Route:
    kind: str  # "embed", "get_model", "list_models", "unknown"
    version: str = ""
    model: str = ""
    method: str = ""  # batchEmbedContents, embedContent, predict
    vertex: bool = False


_VERSION = r"(?P<version>v\d+(?:alpha|beta)?\d*)"
_VERTEX_PREFIX = r"(?:projects/[^/]+/locations/[^/]+/)?publishers/google/models"
_ROUTES = (
    (
        "POST",
        re.compile(rf"^/{_VERSION}/models/(?P<model>[^/:]+):(?P<method>batchEmbedContents|embedContent)$"),
        "embed",
        False,
    ),
    (
        "POST",
        re.compile(
            rf"^/{_VERSION}/{_VERTEX_PREFIX}/(?P<model>[^/:]+):(?P<method>batchEmbedContents|embedContent|predict)$"
        ),
        "embed",
        True,
    ),
    ("GET", re.compile(rf"^/{_VERSION}/models/(?P<model>[^/:]+)$"), "get_model", False),
    ("GET", re.compile(rf"^/{_VERSION}/models$"), "list_models", False),
    ("GET", re.compile(rf"^/{_VERSION}/{_VERTEX_PREFIX}/(?P<model>[^/:]+)$"), "get_model", True),
)


def _match_route(method: str, path: str) -> _Route:
    for route_method, pattern, kind, vertex in _ROUTES:
        if route_method != method:
            continue
        match = pattern.match(path)
        if match:
            groups = match.groupdict()
            return _Route(
                kind=kind,
                version=groups["version"],
                model=urllib.parse.unquote(groups.get("model") or ""),
                method=groups.get("method") or "",
                vertex=vertex,
            )
    return _Route(kind="unknown")


def _pick(obj: dict[str, Any], camel: str, snake: str) -> Any:
    """Proto-JSON accepts both spellings of a field name."""
    return obj[camel] if camel in obj else obj.get(snake)


def _reject_unknown_fields(obj: dict[str, Any], allowed: frozenset[str], where: str) -> None:
    for name in obj:
        if name not in allowed:
            location = f" at '{where}'" if where else ""
            raise _invalid_argument(
                f'Invalid JSON payload received. Unknown name "{name}"{location}: Cannot find field.', where
            )


def _as_object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _invalid_argument(
            f"Invalid JSON payload received. Expected an object for '{where}'.", where or None
        )
    return value


_GEMINI_ELEMENT_FIELDS = frozenset(
    {
        *(
            "model",
            "content",
            "taskType",
            "task_type",
            "title",
            "outputDimensionality",
            "output_dimensionality",
        ),
        *("embedContentConfig", "embed_content_config"),
    }
)
_VERTEX_ELEMENT_FIELDS = frozenset({"model", "content", "embedContentConfig", "embed_content_config"})
_VERTEX_CONFIG_FIELDS = frozenset(
    {
        "taskType",
        "task_type",
        "title",
        "outputDimensionality",
        "output_dimensionality",
        "autoTruncate",
        "auto_truncate",
        "documentOcr",
        "document_ocr",
        "audioTrackExtraction",
        "audio_track_extraction",
        "mimeType",
        "mime_type",
    }
)
_CONTENT_FIELDS = frozenset({"parts", "role"})
_PART_FIELDS = frozenset({"text", "inlineData", "inline_data", "fileData", "file_data"})
_PREDICT_INSTANCE_FIELDS = frozenset({"content", "task_type", "taskType", "title", "mimeType", "mime_type"})
_PREDICT_PARAMETER_FIELDS = frozenset(
    {"outputDimensionality", "output_dimensionality", "autoTruncate", "auto_truncate"}
)


class _RequestParser:
    """
    Turn one embed request body into validated :class:`_EmbedItem` values, raising :class:`ApiError`
    exactly as the real service would (first problem found wins).

    :param model: catalogue entry of the model in the URL.
    :param route: the matched route (Gemini API or Vertex, and which method).
    """

    def __init__(self, model: EmbeddingModel, route: _Route) -> None:
        self.model = model
        self.route = route
        self.request_name = {
            "batchEmbedContents": "BatchEmbedContentsRequest",
            "embedContent": "EmbedContentRequest",
            "predict": "PredictRequest",
        }[route.method]

    def parse(self, body: dict[str, Any]) -> list[_EmbedItem]:
        if self.route.method == "embedContent":
            return [self._parse_element(body, "")]
        if self.route.method == "predict":
            return self._parse_predict(body)
        _reject_unknown_fields(body, frozenset({"requests"}), "")
        elements = body.get("requests")
        if elements is None:
            elements = []
        if not isinstance(elements, list):
            raise _invalid_argument(
                "Invalid JSON payload received. Expected a list for 'requests'.", "requests"
            )
        self._check_batch_size(len(elements))
        return [
            self._parse_element(_as_object(item, f"requests[{i}]"), f"requests[{i}]")
            for i, item in enumerate(elements)
        ]

    def _check_batch_size(self, size: int) -> None:
        if self.route.vertex:
            if size > VERTEX_MAX_INSTANCES_PER_REQUEST:
                raise _invalid_argument(
                    "Unable to submit request because it included too many instances. "
                    f"The maximum is {VERTEX_MAX_INSTANCES_PER_REQUEST}.",
                    "requests",
                )
        elif size > MAX_TEXTS_PER_REQUEST:
            raise ApiError(400, _BATCH_TOO_LARGE_MESSAGE)

    def _violation(self, where: str, text: str) -> ApiError:
        location = f"{self.request_name}.{where}" if where else self.request_name
        return _invalid_argument(f"* {location}: {text}\n", where or None, text)

    def _parse_element(self, element: dict[str, Any], where: str) -> _EmbedItem:
        prefix = f"{where}." if where else ""
        _reject_unknown_fields(
            element, _VERTEX_ELEMENT_FIELDS if self.route.vertex else _GEMINI_ELEMENT_FIELDS, where
        )
        config = _as_object(
            _pick(element, "embedContentConfig", "embed_content_config") or {},
            f"{prefix}embed_content_config",
        )
        _reject_unknown_fields(config, _VERTEX_CONFIG_FIELDS, f"{prefix}embed_content_config")
        # Vertex nests the settings in embedContentConfig; the Gemini API takes them flat (and, leniently,
        # nested too).
        settings = config if self.route.vertex else {**element, **config}
        self._check_element_model(element.get("model"), prefix)
        parts = self._parse_content(element.get("content"), f"{prefix}content")
        task_type = self._parse_task_type(_pick(settings, "taskType", "task_type"), f"{prefix}task_type")
        title = _pick(settings, "title", "title")
        if title is not None and not isinstance(title, str):
            raise _invalid_argument(
                f"Invalid value at '{prefix}title' (TYPE_STRING), {json.dumps(title)}", f"{prefix}title"
            )
        dim = self._parse_dimensionality(
            _pick(settings, "outputDimensionality", "output_dimensionality"), f"{prefix}output_dimensionality"
        )
        auto_truncate = _pick(settings, "autoTruncate", "auto_truncate")
        return self._limit_length(
            _EmbedItem(parts=parts, task_type=task_type, title=title, output_dimensionality=dim),
            where or "content",
            truncate=self.route.vertex and auto_truncate is not False,
        )

    def _check_element_model(self, element_model: Any, prefix: str) -> None:
        if element_model is None:
            return
        name = str(element_model).rsplit("/", 1)[-1]
        if name != self.model.name:
            raise self._violation(
                f"{prefix}model",
                f"model in the request ({element_model}) does not match the model in the URL "
                f"(models/{self.model.name}).",
            )

    def _parse_content(self, content: Any, where: str) -> tuple[str, ...]:
        if content is None:
            raise self._violation(where, "content is required.")
        content = _as_object(content, where)
        _reject_unknown_fields(content, _CONTENT_FIELDS, where)
        raw_parts = content.get("parts") or []
        if not isinstance(raw_parts, list) or not raw_parts:
            raise self._violation(f"{where}.parts", "contents.parts must not be empty.")
        return tuple(self._parse_part(part, f"{where}.parts[{i}]") for i, part in enumerate(raw_parts))

    def _parse_part(self, part: Any, where: str) -> str:
        part = _as_object(part, where)
        _reject_unknown_fields(part, _PART_FIELDS, where)
        text = part.get("text")
        blob = _pick(part, "inlineData", "inline_data") or _pick(part, "fileData", "file_data")
        if text:
            if not isinstance(text, str):
                raise _invalid_argument(
                    f"Invalid value at '{where}.text' (TYPE_STRING), {json.dumps(text)}", f"{where}.text"
                )
            return text
        if blob:
            if not self.model.one_content_per_text:
                raise self._violation(where, f"models/{self.model.name} only supports text content.")
            digest = hashlib.blake2b(json.dumps(blob, sort_keys=True).encode(), digest_size=16).hexdigest()
            return f"{_BLOB_MARKER}{digest}"
        raise self._violation(f"{where}.data", "required oneof field 'data' must have one initialized field")

    def _parse_task_type(self, task_type: Any, where: str) -> str | None:
        if task_type is None:
            return None
        if not isinstance(task_type, str) or task_type not in _ACCEPTED_TASK_TYPES:
            enum = f"type.googleapis.com/{_PROTO_PACKAGE}.{self.route.version}.TaskType"
            raise _invalid_argument(f"Invalid value at '{where}' ({enum}), {json.dumps(task_type)}", where)
        if not self.model.supports_task_type and task_type != "TASK_TYPE_UNSPECIFIED":
            raise self._violation(where, f"task_type is not supported by models/{self.model.name}.")
        return task_type

    def _parse_dimensionality(self, value: Any, where: str) -> int | None:
        if value is None:
            return None
        if isinstance(value, str) and value.lstrip("-").isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise _invalid_argument(f"Invalid value at '{where}' (TYPE_INT32), {json.dumps(value)}", where)
        try:
            self.model.check_output_dimensionality(value)
        except ValueError as exc:
            raise self._violation(where, str(exc)) from None
        return value

    def _limit_length(self, item: _EmbedItem, where: str, *, truncate: bool) -> _EmbedItem:
        limit = self.model.max_input_tokens
        if item.tokens <= limit:
            return item
        if not truncate:
            raise self._violation(
                where,
                f"The input token count ({item.tokens}) exceeds the maximum number of tokens allowed "
                f"({limit}).",
            )
        budget = limit * 4
        kept: list[str] = []
        for part in item.parts:
            if part.startswith(_BLOB_MARKER):
                kept.append(part)
                continue
            kept.append(part[: max(0, budget)])
            budget -= len(kept[-1])
        parts = tuple(part for part in kept if part)
        return _EmbedItem(parts, item.task_type, item.title, item.output_dimensionality, truncated=True)

    def _parse_predict(self, body: dict[str, Any]) -> list[_EmbedItem]:
        _reject_unknown_fields(body, frozenset({"instances", "parameters"}), "")
        instances = body.get("instances") or []
        if not isinstance(instances, list):
            raise _invalid_argument(
                "Invalid JSON payload received. Expected a list for 'instances'.", "instances"
            )
        self._check_batch_size(len(instances))
        parameters = _as_object(body.get("parameters") or {}, "parameters")
        _reject_unknown_fields(parameters, _PREDICT_PARAMETER_FIELDS, "parameters")
        dim = self._parse_dimensionality(
            _pick(parameters, "outputDimensionality", "output_dimensionality"),
            "parameters.output_dimensionality",
        )
        truncate = _pick(parameters, "autoTruncate", "auto_truncate") is not False
        items = []
        for i, raw in enumerate(instances):
            where = f"instances[{i}]"
            instance = _as_object(raw, where)
            _reject_unknown_fields(instance, _PREDICT_INSTANCE_FIELDS, where)
            text = instance.get("content")
            if not isinstance(text, str) or not text:
                raise self._violation(f"{where}.content", "content must be a non-empty string.")
            task_type = self._parse_task_type(_pick(instance, "task_type", "taskType"), f"{where}.task_type")
            title = instance.get("title")
            item = _EmbedItem(parts=(text,), task_type=task_type, title=title, output_dimensionality=dim)
            items.append(self._limit_length(item, where, truncate=truncate))
        return items


# --------------------------------------------------------------------------------------------------------
# Quotas, stats
# --------------------------------------------------------------------------------------------------------


class _SlidingWindow:
    """Costs spent within the last ``length`` seconds."""

    def __init__(self) -> None:
        self._events: collections.deque[tuple[float, float]] = collections.deque()

    def _expire(self, now: float, length: float) -> None:
        while self._events and self._events[0][0] <= now - length:
            self._events.popleft()

    def used(self, now: float, length: float) -> float:
        self._expire(now, length)
        return sum(cost for _, cost in self._events)

    def seconds_until_room(self, now: float, length: float, cost: float, allowed: float) -> float:
        """Time until ``cost`` more fits under ``allowed`` (a whole window if it never fits)."""
        excess = self.used(now, length) + cost - allowed
        if cost > allowed:
            return length
        for stamp, spent in self._events:
            excess -= spent
            if excess <= 1e-9:
                return max(0.001, stamp + length - now)
        return length

    def add(self, now: float, cost: float) -> None:
        self._events.append((now, cost))

    def clear(self) -> None:
        self._events.clear()


@dataclass(frozen=True)
class EmulatorStats:
    """
    A snapshot of what the emulator has served since it started or since :meth:`GeminiEmulator.reset_stats`.

    Only embed calls (``batchEmbedContents``, ``embedContent``, ``predict``) are counted.

    :param requests: embed HTTP calls received, including refused, failed and dropped ones.
    :param succeeded_requests: embed calls answered 200.
    :param texts: text parts embedded successfully.
    :param embeddings: vectors returned (fewer than ``texts`` when gemini-embedding-2 merges parts).
    :param tokens: sum of ``estimate_tokens`` over the embedded texts.
    :param batch_sizes: number of elements of each successful call, in completion order.
    :param task_types: task type of each returned vector (``TASK_TYPE_UNSPECIFIED`` when none was sent).
    :param dims: length of each returned vector.
    :param models: model of each returned vector.
    :param status_counts: HTTP status of each answered embed call.
    :param max_in_flight: peak number of embed calls being served at the same time.
    :param embedded_texts: each text embedded successfully, in arrival order.
    :param dropped: embed calls whose connection was closed without an answer (``drop_next``).
    :param corrupted: successful embed calls whose answer was spoiled on purpose (``corrupt_next``); they
        are also counted in ``succeeded_requests`` and as 200 in ``status_counts``.
    """

    requests: int = 0
    succeeded_requests: int = 0
    texts: int = 0
    embeddings: int = 0
    tokens: int = 0
    batch_sizes: list[int] = field(default_factory=list)
    task_types: Counter[str] = field(default_factory=Counter)
    dims: Counter[int] = field(default_factory=Counter)
    models: Counter[str] = field(default_factory=Counter)
    status_counts: Counter[int] = field(default_factory=Counter)
    max_in_flight: int = 0
    embedded_texts: list[str] = field(default_factory=list)
    dropped: int = 0
    corrupted: int = 0


class _MutableStats:
    def __init__(self) -> None:
        self.requests = 0
        self.succeeded_requests = 0
        self.texts = 0
        self.embeddings = 0
        self.tokens = 0
        self.batch_sizes: list[int] = []
        self.task_types: Counter[str] = Counter()
        self.dims: Counter[int] = Counter()
        self.models: Counter[str] = Counter()
        self.status_counts: Counter[int] = Counter()
        self.max_in_flight = 0
        self.embedded_texts: list[str] = []
        self.dropped = 0
        self.corrupted = 0

    def snapshot(self) -> EmulatorStats:
        return EmulatorStats(
            requests=self.requests,
            succeeded_requests=self.succeeded_requests,
            texts=self.texts,
            embeddings=self.embeddings,
            tokens=self.tokens,
            batch_sizes=list(self.batch_sizes),
            task_types=Counter(self.task_types),
            dims=Counter(self.dims),
            models=Counter(self.models),
            status_counts=Counter(self.status_counts),
            max_in_flight=self.max_in_flight,
            embedded_texts=list(self.embedded_texts),
            dropped=self.dropped,
            corrupted=self.corrupted,
        )

    def record_success(self, model: EmbeddingModel, items: list[_EmbedItem]) -> None:
        self.succeeded_requests += 1
        self.batch_sizes.append(len(items))
        for item in items:
            texts = item.texts
            self.texts += len(texts)
            self.embeddings += 1
            self.tokens += item.tokens
            self.embedded_texts.extend(texts)
            self.task_types[item.task_type or "TASK_TYPE_UNSPECIFIED"] += 1
            self.dims[item.output_dimensionality or model.default_dim] += 1
            self.models[model.name] += 1


@dataclass(frozen=True)
class _Fault:
    status: int
    retry_delay: float | None = None
    drop: bool = False


_JSON_CONTENT_TYPE = "application/json; charset=UTF-8"


@dataclass(frozen=True)
class _Reply:
    """
    One HTTP answer: ``body`` encoded as JSON, or ``raw`` sent as it is (a corrupted answer).

    :param status: HTTP status.
    :param body: the JSON body.
    :param raw: text sent instead of ``body`` when set.
    :param content_type: the ``Content-Type`` header.
    """

    status: int
    body: dict[str, Any]
    raw: str | None = None
    content_type: str = _JSON_CONTENT_TYPE

    def payload(self) -> bytes:
        return (self.raw if self.raw is not None else _encode_json(self.body)).encode()


_HTML_PAGE = (
    "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8><title>Sign in to continue</title></head>\n"
    "<body><h1>Network login required</h1><p>Your request was intercepted by a proxy. "
    "Please sign in to continue.</p></body></html>\n"
)


def _embedding_objects(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The objects holding ``values`` in an embed answer, in order, whatever its route's shape."""
    if "embedding" in body:
        return [body["embedding"]]
    if "predictions" in body:
        return [prediction["embeddings"] for prediction in body["predictions"]]
    embeddings: list[dict[str, Any]] = body["embeddings"]
    return embeddings


def _corrupt(reply: _Reply, kind: str) -> _Reply:
    """
    Spoil one successful embed answer the way a broken gateway or a faulty backend would.

    Value-level kinds change the first embedding of the answer; ``nan`` and ``inf`` replace its middle value.
    """
    if kind == "html":
        return _Reply(reply.status, {}, raw=_HTML_PAGE, content_type="text/html; charset=UTF-8")
    if kind == "truncated":
        encoded = _encode_json(reply.body)
        return _Reply(reply.status, {}, raw=encoded[: len(encoded) // 2])
    target = _embedding_objects(reply.body)[0]
    values: list[float] = json.loads(target["values"])
    if kind in ("nan", "inf"):
        values[len(values) // 2] = math.nan if kind == "nan" else math.inf
        target["values"] = values
    elif kind == "zero":
        target["values"] = [0.0] * len(values)
    elif kind == "short":
        target["values"] = values[:-1]
    elif kind == "null":
        target["values"] = None
    else:
        del target["values"]
    return reply


_KNOBS = (
    "api_key",
    "host",
    "port",
    "latency_seconds",
    "requests_per_minute",
    "tokens_per_minute",
    "requests_per_day",
    "quota_window_seconds",
    "quota_counts_texts",
    "fault_rate",
    "fault_statuses",
    "seed",
    "echo_api_key_in_errors",
)


# --------------------------------------------------------------------------------------------------------
# The emulator
# --------------------------------------------------------------------------------------------------------


class GeminiEmulator:
    """
    A local Gemini embedding API (see the module docstring for routes and behaviour).

    All knobs can be changed while running with :meth:`configure`.

    :param api_key: the only key accepted (header ``x-goog-api-key`` or query ``?key=``).
    :param host: interface to listen on (IPv4).
    :param port: TCP port; 0 picks a free one.
    :param latency_seconds: delay added to every request.
    :param requests_per_minute: embed calls allowed per minute, or ``None`` for no limit.
    :param tokens_per_minute: input tokens (``estimate_tokens``) allowed per minute, or ``None``.
    :param requests_per_day: embed calls allowed per day, or ``None``. A "day" is 1440 quota windows.
    :param quota_window_seconds: length of the sliding quota window; limits scale with it, so a 1 s window
        allows ``requests_per_minute / 60`` calls a second.
    :param quota_counts_texts: count each text, not each call, against the request quotas (as the free
        tier does).
    :param fault_rate: share of embed calls that fail at random (seeded), in ``[0, 1]``.
    :param fault_statuses: statuses random faults are drawn from.
    :param seed: seed of the fault generator.
    :param echo_api_key_in_errors: put the API key received with a request into the ``error.message`` of its
        error answers, as a careless gateway would; lets tests prove a key never reaches an exception.
    """

    def __init__(
        self,
        *,
        api_key: str = DEFAULT_API_KEY,
        host: str = "127.0.0.1",
        port: int = 0,
        latency_seconds: float = 0.0,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        requests_per_day: int | None = None,
        quota_window_seconds: float = 60.0,
        quota_counts_texts: bool = False,
        fault_rate: float = 0.0,
        fault_statuses: Iterable[int] = (500, 503),
        seed: int = 0,
        echo_api_key_in_errors: bool = False,
    ) -> None:
        self._lock = threading.Lock()
        self._server: _EmulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stats = _MutableStats()
        self._in_flight = 0
        self._faults: collections.deque[_Fault] = collections.deque()
        self._corruptions: collections.deque[str] = collections.deque()
        self._request_window = _SlidingWindow()
        self._token_window = _SlidingWindow()
        self._day_window = _SlidingWindow()
        self.api_key = api_key
        self.host = host
        self.port = port
        self.latency_seconds = 0.0
        self.requests_per_minute: float | None = None
        self.tokens_per_minute: float | None = None
        self.requests_per_day: int | None = None
        self.quota_window_seconds = 60.0
        self.quota_counts_texts = False
        self.fault_rate = 0.0
        self.fault_statuses: tuple[int, ...] = ()
        self.seed = seed
        self.echo_api_key_in_errors = echo_api_key_in_errors
        self._random = random.Random(seed)
        self.configure(
            latency_seconds=latency_seconds,
            requests_per_minute=requests_per_minute,
            tokens_per_minute=tokens_per_minute,
            requests_per_day=requests_per_day,
            quota_window_seconds=quota_window_seconds,
            quota_counts_texts=quota_counts_texts,
            fault_rate=fault_rate,
            fault_statuses=fault_statuses,
        )

    # -- life cycle ------------------------------------------------------------------------------------

    def start(self) -> GeminiEmulator:
        """Start serving in a daemon thread and return ``self``."""
        if self._server is not None:
            return self
        server = _EmulatorHTTPServer((self.host, self.port), _EmulatorRequestHandler, self)
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="gemini-emulator", daemon=True
        )
        self._thread.start()
        log.info("Gemini emulator listening on %s", self.base_url)
        return self

    def stop(self) -> None:
        """Stop serving and close every open connection."""
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.close_open_connections()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = None
        self._thread = None
        log.info("Gemini emulator on port %s stopped", self.port)

    def __enter__(self) -> GeminiEmulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (the address clients should use)."""
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        return f"http://{host}:{self.port}"

    def connection_json(self, **extra: Any) -> str:
        """
        The ``AIRFLOW_CONN_GEMINI_DEFAULT`` value pointing at this emulator.

        :param extra: more connection extras (e.g. ``max_retries=5``).
        """
        return json.dumps(
            {"conn_type": "gemini", "password": self.api_key, "extra": {"base_url": self.base_url, **extra}}
        )

    # -- knobs, faults, stats ---------------------------------------------------------------------------

    def configure(self, **knobs: Any) -> GeminiEmulator:
        """
        Change knobs (the constructor's keyword arguments) at any time; returns ``self``.

        :param knobs: any of the constructor's keyword arguments. ``host`` and ``port`` only before start.
        """
        unknown = set(knobs) - set(_KNOBS)
        if unknown:
            raise TypeError(f"unknown emulator knob(s): {', '.join(sorted(unknown))}")
        if self._server is not None and ({"host", "port"} & set(knobs)):
            raise ValueError("host and port cannot change while the emulator is running")
        _validate_knobs(knobs)
        with self._lock:
            for name, value in knobs.items():
                setattr(self, name, tuple(value) if name == "fault_statuses" else value)
            if "seed" in knobs:
                self._random = random.Random(knobs["seed"])
        return self

    def fail_next(self, count: int = 1, status: int = 503, retry_delay: float | None = None) -> None:
        """
        Answer the next ``count`` embed calls with ``status`` (after the key and model checks, before the body
        is validated).

        :param count: how many calls fail.
        :param status: one of ``SUPPORTED_FAULT_STATUSES`` (429, 500, 503, 504, ...).
        :param retry_delay: for 429, seconds put in ``RetryInfo.retryDelay`` (with a ``QuotaFailure``);
            without it a 429 is the bare, detail-less kind.
        """
        if status not in SUPPORTED_FAULT_STATUSES:
            raise ValueError(f"status must be one of {SUPPORTED_FAULT_STATUSES}, got {status}")
        with self._lock:
            self._faults.extend(_Fault(status, retry_delay) for _ in range(count))

    def drop_next(self, count: int = 1) -> None:
        """
        Close the connection of the next ``count`` embed calls without answering.

        :param count: how many calls are dropped.
        """
        with self._lock:
            self._faults.extend(_Fault(0, drop=True) for _ in range(count))

    def corrupt_next(self, count: int = 1, kind: str = "nan") -> None:
        """
        Spoil the next ``count`` successful (200) embed answers, on every embed route.

        ``nan`` and ``inf`` put a ``NaN`` / ``Infinity`` token (as ``json.dumps`` writes them) in place of the
        middle value of the first embedding; ``zero`` makes it all zeros; ``short`` drops its last value;
        ``null`` sends ``"values": null``; ``missing`` leaves ``values`` out. ``html`` answers 200 with an
        HTML page, ``truncated`` with the first half of the JSON answer. Failed calls do not use up a
        corruption.

        :param count: how many successful answers are spoiled.
        :param kind: one of ``CORRUPTION_KINDS``.
        """
        if kind not in CORRUPTION_KINDS:
            raise ValueError(f"kind must be one of {CORRUPTION_KINDS}, got {kind!r}")
        with self._lock:
            self._corruptions.extend(kind for _ in range(count))

    def clear_faults(self) -> None:
        """Forget queued ``fail_next`` / ``drop_next`` faults and ``corrupt_next`` corruptions."""
        with self._lock:
            self._faults.clear()
            self._corruptions.clear()

    def reset_stats(self) -> None:
        """Zero the counters (quota windows are kept; see :meth:`reset_quotas`)."""
        with self._lock:
            self._stats = _MutableStats()

    def reset_quotas(self) -> None:
        """Forget what the quota windows have counted."""
        with self._lock:
            self._request_window.clear()
            self._token_window.clear()
            self._day_window.clear()

    @property
    def stats(self) -> EmulatorStats:
        """A thread-safe snapshot of the counters."""
        with self._lock:
            return self._stats.snapshot()

    # -- request handling (called from the HTTP handler threads) ---------------------------------------

    def _answer(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> _Reply | None:
        """Answer one HTTP request; ``None`` means: drop the connection without answering."""
        parsed = urllib.parse.urlsplit(raw_path)
        query = urllib.parse.parse_qs(parsed.query)
        route = _match_route(method, parsed.path)
        if route.kind != "embed":
            self._sleep_latency()
            return self._handle_other(route, headers, query)
        with self._lock:
            self._stats.requests += 1
            self._in_flight += 1
            self._stats.max_in_flight = max(self._stats.max_in_flight, self._in_flight)
        try:
            self._sleep_latency()
            reply = self._handle_embed(route, headers, query, body)
            with self._lock:
                if reply is None:
                    self._stats.dropped += 1
                else:
                    self._stats.status_counts[reply.status] += 1
            return reply
        finally:
            with self._lock:
                self._in_flight -= 1

    def _sleep_latency(self) -> None:
        if self.latency_seconds > 0:
            time.sleep(self.latency_seconds)

    def _handle_other(self, route: _Route, headers: dict[str, str], query: dict[str, list[str]]) -> _Reply:
        try:
            if route.kind == "unknown":
                raise ApiError(404, "Method not found.")
            self._check_key(headers, query, vertex=route.vertex)
            if route.kind == "list_models":
                return _Reply(200, _list_models(query))
            model = self._lookup_model(route)
            return _Reply(200, _vertex_model_resource(model) if route.vertex else _model_resource(model))
        except ApiError as error:
            return self._error_reply(error, _received_key(headers, query))

    def _error_reply(self, error: ApiError, received_key: str) -> _Reply:
        body = error.body()
        if self.echo_api_key_in_errors and received_key:
            body["error"]["message"] = f"{error.message} (request key: {received_key})"
        return _Reply(error.code, body)

    def _handle_embed(
        self, route: _Route, headers: dict[str, str], query: dict[str, list[str]], body: bytes
    ) -> _Reply | None:
        try:
            self._check_key(headers, query, vertex=route.vertex)
            model = self._lookup_model(route)
            fault = self._next_queued_fault()
            if fault is not None and fault.drop:
                return None
            if fault is not None:
                raise _fault_error(fault.status, model.name, fault.retry_delay)
            items = _RequestParser(model, route).parse(_parse_json_body(body))
            self._maybe_random_fault(model)
            self._spend_quota(model, items)
            reply = _Reply(200, _embed_response(model, route, items))
            with self._lock:
                self._stats.record_success(model, items)
                corruption = self._corruptions.popleft() if self._corruptions else None
                if corruption is not None:
                    self._stats.corrupted += 1
            log.debug("Embedded %d element(s) with %s", len(items), model.name)
            return reply if corruption is None else _corrupt(reply, corruption)
        except ApiError as error:
            log.debug("Embed call refused with %d %s", error.code, error.status)
            return self._error_reply(error, _received_key(headers, query))

    def _check_key(self, headers: dict[str, str], query: dict[str, list[str]], *, vertex: bool) -> None:
        key = _received_key(headers, query)
        if not key:
            if vertex:
                raise ApiError(401, _VERTEX_MISSING_CREDENTIAL_MESSAGE)
            raise ApiError(403, _MISSING_KEY_MESSAGE)
        if key != self.api_key:
            raise _invalid_key_error(_VERTEX_SERVICE if vertex else _GEMINI_SERVICE)

    def _lookup_model(self, route: _Route) -> EmbeddingModel:
        model = MODELS.get(route.model)
        if model is not None:
            return model
        if route.vertex:
            raise ApiError(
                404,
                f"Publisher Model `publishers/google/models/{route.model}` was not found or your project "
                "does not have access to it. Please ensure you are using a valid model version.",
            )
        raise ApiError(
            404,
            f"models/{route.model} is not found for API version {route.version}, or is not supported for "
            "embedContent. Call ListModels to see the list of available models and their supported methods.",
        )

    def _next_queued_fault(self) -> _Fault | None:
        with self._lock:
            return self._faults.popleft() if self._faults else None

    def _maybe_random_fault(self, model: EmbeddingModel) -> None:
        with self._lock:
            if self.fault_rate <= 0 or not self.fault_statuses or self._random.random() >= self.fault_rate:
                return
            status = self._random.choice(self.fault_statuses)
        raise _fault_error(status, model.name, 1.0 if status == 429 else None)

    def _spend_quota(self, model: EmbeddingModel, items: list[_EmbedItem]) -> None:
        """Refuse with 429 when a quota is full; otherwise count the call (refused calls are not counted)."""
        request_cost = float(len(items)) if self.quota_counts_texts else 1.0
        token_cost = float(sum(item.tokens for item in items))
        with self._lock:
            now = time.monotonic()
            window = self.quota_window_seconds
            scale = window / 60.0
            if self.requests_per_day is not None:
                day = window * 1440
                if self._day_window.used(now, day) + request_cost > self.requests_per_day:
                    raise _quota_error(
                        model=model.name,
                        metric="embed_content_requests",
                        quota_id="EmbedContentRequestsPerDayPerProjectPerModel",
                        limit=self.requests_per_day,
                        retry_delay=None,
                    )
            per_minute_quotas = (
                (
                    self.requests_per_minute,
                    self._request_window,
                    request_cost,
                    "embed_content_requests",
                    "EmbedContentRequestsPerMinutePerProjectPerModel",
                ),
                (
                    self.tokens_per_minute,
                    self._token_window,
                    token_cost,
                    "embed_content_input_token_count",
                    "EmbedContentInputTokensPerMinutePerProjectPerModel",
                ),
            )
            for limit, quota_window, cost, metric, quota_id in per_minute_quotas:
                if limit is None:
                    continue
                allowed = limit * scale
                if quota_window.used(now, window) + cost > allowed:
                    raise _quota_error(
                        model=model.name,
                        metric=metric,
                        quota_id=quota_id,
                        limit=limit,
                        retry_delay=quota_window.seconds_until_room(now, window, cost, allowed),
                    )
            self._day_window.add(now, request_cost)
            self._request_window.add(now, request_cost)
            self._token_window.add(now, token_cost)


def _received_key(headers: dict[str, str], query: dict[str, list[str]]) -> str:
    """The API key sent with a request (header ``x-goog-api-key`` or query ``?key=``), or ``""``."""
    return headers.get("x-goog-api-key") or next(iter(query.get("key") or []), "")


def _validate_knobs(knobs: dict[str, Any]) -> None:
    for name in ("latency_seconds", "requests_per_minute", "tokens_per_minute", "requests_per_day"):
        value = knobs.get(name)
        if value is not None and value < 0:
            raise ValueError(f"{name} must not be negative, got {value}")
    if "quota_window_seconds" in knobs and not knobs["quota_window_seconds"] > 0:
        raise ValueError(f"quota_window_seconds must be positive, got {knobs['quota_window_seconds']}")
    if "fault_rate" in knobs and not 0.0 <= knobs["fault_rate"] <= 1.0:
        raise ValueError(f"fault_rate must be within [0, 1], got {knobs['fault_rate']}")
    for status in knobs.get("fault_statuses", ()):
        if status not in SUPPORTED_FAULT_STATUSES:
            raise ValueError(f"fault status must be one of {SUPPORTED_FAULT_STATUSES}, got {status}")


def _parse_json_body(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _invalid_argument("Invalid JSON payload received. Unexpected token.") from None
    if not isinstance(payload, dict):
        raise _invalid_argument("Invalid JSON payload received. Expected an object.")
    return payload


def _embed_response(model: EmbeddingModel, route: _Route, items: list[_EmbedItem]) -> dict[str, Any]:
    vectors = [
        _vector_json(model.name, item.task_type, item.title, item.parts, item.output_dimensionality)
        for item in items
    ]
    if not route.vertex:
        if route.method == "embedContent":
            return {"embedding": {"values": vectors[0]}}
        return {"embeddings": [{"values": values} for values in vectors]}
    if route.method == "embedContent":
        tokens = items[0].tokens
        return {
            "embedding": {"values": vectors[0]},
            "usageMetadata": {"promptTokenCount": tokens, "totalTokenCount": tokens},
            "truncated": items[0].truncated,
        }
    statistics = [{"truncated": item.truncated, "token_count": item.tokens} for item in items]
    if route.method == "predict":
        return {
            "predictions": [
                {"embeddings": {"values": values, "statistics": stats}}
                for values, stats in zip(vectors, statistics, strict=True)
            ],
            "metadata": {"billableCharacterCount": sum(len(text) for item in items for text in item.texts)},
        }
    return {
        "embeddings": [
            {"values": values, "statistics": stats} for values, stats in zip(vectors, statistics, strict=True)
        ]
    }


def _display_name(model: EmbeddingModel) -> str:
    return " ".join(word.capitalize() if word.isalpha() else word for word in model.name.split("-"))


def _model_version(model: EmbeddingModel) -> str:
    if "-exp-" in model.name:
        return model.name.split("-", 2)[-1]
    return model.name.rsplit("-", 1)[-1]


def _model_resource(model: EmbeddingModel) -> dict[str, Any]:
    return {
        "name": f"models/{model.name}",
        "version": _model_version(model),
        "displayName": _display_name(model),
        "description": "Obtain a distributed representation of a text.",
        "inputTokenLimit": model.max_input_tokens,
        "outputTokenLimit": 1,
        "supportedGenerationMethods": ["embedContent", "batchEmbedContents"],
    }


def _vertex_model_resource(model: EmbeddingModel) -> dict[str, Any]:
    return {
        "name": f"publishers/google/models/{model.name}",
        "versionId": _model_version(model),
        "displayName": _display_name(model),
        "openSourceCategory": "PROPRIETARY",
        "launchStage": "GA",
    }


def _list_models(query: dict[str, list[str]]) -> dict[str, Any]:
    names = sorted(MODELS)
    try:
        page_size = int((query.get("pageSize") or query.get("page_size") or ["50"])[0])
        offset = int((query.get("pageToken") or query.get("page_token") or ["0"])[0] or 0)
    except ValueError:
        raise _invalid_argument("Invalid page size or page token.") from None
    page_size = 50 if page_size <= 0 else min(page_size, 1000)
    page = names[offset : offset + page_size]
    response: dict[str, Any] = {"models": [_model_resource(MODELS[name]) for name in page]}
    if offset + page_size < len(names):
        response["nextPageToken"] = str(offset + page_size)
    return response


# --------------------------------------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------------------------------------

_KEY_IN_QUERY_RE = re.compile(r"([?&]key=)[^&\s'\"]*", re.IGNORECASE)


class _EmulatorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 256
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        emulator: GeminiEmulator,
    ) -> None:
        self.emulator = emulator
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_open_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _EmulatorRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "GeminiEmulator/1.0"
    server: _EmulatorHTTPServer

    def setup(self) -> None:
        super().setup()
        # Headers and body leave in two writes; without this, Nagle plus delayed ACKs add ~40 ms a call.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        body = self._read_body()
        headers = {name.lower(): value for name, value in self.headers.items()}
        try:
            reply = self.server.emulator._answer(method, self.path, headers, body)
        except Exception:
            log.exception("Gemini emulator failed to answer a %s request", method)
            reply = _Reply(500, ApiError(500, _FAULT_MESSAGES[500]).body())
        if reply is None:
            self._drop_connection()
            return
        self._send_reply(reply)

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked_body()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _read_chunked_body(self) -> bytes:
        chunks: list[bytes] = []
        while True:
            size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline()

    def _send_reply(self, reply: _Reply) -> None:
        payload = reply.payload()
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Vary", "Origin, X-Origin, Referer")
        self.end_headers()
        self.wfile.write(payload)

    def _drop_connection(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        path = urllib.parse.urlsplit(self.path).path
        log.debug("%s %s -> %s", self.command, path, code)

    def log_message(self, format: str, *args: Any) -> None:
        message = _KEY_IN_QUERY_RE.sub(r"\1<redacted>", format % args)
        api_key = self.server.emulator.api_key
        if api_key:
            message = message.replace(api_key, "<redacted>")
        log.debug("HTTP: %s", message)


# --------------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------------


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_gemini_milvus.testing.gemini_emulator",
        description="Serve a local Gemini embedding API for offline tests.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="TCP port (default 8765; 0 = any free port)")
    parser.add_argument("--api-key", default=DEFAULT_API_KEY, help="the API key to accept")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every request")
    parser.add_argument("--rpm", type=float, default=None, help="embed calls allowed per minute")
    parser.add_argument("--tpm", type=float, default=None, help="input tokens allowed per minute")
    parser.add_argument("--rpd", type=int, default=None, help="embed calls allowed per day")
    parser.add_argument("--fault-rate", type=float, default=0.0, help="share of calls failing at random")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random faults")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """
    Run the emulator until SIGINT or SIGTERM.

    :param argv: command-line arguments (``sys.argv[1:]`` when ``None``).
    """
    args = _parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    emulator = GeminiEmulator(
        api_key=args.api_key,
        host=args.host,
        port=args.port,
        latency_seconds=args.latency,
        requests_per_minute=args.rpm,
        tokens_per_minute=args.tpm,
        requests_per_day=args.rpd,
        fault_rate=args.fault_rate,
        seed=args.seed,
    )
    stop_requested = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop_requested.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    emulator.start()
    print(f"Gemini emulator serving at {emulator.base_url}", flush=True)
    print(f"export AIRFLOW_CONN_GEMINI_DEFAULT='{emulator.connection_json()}'", flush=True)
    try:
        while not stop_requested.wait(0.5):
            pass
    finally:
        emulator.stop()
    print("Gemini emulator stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
