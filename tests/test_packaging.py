"""
The package's declarations agree with what is installed and with each other.

``pyproject.toml`` is read as data: no build, no network. The installed distributions (pymilvus, ruff,
mypy) are whichever environment runs the tests, the latest (``make test``) or the lowest
(``make test-lowest``).
"""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO_ROOT = Path(__file__).resolve().parent.parent
CONSTRAINTS_LOWEST = REPO_ROOT / "ci" / "constraints-lowest.txt"


@pytest.fixture(scope="module")
def pyproject() -> dict[str, Any]:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _requirements(lines: list[str]) -> dict[str, Requirement]:
    requirements = [Requirement(line) for line in lines]
    return {canonicalize_name(requirement.name): requirement for requirement in requirements}


def _floor(specifier: SpecifierSet) -> str | None:
    floors = [clause.version for clause in specifier if clause.operator == ">="]
    return floors[0] if len(floors) == 1 else None


def _lowest_pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in CONSTRAINTS_LOWEST.read_text(encoding="utf-8").splitlines():
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        requirement = Requirement(text)
        exact = [clause.version for clause in requirement.specifier if clause.operator == "=="]
        if exact:
            pins[canonicalize_name(requirement.name)] = exact[0]
    return pins


def test_pymilvus_extra_is_spelled_as_pymilvus_publishes_it(pyproject: dict[str, Any]) -> None:
    # pip 23.2 (bundled with Python 3.11) compares extras literally: a misspelt one is dropped with only a
    # warning, and Milvus Lite, the provider's default Milvus, is not installed.
    pymilvus = _requirements(pyproject["project"]["dependencies"])["pymilvus"]
    published = set(metadata.metadata("pymilvus").get_all("Provides-Extra") or [])

    assert pymilvus.extras, "pymilvus is declared without the extra that brings Milvus Lite"
    assert pymilvus.extras <= published, (
        f"pymilvus {metadata.version('pymilvus')} publishes the extras {sorted(published)}, "
        f"not {sorted(pymilvus.extras - published)}"
    )


def test_installed_pymilvus_brings_milvus_lite_with_the_extra(pyproject: dict[str, Any]) -> None:
    pymilvus = _requirements(pyproject["project"]["dependencies"])["pymilvus"]
    brought = [
        Requirement(line)
        for line in metadata.requires("pymilvus") or []
        if canonicalize_name(Requirement(line).name) == "milvus-lite"
    ]

    assert brought, "the installed pymilvus does not name milvus-lite at all"
    assert any(
        requirement.marker is None or requirement.marker.evaluate({"extra": extra})
        for requirement in brought
        for extra in pymilvus.extras
    )


def _runtime_requirements(pyproject: dict[str, Any]) -> dict[str, Any]:
    """The dependencies and those of the extras users install (``media``), not the developers' ones."""
    project = pyproject["project"]
    requirements = _requirements(project["dependencies"])
    for extra, listed in project["optional-dependencies"].items():
        if extra not in ("test", "dev"):
            requirements.update(_requirements(listed))
    return requirements


def test_every_declared_floor_is_pinned_in_the_lowest_constraints(pyproject: dict[str, Any]) -> None:
    floors = {
        name: _floor(requirement.specifier) for name, requirement in _runtime_requirements(pyproject).items()
    }
    pins = _lowest_pins()

    assert None not in floors.values(), f"every dependency needs exactly one `>=` floor: {floors}"
    assert {name: pins.get(name) for name in floors} == floors


def test_lowest_constraints_pin_only_declared_dependencies(pyproject: dict[str, Any]) -> None:
    # Other lines of the file may cap a transitive dependency (`<`), never pin one: an `==` pin of a package
    # we do not declare would be a floor users never get.
    declared = set(_runtime_requirements(pyproject))

    assert set(_lowest_pins()) <= declared


def test_python_classifiers_lie_within_requires_python(pyproject: dict[str, Any]) -> None:
    project = pyproject["project"]
    requires_python = SpecifierSet(project["requires-python"])
    prefix = "Programming Language :: Python :: 3."
    minors = sorted(
        Version(classifier.removeprefix("Programming Language :: Python :: "))
        for classifier in project["classifiers"]
        if classifier.startswith(prefix) and classifier.removeprefix(prefix).isdigit()
    )

    outside = [str(minor) for minor in minors if not requires_python.contains(minor)]

    assert minors, "no Python version classifiers"
    assert not outside, f"classifiers name Python {outside}, outside requires-python {requires_python}"
    assert str(minors[0]) == _floor(requires_python), "the lowest classifier is not the requires-python floor"


def test_setuptools_floor_builds_the_pep_639_license_string(pyproject: dict[str, Any]) -> None:
    setuptools = _requirements(pyproject["build-system"]["requires"])["setuptools"]
    floor = _floor(setuptools.specifier)

    assert isinstance(pyproject["project"]["license"], str)
    assert floor is not None
    assert Version(floor) >= Version("77"), f'setuptools {floor} cannot read `license = "Apache-2.0"`'


def test_license_files_exist(pyproject: dict[str, Any]) -> None:
    for name in pyproject["project"]["license-files"]:
        assert (REPO_ROOT / name).read_text(encoding="utf-8").strip(), name


@pytest.mark.parametrize("tool", ["ruff", "mypy"])
def test_installed_linters_are_the_pinned_versions(pyproject: dict[str, Any], tool: str) -> None:
    # `make lint`, `make typecheck` and pre-commit run these binaries from the venv; the pin makes every
    # machine judge the code with the same rules.
    pinned = _requirements(pyproject["project"]["optional-dependencies"]["test"])[tool]

    assert pinned.specifier.contains(metadata.version(tool)), (
        f"{tool} {metadata.version(tool)} is installed, the test extra pins {pinned.specifier}: reinstall"
    )
    assert str(pinned.specifier).startswith("==")
