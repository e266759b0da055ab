"""The one converter of rendered template values, as Jinja hands them to ``execute``."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_gemini_milvus.utils.converters import (
    is_list_text,
    split_list_text,
    to_bool,
    to_float,
    to_int,
    to_str,
    to_str_list,
    unset_if_none,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, True), (False, False), ("True", True), ("False", False), ("false", False), (" TRUE ", True)],
)
def test_to_bool_accepts_booleans_and_their_rendered_text(value: Any, expected: bool) -> None:
    assert to_bool(value, "flag") is expected


@pytest.mark.parametrize("value", ["treu", "", "0", "1", "yes", None, 1, 0])
def test_to_bool_refuses_everything_else(value: Any) -> None:
    with pytest.raises(ValueError, match=r"flag must be true or false"):
        to_bool(value, "flag")


@pytest.mark.parametrize(("value", "expected"), [(5, 5), ("5", 5), (" 12 ", 12), ("-3", -3)])
def test_to_int_accepts_integers_and_their_rendered_text(value: Any, expected: int) -> None:
    assert to_int(value, "n") == expected


@pytest.mark.parametrize("value", ["5.5", 5.5, True, "five", "", None, [5]])
def test_to_int_refuses_non_integers(value: Any) -> None:
    with pytest.raises(ValueError, match=r"^n (must be an integer|is required)"):
        to_int(value, "n")


def test_to_int_checks_bounds_and_optional() -> None:
    assert to_int(None, "n", optional=True) is None
    assert to_int("", "n", optional=True) is None
    with pytest.raises(ValueError, match="n must be an integer from 1 to 100, got '101'"):
        to_int("101", "n", minimum=1, maximum=100)


@pytest.mark.parametrize(("value", "expected"), [(0.5, 0.5), (1, 1.0), ("0.25", 0.25), ("1", 1.0)])
def test_to_float_accepts_numbers_and_their_rendered_text(value: Any, expected: float) -> None:
    assert to_float(value, "x") == expected


@pytest.mark.parametrize("value", ["nan", float("inf"), "half", True, "2"])
def test_to_float_refuses_non_finite_and_out_of_range(value: Any) -> None:
    with pytest.raises(ValueError, match="x must be a number from 0 to 1"):
        to_float(value, "x", minimum=0, maximum=1)


def test_to_str_checks_choices_and_blank() -> None:
    assert to_str("upsert", "mode", choices=("upsert", "insert")) == "upsert"
    assert to_str("", "title_field", optional=True) is None
    with pytest.raises(ValueError, match="mode must be one of"):
        to_str("merge", "mode", choices=("upsert", "insert"))
    with pytest.raises(ValueError, match="model must be a non-empty string, got None"):
        to_str(None, "model")
    with pytest.raises(ValueError, match="model must be a string, got int"):
        to_str(3, "model")


def test_to_str_list_refuses_a_plain_string_instead_of_splitting_it() -> None:
    assert to_str_list(["a", "b"], "fields") == ["a", "b"]
    assert to_str_list(("a",), "fields") == ["a"]
    assert to_str_list(None, "fields", optional=True) is None
    with pytest.raises(ValueError, match="fields must be a list of strings, got the string 'abc'"):
        to_str_list("abc", "fields")
    with pytest.raises(ValueError, match=r"fields\[1\] must be a non-empty string"):
        to_str_list(["a", ""], "fields")


@pytest.mark.parametrize(("value", "expected"), [("None", None), (" None ", None), ("none", "none"), (3, 3)])
def test_unset_if_none_reads_a_rendered_none_as_unset(value: Any, expected: Any) -> None:
    assert unset_if_none(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("['a', 'b']", True), ("[1]", True), ("[not python]", False), ("a, b", False), ("[", False)],
)
def test_is_list_text(value: str, expected: bool) -> None:
    assert is_list_text(value) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("[0.7, 0.3]", [0.7, 0.3]),
        ("['dense']", ["dense"]),
        ("dense, hybrid", ["dense", "hybrid"]),
        ("x", ["x"]),
    ],
)
def test_split_list_text(value: str, expected: list[Any]) -> None:
    assert split_list_text(value, "modes") == expected


def test_split_list_text_refuses_brackets_that_hold_no_list() -> None:
    with pytest.raises(ValueError, match=r"modes must be a list, got the text '\[dense\]'"):
        split_list_text("[dense]", "modes")
