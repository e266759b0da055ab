"""Embed documents with Gemini into rows ready for :class:`MilvusInsertOperator`."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
from airflow.sdk import BaseOperator

from airflow_provider_gemini_milvus.gemini_models import (
    DEFAULT_MODEL,
    MAX_TEXTS_PER_REQUEST,
    EmbeddingModel,
    normalise_task_type,
    resolve_model,
)
from airflow_provider_gemini_milvus.gemini_requests import check_sendable
from airflow_provider_gemini_milvus.hooks.gemini import EmbeddingRunStats, GeminiHook
from airflow_provider_gemini_milvus.milvus_layout import (
    ID_MAX_LENGTH,
    TEXT_MAX_LENGTH,
    CollectionInfo,
    check_collection_matches,
)
from airflow_provider_gemini_milvus.milvus_rows import check_id, check_text, content_hash
from airflow_provider_gemini_milvus.operators.arguments import to_bool, to_float, to_int, to_str, to_str_list
from airflow_provider_gemini_milvus.unicode_checks import check_utf8_encodable

if TYPE_CHECKING:
    from airflow.sdk import Context, XComArg

    from airflow_provider_gemini_milvus.hooks.milvus import MilvusHook

#: Decimal places kept of each vector value in XCom: far below float32 noise for cosine search,
#: and half the JSON size of full float repr.
VECTOR_DECIMALS = 8

#: Share of the stored rows ``delete_missing`` may delete in one run before it refuses (a source that
#: suddenly returns far fewer documents is more likely truncated than shrunk).
DEFAULT_MAX_DELETE_FRACTION = 0.5


@dataclass(frozen=True)
class Document:
    """One validated input document."""

    id: str
    text: str
    title: str | None
    metadata: dict[str, Any]
    index: int = field(compare=False)
    """Position in the user's ``documents``, for messages."""

    @cached_property
    def content_hash(self) -> str:
        """What the row stores as ``content_hash``: see :func:`~.milvus_rows.content_hash`."""
        return content_hash(self.text, title=self.title, metadata=self.metadata)


