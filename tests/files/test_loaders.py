"""Loaders: each format to clean text and a title; bad bytes and a missing extra named by file."""

from __future__ import annotations

import importlib.util

import pytest

from airflow_provider_gemini_milvus.files import formats
from airflow_provider_gemini_milvus.files.loaders import (
    TITLE_MAX_CHARS,
    FileLoadError,
    FilesExtraMissingError,
    load_bytes,
    markdown_title,
)
from tests.files.samples import docx_bytes, pdf_bytes, pptx_bytes

needs_pypdf = pytest.mark.skipif(importlib.util.find_spec("pypdf") is None, reason="the files extra (pypdf)")
needs_mammoth = pytest.mark.skipif(
    importlib.util.find_spec("mammoth") is None, reason="the files extra (mammoth)"
)
needs_pptx = pytest.mark.skipif(
    importlib.util.find_spec("pptx") is None, reason="the files extra (python-pptx)"
)


def test_text_is_utf8_with_the_file_name_as_title() -> None:
    loaded = load_bytes(
        "\ufeffÉté\r\n\r\n\r\n\r\nsecond  \n".encode(), source_id="s3://b/notes/a.txt", file_format="text"
    )
    assert loaded.text == "Été\n\nsecond"
    assert loaded.title == "a.txt"
    assert loaded.format == "text"
    assert not loaded.is_markdown
    assert len(loaded.content_hash) == 64


def test_bad_utf8_is_named_by_file_byte_and_line() -> None:
    with pytest.raises(FileLoadError, match=r"s3://b/a\.md: not valid UTF-8 at byte 10 \(line 2"):
        load_bytes(b"# Title\nab\xff cd", source_id="s3://b/a.md", file_format="markdown")
    with pytest.raises(
        FileLoadError, match=r"at byte 5 \(line 1"
    ):  # counted in the file, byte-order mark included
        load_bytes(b"\xef\xbb\xbfab\xff", source_id="s3://b/a.txt", file_format="text")


def test_markdown_is_kept_and_titled_by_its_first_level_one_heading() -> None:
    text = "Intro line.\n\n```\n# not a title\n```\n\n## Sub\n\n# The Title\n\nBody."
    loaded = load_bytes(text.encode(), source_id="file:///d/a.md", file_format="markdown")
    assert loaded.text == text
    assert loaded.title == "The Title"
    assert loaded.is_markdown
    assert markdown_title("Setext Title\n============\n\ntext") == "Setext Title"


def test_long_titles_are_cut_and_blank_ones_fall_back_to_the_file_name() -> None:
    loaded = load_bytes(
        ("# " + "word " * 100).encode(), source_id="file:///d/long.md", file_format="markdown"
    )
    assert len(loaded.title) <= TITLE_MAX_CHARS
    assert load_bytes(b"no heading", source_id="file:///d/x.md", file_format="markdown").title == "x.md"


def test_html_becomes_markdown_without_scripts_styles_or_navigation() -> None:
    html = (
        "<html><head><title> My  Page </title><style>.a{color:red}</style><script>var secret=1;</script>"
        "</head><body><nav>Home | About</nav><header>Site header</header><h1>Install</h1>"
        "<p>Some <b>bold</b> text &amp; a <a href='https://x'>link</a>.</p><h2>From PyPI</h2>"
        "<pre><code>pip install x\n\necho hi</code></pre><ul><li>one</li><li>two</li></ul>"
        "<footer>Copyright</footer></body></html>"
    )
    loaded = load_bytes(html.encode(), source_id="file:///d/page.html", file_format="html")
    assert loaded.title == "My Page"
    assert loaded.is_markdown
    for kept in (
        "# Install",
        "Some **bold** text & a link.",
        "## From PyPI",
        "```\npip install x\n\necho hi\n```",
        "- one",
    ):
        assert kept in loaded.text
    for dropped in ("secret", "color:red", "Home | About", "Site header", "Copyright", "https://x"):
        assert dropped not in loaded.text


def test_html_without_a_title_tag_is_titled_by_its_first_heading() -> None:
    loaded = load_bytes(b"<h1>Heading</h1><p>x</p>", source_id="file:///d/p.htm", file_format="html")
    assert loaded.title == "Heading"


@needs_pypdf
def test_pdf_pages_become_text_with_the_metadata_title() -> None:
    data = pdf_bytes(["First page text.", "Second page text."], title="Annual Report")
    loaded = load_bytes(data, source_id="s3://b/report.pdf", file_format="pdf")
    assert loaded.title == "Annual Report"
    assert "First page text." in loaded.text
    assert "Second page text." in loaded.text
    assert loaded.text.index("First") < loaded.text.index("Second")
    assert not loaded.is_markdown
    untitled = load_bytes(pdf_bytes(["x"]), source_id="s3://b/untitled.pdf", file_format="pdf")
    assert untitled.title == "untitled.pdf"


@needs_pypdf
def test_a_damaged_pdf_is_named() -> None:
    with pytest.raises(FileLoadError, match=r"s3://b/broken\.pdf: cannot be read as PDF"):
        load_bytes(b"%PDF-1.4 this is not a pdf", source_id="s3://b/broken.pdf", file_format="pdf")


@needs_mammoth
def test_docx_keeps_its_headings() -> None:
    data = docx_bytes(
        [("Heading 1", "Guide"), (None, "Intro."), ("Heading 2", "Install"), (None, "Run it.")], title="Doc"
    )
    loaded = load_bytes(data, source_id="file:///d/guide.docx", file_format="docx")
    assert loaded.text == "# Guide\n\nIntro.\n\n## Install\n\nRun it."
    assert loaded.title == "Doc"
    assert loaded.is_markdown


def test_pptx_is_a_section_per_slide_in_the_presentations_order() -> None:
    data = pptx_bytes([("Welcome", ["point one", "point two"]), ("Next", ["more"])], title="Deck")
    loaded = load_bytes(data, source_id="file:///d/deck.pptx", file_format="pptx")
    assert loaded.text == "## Welcome\n\npoint one\n\npoint two\n\n## Next\n\nmore"
    assert loaded.title == "Deck"
    with pytest.raises(FileLoadError, match=r"deck\.pptx: cannot be read as PPTX"):
        load_bytes(b"PK not a zip", source_id="file:///d/deck.pptx", file_format="pptx")


def test_a_missing_extra_names_the_file_and_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(formats.EXTRA_FORMATS, "pdf", "no_such_module_for_pdf")
    with pytest.raises(FilesExtraMissingError) as raised:
        load_bytes(b"%PDF", source_id="s3://b/report.pdf", file_format="pdf")
    message = str(raised.value)
    assert "s3://b/report.pdf" in message
    assert "pip install 'airflow-provider-gemini-milvus[files]'" in message


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(FileLoadError, match="unknown format 'xls'"):
        load_bytes(b"", source_id="file:///d/a.xls", file_format="xls")
