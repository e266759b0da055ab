"""
A file's bytes to clean text, its title and its format: what the chunker reads.

- Text is UTF-8 (a byte-order mark is dropped); bad UTF-8 is named by file and byte offset.
- Markdown is kept as Markdown: the chunker follows its headings and code fences.
- HTML becomes Markdown (headings, lists, tables and code kept; scripts, styles, navigation, headers and
  footers dropped) with ``markdownify`` over BeautifulSoup's standard-library parser.
- PPTX is read with the standard library (its slides' XML): a ``##`` section per slide, titled by the
  slide's title.
- PDF (``pypdf``) and DOCX (``mammoth``, through HTML, so its headings are kept) need the ``files`` extra;
  without it the error names the file and the install command.

The title is the Markdown document's first ``# `` heading, the HTML ``<title>``, the PDF / Office
document's metadata title, else the file name; it is cut to :data:`TITLE_MAX_CHARS`.
"""

from __future__ import annotations

import codecs
import hashlib
import io
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_gemini_milvus.exceptions import FileLoadError, FilesExtraMissingError
from airflow_provider_gemini_milvus.files.formats import (
    EXTRA_FORMATS,
    FILES_EXTRA_INSTALL,
    SUFFIX_FORMATS,
    extra_installed,
)

if TYPE_CHECKING:
    from airflow_provider_gemini_milvus.files.listing import SourceFile

__all__ = [
    "DROPPED_HTML_TAGS",
    "TITLE_MAX_CHARS",
    "FileLoadError",
    "FilesExtraMissingError",
    "LoadedText",
    "load_bytes",
    "load_file",
    "markdown_title",
]

#: The longest title kept: the title is sent with every chunk (gemini-embedding-2's prompt carries it).
TITLE_MAX_CHARS = 200
#: HTML elements dropped with their content before the conversion: not part of the page's text.
DROPPED_HTML_TAGS = (
    "head",
    "title",
    "script",
    "style",
    "noscript",
    "template",
    "iframe",
    "svg",
    "canvas",
    "nav",
    "header",
    "footer",
    "aside",
    "form",
    "button",
)
_BLANK_RUNS = re.compile(r"\n[ \t]*\n(?:[ \t]*\n)+")
_TRAILING_SPACE = re.compile(r"[ \t]+\n")


@dataclass(frozen=True)
class LoadedText:
    """
    One file as text.

    :param source_id: the file's URI.
    :param text: its clean text (Markdown for Markdown, HTML and Office documents).
    :param title: its title (never empty: the file name at worst).
    :param format: the format it was read as.
    :param content_hash: SHA-256 hex digest of the file's bytes (as :meth:`SourceFile.content_hash`).
    """

    source_id: str
    text: str
    title: str
    format: str
    content_hash: str

    @property
    def is_markdown(self) -> bool:
        """Whether the text is Markdown (its headings and code fences mean something to the chunker)."""
        return self.format != "text" and self.format != "pdf"


def load_file(file: SourceFile) -> LoadedText:
    """
    Read and convert one listed file.

    :param file: a file from :func:`~airflow_provider_gemini_milvus.files.listing.iter_files` that is not
        skipped.
    :raises FileLoadError: when the file is skipped or cannot be read as its format.
    :raises FilesExtraMissingError: for a PDF or Office file without the ``files`` extra installed.
    """
    if file.format is None:
        raise FileLoadError(f"{file.source_id}: {file.skip_reason}")
    _require_extra(file.format, file.source_id)
    return load_bytes(file.read_bytes(), source_id=file.source_id, file_format=file.format)


def load_bytes(data: bytes, *, source_id: str, file_format: str) -> LoadedText:
    """
    Convert a file's bytes to :class:`LoadedText`.

    :param data: the file's bytes.
    :param source_id: the file's URI (names it in errors; its last segment is the fallback title).
    :param file_format: one of the formats of :data:`.formats.SUFFIX_FORMATS`.
    :raises FileLoadError: when the bytes cannot be read as ``file_format``.
    """
    if file_format not in set(SUFFIX_FORMATS.values()):
        raise FileLoadError(f"{source_id}: unknown format {file_format!r}")
    _require_extra(file_format, source_id)
    content_hash = hashlib.sha256(data).hexdigest()
    title: str | None
    if file_format in ("text", "markdown"):
        text = _normalise(_decode_utf8(data, source_id))
        title = markdown_title(text) if file_format == "markdown" else None
    elif file_format == "html":
        text, title = _html_to_markdown(data)
    else:
        try:
            text, title = _READERS[file_format](data)
        except FilesExtraMissingError:
            raise
        except Exception as err:  # each library has its own errors for a damaged file
            raise FileLoadError(
                f"{source_id}: cannot be read as {file_format.upper()} ({type(err).__name__}: {err})"
            ) from None
        text = _normalise(text)
    return LoadedText(
        source_id=source_id,
        text=text,
        title=_clean_title(title) or _file_name(source_id),
        format=file_format,
        content_hash=content_hash,
    )


