"""The Python examples in the README and the docs site run: fragments parse, complete examples execute.

A complete example (one that starts with its imports) is executed for real: operator snippets inside a DAG
(they build tasks, as a DAG file would), the hook snippet against the emulator. A page that shows an
example which stops working fails here, not in a user's DAG.
"""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
PAGES = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
CODE_BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def python_blocks() -> list[tuple[str, str]]:
    blocks = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for match in CODE_BLOCK.finditer(text):
            line = text[: match.start()].count("\n") + 1
            blocks.append((f"{page.relative_to(REPO_ROOT)}:{line}", match.group(1)))
    return blocks


BLOCKS = python_blocks()
COMPLETE = [(where, code) for where, code in BLOCKS if code.lstrip().startswith(("from ", "import "))]


def test_the_docs_have_python_examples() -> None:
    assert len(COMPLETE) >= 8, [where for where, _ in COMPLETE]


@pytest.mark.parametrize(("where", "code"), BLOCKS, ids=[where for where, _ in BLOCKS])
def test_every_python_block_parses(where: str, code: str) -> None:
    ast.parse(code, filename=where)


def dags_defined(namespace: dict[str, Any], where: str) -> list[Any]:
    """The DAGs of the ``@dag`` functions an example defines (called again: calling one builds its DAG)."""
    return [
        value()
        for value in namespace.values()
        if inspect.isfunction(value)  # a @dag function; a @task is a decorator object
        and hasattr(value, "__wrapped__")
        and getattr(value.__wrapped__, "__code__", None) is not None
        and value.__wrapped__.__code__.co_filename == where
    ]


@pytest.mark.parametrize(("where", "code"), COMPLETE, ids=[where for where, _ in COMPLETE])
def test_every_complete_example_runs(where: str, code: str, gemini_connection: str) -> None:
    from airflow.sdk import DAG

    namespace: dict[str, Any] = {"__name__": "docs_example"}
    compiled = compile(code, where, "exec")
    if "GeminiHook()" in code:  # the hook example embeds, through the emulator
        exec(compiled, namespace)
        return
    with DAG(dag_id="docs_example", schedule=None) as dag:
        exec(compiled, namespace)
    task_functions = [value for value in namespace.values() if type(value).__name__ == "_TaskDecorator"]
    assert dag.task_ids or task_functions or dags_defined(namespace, where), f"{where} defines nothing to run"


def test_the_readme_quickstart_is_the_tested_dag_file() -> None:
    where, code = next((where, code) for where, code in COMPLETE if where.startswith("README.md"))
    dag_file = (REPO_ROOT / "tests" / "dags" / "dag_readme_quickstart.py").read_text(encoding="utf-8")
    assert dag_file.endswith(code), f"{where} and tests/dags/dag_readme_quickstart.py differ"


@pytest.mark.usefixtures("airflow_db", "gemini_connection", "milvus_connection")
def test_the_readme_quickstart_dag_embeds_and_loads() -> None:
    """The quickstart as a user copies it into a DAG file, run with ``dag.test()``."""
    from airflow.sdk import DagRunState

    from airflow_provider_gemini_milvus.hooks.milvus import MilvusHook
    from tests.dags.dag_readme_quickstart import embed_docs

    assert embed_docs().test().state == DagRunState.SUCCESS
    with MilvusHook() as hook:
        assert hook.count("docs") == 2
