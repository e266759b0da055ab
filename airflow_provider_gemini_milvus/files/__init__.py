"""
From files to chunks: list the files under a location, load each to clean text, cut it into chunks whose
ids survive edits elsewhere in the file.

Text, Markdown and HTML are read by the base install; PDF, DOCX and PPTX need the ``files`` extra
(``pip install 'airflow-provider-gemini-milvus[files]'``).
"""

from __future__ import annotations

from airflow_provider_gemini_milvus.files.chunking import Chunk, ChunkingSpec, chunk_text, source_key
from airflow_provider_gemini_milvus.files.formats import FILES_EXTRA_INSTALL, extra_installed, format_of
from airflow_provider_gemini_milvus.files.listing import SourceFile, iter_files
from airflow_provider_gemini_milvus.files.loaders import (
    FileLoadError,
    FilesExtraMissingError,
    LoadedText,
    load_bytes,
    load_file,
)

__all__ = [
    "FILES_EXTRA_INSTALL",
    "Chunk",
    "ChunkingSpec",
    "FileLoadError",
    "FilesExtraMissingError",
    "LoadedText",
    "SourceFile",
    "chunk_text",
    "extra_installed",
    "format_of",
    "iter_files",
    "load_bytes",
    "load_file",
    "source_key",
]