def markdown_title(text: str) -> str | None:
    """
    Return the text of the first level-1 heading (``# Title`` or a ``===`` underline) of Markdown ``text``.

    :param text: Markdown.
    """
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark").parse(text)
    for index, token in enumerate(tokens[:-1]):
        if token.type == "heading_open" and token.tag == "h1":
            return tokens[index + 1].content.strip() or None
    return None


def _require_extra(file_format: str, source_id: str) -> None:
    if not extra_installed(file_format):
        raise FilesExtraMissingError(
            f"{source_id}: reading {file_format.upper()} files needs the {EXTRA_FORMATS[file_format]!r} "
            f"package of the files extra: {FILES_EXTRA_INSTALL}"
        )


def _decode_utf8(data: bytes, source_id: str) -> str:
    skipped = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        return data[skipped:].decode("utf-8")
    except UnicodeDecodeError as err:
        offset = err.start + skipped
        line = data.count(b"\n", 0, offset) + 1
        raise FileLoadError(
            f"{source_id}: not valid UTF-8 at byte {offset} (line {line}: {err.reason}); save it as UTF-8"
        ) from None


def _normalise(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    text = _TRAILING_SPACE.sub("\n", text)
    return _BLANK_RUNS.sub("\n\n", text).strip()


def _clean_title(title: str | None) -> str:
    if not title:
        return ""
    single = " ".join(title.split())
    return single[:TITLE_MAX_CHARS].rstrip()


def _file_name(source_id: str) -> str:
    return _clean_title(source_id.rstrip("/").rsplit("/", 1)[-1]) or source_id[:TITLE_MAX_CHARS]


def _html_to_markdown(data: bytes | str) -> tuple[str, str | None]:
    from bs4 import BeautifulSoup
    from markdownify import MarkdownConverter

    soup = BeautifulSoup(data, "html.parser")
    title_tag = soup.find("title")
    title = title_tag.get_text(" ", strip=True) if title_tag is not None else None
    for tag in soup.find_all(DROPPED_HTML_TAGS):
        tag.decompose()
    root = soup.find("main") or soup.find("body") or soup
    converter = MarkdownConverter(heading_style="ATX", bullets="-", strip=["a", "img"], escape_misc=False)
    text = _normalise(converter.convert_soup(root))
    if not title:
        title = markdown_title(text)
    return text, title


def _read_pdf(data: bytes) -> tuple[str, str | None]:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    pages = [page.extract_text() or "" for page in reader.pages]
    metadata = reader.metadata
    title = metadata.title if metadata is not None else None
    return "\n\n".join(page.strip() for page in pages if page.strip()), title


def _read_docx(data: bytes) -> tuple[str, str | None]:
    import mammoth

    html = mammoth.convert_to_html(io.BytesIO(data)).value
    text, title = _html_to_markdown(f"<body>{html}</body>")
    return text, _office_title(data) or title


_PML = "{http://schemas.openxmlformats.org/presentationml/2006/main}"
_DML = "{http://schemas.openxmlformats.org/drawingml/2006/main}"
_REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
_PACKAGE_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_TITLE_PLACEHOLDERS = frozenset({"title", "ctrTitle"})


def _read_pptx(data: bytes) -> tuple[str, str | None]:
    import zipfile
    from xml.etree import ElementTree

    sections: list[str] = []
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        targets = {
            rel.get("Id"): rel.get("Target", "")
            for rel in ElementTree.fromstring(archive.read("ppt/_rels/presentation.xml.rels"))
            if rel.tag == f"{_PACKAGE_REL}Relationship"
        }
        presentation = ElementTree.fromstring(archive.read("ppt/presentation.xml"))
        slide_ids = presentation.iter(f"{_PML}sldId")
        names = [targets.get(slide.get(f"{_REL}id")) for slide in slide_ids]
        for number, name in enumerate(names, start=1):
            if not name:
                continue
            slide = ElementTree.fromstring(
                archive.read("ppt/" + name.removeprefix("/ppt/").removeprefix("./"))
            )
            heading, lines = "", []
            for shape in slide.iter(f"{_PML}sp"):
                placeholder = shape.find(f"{_PML}nvSpPr/{_PML}nvPr/{_PML}ph")
                texts = [
                    "".join(run.text or "" for run in paragraph.iter(f"{_DML}t")).strip()
                    for paragraph in shape.iter(f"{_DML}p")
                ]
                texts = [text for text in texts if text]
                if placeholder is not None and placeholder.get("type") in _TITLE_PLACEHOLDERS and not heading:
                    heading = " ".join(texts)
                else:
                    lines.extend(texts)
            sections.append("\n\n".join([f"## {heading or f'Slide {number}'}", *lines]))
    return "\n\n".join(sections), _office_title(data)


def _office_title(data: bytes) -> str | None:
    import zipfile
    from xml.etree import ElementTree

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            core = archive.read("docProps/core.xml")
    except (KeyError, zipfile.BadZipFile):
        return None
    element = ElementTree.fromstring(core).find("{http://purl.org/dc/elements/1.1/}title")
    return element.text if element is not None and element.text else None


_READERS: dict[str, Any] = {"pdf": _read_pdf, "docx": _read_docx, "pptx": _read_pptx}
