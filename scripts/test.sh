#!/usr/bin/env bash
# Runs every test: unit, property, store (SQLite and PostgreSQL), HTTP and CLI tests.
#
# PostgreSQL: the tests use PKGW_TEST_POSTGRES_URL, by default the local server at
# postgres://postgres@127.0.0.1:5432/test, each test in its own schema. Set
# PKGW_SKIP_POSTGRES=1 to skip them where no server exists (CI never does).
set -euo pipefail
cd "$(dirname "$0")/.."

# Start the machine's local PostgreSQL if it is installed but not running.
if [ -z "${PKGW_TEST_POSTGRES_URL:-}" ] && [ "${PKGW_SKIP_POSTGRES:-}" != "1" ] \
    && command -v pg_isready >/dev/null && ! pg_isready -q -h 127.0.0.1 -p 5432; then
    if command -v pg_ctlcluster >/dev/null; then
        for version in $(ls /etc/postgresql 2>/dev/null); do
            pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
        done
    fi
fi

if cargo nextest --version >/dev/null 2>&1; then
    cargo test --workspace --doc
    cargo nextest run --workspace --all-targets --no-fail-fast
else
    cargo test --workspace --no-fail-fast
fi
