"""
What this provider knows about Gemini embedding models and their limits.

The hook validates against this table before it spends anything, and the bundled emulator enforces the
same table, so the two cannot drift apart. Sources: the Gemini API reference, the google-genai SDK source,
and Google's model pages (see the docs' "Models" page).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Literal, get_args

__all__ = [
    "CATALOGUE_CHECKED",
    "DEFAULT_MODEL",
    "DOCUMENT_PROMPT",
    "MAX_TEXTS_PER_REQUEST",
    "MODELS",
    "NEWEST_FAMILY_MEMBER",
    "QUERY_PROMPTS",
    "TASK_TYPES",
    "EmbeddingModel",
    "TaskFormat",
    "TaskType",
    "bare_model_name",
    "cost_usd",
    "estimate_tokens",
    "get_model",
    "normalise_task_type",
    "prompted_text",
    "query_task_type",
    "resolve_model",
]

#: The Gemini API rejects a ``batchEmbedContents`` call with more than this many requests.
MAX_TEXTS_PER_REQUEST = 100

#: A task type the Gemini API accepts (``TASK_TYPE_UNSPECIFIED`` aside).
TaskType = Literal[
    "RETRIEVAL_QUERY",
    "RETRIEVAL_DOCUMENT",
    "SEMANTIC_SIMILARITY",
    "CLASSIFICATION",
    "CLUSTERING",
    "QUESTION_ANSWERING",
    "FACT_VERIFICATION",
    "CODE_RETRIEVAL_QUERY",
]
#: Every task type the Gemini API accepts.
TASK_TYPES: tuple[TaskType, ...] = get_args(TaskType)

DEFAULT_MODEL = "gemini-embedding-001"

#: How a model takes the task: ``field`` as the request's ``taskType`` (and ``title``), ``prompt`` as a
#: prefix of the text itself (the model ignores ``taskType`` and ``title``), ``none`` not at all.
TaskFormat = Literal["field", "prompt", "none"]

#: The date the facts below (limits, prices, status) were last checked against Google's pages:
#: https://ai.google.dev/gemini-api/docs/embeddings, https://ai.google.dev/gemini-api/docs/pricing,
#: https://ai.google.dev/gemini-api/docs/deprecations and, for Vertex AI,
#: https://docs.cloud.google.com/vertex-ai/generative-ai/docs/embeddings/get-text-embeddings.
CATALOGUE_CHECKED = "2026-12-06"

#: gemini-embedding-2's task instructions, a prefix of each text (Google's embeddings guide,
#: https://ai.google.dev/gemini-api/docs/embeddings, "Task types" for gemini-embedding-2; checked
#: 2026-12-06). Queries, and both sides of the symmetric tasks, as ``task: ... | query: {text}``.
QUERY_PROMPTS: dict[TaskType, str] = {
    "RETRIEVAL_QUERY": "task: search result | query: ",
    "QUESTION_ANSWERING": "task: question answering | query: ",
    "FACT_VERIFICATION": "task: fact checking | query: ",
    "CODE_RETRIEVAL_QUERY": "task: code retrieval | query: ",
    "CLASSIFICATION": "task: classification | query: ",
    "CLUSTERING": "task: clustering | query: ",
    "SEMANTIC_SIMILARITY": "task: sentence similarity | query: ",
}
#: Documents, for every retrieval task: ``title: {title or "none"} | text: {text}``.
DOCUMENT_PROMPT = "title: {title} | text: "


def prompted_text(task_type: TaskType, text: str, title: str | None = None) -> str:
    """
    ``text`` as gemini-embedding-2 takes it for ``task_type``: with the task's prefix, and for a
    ``RETRIEVAL_DOCUMENT`` with its title (``none`` when it has none).

    :param task_type: the task the vector is for.
    :param text: the text.
    :param title: the document's title (``RETRIEVAL_DOCUMENT`` only).
    """
    if task_type == "RETRIEVAL_DOCUMENT":
        return DOCUMENT_PROMPT.format(title=title if title else "none") + text
    return QUERY_PROMPTS[task_type] + text


@dataclass(frozen=True)
class EmbeddingModel:
    """
    Limits and behaviour of one Gemini embedding model.

    :param name: model id without the ``models/`` prefix.
    :param default_dim: length of the vector when no ``output_dimensionality`` is asked for.
    :param min_dim: smallest ``output_dimensionality`` accepted.
    :param max_input_tokens: longest text the model embeds, in tokens (a task prefix included).
    :param supports_output_dimensionality: whether ``output_dimensionality`` may be set at all.
    :param task_format: how the model takes the task (:data:`TaskFormat`).
    :param one_content_per_text: the SDK merges a list of strings into one vector for this model unless
        each text is wrapped in its own ``Content``.
    :param normalises_truncated: whether the API re-normalises vectors shorter than ``default_dim``.
    :param usd_per_million_tokens: list price of input tokens, or ``None`` where unpublished.
    :param batch_usd_per_million_tokens: price of input tokens through the Batch API (half the list
        price), or ``None`` where unpublished.
    :param retired_on: the date Google retired the model on the Gemini API (requests answer 404 since).
    :param replacement: the model to use instead of a retired one.
    :param vertex_only: served by Vertex AI only, not by the Gemini API.
    :param media_usd_per_million_tokens: list price of media input tokens by what they are billed as
        (``image``, ``audio``, ``video``); a model without any embeds text only.
    """

    name: str
    default_dim: int
    min_dim: int
    max_input_tokens: int
    supports_output_dimensionality: bool = True
    task_format: TaskFormat = "field"
    one_content_per_text: bool = False
    normalises_truncated: bool = False
    usd_per_million_tokens: float | None = None
    batch_usd_per_million_tokens: float | None = None
    retired_on: str | None = None
    replacement: str | None = None
    vertex_only: bool = False
    media_usd_per_million_tokens: tuple[tuple[str, float], ...] = ()

    @property
    def embeds_media(self) -> bool:
        """Whether the model embeds images, PDFs, audio and video (gemini-embedding-2), not text only."""
        return bool(self.media_usd_per_million_tokens)

    def usd_per_million(self, modality: str, *, batch: bool = False) -> float | None:
        """
        The price of a million input tokens of ``modality`` (``text``, ``image``, ``audio``, ``video``),
        at the list price or through the Batch API (half); None where unpublished.
        """
        if modality == "text":
            return self.batch_usd_per_million_tokens if batch else self.usd_per_million_tokens
        listed = dict(self.media_usd_per_million_tokens).get(modality)
        return None if listed is None else (listed / 2 if batch else listed)

    @property
    def supports_task_type(self) -> bool:
        """Whether requests carry ``taskType`` (and ``title``) fields."""
        return self.task_format == "field"

    @property
    def request_format(self) -> str:
        """
        What the stored ``model`` fingerprint records of the request format: ``""`` for a model that takes
        the task as a field, ``prompt-v1`` for one that takes it as a prefix (rows embedded before the
        prefixes were sent carry no such mark, so they are embedded again once).
        """
        return "prompt-v1" if self.task_format == "prompt" else ""

    def sent_text(self, task_type: TaskType, text: str, title: str | None = None) -> str:
        """The text as it is sent: with its task prefix (and title) for a prompt model, else as it is."""
        return prompted_text(task_type, text, title) if self.task_format == "prompt" else text

    def check_output_dimensionality(self, output_dimensionality: int | None) -> None:
        """Raise ``ValueError`` naming the model when ``output_dimensionality`` is not accepted."""
        if output_dimensionality is None:
            return
        if isinstance(output_dimensionality, bool) or not isinstance(output_dimensionality, int):
            raise ValueError(
                f"output_dimensionality must be an integer, got {type(output_dimensionality).__name__}"
            )
        if not self.supports_output_dimensionality:
            if output_dimensionality == self.default_dim:
                return
            raise ValueError(
                f"model {self.name!r} does not support output_dimensionality "
                f"(it always returns {self.default_dim} dimensions); got {output_dimensionality}"
            )
        if not self.min_dim <= output_dimensionality <= self.default_dim:
            raise ValueError(
                f"output_dimensionality={output_dimensionality} is out of range for model {self.name!r}: "
                f"it accepts {self.min_dim} to {self.default_dim}"
            )

    def dim(self, output_dimensionality: int | None = None) -> int:
        self.check_output_dimensionality(output_dimensionality)
        return output_dimensionality or self.default_dim


_GEMINI_EMBEDDING_2 = EmbeddingModel(
    name="gemini-embedding-2",
    default_dim=3072,
    min_dim=128,
    max_input_tokens=8192,
    task_format="prompt",
    one_content_per_text=True,
    normalises_truncated=True,
    usd_per_million_tokens=0.20,
    batch_usd_per_million_tokens=0.10,
    # Media tokens (258 an image or PDF page, 32 a second of audio, 263 of video) at their own prices.
    media_usd_per_million_tokens=(("image", 0.45), ("audio", 6.50), ("video", 12.00)),
)

#: The models this package knows. Checked against Google's pages on :data:`CATALOGUE_CHECKED`.
MODELS: dict[str, EmbeddingModel] = {
    model.name: model
    for model in (
        EmbeddingModel(
            name="gemini-embedding-001",
            default_dim=3072,
            min_dim=128,
            max_input_tokens=2048,
            usd_per_million_tokens=0.15,
            batch_usd_per_million_tokens=0.075,
        ),
        _GEMINI_EMBEDDING_2,
        # The preview id of the same family: the same limits, prices and prompt format.
        dataclasses.replace(_GEMINI_EMBEDDING_2, name="gemini-embedding-2-preview"),
        # Vertex AI text models: at most 768 dimensions and 2,048 tokens, tasks as fields.
        EmbeddingModel(
            name="text-embedding-005", default_dim=768, min_dim=1, max_input_tokens=2048, vertex_only=True
        ),
        EmbeddingModel(
            name="text-multilingual-embedding-002",
            default_dim=768,
            min_dim=1,
            max_input_tokens=2048,
            vertex_only=True,
        ),
        # Retired on the Gemini API: kept so that a request for them is refused with the date and the
        # replacement before anything is paid, and the emulator answers 404 as the API does.
        EmbeddingModel(
            name="gemini-embedding-exp-03-07",
            default_dim=3072,
            min_dim=128,
            max_input_tokens=8192,
            retired_on="2025-08-14",
            replacement="gemini-embedding-001",
        ),
        EmbeddingModel(
            name="text-embedding-004",
            default_dim=768,
            min_dim=1,
            max_input_tokens=2048,
            retired_on="2026-01-14",
            replacement="gemini-embedding-001",
        ),
        EmbeddingModel(
            name="embedding-001",
            default_dim=768,
            min_dim=768,
            max_input_tokens=2048,
            supports_output_dimensionality=False,
            task_format="none",
            retired_on="2025-08-14",
            replacement="gemini-embedding-001",
        ),
    )
}

#: The newest member of the gemini-embedding family: an unknown ``gemini-embedding-*`` name takes its
#: limits and request format.
NEWEST_FAMILY_MEMBER = _GEMINI_EMBEDDING_2


def bare_model_name(model: str) -> str:
    """``models/gemini-embedding-001`` and ``gemini-embedding-001`` name the same model."""
    return model.removeprefix("models/")


def get_model(model: str) -> EmbeddingModel | None:
    """Return the catalogue entry for ``model`` (with or without ``models/``), or ``None`` if unknown."""
    return MODELS.get(bare_model_name(model))


def resolve_model(model: str, *, vertexai: bool | None = None) -> EmbeddingModel:
    """
    Return the entry for ``model``, inferring one for unknown ``gemini-embedding-*`` models.

    A model released after this package keeps the family's conventions: it takes the limits and request
    format of :data:`NEWEST_FAMILY_MEMBER`. Anything else raises ``ValueError`` listing the models this
    package knows; so does a ``model`` that is not a string, a retired model (with its date and
    replacement), and, where the connection is known (``vertexai``), a model its API does not serve.

    :param model: the model name, with or without ``models/``.
    :param vertexai: whether the connection calls Vertex AI; ``None`` when not known (no API check).
    """
    if not isinstance(model, str):
        raise ValueError(f"model must be a model name such as {DEFAULT_MODEL!r}, got {type(model).__name__}")
    spec = get_model(model)
    if spec is None:
        name = bare_model_name(model)
        if not name.startswith("gemini-embedding"):
            available = ", ".join(sorted(name for name, known in MODELS.items() if known.retired_on is None))
            raise ValueError(f"unknown embedding model {model!r}; known models: {available}")
        spec = dataclasses.replace(NEWEST_FAMILY_MEMBER, name=name)
    if spec.retired_on is not None:
        raise ValueError(
            f"model {spec.name!r} was retired by Google on {spec.retired_on} (requests for it answer 404); "
            f"use {spec.replacement!r} instead (a new model needs re-embedding the collection: see "
            "MilvusPromoteAliasOperator)"
        )
    if spec.vertex_only and vertexai is False:
        raise ValueError(
            f"model {spec.name!r} is served by Vertex AI only; use a Vertex AI connection (extra "
            f"vertexai=true) or a Gemini API model such as {DEFAULT_MODEL!r}"
        )
    return spec


def normalise_task_type(task_type: str) -> TaskType:
    """Return ``task_type`` in upper case, or raise ``ValueError`` listing the valid task types."""
    upper = task_type.upper() if isinstance(task_type, str) else None
    for known in TASK_TYPES:
        if known == upper:
            return known
    raise ValueError(f"unknown task_type {task_type!r}; valid task types: {', '.join(TASK_TYPES)}")


#: Document task types whose queries are embedded with another task type.
_QUERY_TASK_TYPE: dict[TaskType, TaskType] = {"RETRIEVAL_DOCUMENT": "RETRIEVAL_QUERY"}


def query_task_type(document_task_type: TaskType) -> TaskType:
    """
    The task type a search query takes against documents embedded with ``document_task_type``:
    ``RETRIEVAL_QUERY`` for a retrieval corpus (``RETRIEVAL_DOCUMENT``), else the documents' own (the
    symmetric tasks, such as ``SEMANTIC_SIMILARITY``, embed both sides alike).

    :param document_task_type: the documents' task type.
    """
    return _QUERY_TASK_TYPE.get(document_task_type, document_task_type)


def estimate_tokens(text: str) -> int:
    """
    Estimate the tokens Gemini counts for ``text``: about four characters a token, at least one.

    Used for ``tokens_per_minute`` pacing, the input-length check and cost estimates. The emulator counts
    tokens the same way.
    """
    return max(1, math.ceil(len(text) / 4))


def cost_usd(tokens: int, usd_per_million_tokens: float | None) -> float | None:
    """The price of ``tokens`` input tokens in US dollars, or None for a model without a published price."""
    return None if usd_per_million_tokens is None else tokens * usd_per_million_tokens / 1_000_000
