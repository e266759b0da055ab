"""
The operators against a Milvus server: the tests of tests/operators/ that hold for any backend (writes,
deletes, staged manifests, incremental embedding), run here with ``milvus_connection`` on the server.
"""

from __future__ import annotations

from tests.embedding.test_sync import (  # noqa: F401  (imported tests run here, against the server)
    test_a_staged_run_hands_on_a_small_manifest_that_loads_every_row,
)
from tests.operators.test_gemini import (  # noqa: F401
    test_delete_missing_returns_the_ids_gone_from_the_source,
    test_incremental_one_edit_sends_exactly_one_text,
)
from tests.operators.test_milvus import (  # noqa: F401
    test_a_manifest_of_several_parts_is_loaded_and_its_deletes_applied,
    test_creates_the_collection_and_returns_a_json_safe_summary,
    test_dict_form_deletes_after_writing,
    test_insert_mode_retry_of_a_manifest_skips_what_is_stored,
    test_operator_loads_a_staged_manifest_from_xcom_in_a_dag,
    test_text_length_is_checked_in_bytes_against_the_existing_field,
)
