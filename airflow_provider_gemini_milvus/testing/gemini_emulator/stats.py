"""The counters of what the emulator has served, declared once."""

from __future__ import annotations

import copy
import dataclasses
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow_provider_gemini_milvus.gemini.models import EmbeddingModel
    from airflow_provider_gemini_milvus.testing.gemini_emulator.protocol import EmbedItem

__all__ = ["EmulatorStats"]


@dataclass
class EmulatorStats:
    """
    What the emulator has served since it started or since :meth:`GeminiEmulator.reset_stats`.

    The emulator records into its own instance; :attr:`GeminiEmulator.stats` hands out copies.

    Only embed calls (``batchEmbedContents``, ``embedContent``, ``predict``) are counted.

    :param requests: embed HTTP calls received, including refused, failed and dropped ones.
    :param succeeded_requests: embed calls answered 200.
    :param texts: text parts embedded successfully.
    :param embeddings: vectors returned (fewer than ``texts`` when gemini-embedding-2 merges parts).
    :param tokens: sum of ``estimate_tokens`` over the embedded texts (media parts not included).
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
    :param media_parts: media parts (gemini-embedding-2) embedded successfully, by MIME type.
    :param media_tokens: tokens of those media parts, by MIME type (258 an image, 258 a PDF page, 32 a second
        of audio, 263 a second of video; see :mod:`.media`).
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
    media_parts: Counter[str] = field(default_factory=Counter)
    media_tokens: Counter[str] = field(default_factory=Counter)

    def snapshot(self) -> EmulatorStats:
        """A copy that later calls do not change."""
        return dataclasses.replace(
            self, **{item.name: copy.copy(getattr(self, item.name)) for item in dataclasses.fields(self)}
        )

    def record_success(self, model: EmbeddingModel, items: list[EmbedItem]) -> None:
        """Count one embed call answered 200 with a vector for each of ``items``."""
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
            for facts in item.media:
                self.media_parts[facts.mime_type] += 1
                self.media_tokens[facts.mime_type] += facts.tokens
