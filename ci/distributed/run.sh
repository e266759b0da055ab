#!/usr/bin/env bash
# `make test-distributed`: prepare what the distributed run needs, then run it (ci/distributed/run_distributed.py).
#
# Prepares, each only when missing: Redis from Debian's packages (redis-server) and the environment
# .venv-distributed (Airflow's Celery provider and the redis client over the project's .venv: kept out of
# pyproject.toml; celery below 5.7, which dropped `celery.backends.database.retry` that the Celery provider
# 3.26 imports). The Milvus 2.3.5 standalone binary in .venv-milvus-server is installed by the Makefile,
# by the same step as for `make test-server`.
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

# .venv-distributed lays itself over the project's .venv (`make install`, which the Makefile target runs
# first): a .pth file adds .venv's site-packages, so only what the distributed run adds is installed here
# (about 20 packages in ~20 s, where a venv of its own installed all of Airflow again in ~5 minutes). pip
# installs into this venv only: a newer version of a package .venv has shadows it here, .venv is not touched.
PROJECT_SITE="$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' 2>/dev/null)" \
    || skip "the project's .venv is missing (run make install first)"
if [ ! -f "$VENV/.installed" ] || [ .venv/.installed -nt "$VENV/.installed" ]; then
    echo "test-distributed: installing into $VENV, over .venv: the Celery provider, celery<5.7, redis"
    started=$SECONDS
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV" || skip "could not create $VENV"
    site="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    echo "import site; site.addsitedir('$PROJECT_SITE')" > "$site/_project_venv.pth"
    "$VENV/bin/python" -m pip install --quiet apache-airflow-providers-celery 'celery<5.7' redis \
            2> >(grep -v -e "^WARNING: Location" -e "outside environment" >&2) \
        && touch "$VENV/.installed" \
        || skip "could not install the Celery provider and redis into $VENV"
    echo "test-distributed: $VENV installed in $((SECONDS - started)) s"
fi

[ -f "$MILVUS_PACKAGE_DIR/milvus/__init__.py" ] \
    || skip "milvus==$MILVUS_VERSION is not in $MILVUS_PACKAGE_DIR (make test-distributed installs it as test-server does)"

exec "$VENV/bin/python" ci/distributed/run_distributed.py "$@"
