"""
Which files are read, and as what: a file's format is told by its name's suffix (case-insensitive).

Text, Markdown, HTML and PowerPoint (PPTX, read with the standard library) are read by the base install;
PDF and Word (DOCX) need the ``files`` extra (``pip install 'airflow-provider-gemini-milvus[files]'``). Any
other file is listed as skipped, with the reason.
"""

from __future__ import annotations

import importlib.util

__all__ = [
    "BASE_FORMATS",
    "EXTRA_FORMATS",
    "FILES_EXTRA_INSTALL",
    "SUFFIX_FORMATS",
    "extra_installed",
    "format_of",
    "skip_reason",
]

#: Suffix to format.
SUFFIX_FORMATS: dict[str, str] = {
    ".txt": "text",
    ".text": "text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
    ".docx": "docx",
    ".pptx": "pptx",
}
#: Formats the base install reads.
BASE_FORMATS = frozenset({"text", "markdown", "html", "pptx"})
#: Formats the ``files`` extra reads, and the module each needs.
EXTRA_FORMATS: dict[str, str] = {"pdf": "pypdf", "docx": "mammoth"}
#: The command that installs the ``files`` extra.
FILES_EXTRA_INSTALL = "pip install 'airflow-provider-gemini-milvus[files]'"


def _suffix(name: str) -> str:
    base = name.rsplit("/", 1)[-1]
    dot = base.rfind(".")
    return base[dot:].lower() if dot > 0 else ""


def format_of(name: str) -> str | None:
    """
    Return the format of the file called ``name`` (``text``, ``markdown``, ``html``, ``pdf``, ``docx``,
    ``pptx``), or None when no loader reads it.

    :param name: a file name or path.
    """
    return SUFFIX_FORMATS.get(_suffix(name))


def skip_reason(name: str) -> str | None:
    """
    Return why the file called ``name`` is skipped, or None when a loader reads it.

    :param name: a file name or path.
    """
    if format_of(name) is not None:
        return None
    suffix = _suffix(name)
    kind = f"{suffix} files" if suffix else "files without a suffix"
    return f"{kind} are not read (supported: {', '.join(sorted(SUFFIX_FORMATS))})"


def extra_installed(file_format: str) -> bool:
    """
    Whether the library that reads ``file_format`` is installed (always true for the base formats).

    :param file_format: a format from :data:`SUFFIX_FORMATS`.
    """
    module = EXTRA_FORMATS.get(file_format)
    return module is None or importlib.util.find_spec(module) is not None
