"""
What this provider knows about Gemini embedding models and their limits.

The hook validates against this table before it spends anything, and the bundled emulator enforces the
same table, so the two cannot drift apart. Sources: the Gemini API reference, the google-genai SDK source,
and Google's model pages (see the docs' "Models" page).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args

__all__ = [
    "DEFAULT_MODEL",
    "MAX_TEXTS_PER_REQUEST",
    "MODELS",
    "TASK_TYPES",
    "EmbeddingModel",
    "bare_model_name",
    "cost_usd",
    "estimate_tokens",
    "get_model",
    "normalise_task_type",
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


@dataclass(frozen=True)
class EmbeddingModel:
    """
    Limits and behaviour of one Gemini embedding model.

    :param name: model id without the ``models/`` prefix.
    :param default_dim: length of the vector when no ``output_dimensionality`` is asked for.
    :param min_dim: smallest ``output_dimensionality`` accepted.
    :param max_input_tokens: longest text the model embeds, in tokens.
    :param supports_output_dimensionality: whether ``output_dimensionality`` may be set at all.
    :param supports_task_type: whether the model takes ``task_type`` (and ``title``).
    :param one_content_per_text: the SDK merges a list of strings into one vector for this model unless
        each text is wrapped in its own ``Content``.
    :param normalises_truncated: whether the API re-normalises vectors shorter than ``default_dim``.
    :param usd_per_million_tokens: list price of input tokens, or ``None`` where unpublished.
    :param batch_usd_per_million_tokens: price of input tokens through the Batch API (half the list
        price), or ``None`` where unpublished.
    """

    name: str
    default_dim: int
    min_dim: int
    max_input_tokens: int
    supports_output_dimensionality: bool = True
    supports_task_type: bool = True
    one_content_per_text: bool = False
    normalises_truncated: bool = False
    usd_per_million_tokens: float | None = None
    batch_usd_per_million_tokens: float | None = None

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
        EmbeddingModel(
            name="gemini-embedding-2",
            default_dim=3072,
            min_dim=128,
            max_input_tokens=8192,
            one_content_per_text=True,
            normalises_truncated=True,
        ),
        EmbeddingModel(
            name="gemini-embedding-exp-03-07",
            default_dim=3072,
            min_dim=128,
            max_input_tokens=8192,
        ),
        EmbeddingModel(
            name="text-embedding-004",
            default_dim=768,
            min_dim=1,
            max_input_tokens=2048,
        ),
        EmbeddingModel(
            name="embedding-001",
            default_dim=768,
            min_dim=768,
            max_input_tokens=2048,
            supports_output_dimensionality=False,
            supports_task_type=False,
        ),
    )
}


def bare_model_name(model: str) -> str:
    """``models/gemini-embedding-001`` and ``gemini-embedding-001`` name the same model."""
    return model.removeprefix("models/")


def get_model(model: str) -> EmbeddingModel | None:
    """Return the catalogue entry for ``model`` (with or without ``models/``), or ``None`` if unknown."""
    return MODELS.get(bare_model_name(model))


def resolve_model(model: str) -> EmbeddingModel:
    """
    Return the entry for ``model``, inferring one for unknown ``gemini-embedding-*`` models.

    New Gemini embedding models keep the family's conventions (3072 dimensions, Matryoshka truncation,
    one vector per ``Content``), so a model released after this package still works. Anything else raises
    ``ValueError`` listing the models this package knows; so does a ``model`` that is not a string.
    """
    if not isinstance(model, str):
        raise ValueError(f"model must be a model name such as {DEFAULT_MODEL!r}, got {type(model).__name__}")
    known = get_model(model)
    if known is not None:
        return known
    name = bare_model_name(model)
    if name.startswith("gemini-embedding"):
        return EmbeddingModel(
            name=name, default_dim=3072, min_dim=128, max_input_tokens=2048, one_content_per_text=True
        )
    raise ValueError(f"unknown embedding model {model!r}; known models: {', '.join(sorted(MODELS))}")


def normalise_task_type(task_type: str) -> TaskType:
    """Return ``task_type`` in upper case, or raise ``ValueError`` listing the valid task types."""
    upper = task_type.upper() if isinstance(task_type, str) else None
    for known in TASK_TYPES:
        if known == upper:
            return known
    raise ValueError(f"unknown task_type {task_type!r}; valid task types: {', '.join(TASK_TYPES)}")


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
