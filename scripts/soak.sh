#!/usr/bin/env bash
# The soak: a long run of mixed load at a moderate rate — reads by id, searches by
# person, $coordinated-plan, updates with If-Match, transaction Bundles — on a release
# gateway syncing every change to two separate FHIR servers (sekmet-fhir), one of them
# behind a proxy that flaps (up 90 s, then 503 for 30 s, over and over). Every 30 s it
# samples the gateway's RSS, open file descriptors, database connections, each target's
# queue and its age, and the answers; after the load it waits for the backlog to drain.
# Writes the figures to docs/soak.md (and the raw samples to target/soak/soak.json).
# The only non-2xx answers expected are none: the flapping is at the target, not the API.
#
# Usage: scripts/soak.sh [--minutes 30] [--rate 20] [--backend sqlite|postgres]
#                        [--contracts 2000] [--build release|debug] [--out docs/soak.md]
# PostgreSQL: PKGW_SOAK_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/test);
# the script makes a database pkgw_soak there and drops it afterwards.
# Not part of the tests: CI does not run it.
set -euo pipefail
cd "$(dirname "$0")/.."

minutes=30
rate=20
backend=sqlite
contracts=2000
build=release
report=docs/soak.md
while [ $# -gt 0 ]; do
    case "$1" in
        --minutes) minutes=$2; shift 2 ;;
        --rate) rate=$2; shift 2 ;;
        --backend) backend=$2; shift 2 ;;
        --contracts) contracts=$2; shift 2 ;;
        --build) build=$2; shift 2 ;;
        --out) report=$2; shift 2 ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
out=target/soak
rm -rf "$out"
mkdir -p "$out"
say() { printf '\n== %s\n' "$*" >&2; }

# The targets: sekmet-fhir 0.1.1, as the sync tests use (installed once, like scripts/test.sh).
peer=target/fhir-peer
if ! "$peer/bin/python" -c "import sekmet" >/dev/null 2>&1; then
    say "installing sekmet-fhir (PyPI)"
    python3 -m venv "$peer"
    "$peer/bin/pip" install --quiet --disable-pip-version-check "sekmet-fhir==0.1.1"
fi

# What is measured: the commit built (with "+changes" when the tree differs from it).
commit=$(git rev-parse --short HEAD)
git diff --quiet HEAD -- src Cargo.toml Cargo.lock 2>/dev/null || commit="$commit+changes"
if [ "$build" = release ]; then
    say "building release (the first build takes a while on two cores)"
    cargo build --release -p pkgw
    pkgw=target/release/pkgw
else
    cargo build -p pkgw
    pkgw=target/debug/pkgw
fi

pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ "$backend" = postgres ]; then
        psql "$pg_admin" -qc "DROP DATABASE IF EXISTS pkgw_soak" >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT

wait_for() {
    for _ in $(seq 1 150); do
        curl -fs "$1" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    echo "$1 did not come up" >&2
    exit 1
}

start_peer() { # NAME PORT
    mkdir -p "$out/$1"
    printf 'simulator:\n  enabled: false\n' >"$out/$1/settings.yaml"
    SEKMET_BASE_URL="http://127.0.0.1:$2/fhir" SEKMET_DB="$out/$1/peer.db" \
        SEKMET_CONFIG="$out/$1/settings.yaml" \
        "$peer/bin/sekmet" serve --host 127.0.0.1 --port "$2" >"$out/$1/log" 2>&1 &
    pids+=($!)
    wait_for "http://127.0.0.1:$2/fhir/metadata"
}

say "two targets (sekmet-fhir), one flapping"
start_peer journal 18581
start_peer portal 18582
python3 scripts/soak/flap.py 18583 http://127.0.0.1:18582/fhir 90 30 &
pids+=($!)

case "$backend" in
    sqlite) url="sqlite://$out/pkgw.db?mode=rwc" ;;
    postgres)
        pg_admin=${PKGW_SOAK_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}
        psql "$pg_admin" -qc "DROP DATABASE IF EXISTS pkgw_soak" >/dev/null
        psql "$pg_admin" -qc "CREATE DATABASE pkgw_soak" >/dev/null
        url="${pg_admin%/*}/pkgw_soak"
        ;;
    *) echo "unknown backend $backend" >&2; exit 2 ;;
esac
secret="soak-$RANDOM$RANDOM$RANDOM"
cat >"$out/pkgw.toml" <<EOF
[server]
bind = "127.0.0.1:18580"

[database]
url = "$url"

[log]
level = "warn"

[auth]
hs256_secret = "$secret"

[[targets]]
name = "journal"
base_url = "http://127.0.0.1:18581/fhir"

[[targets]]
name = "portal"
base_url = "http://127.0.0.1:18583/fhir"
EOF

say "$backend: $contracts contracts"
"$pkgw" generate --contracts "$contracts" --seed 11 --out "$out/contracts.ndjson"
"$pkgw" --config "$out/pkgw.toml" import "$out/contracts.ndjson" 2>"$out/import.log"
token=$("$pkgw" --config "$out/pkgw.toml" token --scope 'system/*.cruds' --client soak --minutes $((minutes + 30)))

say "the gateway: $minutes min at $rate operations/s"
"$pkgw" --config "$out/pkgw.toml" serve >"$out/serve.log" 2>&1 &
gateway=$!
pids+=($gateway)
wait_for http://127.0.0.1:18580/ready
describe="$backend, $contracts contracts to start, $rate operations/s for $minutes min, $build build, $(nproc) cores"
python3 scripts/soak/drive.py --base http://127.0.0.1:18580 --token "$token" --pid "$gateway" \
    --contracts "$out/contracts.ndjson" --fixtures fixtures/fhir --minutes "$minutes" \
    --rate "$rate" --sample 30 --json "$out/soak.json" --report "$out/tables.md" \
    --describe "$describe"

{
    echo "# Soak"
    echo
    echo "Written by \`scripts/soak.sh\` on $(date -u +%Y-%m-%d) ($describe; commit"
    echo "\`$commit\`). Two sekmet-fhir targets; \`portal\` is behind a"
    echo "proxy that is up 90 s, then answers 503 for 30 s, again and again. The last row is"
    echo "after the load stopped and the backlog drained."
    echo
    cat "$out/tables.md"
} >"$report"
say "wrote $report"
