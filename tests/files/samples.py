"""Small sample files made in the tests: a PDF with text and a title, a DOCX with headings, a PPTX."""

from __future__ import annotations

import io
import zipfile

from airflow_provider_gemini_milvus.testing.sample_media import pdf_bytes

__all__ = ["docx_bytes", "pdf_bytes", "pptx_bytes"]


_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"


def docx_bytes(paragraphs: list[tuple[str | None, str]], *, title: str | None = None) -> bytes:
    """A DOCX of ``(style name or None, text)`` paragraphs; ``Heading 1`` / ``Heading 2`` are headings."""
    styles = {None: None, "Heading 1": "Heading1", "Heading 2": "Heading2"}
    body = ""
    for style, text in paragraphs:
        properties = f'<w:pPr><w:pStyle w:val="{styles[style]}"/></w:pPr>' if style else ""
        body += f"<w:p>{properties}<w:r><w:t>{text}</w:t></w:r></w:p>"
    document = f'<?xml version="1.0"?><w:document xmlns:w="{_W}"><w:body>{body}</w:body></w:document>'
    style_xml = "".join(
        f'<w:style w:type="paragraph" w:styleId="{style_id}"><w:name w:val="{name}"/></w:style>'
        for name, style_id in styles.items()
        if name
    )
    files = {
        "[Content_Types].xml": (
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" '
            'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-'
            'officedocument.wordprocessingml.document.main+xml"/></Types>'
        ),
        "_rels/.rels": (
            '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
            'relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/'
            '2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>'
        ),
        "word/_rels/document.xml.rels": (
            '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
            'relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/'
            '2006/relationships/styles" Target="styles.xml"/></Relationships>'
        ),
        "word/document.xml": document,
        "word/styles.xml": f'<?xml version="1.0"?><w:styles xmlns:w="{_W}">{style_xml}</w:styles>',
    }
    if title is not None:
        files["docProps/core.xml"] = (
            '<?xml version="1.0"?><cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/'
            f'metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>{title}</dc:title>'
            "</cp:coreProperties>"
        )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return out.getvalue()


_P = "http://schemas.openxmlformats.org/presentationml/2006/main"
_A = "http://schemas.openxmlformats.org/drawingml/2006/main"
_R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"


def _shape(text_lines: list[str], placeholder: str | None) -> str:
    ph = f'<p:ph type="{placeholder}"/>' if placeholder else ""
    paragraphs = "".join(f"<a:p><a:r><a:t>{line}</a:t></a:r></a:p>" for line in text_lines)
    return f"<p:sp><p:nvSpPr><p:nvPr>{ph}</p:nvPr></p:nvSpPr><p:txBody>{paragraphs}</p:txBody></p:sp>"


def pptx_bytes(slides: list[tuple[str, list[str]]], *, title: str | None = None) -> bytes:
    """
    A PPTX of ``(slide title, lines)`` slides, in that order, stored as slide files numbered backwards
    (so the order must come from the presentation, not the file names).
    """
    files: dict[str, str] = {}
    relationships, slide_ids = "", ""
    for index, (heading, lines) in enumerate(slides):
        number = len(slides) - index
        shapes = _shape([heading], "title") + _shape(lines, None)
        files[f"ppt/slides/slide{number}.xml"] = (
            f'<?xml version="1.0"?><p:sld xmlns:p="{_P}" xmlns:a="{_A}"><p:cSld><p:spTree>{shapes}'
            "</p:spTree></p:cSld></p:sld>"
        )
        relationships += (
            f'<Relationship Id="rId{number}" Type="{_R}/slide" Target="slides/slide{number}.xml"/>'
        )
        slide_ids += f'<p:sldId id="{256 + index}" r:id="rId{number}"/>'
    files["ppt/presentation.xml"] = (
        f'<?xml version="1.0"?><p:presentation xmlns:p="{_P}" xmlns:r="{_R}"><p:sldIdLst>{slide_ids}'
        "</p:sldIdLst></p:presentation>"
    )
    files["ppt/_rels/presentation.xml.rels"] = (
        '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
        f'relationships">{relationships}</Relationships>'
    )
    if title is not None:
        files["docProps/core.xml"] = (
            '<?xml version="1.0"?><cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/'
            f'metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>{title}</dc:title>'
            "</cp:coreProperties>"
        )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return out.getvalue()
