"""Sphinx configuration: Markdown pages (MyST), the furo theme, an API reference from the docstrings.

Build with warnings as errors, from the repository root::

    sphinx-build -W --keep-going -b html docs docs/_build/html
"""

from __future__ import annotations

import os
from importlib import metadata
from pathlib import Path

# Importing the package imports Airflow, which creates an airflow.cfg under AIRFLOW_HOME: keep it in the
# build folder instead of ~/airflow.
os.environ.setdefault("AIRFLOW_HOME", str(Path(__file__).parent / "_build" / "airflow_home"))

project = "airflow-provider-gemini-milvus"
author = "airflow-provider-gemini-milvus contributors"
copyright = "the airflow-provider-gemini-milvus contributors"  # noqa: A001 (Sphinx's name)
# (`version` is a Sphinx setting: do not import a function under that name here.)
try:
    release = metadata.version("airflow-provider-gemini-milvus")
except metadata.PackageNotFoundError:  # the reference needs the package installed; the pages do not
    release = "unreleased"
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}  # autosummary writes .rst
root_doc = "index"
templates_path = ["_templates"]
exclude_patterns = ["_build", "requirements.txt"]

# MyST: heading anchors so that links such as `connections.md#gemini` work here and on GitHub alike.
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence", "deflist"]

# API reference: one page per module listed in api/index.md (autosummary writes them to api/generated/,
# which is build output). Docstrings use Sphinx :param x: fields and :class: / :meth: roles.
autosummary_generate = True
autosummary_ignore_module_all = False
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "description"
autodoc_class_signature = "mixed"
autodoc_preserve_defaults = True

html_theme = "furo"
html_title = "airflow-provider-gemini-milvus"
html_static_path: list[str] = []

# The measured figures live in benchmarks/RESULTS.md beside the scripts, outside this folder. Pages link
# to it by its repository path, which works on GitHub; the site shows it as the page `benchmarks`, which
# includes it. This rewrites those links to that page before MyST resolves them.
RESULTS_LINK = "](../benchmarks/RESULTS.md"


def _link_results_page(app: object, docname: str, source: list[str]) -> None:
    target = "](#benchmark-results" if docname == "benchmarks" else "](benchmarks.md"
    source[0] = source[0].replace(RESULTS_LINK + ")", target + ")").replace(RESULTS_LINK, target)


def setup(app: object) -> None:
    app.connect("source-read", _link_results_page)  # type: ignore[attr-defined]
