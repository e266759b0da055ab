"""
Reads of stored vectors, for rows whose metadata changed but whose vector did not.

A function that takes a :class:`~airflow_provider_gemini_milvus.hooks.milvus.MilvusHook`, kept out of the
hook module (which is at its size limit).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from airflow_provider_gemini_milvus.milvus_layout import FIELD_ID, FIELD_VECTOR
from airflow_provider_gemini_milvus.milvus_rows import chunked, ids_in_filter

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow_provider_gemini_milvus.hooks.milvus import MilvusHook

__all__ = ["VECTOR_QUERY_BATCH", "fetch_vectors"]

#: Ids per vector query: 256 vectors of 3,072 float32 values are 3 MB, well under a server's message limit.
VECTOR_QUERY_BATCH = 256


def fetch_vectors(hook: MilvusHook, collection: str, ids: Sequence[str]) -> dict[str, np.ndarray]:
    """
    Return ``{id: vector}`` (float32, as stored) of the ids that exist; ``{}`` if the collection is missing.

    ``id in [...]`` queries of :data:`VECTOR_QUERY_BATCH` ids each, with Strong consistency.

    :param hook: the hook of the collection's connection (left open; the caller closes it).
    :param collection: collection name.
    :param ids: primary keys to read (any characters, quotes and backslashes included).
    """
    if not ids or not hook.has_collection(collection):
        return {}
    hook.ensure_loaded(collection)
    client = hook.get_conn()
    vectors: dict[str, np.ndarray] = {}
    for batch in chunked(list(dict.fromkeys(ids)), VECTOR_QUERY_BATCH):
        rows = client.query(
            collection,
            filter=ids_in_filter(batch),
            output_fields=[FIELD_ID, FIELD_VECTOR],
            consistency_level="Strong",
            timeout=hook.timeout,
        )
        for row in rows:
            vectors[str(row[FIELD_ID])] = np.asarray(row[FIELD_VECTOR], dtype=np.float32)
    return vectors
