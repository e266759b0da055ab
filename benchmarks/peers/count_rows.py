"""
Print the number of rows in a collection of a Milvus Lite file; run with each contender's own Python, so
the file is read by the Milvus Lite that wrote it.

Usage: ``count_rows.py FILE.db COLLECTION``
"""

from __future__ import annotations

import sys

from pymilvus import MilvusClient


def main() -> None:
    path, collection = sys.argv[1], sys.argv[2]
    client = MilvusClient(uri=path)
    try:
        client.load_collection(collection)
        result = client.query(collection, filter="", output_fields=["count(*)"], consistency_level="Strong")
        print(result[0]["count(*)"])
    finally:
        client.close()


if __name__ == "__main__":
    main()