def text_id(text: str) -> str:
    """The stable id of a document given without one: SHA-256 of its UTF-8 text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class EmbedArguments:
    """The operator's arguments after rendering, converted and checked once."""

    model: EmbeddingModel
    task_type: str
    output_dimensionality: int | None
    dim: int
    text_field: str
    id_field: str
    title_field: str | None
    metadata_fields: list[str] | None
    batch_size: int
    max_concurrency: int | None
    collection_name: str | None
    delete_missing: bool
    max_delete_fraction: float


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
    :param max_delete_fraction: with ``delete_missing``, fail instead of deleting more than this share of
        the stored rows (default 0.5; 1.0 allows any deletion).
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
        "max_delete_fraction",
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
        output_dimensionality: int | str | None = None,
        text_field: str = "text",
        id_field: str = "id",
        title_field: str | None = None,
        metadata_fields: Sequence[str] | None = None,
        batch_size: int | str = MAX_TEXTS_PER_REQUEST,
        max_concurrency: int | str | None = None,
        collection_name: str | None = None,
        milvus_conn_id: str = "milvus_default",
        delete_missing: bool | str = False,
        max_delete_fraction: float | str = DEFAULT_MAX_DELETE_FRACTION,
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
        self.max_delete_fraction = max_delete_fraction

    @cached_property
    def hook(self) -> GeminiHook:
        return GeminiHook(gemini_conn_id=self.gemini_conn_id)

    @cached_property
    def milvus_hook(self) -> MilvusHook:
        from airflow_provider_gemini_milvus.hooks.milvus import MilvusHook

        return MilvusHook(milvus_conn_id=self.milvus_conn_id)

    def execute(self, context: Context) -> dict[str, Any]:
        args = self.converted_arguments()
        collection = self._target_collection(args)
        documents = self.parse_documents(
            self.documents,
            args,
            text_max_length=(collection.text_max_length if collection else None) or TEXT_MAX_LENGTH,
            id_max_length=(collection.id_max_length if collection else None) or ID_MAX_LENGTH,
        )
        fingerprint = model_fingerprint(args.model.name, args.dim, args.task_type)

        to_embed: list[Document] = documents
        delete_ids: list[str] = []
        if collection is not None:
            to_embed, delete_ids = self._changes_against_collection(documents, fingerprint, args)
        self.log.info(
            "%d documents: %d to embed, %d unchanged, %d to delete",
            len(documents),
            len(to_embed),
            len(documents) - len(to_embed),
            len(delete_ids),
        )

        rows, run_stats = (
            self._embed_rows(to_embed, args, fingerprint)
            if to_embed
            else ([], EmbeddingRunStats(usd_per_million_tokens=args.model.usd_per_million_tokens))
        )
        run = run_stats.as_dict()
        return {
            "rows": rows,
            "delete_ids": delete_ids,
            "dim": args.dim,
            "model": fingerprint,
            "task_type": args.task_type,
            "stats": {
                "documents": len(documents),
                "embedded": len(to_embed),
                "unchanged": len(documents) - len(to_embed),
                "to_delete": len(delete_ids),
                **{key: value for key, value in run.items() if key not in ("model", "texts")},
            },
        }

    def converted_arguments(self) -> EmbedArguments:
        """
        Convert every rendered argument (a template renders ``False`` as ``"False"``) and check it.

        :raises ValueError: naming the first bad argument; nothing has been requested yet.
        """
        model_name = to_str(self.model, "model")
        task_type = normalise_task_type(str(to_str(self.gemini_task_type, "task_type")))
        model = resolve_model(str(model_name))
        output_dimensionality = to_int(self.output_dimensionality, "output_dimensionality", optional=True)
        title_field = to_str(self.title_field, "title_field", optional=True)
        if title_field is not None and task_type != "RETRIEVAL_DOCUMENT":
            raise ValueError(f"title_field is only used with task_type RETRIEVAL_DOCUMENT, not {task_type}")
        collection_name = to_str(self.collection_name, "collection_name", optional=True)
        delete_missing = to_bool(self.delete_missing, "delete_missing")
        if delete_missing and not collection_name:
            raise ValueError("delete_missing=True needs collection_name: the collection to compare against")
        return EmbedArguments(
            model=model,
            task_type=task_type,
            output_dimensionality=output_dimensionality,
            dim=model.dim(output_dimensionality),
            text_field=str(to_str(self.text_field, "text_field")),
            id_field=str(to_str(self.id_field, "id_field")),
            title_field=title_field,
            metadata_fields=to_str_list(self.metadata_fields, "metadata_fields", optional=True),
            batch_size=int(
                to_int(self.batch_size, "batch_size", minimum=1, maximum=MAX_TEXTS_PER_REQUEST) or 0
            ),
            max_concurrency=to_int(self.max_concurrency, "max_concurrency", minimum=1, optional=True),
            collection_name=collection_name,
            delete_missing=delete_missing,
            max_delete_fraction=float(
                to_float(self.max_delete_fraction, "max_delete_fraction", minimum=0, maximum=1) or 0.0
            ),
        )

    # -- documents -----------------------------------------------------------------------------------

    def parse_documents(
        self,
        documents: Any,
        args: EmbedArguments,
        *,
        text_max_length: int = TEXT_MAX_LENGTH,
        id_max_length: int = ID_MAX_LENGTH,
    ) -> list[Document]:
        """
        Validate ``documents`` and return them as :class:`Document`; ``ValueError`` names ``documents[i]``.

        Everything the Gemini API or the Milvus load would refuse later is refused here, before any
        request: texts and titles over the model's token limit, ids and texts over the collection's
        field lengths, strings that are not valid UTF-8, metadata that is not JSON. Exact repeats (same
        id and same content) are kept once; the same id with different content is an error, since one
        of the two would be lost.

        :param documents: the rendered ``documents`` argument.
        :param args: the converted arguments (fields and model).
        :param text_max_length: the text field's ``max_length`` in UTF-8 bytes.
        :param id_max_length: the id field's ``max_length`` in UTF-8 bytes.
        """
        if isinstance(documents, (str, bytes)) or not isinstance(documents, Sequence):
            raise ValueError(
                f"documents must be a list of strings or of dicts, got {type(documents).__name__}"
                + (" (a template that did not render to a list?)" if isinstance(documents, str) else "")
            )
        if not documents:
            raise ValueError("documents is empty: nothing to embed")
        reader = _DocumentReader(args, text_max_length=text_max_length, id_max_length=id_max_length)
        parsed: dict[str, Document] = {}
        for index, item in enumerate(documents):
            document = reader.read(index, item)
            seen = parsed.get(document.id)
            if seen is None:
                parsed[document.id] = document
            elif seen != document:
                raise ValueError(
                    f"documents[{index}] has id {document.id!r}, already used by documents[{seen.index}] "
                    "with different content"
                )
        if len(parsed) < len(documents):
            self.log.info("Dropped %d exact duplicate documents", len(documents) - len(parsed))
        return list(parsed.values())

    # -- incremental mode ------------------------------------------------------------------------------

    def _target_collection(self, args: EmbedArguments) -> CollectionInfo | None:
        """
        In incremental mode, the existing collection, checked against this run's dimension.

        :raises MilvusCollectionMismatchError: before any request, when the rows could never be loaded.
        """
        if args.collection_name is None:
            return None
        try:
            info = self.milvus_hook.describe(args.collection_name)
        finally:
            self.milvus_hook.close()
        if info is not None:
            check_collection_matches(info, dim=args.dim)
        return info

    def _changes_against_collection(
        self, documents: list[Document], fingerprint: str, args: EmbedArguments
    ) -> tuple[list[Document], list[str]]:
        """Documents whose stored hash or model differs from this run's, and ids gone from the source."""
        collection = str(args.collection_name)
        try:
            stored = self.milvus_hook.fetch_fingerprints(collection, [doc.id for doc in documents])
            to_embed = [doc for doc in documents if stored.get(doc.id) != (doc.content_hash, fingerprint)]
            delete_ids: list[str] = []
            if args.delete_missing:
                stored_ids = self.milvus_hook.list_ids(collection)
                incoming = {doc.id for doc in documents}
                delete_ids = sorted(set(stored_ids) - incoming)
                _check_delete_fraction(len(delete_ids), len(stored_ids), args.max_delete_fraction)
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
        self, documents: list[Document], args: EmbedArguments, fingerprint: str
    ) -> tuple[list[dict[str, Any]], EmbeddingRunStats]:
        titles = [doc.title for doc in documents] if args.title_field is not None else None
        result = self.hook.embed_with_stats(
            [doc.text for doc in documents],
            model=args.model.name,
            task_type=args.task_type,
            output_dimensionality=args.output_dimensionality,
            titles=titles,
            batch_size=args.batch_size,
            max_concurrency=args.max_concurrency,
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


class _DocumentReader:
    """Turns ``documents[i]`` into a :class:`Document`, naming ``documents[i]`` in every error."""

    def __init__(self, args: EmbedArguments, *, text_max_length: int, id_max_length: int) -> None:
        self.args = args
        self.text_max_length = text_max_length
        self.id_max_length = id_max_length

    def read(self, index: int, item: Any) -> Document:
        where = f"documents[{index}]"
        if isinstance(item, str):
            text = self._text(where, item)
            return Document(id=self._id(where, None, text), text=text, title=None, metadata={}, index=index)
        if not isinstance(item, Mapping):
            raise ValueError(f"{where} must be a string or a dict, got {type(item).__name__}")
        fields = self.args
        if fields.text_field not in item:
            raise ValueError(f"{where} has no {fields.text_field!r} field (text_field)")
        text = self._text(where, item[fields.text_field])
        return Document(
            id=self._id(where, item.get(fields.id_field), text),
            text=text,
            title=self._title(where, item),
            metadata=self._metadata(where, item),
            index=index,
        )

    def _text(self, where: str, text: Any) -> str:
        if not isinstance(text, str):
            raise ValueError(f"{where} text must be a string, got {type(text).__name__}")
        if not text.strip():
            raise ValueError(f"{where} text is empty or only whitespace")
        check_sendable(f"{where} text", text, self.args.model)
        return check_text(text, where, self.text_max_length)

    def _id(self, where: str, value: Any, text: str) -> str:
        if value is None:
            return text_id(text)
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise ValueError(
                f"{where} field {self.args.id_field!r} must be a string or an integer, "
                f"got {type(value).__name__}"
            )
        check_utf8_encodable(value, f"{where} id")
        return check_id(str(value), where, self.id_max_length)

    def _title(self, where: str, item: Mapping[str, Any]) -> str | None:
        title_field = self.args.title_field
        if title_field is None:
            return None
        title = item.get(title_field)
        if title is None:
            return None
        if not isinstance(title, str):
            raise ValueError(
                f"{where} field {title_field!r} (title_field) must be a string, got {type(title).__name__}"
            )
        check_sendable(f"{where} title", title, self.args.model)
        return title

    def _metadata(self, where: str, item: Mapping[str, Any]) -> dict[str, Any]:
        fields = self.args
        reserved = {fields.id_field, fields.text_field, fields.title_field}
        if fields.metadata_fields is None:
            metadata = {key: value for key, value in item.items() if key not in reserved}
        else:
            metadata = {key: item[key] for key in fields.metadata_fields if key in item}
        check_utf8_encodable(metadata, f"{where} metadata")
        try:
            json.dumps(metadata, allow_nan=False)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{where} metadata is not JSON-serialisable: {err}") from None
        return metadata


def _check_delete_fraction(to_delete: int, stored: int, max_delete_fraction: float) -> None:
    """Refuse to delete more than ``max_delete_fraction`` of the stored rows: a truncated source."""
    if stored and to_delete > max_delete_fraction * stored:
        raise ValueError(
            f"delete_missing would delete {to_delete} of the {stored} stored rows "
            f"({to_delete / stored:.0%}), more than max_delete_fraction={max_delete_fraction:g} allows; "
            "if the source really shrank, raise max_delete_fraction (1.0 allows any deletion)"
        )
