"""Listing: files under a local folder or an S3 prefix, in order, with stable ids, sizes and hashes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from airflow_provider_gemini_milvus.files.listing import HASH_BLOCK_BYTES, iter_files, source_id_of
from airflow_provider_gemini_milvus.files.loaders import FileLoadError, load_file


def make_tree(root: Path) -> None:
    (root / "guide").mkdir(parents=True)
    (root / "guide" / "b.md").write_text("# B\n\nbee\n")
    (root / "guide" / "a.html").write_text("<h1>A</h1>")
    (root / "notes.txt").write_text("plain")
    (root / "image.png").write_bytes(b"\x89PNG")
    (root / "README").write_text("no suffix")
    (root / ".hidden").mkdir()
    (root / ".hidden" / "secret.md").write_text("x")


def test_a_local_folder_is_listed_recursively_in_path_order(tmp_path: Path) -> None:
    make_tree(tmp_path)
    files = list(iter_files(str(tmp_path)))
    assert [file.source_id for file in files] == [
        f"file://{tmp_path}/README",
        f"file://{tmp_path}/guide/a.html",
        f"file://{tmp_path}/guide/b.md",
        f"file://{tmp_path}/image.png",
        f"file://{tmp_path}/notes.txt",
    ]
    by_name = {file.source_id.rsplit("/", 1)[-1]: file for file in files}
    assert by_name["b.md"].format == "markdown"
    assert by_name["b.md"].size == len("# B\n\nbee\n")
    assert by_name["a.html"].format == "html"
    assert not by_name["a.html"].skipped
    assert by_name["image.png"].skipped
    assert ".png files are not read" in str(by_name["image.png"].skip_reason)
    assert by_name["README"].skip_reason is not None
    assert "without a suffix" in by_name["README"].skip_reason
    # the same listing from a file:// URI names the files alike: the source id is stable
    assert [file.source_id for file in iter_files(f"file://{tmp_path}/")] == [
        file.source_id for file in files
    ]


def test_one_file_is_listed_alone(tmp_path: Path) -> None:
    make_tree(tmp_path)
    (file,) = iter_files(tmp_path / "guide" / "b.md")
    assert file.source_id == f"file://{tmp_path}/guide/b.md"
    assert load_file(file).title == "B"


def test_content_hash_streams_the_bytes(tmp_path: Path) -> None:
    data = bytes(range(256)) * (HASH_BLOCK_BYTES // 256 * 2 + 7)  # more than two blocks
    (tmp_path / "big.txt").write_bytes(data)
    (file,) = iter_files(tmp_path)
    assert file.content_hash() == hashlib.sha256(data).hexdigest()


def test_a_skipped_file_is_not_loaded(tmp_path: Path) -> None:
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    (file,) = iter_files(tmp_path)
    with pytest.raises(FileLoadError, match=r"image\.png: \.png files are not read"):
        load_file(file)


@pytest.mark.parametrize("location", ["relative/folder", "{{ params.folder }}", "/no/such/folder"])
def test_bad_locations_are_refused(location: str) -> None:
    with pytest.raises(ValueError, match="files location|a files location"):
        list(iter_files(location))


def test_an_s3_prefix_is_listed_without_the_connection_in_the_id(s3_bucket: str) -> None:
    import s3fs

    fs = s3fs.S3FileSystem(skip_instance_cache=True)
    bucket = s3_bucket.removeprefix("s3://")
    fs.pipe(f"{bucket}/handbook/intro.md", b"# Intro\n\nHello.")
    fs.pipe(f"{bucket}/handbook/deep/page.html", b"<title>Page</title><p>Hi</p>")
    fs.pipe(f"{bucket}/handbook/deep/data.bin", b"\x00")
    fs.pipe(f"{bucket}/other.md", b"not under the prefix")
    files = list(iter_files(f"{s3_bucket}/handbook/"))
    assert [file.source_id for file in files] == [
        f"{s3_bucket}/handbook/deep/data.bin",
        f"{s3_bucket}/handbook/deep/page.html",
        f"{s3_bucket}/handbook/intro.md",
    ]
    assert files[0].skipped
    assert files[2].content_hash() == hashlib.sha256(b"# Intro\n\nHello.").hexdigest()
    loaded = load_file(files[1])
    assert (loaded.title, loaded.text, loaded.source_id) == (
        "Page",
        "Hi",
        f"{s3_bucket}/handbook/deep/page.html",
    )
    assert source_id_of(files[2].path) == files[2].source_id
