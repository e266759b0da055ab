"""
Staged data path: embedding rows as Parquet parts in object storage instead of XCom.

The embedding operator writes parts with :class:`PartWriter` into :func:`task_staging_dir` under
:func:`staging_root` and returns a :class:`StagedManifest` through XCom; the insert operator streams the
parts with :func:`iter_part_rows`. See :mod:`.storage` for how ``s3://`` and other URLs are resolved.
"""

from __future__ import annotations

from airflow_provider_gemini_milvus.staging.manifest import (
    MANIFEST_FORMAT,
    StagedManifest,
    StagedPart,
    is_manifest,
)
from airflow_provider_gemini_milvus.staging.parts import (
    PartColumns,
    PartInfo,
    PartWriter,
    ReusedParts,
    count_rows,
    describe_part,
    iter_id_list,
    iter_part_columns,
    iter_part_ids,
    iter_part_rows,
    reuse_staged_parts,
    row_schema,
    staged_fingerprints,
    staged_parts,
    write_id_list,
)
from airflow_provider_gemini_milvus.staging.storage import (
    CONFIG_SECTION,
    DEFAULT_KEEP_DAYS,
    MIN_KEEP_DAYS,
    clean_staging,
    configured_keep_days,
    default_staging_uri,
    mark_task_folder,
    staging_root,
    task_staging_dir,
)
from airflow_provider_gemini_milvus.staging.verify import check_deletes_disjoint, verify_manifest

__all__ = [
    "CONFIG_SECTION",
    "DEFAULT_KEEP_DAYS",
    "MANIFEST_FORMAT",
    "MIN_KEEP_DAYS",
    "PartColumns",
    "PartInfo",
    "PartWriter",
    "ReusedParts",
    "StagedManifest",
    "StagedPart",
    "check_deletes_disjoint",
    "clean_staging",
    "configured_keep_days",
    "count_rows",
    "default_staging_uri",
    "describe_part",
    "is_manifest",
    "iter_id_list",
    "iter_part_columns",
    "iter_part_ids",
    "iter_part_rows",
    "mark_task_folder",
    "reuse_staged_parts",
    "row_schema",
    "staged_fingerprints",
    "staged_parts",
    "staging_root",
    "task_staging_dir",
    "verify_manifest",
    "write_id_list",
]
