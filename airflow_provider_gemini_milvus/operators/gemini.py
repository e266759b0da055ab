"""Embed documents with Gemini into rows ready for :class:`MilvusInsertOperator`."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
from airflow.sdk import BaseOperator

from airflow_provider_gemini_milvus.gemini_models import (
    DEFAULT_MODEL,
    MAX_TEXTS_PER_REQUEST,
    normalise_task_type,
    resolve_model,
)
from airflow_provider_gemini_milvus.hooks.gemini import EmbeddingRunStats, GeminiHook
from airflow_provider_gemini_milvus.milvus_rows import content_hash

if TYPE_CHECKING:
    from airflow.sdk import Context, XComArg

    from airflow_provider_gemini_milvus.hooks.milvus import MilvusHook

#: Decimal places kept of each vector value in XCom: far below float32 noise for cosine search,
#: and half the JSON size of full float repr.
VECTOR_DECIMALS = 8


@dataclass(frozen=True)
class Document:
    """One validated input document."""

    id: str
    text: str
    title: str | None
    metadata: dict[str, Any]

    @cached_property
    def content_hash(self) -> str:
        """SHA-256 of everything stored besides the vector: text, title and kept metadata."""
        payload = json.dumps(
            {"text": self.text, "title": self.title, "metadata": self.metadata},
            sort_keys=True,
            ensure_ascii=False,
            separators=(",", ":"),
        )
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def text_id(text: str) -> str:
    """The stable id of a document given without one: SHA-256 of its text."""
    return content_hash(text)


def model_fingerprint(model: str, dim: int, task_type: str) -> str:
    """What the ``model`` field of a row records: name, dimensionality and task type."""
    return f"{model}/{dim}/{task_type}"


class GeminiEmbedOperator(BaseOperator):
    """
    Embed documents with Google Gemini and return rows ready for ``MilvusInsertOperator``.

    ``documents`` is a list of strings, or a list of dicts with the text under ``text_field``, an optional
    id under ``id_field`` (a stable SHA-256 of the text when absent), an optional title under
    ``title_field`` and metadata (the keys in ``metadata_fields``; by default every other key).

    **Incremental mode.** Give ``collection_name`` (and ``milvus_conn_id``) of the collection the rows
    will be loaded into, and only documents that are new or changed there are embedded: the stored
    ``content_hash`` and ``model`` of each incoming id are looked up first, and everything is re-embedded
    when the model, dimensionality or task type differs. With ``delete_missing=True``, ids stored in the
    collection but absent from ``documents`` are returned as ``delete_ids`` for ``MilvusInsertOperator``
    to delete once the new rows are written. An unchanged corpus costs zero embedding requests.

    Returns JSON-safe data: ``{"rows": [{"id", "vector", "text", "content_hash", "model", "metadata"}],
    "delete_ids": [...], "dim", "model", "task_type", "stats": {...}}``. ``stats`` holds counts, the
    estimated token usage and cost. Vectors are L2-normalised.

    .. seealso:: :class:`~airflow_provider_gemini_milvus.hooks.gemini.GeminiHook` for the connection.

    :param documents: the documents (templated; typically an upstream task's XCom).
    :param gemini_conn_id: the ``gemini`` connection holding the API key.
    :param model: the Gemini embedding model.
    :param task_type: one of the eight Gemini task types; ``RETRIEVAL_DOCUMENT`` for a search corpus.
    :param output_dimensionality: vector length (e.g. 768); ``None`` for the model's default.
    :param text_field: key of the text in dict documents.
    :param id_field: key of the id in dict documents.
    :param title_field: key of the title in dict documents (``RETRIEVAL_DOCUMENT`` only).
    :param metadata_fields: keys kept as metadata; ``None`` keeps every key but id, text and title.
    :param batch_size: texts per Gemini request, at most 100.
    :param max_concurrency: requests in flight at once; default from the connection.
    :param collection_name: target Milvus collection; setting it turns on incremental mode.
    :param milvus_conn_id: the ``milvus`` connection of that collection.
    :param delete_missing: in incremental mode, also return the ids that vanished from the source.
    """

    template_fields: Sequence[str] = (
        "documents",
        "gemini_conn_id",
        "model",
        "gemini_task_type",
        "output_dimensionality",
        "text_field",
        "id_field",
        "title_field",
        "metadata_fields",
        "batch_size",
        "max_concurrency",
        "collection_name",
        "milvus_conn_id",
        "delete_missing",
    )
    template_fields_renderers = {"documents": "py"}
    ui_color = "#e8f0fe"

    def __init__(
        self,
        *,
        documents: Sequence[str] | Sequence[Mapping[str, Any]] | XComArg | str,
        gemini_conn_id: str = GeminiHook.default_conn_name,
        model: str = DEFAULT_MODEL,
        task_type: str = "RETRIEVAL_DOCUMENT",
        output_dimensionality: int | None = None,
        text_field: str = "text",
        id_field: str = "id",
        title_field: str | None = None,
        metadata_fields: Sequence[str] | None = None,
        batch_size: int = MAX_TEXTS_PER_REQUEST,
        max_concurrency: int | None = None,
        collection_name: str | None = None,
        milvus_conn_id: str = "milvus_default",
        delete_missing: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.documents = documents
        self.gemini_conn_id = gemini_conn_id
        self.model = model
        # ``task_type`` is a read-only property of BaseOperator (the class name).
        self.gemini_task_type = task_type
        self.output_dimensionality = output_dimensionality
        self.text_field = text_field
        self.id_field = id_field
        self.title_field = title_field
        self.metadata_fields = metadata_fields
        self.batch_size = batch_size
        self.max_concurrency = max_concurrency
        self.collection_name = collection_name
        self.milvus_conn_id = milvus_conn_id
        self.delete_missing = delete_missing

    @cached_property
    def hook(self) -> GeminiHook:
        return GeminiHook(gemini_conn_id=self.gemini_conn_id)

    @cached_property
    def milvus_hook(self) -> MilvusHook:
        from airflow_provider_gemini_milvus.hooks.milvus import MilvusHook

        return MilvusHook(milvus_conn_id=self.milvus_conn_id)

    def execute(self, context: Context) -> dict[str, Any]:
        task_type = normalise_task_type(self.gemini_task_type)
        model = resolve_model(self.model)
        dim = model.dim(self.output_dimensionality)
        if self.delete_missing and not self.collection_name:
            raise ValueError("delete_missing=True needs collection_name: the collection to compare against")
        documents = self.parse_documents(self.documents)
        if self.title_field is not None and task_type != "RETRIEVAL_DOCUMENT":
            raise ValueError(f"title_field is only used with task_type RETRIEVAL_DOCUMENT, not {task_type}")
        fingerprint = model_fingerprint(model.name, dim, task_type)

        to_embed: list[Document] = documents
        delete_ids: list[str] = []
        if self.collection_name:
            to_embed, delete_ids = self._changes_against_collection(documents, fingerprint)
        self.log.info(
            "%d documents: %d to embed, %d unchanged, %d to delete",
            len(documents),
            len(to_embed),
            len(documents) - len(to_embed),
            len(delete_ids),
        )

        rows, run_stats = (
            self._embed_rows(to_embed, task_type, fingerprint)
            if to_embed
            else ([], EmbeddingRunStats(usd_per_million_tokens=model.usd_per_million_tokens))
        )
        run = run_stats.as_dict()
        return {
            "rows": rows,
            "delete_ids": delete_ids,
            "dim": dim,
            "model": fingerprint,
            "task_type": task_type,
            "stats": {
                "documents": len(documents),
                "embedded": len(to_embed),
                "unchanged": len(documents) - len(to_embed),
                "to_delete": len(delete_ids),
                **{key: value for key, value in run.items() if key not in ("model", "texts")},
            },
        }

    # -- documents -----------------------------------------------------------------------------------

    def parse_documents(self, documents: Any) -> list[Document]:
        """
        Validate ``documents`` and return them as :class:`Document`; ``ValueError`` names the first bad one.

        Exact repeats (same id and same content) are kept once; the same id with different content is an
        error, since one of the two would be lost.
        """
        if isinstance(documents, (str, bytes)) or not isinstance(documents, Sequence):
            raise ValueError(
                f"documents must be a list of strings or of dicts, got {type(documents).__name__}"
                + (" (a template that did not render to a list?)" if isinstance(documents, str) else "")
            )
        if not documents:
            raise ValueError("documents is empty: nothing to embed")
        parsed: dict[str, tuple[int, Document]] = {}
        for index, item in enumerate(documents):
            document = self._parse_document(index, item)
            seen = parsed.get(document.id)
            if seen is None:
                parsed[document.id] = (index, document)
            elif seen[1] != document:
                raise ValueError(
                    f"documents[{index}] has id {document.id!r}, already used by documents[{seen[0]}] "
                    "with different content"
                )
        if len(parsed) < len(documents):
            self.log.info("Dropped %d exact duplicate documents", len(documents) - len(parsed))
        return [document for _, document in parsed.values()]

    def _parse_document(self, index: int, item: Any) -> Document:
        if isinstance(item, str):
            return Document(id=text_id(item), text=_checked_text(index, item), title=None, metadata={})
        if not isinstance(item, Mapping):
            raise ValueError(f"documents[{index}] must be a string or a dict, got {type(item).__name__}")
        if self.text_field not in item:
            raise ValueError(f"documents[{index}] has no {self.text_field!r} field (text_field)")
        text = _checked_text(index, item[self.text_field])
        return Document(
            id=self._document_id(index, item, text),
            text=text,
            title=self._document_title(index, item),
            metadata=self._document_metadata(index, item),
        )

    def _document_id(self, index: int, item: Mapping[str, Any], text: str) -> str:
        value = item.get(self.id_field)
        if value is None:
            return text_id(text)
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise ValueError(
                f"documents[{index}] field {self.id_field!r} must be a string or an integer, "
                f"got {type(value).__name__}"
            )
        if isinstance(value, str) and not value.strip():
            raise ValueError(f"documents[{index}] field {self.id_field!r} is empty")
        return str(value)

    def _document_title(self, index: int, item: Mapping[str, Any]) -> str | None:
        if self.title_field is None:
            return None
        title = item.get(self.title_field)
        if title is not None and not isinstance(title, str):
            raise ValueError(
                f"documents[{index}] field {self.title_field!r} (title_field) must be a string, "
                f"got {type(title).__name__}"
            )
        return title

    def _document_metadata(self, index: int, item: Mapping[str, Any]) -> dict[str, Any]:
        reserved = {self.id_field, self.text_field, self.title_field}
        if self.metadata_fields is None:
            metadata = {key: value for key, value in item.items() if key not in reserved}
        else:
            metadata = {key: item[key] for key in self.metadata_fields if key in item}
        try:
            json.dumps(metadata, allow_nan=False)
        except (TypeError, ValueError) as err:
            raise ValueError(f"documents[{index}] metadata is not JSON-serialisable: {err}") from err
        return metadata

    # -- incremental mode ------------------------------------------------------------------------------

    def _changes_against_collection(
        self, documents: list[Document], fingerprint: str
    ) -> tuple[list[Document], list[str]]:
        """Documents whose stored hash or model differs from this run's, and ids gone from the source."""
        collection = str(self.collection_name)
        try:
            stored = self.milvus_hook.fetch_fingerprints(collection, [doc.id for doc in documents])
            to_embed = [doc for doc in documents if stored.get(doc.id) != (doc.content_hash, fingerprint)]
            delete_ids: list[str] = []
            if self.delete_missing:
                incoming = {doc.id for doc in documents}
                delete_ids = sorted(set(self.milvus_hook.list_ids(collection)) - incoming)
        finally:
            self.milvus_hook.close()
        stale_models = sum(1 for doc in documents if doc.id in stored and stored[doc.id][1] != fingerprint)
        if stale_models:
            self.log.info(
                "%d stored rows were embedded with another model setting; re-embedding", stale_models
            )
        return to_embed, delete_ids

    # -- embedding -------------------------------------------------------------------------------------

    def _embed_rows(
        self, documents: list[Document], task_type: str, fingerprint: str
    ) -> tuple[list[dict[str, Any]], EmbeddingRunStats]:
        titles = [doc.title for doc in documents] if self.title_field is not None else None
        result = self.hook.embed_with_stats(
            [doc.text for doc in documents],
            model=self.model,
            task_type=task_type,
            output_dimensionality=self.output_dimensionality,
            titles=titles,
            batch_size=self.batch_size,
            max_concurrency=self.max_concurrency,
        )
        rounded = np.round(result.vectors.astype(np.float64), VECTOR_DECIMALS).tolist()
        rows = [
            {
                "id": doc.id,
                "vector": vector,
                "text": doc.text,
                "content_hash": doc.content_hash,
                "model": fingerprint,
                "metadata": doc.metadata,
            }
            for doc, vector in zip(documents, rounded, strict=True)
        ]
        return rows, result.stats


def _checked_text(index: int, text: Any) -> str:
    if not isinstance(text, str):
        raise ValueError(f"documents[{index}] text must be a string, got {type(text).__name__}")
    if not text.strip():
        raise ValueError(f"documents[{index}] text is empty or only whitespace")
    return text
