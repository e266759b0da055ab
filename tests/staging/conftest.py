"""An S3-compatible server on loopback (moto), for staging through ``s3://`` the way a deployment does."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

BUCKET = "staging-tests"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """The URL of a moto S3 server on 127.0.0.1 (skips the test when moto[server] is not installed)."""
    server_module = pytest.importorskip(
        "moto.server", reason="the S3 staging test needs moto[server] and s3fs (the test extra)"
    )
    pytest.importorskip("s3fs", reason="the S3 staging test needs s3fs (the test extra)")
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """
    ``s3://staging-tests``, reached through fsspec's s3fs configured from the environment.

    No Airflow provider registers ``s3://`` here, so staging falls back to fsspec's implementation and
    attaches it to Airflow's object storage; that attachment is dropped afterwards, so no other test sees a
    filesystem pointing at this short-lived server.
    """
    import s3fs
    from airflow.sdk.io import store

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": s3_endpoint,
    }.items():
        monkeypatch.setenv(name, value)
    s3fs.S3FileSystem.clear_instance_cache()
    s3fs.S3FileSystem(skip_instance_cache=True).mkdir(BUCKET)
    yield f"s3://{BUCKET}"
    store._STORE_CACHE.pop("s3", None)
    s3fs.S3FileSystem.clear_instance_cache()
