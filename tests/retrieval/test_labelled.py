"""labelled_queries: every form a user passes (native, rendered JSON, .json and .jsonl files), every bad
input refused with its item named, and the JSONL written by dump_labelled_queries read back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airflow_provider_gemini_milvus.retrieval.labelled import (
    LabelledQuery,
    dump_labelled_queries,
    labelled_queries,
)

EXPECTED = [
    LabelledQuery("pump PX-4410 loses pressure", {"kb-017": 1.0}),
    LabelledQuery("how do I descale the boiler?", {"kb-004": 2.0, "kb-009": 1.0}),
]
AS_LIST = [
    {"query": "pump PX-4410 loses pressure", "relevant": ["kb-017"]},
    {"query": "how do I descale the boiler?", "relevant": {"kb-004": 2, "kb-009": 1}},
]
AS_MAPPING = {
    "pump PX-4410 loses pressure": "kb-017",
    "how do I descale the boiler?": {"kb-004": 2, "kb-009": 1},
}


# -- the accepted forms -----------------------------------------------------------------------------


def test_a_list_of_query_objects() -> None:
    assert labelled_queries(AS_LIST) == EXPECTED


def test_a_mapping_of_query_to_relevant_ids() -> None:
    assert labelled_queries(AS_MAPPING) == EXPECTED


@pytest.mark.parametrize(
    "relevant", [["kb-1"], "kb-1", {"kb-1": 1}, ("kb-1",)], ids=["list", "one id", "grades", "tuple"]
)
def test_the_three_forms_of_relevant(relevant: object) -> None:
    assert labelled_queries([{"query": "q", "relevant": relevant}]) == [LabelledQuery("q", {"kb-1": 1.0})]


@pytest.mark.parametrize("value", [AS_LIST, AS_MAPPING], ids=["list", "mapping"])
def test_rendered_json_text_of_either_shape(value: object) -> None:
    assert labelled_queries("  \n" + json.dumps(value)) == EXPECTED


@pytest.mark.parametrize("value", [AS_LIST, AS_MAPPING], ids=["list", "mapping"])
def test_a_json_file_of_either_shape_as_a_string_or_a_path(tmp_path: Path, value: object) -> None:
    path = tmp_path / "labelled.json"
    path.write_text(json.dumps(value), encoding="utf-8")
    assert labelled_queries(path) == EXPECTED
    assert labelled_queries(str(path)) == EXPECTED


def test_a_jsonl_file_skips_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "labelled.jsonl"
    path.write_text("\n".join(json.dumps(item) for item in AS_LIST).replace("\n", "\n\n") + "\n", "utf-8")
    assert labelled_queries(str(path)) == EXPECTED


def test_labelled_query_objects_pass_through() -> None:
    assert labelled_queries(EXPECTED) == EXPECTED


def test_a_labelled_query_is_hashable_and_frozen() -> None:
    query = EXPECTED[0]
    assert hash(query) == hash(LabelledQuery("pump PX-4410 loses pressure", {"other": 1.0}))
    with pytest.raises(AttributeError):
        query.query = "x"  # type: ignore[misc]


def test_dump_writes_jsonl_that_reads_back(tmp_path: Path) -> None:
    path = dump_labelled_queries(EXPECTED, tmp_path / "out.jsonl")
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == [
        {"query": "pump PX-4410 loses pressure", "relevant": ["kb-017"]},
        {"query": "how do I descale the boiler?", "relevant": {"kb-004": 2, "kb-009": 1}},
    ]
    assert labelled_queries(path) == EXPECTED


def test_dump_keeps_fractional_grades_and_unicode(tmp_path: Path) -> None:
    queries = [LabelledQuery("Überdruck im Kessel", {"kb-1": 0.5})]
    path = dump_labelled_queries(queries, str(tmp_path / "out.jsonl"))
    assert "Überdruck" in path.read_text(encoding="utf-8")
    assert labelled_queries(path) == queries


# -- bad input: each refused, naming the item -------------------------------------------------------


def refused(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        labelled_queries(value)


def test_an_item_without_query() -> None:
    refused([AS_LIST[0], {"relevant": ["a"]}], r'^labelled_queries\[1\] has no "query"$')


def test_an_item_without_relevant() -> None:
    refused([{"query": "q"}], r'^labelled_queries\[0\] has no "relevant"$')


def test_an_item_that_is_not_an_object() -> None:
    refused([AS_LIST[0], "q"], r'^labelled_queries\[1\] must be a \{"query", "relevant"\} object, got str$')


def test_an_item_with_an_unknown_key() -> None:
    refused(
        [{"query": "q", "relevant": ["a"], "relevent": ["b"]}],
        r"^labelled_queries\[0\] has unknown keys \['relevent'\]",
    )


@pytest.mark.parametrize("query", ["", "  ", None, 7])
def test_a_query_that_is_not_a_non_empty_string(query: object) -> None:
    refused(
        [{"query": query, "relevant": ["a"]}], r'^labelled_queries\[0\]\["query"\] must be the query text'
    )


@pytest.mark.parametrize("relevant", [[], {}], ids=["list", "mapping"])
def test_an_empty_relevant(relevant: object) -> None:
    refused(
        [AS_LIST[0], {"query": "q", "relevant": relevant}], r'^labelled_queries\[1\]\["relevant"\] is empty'
    )


def test_relevant_of_the_wrong_type() -> None:
    refused([{"query": "q", "relevant": 3.5}], r'^labelled_queries\[0\]\["relevant"\] must be a list of ids')


def test_an_id_that_is_a_number_is_named_and_refused() -> None:
    refused(
        [{"query": "q", "relevant": ["a", 42]}],
        r'^labelled_queries\[0\]\["relevant"\]\[1\] is the number 42: ids are strings .*write "42"',
    )


def test_a_number_key_in_a_grades_mapping() -> None:
    refused(
        [{"query": "q", "relevant": {7: 1}}], r'^labelled_queries\[0\]\["relevant"\] key 7 is the number 7'
    )


@pytest.mark.parametrize("identifier", ["", None, ["a"]])
def test_an_id_that_is_not_a_non_empty_string(identifier: object) -> None:
    refused(
        [{"query": "q", "relevant": [identifier]}],
        r'^labelled_queries\[0\]\["relevant"\]\[0\] must be an id, a non-empty string',
    )


def test_an_empty_id_alone() -> None:
    refused([{"query": "q", "relevant": ""}], r'^labelled_queries\[0\]\["relevant"\] must be an id')


def test_a_repeated_id() -> None:
    refused(
        [{"query": "q", "relevant": ["a", "a"]}],
        r"^labelled_queries\[0\]\[\"relevant\"\] names the id 'a' twice",
    )


@pytest.mark.parametrize("grade", [0, -2, "1", True, None, float("inf")])
def test_a_grade_that_is_not_a_positive_number(grade: object) -> None:
    refused(
        [{"query": "q", "relevant": {"kb-1": grade}}],
        r'^labelled_queries\[0\]\["relevant"\]\["kb-1"\] must be a grade, a positive number',
    )


def test_a_repeated_query() -> None:
    refused(
        [AS_LIST[0], AS_LIST[1], {"query": " pump PX-4410 loses pressure ", "relevant": "x"}],
        r'^labelled_queries\[2\] repeats the query "pump PX-4410 loses pressure" of labelled_queries\[0\]$',
    )


@pytest.mark.parametrize("value", [[], {}, "[]", "{}"], ids=["list", "mapping", "json list", "json mapping"])
def test_an_empty_set(value: object) -> None:
    refused(value, r"^labelled_queries holds no queries")


def test_a_mapping_item_with_an_empty_relevant_names_the_query() -> None:
    refused({"how do I descale?": []}, r'^labelled_queries\["how do I descale\?"\] is empty')


def test_a_mapping_with_a_number_id_names_the_query() -> None:
    refused({"q": [1]}, r'^labelled_queries\["q"\]\[0\] is the number 1')


def test_one_query_object_instead_of_a_list() -> None:
    refused(AS_LIST[0], r'^labelled_queries is one \{"query", "relevant"\} object; pass a list of them$')


def test_json_text_that_does_not_parse() -> None:
    refused('[{"query": "q", "relevant": ["a"]}', r"^labelled_queries is not JSON \(")


def test_json_text_of_another_type() -> None:
    refused(
        json.dumps([[1]]),
        r'^labelled_queries\[0\] must be a \{"query", "relevant"\} object, got list$',
    )


def test_a_string_that_is_neither_json_nor_a_json_file() -> None:
    refused("what is E-2207?", r"^labelled_queries is neither JSON text .* \"what is E-2207\?\"$")


def test_an_empty_string() -> None:
    refused("  ", r"^labelled_queries is empty")


@pytest.mark.parametrize("value", [None, 3, b"[]"])
def test_a_value_of_another_type(value: object) -> None:
    refused(value, r"^labelled_queries must be a list of .*; got (null|int|bytes)$")


def test_a_file_that_does_not_exist(tmp_path: Path) -> None:
    refused(str(tmp_path / "missing.jsonl"), r"^labelled_queries: the file '.*missing.jsonl' does not exist$")


def test_a_path_with_another_suffix(tmp_path: Path) -> None:
    path = tmp_path / "labelled.csv"
    path.write_text("q,a\n", encoding="utf-8")
    refused(path, r"^labelled_queries: the file '.*labelled.csv' must end in .json or .jsonl$")


def test_a_jsonl_line_that_is_not_json(tmp_path: Path) -> None:
    path = tmp_path / "labelled.jsonl"
    lines = [json.dumps(AS_LIST[0]), "", json.dumps(AS_LIST[1]), '{"query": "q", "relevant": [']
    path.write_text("\n".join(lines), encoding="utf-8")
    refused(path, r"labelled.jsonl line 4: not JSON \(")


def test_a_jsonl_line_without_query_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "labelled.jsonl"
    path.write_text(json.dumps(AS_LIST[0]) + "\n" + json.dumps({"relevant": "a"}) + "\n", encoding="utf-8")
    refused(path, r'labelled.jsonl line 2 has no "query"$')


def test_a_jsonl_line_with_an_empty_relevant(tmp_path: Path) -> None:
    path = tmp_path / "labelled.jsonl"
    path.write_text(json.dumps({"query": "q", "relevant": []}) + "\n", encoding="utf-8")
    refused(path, r'labelled.jsonl line 1\["relevant"\] is empty')


def test_a_repeated_query_across_jsonl_lines(tmp_path: Path) -> None:
    path = tmp_path / "labelled.jsonl"
    path.write_text(json.dumps(AS_LIST[0]) + "\n" + json.dumps(AS_LIST[0]) + "\n", encoding="utf-8")
    refused(
        path,
        r'labelled.jsonl line 2 repeats the query "pump PX-4410 loses pressure" of .*labelled.jsonl line 1$',
    )


def test_an_empty_jsonl_file(tmp_path: Path) -> None:
    path = tmp_path / "labelled.jsonl"
    path.write_text("\n\n", encoding="utf-8")
    refused(path, r"^labelled_queries holds no queries")


def test_a_json_file_that_does_not_parse(tmp_path: Path) -> None:
    path = tmp_path / "labelled.json"
    path.write_text("[{", encoding="utf-8")
    refused(path, r"labelled.json: not JSON \(.*line 1 column 3\)$")


def test_a_json_file_item_is_named_by_the_file(tmp_path: Path) -> None:
    path = tmp_path / "labelled.json"
    path.write_text(json.dumps([AS_LIST[0], {"query": "q", "relevant": [5]}]), encoding="utf-8")
    refused(path, r'labelled.json\[1\]\["relevant"\]\[0\] is the number 5')


def test_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "labelled.jsonl"
    path.write_bytes(b'{"query": "\xff", "relevant": "a"}\n')
    refused(path, r"labelled.jsonl: not UTF-8 text \(invalid start byte at byte 11\)$")


def test_a_long_query_is_shortened_in_messages() -> None:
    query = "x" * 200
    with pytest.raises(ValueError, match="repeats") as raised:
        labelled_queries([{"query": query, "relevant": "a"}, {"query": query, "relevant": "b"}])
    assert len(str(raised.value)) < 200


def test_the_argument_name_is_used() -> None:
    refused_name = r"^quality_queries\[0\] has no \"query\"$"
    with pytest.raises(ValueError, match=refused_name):
        labelled_queries([{}], name="quality_queries")
