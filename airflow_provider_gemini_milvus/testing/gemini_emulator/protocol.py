"""
The wire protocol: the routes served, embed request bodies parsed and validated the way the real service
does (first problem found wins, named by its field path), and the answer bodies of each route.

Media parts (gemini-embedding-2 only; other models answer 400 "only supports text content") come as
``{"inline_data": {"mime_type", "data": base64}}`` or ``{"file_data": {"mime_type"?, "file_uri"}}`` (the
SDK's snake_case; camelCase ``inlineData``/``mimeType``/``fileData``/``fileUri`` accepted too). Checked in
this order, the first problem answering:

* the MIME type is required (for ``file_data`` the uploaded file's own type stands in) and must be one of
  :data:`~.media.SUPPORTED_MEDIA_TYPES`, else 400 ``Unsupported MIME type: {type}``;
* ``data`` must be base64 (standard or URL-safe, padding optional, as proto-JSON reads bytes), else 400
  ``Invalid value at '...inline_data.data' (TYPE_BYTES), Base64 decoding failed for "..."``;
* ``file_uri`` must name a file of the Files API (``.../files/{id}``): 400 ``Invalid or unsupported file
  uri: ...`` when it does not look like one, 403 ``PERMISSION_DENIED`` "You do not have permission to
  access the File {id} or it may not exist." when there is no such file (the real service's answer for an
  unknown or foreign file), 400 ``FAILED_PRECONDITION`` while it is still ``PROCESSING``;
* a PDF has at most 6 pages (``/Type /Page`` objects), a ``Content`` at most 6 images.

The 20 MiB limit on the whole request body is checked by the server before parsing
(:data:`~.media.MAX_REQUEST_BYTES`).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import urllib.parse
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_gemini_milvus.gemini.models import (
    MAX_TEXTS_PER_REQUEST,
    MODELS,
    TASK_TYPES,
    EmbeddingModel,
    estimate_tokens,
)
from airflow_provider_gemini_milvus.testing.gemini_emulator.errors import ApiError, invalid_argument
from airflow_provider_gemini_milvus.testing.gemini_emulator.media import (
    MAX_IMAGES_PER_CONTENT,
    MAX_PDF_PAGES,
    SUPPORTED_MEDIA_TYPES,
    MediaFacts,
    inspect_media,
)
from airflow_provider_gemini_milvus.testing.gemini_emulator.vectors import (
    BLOB_MARKER,
    encode_json,
    media_part,
    vector_json,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    #: Resolves a ``file_uri`` to the file's ``(mime type, bytes)``, or raises the service's error.
    FileResolver = Callable[[str], tuple[str, bytes]]

__all__ = [
    "JSON_CONTENT_TYPE",
    "VERTEX_MAX_INSTANCES_PER_REQUEST",
    "EmbedItem",
    "Reply",
    "RequestParser",
    "Route",
    "embed_response",
    "list_models",
    "lookup_model",
    "match_route",
    "model_resource",
    "parse_json_body",
    "received_key",
    "vertex_model_resource",
]

#: Vertex AI accepts more instances per call than the Gemini Developer API.
VERTEX_MAX_INSTANCES_PER_REQUEST = 250
_BATCH_TOO_LARGE_MESSAGE = (
    f"* BatchEmbedContentsRequest.requests: at most {MAX_TEXTS_PER_REQUEST} requests can be in one batch\n"
)
_PROTO_PACKAGE = "google.ai.generativelanguage"
_ACCEPTED_TASK_TYPES = frozenset((*TASK_TYPES, "TASK_TYPE_UNSPECIFIED"))


@dataclass(frozen=True)
class EmbedItem:
    """
    One element to embed: the parts of one ``Content`` and its settings.

    :param parts: its texts, and its media parts as :func:`~.vectors.media_part` strings, in part order.
    :param media: the facts of its media parts, in part order.
    """

    parts: tuple[str, ...]
    task_type: str | None
    title: str | None
    output_dimensionality: int | None
    truncated: bool = False
    media: tuple[MediaFacts, ...] = ()

    @property
    def texts(self) -> list[str]:
        return [part for part in self.parts if not part.startswith(BLOB_MARKER)]

    @property
    def tokens(self) -> int:
        """Tokens of the texts (what the input limit counts)."""
        return sum(estimate_tokens(text) for text in self.texts)

    @property
    def media_tokens(self) -> int:
        """Tokens of the media parts (258 an image or PDF page, 32 a second of audio, 263 of video)."""
        return sum(facts.tokens for facts in self.media)

    @property
    def total_tokens(self) -> int:
        """Tokens of texts and media: what quotas count and answers report."""
        return self.tokens + self.media_tokens


@dataclass(frozen=True)
class Route:
    """A matched URL: what is asked for, of which model, through which API."""

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


def match_route(method: str, path: str) -> Route:
    """The route of ``method`` on ``path`` (kind ``unknown`` when none matches)."""
    for route_method, pattern, kind, vertex in _ROUTES:
        if route_method != method:
            continue
        match = pattern.match(path)
        if match:
            groups = match.groupdict()
            return Route(
                kind=kind,
                version=groups["version"],
                model=urllib.parse.unquote(groups.get("model") or ""),
                method=groups.get("method") or "",
                vertex=vertex,
            )
    return Route(kind="unknown")


def lookup_model(route: Route) -> EmbeddingModel:
    """The catalogue entry of the model in the URL, or the 404 the real service answers."""
    model = MODELS.get(route.model)
    # A retired model answers 404 as any unknown one; a Vertex AI only model is unknown to the Gemini API.
    if model is not None and model.retired_on is None and (route.vertex or not model.vertex_only):
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


def _pick(obj: dict[str, Any], camel: str, snake: str) -> Any:
    """Proto-JSON accepts both spellings of a field name."""
    return obj[camel] if camel in obj else obj.get(snake)


def _reject_unknown_fields(obj: dict[str, Any], allowed: frozenset[str], where: str) -> None:
    for name in obj:
        if name not in allowed:
            location = f" at '{where}'" if where else ""
            raise invalid_argument(
                f'Invalid JSON payload received. Unknown name "{name}"{location}: Cannot find field.', where
            )


def _as_object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid_argument(
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
_BLOB_FIELDS = frozenset({"mimeType", "mime_type", "data", "displayName", "display_name"})
_FILE_DATA_FIELDS = frozenset({"mimeType", "mime_type", "fileUri", "file_uri", "displayName", "display_name"})
_BASE64_RE = re.compile(r"^[A-Za-z0-9+/_-]*={0,2}$")


def _decode_base64(data: Any) -> bytes | None:
    """Bytes as proto-JSON reads them: standard or URL-safe base64, padding optional; ``None`` if invalid."""
    if not isinstance(data, str):
        return None
    text = data.strip()
    if not _BASE64_RE.match(text):
        return None
    body = text.rstrip("=").replace("-", "+").replace("_", "/")
    if len(body) % 4 == 1:
        return None
    try:
        return base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except binascii.Error:
        return None


_PREDICT_INSTANCE_FIELDS = frozenset({"content", "task_type", "taskType", "title", "mimeType", "mime_type"})
_PREDICT_PARAMETER_FIELDS = frozenset(
    {"outputDimensionality", "output_dimensionality", "autoTruncate", "auto_truncate"}
)


class RequestParser:
    """
    Turn one embed request body into validated :class:`EmbedItem` values, raising :class:`ApiError`
    exactly as the real service would (first problem found wins).

    :param model: catalogue entry of the model in the URL.
    :param route: the matched route (Gemini API or Vertex, and which method).
    :param files: resolves the ``file_uri`` of a ``file_data`` part (the emulator's Files API); without
        it every file is unknown.
    """

    def __init__(self, model: EmbeddingModel, route: Route, files: FileResolver | None = None) -> None:
        self.model = model
        self.route = route
        self.files = files
        self.request_name = {
            "batchEmbedContents": "BatchEmbedContentsRequest",
            "embedContent": "EmbedContentRequest",
            "predict": "PredictRequest",
        }[route.method]

    def parse(self, body: dict[str, Any]) -> list[EmbedItem]:
        if self.route.method == "embedContent":
            return [self._parse_element(body, "")]
        if self.route.method == "predict":
            return self._parse_predict(body)
        _reject_unknown_fields(body, frozenset({"requests"}), "")
        elements = body.get("requests")
        if elements is None:
            elements = []
        if not isinstance(elements, list):
            raise invalid_argument(
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
                raise invalid_argument(
                    "Unable to submit request because it included too many instances. "
                    f"The maximum is {VERTEX_MAX_INSTANCES_PER_REQUEST}.",
                    "requests",
                )
        elif size > MAX_TEXTS_PER_REQUEST:
            raise ApiError(400, _BATCH_TOO_LARGE_MESSAGE)

    def _violation(self, where: str, text: str) -> ApiError:
        location = f"{self.request_name}.{where}" if where else self.request_name
        return invalid_argument(f"* {location}: {text}\n", where or None, text)

    def _parse_element(self, element: dict[str, Any], where: str) -> EmbedItem:
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
        parts, media = self._parse_content(element.get("content"), f"{prefix}content")
        task_type = self._parse_task_type(_pick(settings, "taskType", "task_type"), f"{prefix}task_type")
        title = _pick(settings, "title", "title")
        if title is not None and not isinstance(title, str):
            raise invalid_argument(
                f"Invalid value at '{prefix}title' (TYPE_STRING), {json.dumps(title)}", f"{prefix}title"
            )
        dim = self._parse_dimensionality(
            _pick(settings, "outputDimensionality", "output_dimensionality"), f"{prefix}output_dimensionality"
        )
        auto_truncate = _pick(settings, "autoTruncate", "auto_truncate")
        return self._limit_length(
            EmbedItem(parts=parts, task_type=task_type, title=title, output_dimensionality=dim, media=media),
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

    def _parse_content(self, content: Any, where: str) -> tuple[tuple[str, ...], tuple[MediaFacts, ...]]:
        if content is None:
            raise self._violation(where, "content is required.")
        content = _as_object(content, where)
        _reject_unknown_fields(content, _CONTENT_FIELDS, where)
        raw_parts = content.get("parts") or []
        if not isinstance(raw_parts, list) or not raw_parts:
            raise self._violation(f"{where}.parts", "contents.parts must not be empty.")
        parts: list[str] = []
        media: list[MediaFacts] = []
        images = 0
        for i, raw_part in enumerate(raw_parts):
            text, facts = self._parse_part(raw_part, f"{where}.parts[{i}]")
            parts.append(text)
            if facts is None:
                continue
            media.append(facts)
            images += facts.kind == "image"
            if images > MAX_IMAGES_PER_CONTENT:
                raise self._violation(
                    where,
                    f"The number of images in a content ({images} so far) exceeds the maximum allowed "
                    f"({MAX_IMAGES_PER_CONTENT}).",
                )
        return tuple(parts), tuple(media)

    def _parse_part(self, part: Any, where: str) -> tuple[str, MediaFacts | None]:
        part = _as_object(part, where)
        _reject_unknown_fields(part, _PART_FIELDS, where)
        text = part.get("text")
        inline = _pick(part, "inlineData", "inline_data")
        file = _pick(part, "fileData", "file_data")
        if text:
            if not isinstance(text, str):
                raise invalid_argument(
                    f"Invalid value at '{where}.text' (TYPE_STRING), {json.dumps(text)}", f"{where}.text"
                )
            return text, None
        if inline or file:
            if not self.model.one_content_per_text:
                raise self._violation(where, f"models/{self.model.name} only supports text content.")
            if inline:
                mime_type, data = self._parse_inline_data(_as_object(inline, f"{where}.inline_data"), where)
            else:
                mime_type, data = self._parse_file_data(_as_object(file, f"{where}.file_data"), where)
            facts = inspect_media(mime_type, data)
            if facts.pages is not None and facts.pages > MAX_PDF_PAGES:
                raise self._violation(
                    where,
                    f"The document has {facts.pages} pages, which exceeds the maximum number of pages "
                    f"allowed ({MAX_PDF_PAGES}).",
                )
            return media_part(facts.mime_type, facts.sha256, facts.description), facts
        raise self._violation(f"{where}.data", "required oneof field 'data' must have one initialized field")

    def _check_mime_type(self, mime_type: Any, where: str) -> str:
        if mime_type is None or mime_type == "":
            raise self._violation(where, "mime_type is required.")
        if not isinstance(mime_type, str) or mime_type.strip().lower() not in SUPPORTED_MEDIA_TYPES:
            raise invalid_argument(f"Unsupported MIME type: {mime_type}", where)
        return mime_type.strip().lower()

    def _parse_inline_data(self, blob: dict[str, Any], where: str) -> tuple[str, bytes]:
        _reject_unknown_fields(blob, _BLOB_FIELDS, f"{where}.inline_data")
        mime_type = self._check_mime_type(
            _pick(blob, "mimeType", "mime_type"), f"{where}.inline_data.mime_type"
        )
        data = blob.get("data")
        decoded = _decode_base64(data)
        if decoded is None:
            shown = data if isinstance(data, str) and len(data) <= 40 else f"{str(data)[:40]}..."
            raise invalid_argument(
                f"Invalid value at '{where}.inline_data.data' (TYPE_BYTES), Base64 decoding failed for "
                f"{json.dumps(shown)}",
                f"{where}.inline_data.data",
            )
        if not decoded:
            raise self._violation(f"{where}.inline_data.data", "data must not be empty.")
        return mime_type, decoded

    def _parse_file_data(self, file: dict[str, Any], where: str) -> tuple[str, bytes]:
        _reject_unknown_fields(file, _FILE_DATA_FIELDS, f"{where}.file_data")
        uri = _pick(file, "fileUri", "file_uri")
        if not isinstance(uri, str) or not uri:
            raise self._violation(f"{where}.file_data.file_uri", "file_uri is required.")
        if self.files is None:
            raise invalid_argument(f"Invalid or unsupported file uri: {uri}", f"{where}.file_data.file_uri")
        try:
            stored_type, data = self.files(uri)
        except ApiError as error:
            if error.status != "INVALID_ARGUMENT":
                raise
            raise invalid_argument(error.message, f"{where}.file_data.file_uri") from None
        mime_type = _pick(file, "mimeType", "mime_type") or stored_type
        return self._check_mime_type(mime_type, f"{where}.file_data.mime_type"), data

    def _parse_task_type(self, task_type: Any, where: str) -> str | None:
        if task_type is None:
            return None
        if not isinstance(task_type, str) or task_type not in _ACCEPTED_TASK_TYPES:
            enum = f"type.googleapis.com/{_PROTO_PACKAGE}.{self.route.version}.TaskType"
            raise invalid_argument(f"Invalid value at '{where}' ({enum}), {json.dumps(task_type)}", where)
        if not self.model.supports_task_type and task_type != "TASK_TYPE_UNSPECIFIED":
            raise self._violation(where, f"task_type is not supported by models/{self.model.name}.")
        return task_type

    def _parse_dimensionality(self, value: Any, where: str) -> int | None:
        if value is None:
            return None
        if isinstance(value, str) and value.lstrip("-").isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise invalid_argument(f"Invalid value at '{where}' (TYPE_INT32), {json.dumps(value)}", where)
        try:
            self.model.check_output_dimensionality(value)
        except ValueError as exc:
            raise self._violation(where, str(exc)) from None
        return value

    def _limit_length(self, item: EmbedItem, where: str, *, truncate: bool) -> EmbedItem:
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
            if part.startswith(BLOB_MARKER):
                kept.append(part)
                continue
            kept.append(part[: max(0, budget)])
            budget -= len(kept[-1])
        parts = tuple(part for part in kept if part)
        return EmbedItem(
            parts, item.task_type, item.title, item.output_dimensionality, truncated=True, media=item.media
        )

    def _parse_predict(self, body: dict[str, Any]) -> list[EmbedItem]:
        _reject_unknown_fields(body, frozenset({"instances", "parameters"}), "")
        instances = body.get("instances") or []
        if not isinstance(instances, list):
            raise invalid_argument(
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
            item = EmbedItem(parts=(text,), task_type=task_type, title=title, output_dimensionality=dim)
            items.append(self._limit_length(item, where, truncate=truncate))
        return items


JSON_CONTENT_TYPE = "application/json; charset=UTF-8"


@dataclass(frozen=True)
class Reply:
    """
    One HTTP answer: ``body`` encoded as JSON, or ``raw`` sent as it is (a corrupted answer).

    :param status: HTTP status.
    :param body: the JSON body.
    :param raw: text sent instead of ``body`` when set.
    :param content_type: the ``Content-Type`` header.
    :param headers: more response headers (the upload handshake's ``x-goog-upload-url``, ...).
    """

    status: int
    body: dict[str, Any]
    raw: str | None = None
    content_type: str = JSON_CONTENT_TYPE
    headers: tuple[tuple[str, str], ...] = ()

    def payload(self) -> bytes:
        return (self.raw if self.raw is not None else encode_json(self.body)).encode()


def received_key(headers: dict[str, str], query: dict[str, list[str]]) -> str:
    """The API key sent with a request (header ``x-goog-api-key`` or query ``?key=``), or ``""``."""
    return headers.get("x-goog-api-key") or next(iter(query.get("key") or []), "")


def parse_json_body(body: bytes) -> dict[str, Any]:
    """The JSON object of a request body (``{}`` when empty), or the 400 the real service answers."""
    if not body.strip():
        return {}
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise invalid_argument("Invalid JSON payload received. Unexpected token.") from None
    if not isinstance(payload, dict):
        raise invalid_argument("Invalid JSON payload received. Expected an object.")
    return payload


def embed_response(model: EmbeddingModel, route: Route, items: list[EmbedItem]) -> dict[str, Any]:
    """The answer body of a successful embed call, in the shape of its route."""
    vectors = [
        vector_json(model.name, item.task_type, item.title, item.parts, item.output_dimensionality)
        for item in items
    ]
    if not route.vertex:
        if route.method == "embedContent":
            return {"embedding": {"values": vectors[0]}}
        return {"embeddings": [{"values": values} for values in vectors]}
    if route.method == "embedContent":
        tokens = items[0].total_tokens
        return {
            "embedding": {"values": vectors[0]},
            "usageMetadata": {"promptTokenCount": tokens, "totalTokenCount": tokens},
            "truncated": items[0].truncated,
        }
    statistics = [{"truncated": item.truncated, "token_count": item.total_tokens} for item in items]
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


def model_resource(model: EmbeddingModel) -> dict[str, Any]:
    return {
        "name": f"models/{model.name}",
        "version": _model_version(model),
        "displayName": _display_name(model),
        "description": "Obtain a distributed representation of a text.",
        "inputTokenLimit": model.max_input_tokens,
        "outputTokenLimit": 1,
        "supportedGenerationMethods": ["embedContent", "batchEmbedContents"],
    }


def vertex_model_resource(model: EmbeddingModel) -> dict[str, Any]:
    return {
        "name": f"publishers/google/models/{model.name}",
        "versionId": _model_version(model),
        "displayName": _display_name(model),
        "openSourceCategory": "PROPRIETARY",
        "launchStage": "GA",
    }


def list_models(query: dict[str, list[str]]) -> dict[str, Any]:
    """One page of ``GET /{ver}/models`` (``pageSize`` and ``pageToken`` in the query)."""
    names = sorted(
        name for name, model in MODELS.items() if model.retired_on is None and not model.vertex_only
    )
    try:
        page_size = int((query.get("pageSize") or query.get("page_size") or ["50"])[0])
        offset = int((query.get("pageToken") or query.get("page_token") or ["0"])[0] or 0)
    except ValueError:
        raise invalid_argument("Invalid page size or page token.") from None
    page_size = 50 if page_size <= 0 else min(page_size, 1000)
    page = names[offset : offset + page_size]
    response: dict[str, Any] = {"models": [model_resource(MODELS[name]) for name in page]}
    if offset + page_size < len(names):
        response["nextPageToken"] = str(offset + page_size)
    return response
