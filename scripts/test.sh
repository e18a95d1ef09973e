#!/usr/bin/env bash
# Runs every test: unit, property, store (SQLite and PostgreSQL), HTTP, sync, browser
# and CLI tests, installing the outside tools they need first (idempotently).
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

# Test tools fetched from the package registries, once (kept under target/):
# - an independent FHIR R4 validator: Python fhir.resources 6.1.0 (FHIR 4.0.1, pydantic 1);
# - a third-party FHIR client the API must work with unchanged: Python fhirpy 2.3.1;
# - the official FHIR R4 examples (npm package hl7.fhir.r4.examples 4.0.1);
validator=target/fhir-validator
if ! "$validator/bin/python" -c 'import fhir.resources, pydantic, fhirpy' >/dev/null 2>&1; then
    python3 -m venv "$validator"
    "$validator/bin/pip" install --quiet --disable-pip-version-check \
        "fhir.resources==6.1.0" "pydantic<2" "fhirpy==2.3.1"
fi
export PKGW_FHIR_PYTHON="$PWD/$validator/bin/python"

# - a separate FHIR server the sync tests deliver to, playing the EHRs and the portal:
#   sekmet-fhir 0.1.1 (FastAPI + SQLite), in its own environment (it needs pydantic 2).
peer=target/fhir-peer
if ! "$peer/bin/python" -c "import sekmet" >/dev/null 2>&1; then
    python3 -m venv "$peer"
    "$peer/bin/pip" install --quiet --disable-pip-version-check "sekmet-fhir==0.1.1"
fi
export PKGW_FHIR_PEER="$PWD/$peer/bin/sekmet"

examples=target/fhir-examples
if [ ! -f "$examples/package/CarePlan-example.json" ]; then
    mkdir -p "$examples"
    (cd "$examples" && npm pack --silent hl7.fhir.r4.examples@4.0.1 >/dev/null && tar xzf hl7.fhir.r4.examples-4.0.1.tgz)
fi
export PKGW_FHIR_EXAMPLES="$PWD/$examples/package"

# - a headless browser and a PDF reader for the printable page's test: Debian chromium
#   and poppler-utils (pdftotext).
if ! command -v chromium >/dev/null || ! command -v pdftotext >/dev/null; then
    as_root=""
    if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null; then as_root="sudo"; fi
    $as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -qq chromium poppler-utils >/dev/null
fi

if cargo nextest --version >/dev/null 2>&1; then
    cargo test --workspace --doc
    cargo nextest run --workspace --all-targets --no-fail-fast
else
    cargo test --workspace --no-fail-fast
fi
