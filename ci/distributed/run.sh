#!/usr/bin/env bash
# `make test-distributed`: prepare what the distributed run needs, then run it (ci/distributed/run_distributed.py).
#
# Prepares, each only when missing: Redis from Debian's packages (redis-server), the environment
# .venv-distributed (the project with its test extra, plus Airflow's Celery provider and the redis client:
# kept out of pyproject.toml; celery below 5.7, which dropped `celery.backends.database.retry` that the
# Celery provider 3.26 imports), and the Milvus 2.3.5 standalone binary in .venv-milvus-server (the PyPI
# package `milvus`, without its dependencies, as `make test-server` installs it).
#
# A component that cannot be had here is reported and the target exits 0 (SKIPPED); a run that starts and
# then fails exits non-zero.
set -uo pipefail

cd "$(dirname "$0")/../.."
PYTHON="${PYTHON:-python3}"
VENV=.venv-distributed
MILVUS_PACKAGE_DIR=.venv-milvus-server
MILVUS_VERSION=2.3.5

skip() {
    echo "test-distributed: SKIPPED: $*" >&2
    exit 0
}

if ! command -v redis-server >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "test-distributed: installing redis-server from Debian's packages"
        apt-get update -qq >/dev/null 2>&1
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >/dev/null 2>&1
    fi
    command -v redis-server >/dev/null 2>&1 \
        || skip "redis-server is not installed and could not be installed (apt-get install redis-server)"
fi

if [ ! -f "$VENV/.installed" ] || [ pyproject.toml -nt "$VENV/.installed" ]; then
    echo "test-distributed: installing $VENV (the project, its test extra, the Celery provider, redis)"
    { [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"; } \
        && "$VENV/bin/python" -m pip install --quiet -e '.[test]' apache-airflow-providers-celery 'celery<5.7' redis \
            2> >(grep -v "^WARNING: Location" >&2) \
        && touch "$VENV/.installed" \
        || skip "could not install $VENV (the Celery provider and redis from PyPI)"
fi

if [ ! -f "$MILVUS_PACKAGE_DIR/milvus/__init__.py" ]; then
    echo "test-distributed: installing milvus==$MILVUS_VERSION (the standalone server binary) into $MILVUS_PACKAGE_DIR"
    "$VENV/bin/python" -m pip install --quiet --no-deps --target "$MILVUS_PACKAGE_DIR" "milvus==$MILVUS_VERSION" \
        2> >(grep -v "^WARNING: Location" >&2) \
        || skip "could not install milvus==$MILVUS_VERSION from PyPI"
fi

exec "$VENV/bin/python" ci/distributed/run_distributed.py "$@"
