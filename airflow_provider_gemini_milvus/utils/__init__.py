"""Small helpers every layer may use: argument converters, the UTF-8 check, recorded times, the logger."""

from __future__ import annotations

from airflow_provider_gemini_milvus.utils.converters import (
    parse_bool,
    to_bool,
    to_float,
    to_int,
    to_str,
    to_str_list,
)
from airflow_provider_gemini_milvus.utils.logs import TaskLogger
from airflow_provider_gemini_milvus.utils.times import iso_time, parse_iso_time
from airflow_provider_gemini_milvus.utils.unicode import check_utf8_encodable

__all__ = [
    "TaskLogger",
    "check_utf8_encodable",
    "iso_time",
    "parse_iso_time",
    "parse_bool",
    "to_bool",
    "to_float",
    "to_int",
    "to_str",
    "to_str_list",
]
