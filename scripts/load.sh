#!/usr/bin/env bash
# The load test: builds release, loads N synthetic contracts into SQLite and PostgreSQL,
# starts the gateway on each and puts it under load with wrk (installed from Debian when
# missing) — read a CarePlan by id, search CarePlans by personnummer, $coordinated-plan,
# PUT CarePlan with If-Match, a transaction Bundle push — at several concurrency levels,
# bounded in time, on loopback only. In the same run it measures the limits: a minimal
# axum server answering the same bytes (crates/pkgw-bench) and the disk's durable commit
# rate; the mapping micro-benchmarks (benches/mapping.rs) beside plain serde_json; a
# peer FHIR server (sekmet-fhir 0.1.1 from PyPI) loaded with the same CarePlans under
# the same reads and searches; and sync propagation: PUTs at a fixed rate while the
# gateway syncs them to a second peer, from commit to arrival.
# Writes BENCHMARKS.md with throughput, p50/p99 latency, the gateway's peak RSS and the
# ratios to the limits and to the peer; only 2xx answers count.
#
# Usage: scripts/load.sh [--contracts N] [--duration SECONDS] [--connections "1 8 32 64"]
#                        [--backends "sqlite postgres"] [--out FILE]
#                        [--sync-rate UPDATES_PER_SECOND] [--sync-seconds SECONDS]
#                        [--keep-stores]
# PostgreSQL: PKGW_LOAD_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/test);
# the script makes a database pkgw_load there and drops it afterwards, also when it
# stops early. The stores under target/load (tens of GB at 1 000 000 contracts) are
# deleted at the end unless --keep-stores; target/load/results stays.
# Not part of the tests: CI does not run it.
set -euo pipefail
cd "$(dirname "$0")/.."

contracts=100000
duration=10
sync_rate=200
sync_seconds=60
connections="1 8 32 64"
backends="sqlite postgres"
report=BENCHMARKS.md
keep_stores=0
while [ $# -gt 0 ]; do
    case "$1" in
        --contracts) contracts=$2; shift 2 ;;
        --duration) duration=$2; shift 2 ;;
        --connections) connections=$2; shift 2 ;;
        --backends) backends=$2; shift 2 ;;
        --out) report=$2; shift 2 ;;
        --sync-rate) sync_rate=$2; shift 2 ;;
        --sync-seconds) sync_seconds=$2; shift 2 ;;
        --keep-stores) keep_stores=1; shift ;;
        -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
        *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
# The workloads rotate over 4 000 of the loaded contracts.
if [ "$contracts" -lt 4000 ]; then
    echo "--contracts must be at least 4000: the workloads rotate over 4 000 of the loaded contracts" >&2
    exit 2
fi
pg_admin=${PKGW_LOAD_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}
pg_url="${pg_admin%/*}/pkgw_load"
out=target/load
rm -rf "$out"
mkdir -p "$out"
results="$out/results"
mkdir -p "$results"

say() { printf '\n== %s\n' "$*" >&2; }

if ! command -v wrk >/dev/null; then
    say "installing wrk (Debian)"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq wrk >/dev/null
fi

say "building release (the first build takes a while on two cores)"
cargo build --release -p pkgw -p pkgw-bench
pkgw=target/release/pkgw
bench=target/release/pkgw-bench

say "mapping micro-benchmarks (criterion)"
cargo bench --bench mapping -- --warm-up-time 2 --measurement-time 5 --noplot >"$results/criterion.txt"
cp -r target/criterion "$results/criterion"

say "generating $contracts contracts"
"$pkgw" generate --contracts "$contracts" --seed 7 --out "$out/contracts.ndjson"
"$pkgw" generate --contracts 4000 --seed 7 --format fhir --out "$out/sample.fhir.ndjson"
python3 scripts/load/prepare.py "$out/sample.fhir.ndjson" "$out"

secret=load-test-$RANDOM$RANDOM
export PKGW__AUTH__HS256_SECRET=$secret
token=$("$pkgw" token --scope 'system/*.cruds' --client load-test --minutes 600)
export PKGW_LOAD_TOKEN=$token PKGW_LOAD_THREADS=2

# wrk against BASE for one workload at each concurrency level: results/NAME-C.txt
run_wrk() {
    local name=$1 base=$2 script=$3 path=$4 slice=0
    export PKGW_LOAD_SLICES
    PKGW_LOAD_SLICES=$(echo $connections | wc -w)
    for c in $connections; do
        export PKGW_LOAD_SLICE=$slice
        slice=$((slice + 1))
        local threads=2
        [ "$c" -lt 2 ] && threads=1
        PKGW_LOAD_THREADS=$threads wrk -t"$threads" -c"$c" -d"${duration}s" --latency \
            -s "scripts/load/$script" "$base$path" >"$results/$name-$c.txt" 2>&1 || true
        printf '  %-28s c=%-3s %s req/s\n' "$name" "$c" \
            "$(awk '/Requests\/sec/ {print $2}' "$results/$name-$c.txt")" >&2
    done
}

# The peer beside the gateway: sekmet-fhir 0.1.1 from PyPI (FastAPI on uvicorn, one
# process, resources in SQLite with a search index), the FHIR server the sync tests
# deliver to. It checks a static bearer token, keeps versions and history, and is run
# without its traffic log (its own setting for load runs); it writes no audit row.
peer_env=target/fhir-peer
if ! "$peer_env/bin/python" -c "import sekmet" >/dev/null 2>&1; then
    say "installing the peer FHIR server (sekmet-fhir 0.1.1, PyPI)"
    python3 -m venv "$peer_env"
    "$peer_env/bin/pip" install --quiet --disable-pip-version-check "sekmet-fhir==0.1.1"
fi
peer_token=peer-load-$RANDOM$RANDOM
peer_pid=""
gateway_pid=""
# wait_for URL LOG [SECONDS]: until URL answers (a minute at most, or SECONDS); else
# points at LOG and stops.
wait_for() {
    local deadline=$((SECONDS + ${3:-60}))
    while [ "$SECONDS" -le "$deadline" ]; do
        curl -fs "$1" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    echo "$1 did not come up within ${3:-60} s: see $2" >&2
    exit 1
}
# stop_process PID: asks it to stop and waits until it has.
stop_process() {
    [ -n "$1" ] || return 0
    kill -TERM "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}
stop_peer() { stop_process "$peer_pid"; peer_pid=""; }
stop_gateway() { stop_process "$gateway_pid"; gateway_pid=""; }
# start_peer DIR PORT: sekmet on DIR/peer.db, answering at http://127.0.0.1:PORT/fhir.
start_peer() {
    local dir=$1 port=$2
    mkdir -p "$dir"
    printf 'simulator:\n  enabled: false\nlog_inbound: false\nserver_auth:\n  types: [bearer]\n  tokens: ["%s"]\n' \
        "$peer_token" >"$dir/settings.yaml"
    SEKMET_CONFIG="$dir/settings.yaml" SEKMET_DB="$dir/peer.db" \
        SEKMET_BASE_URL="http://127.0.0.1:$port/fhir" \
        "$peer_env/bin/sekmet" serve --host 127.0.0.1 --port "$port" >"$dir/serve.log" 2>&1 &
    peer_pid=$!
    # On a store of 1 000 000 CarePlans (19 GB) the peer took 61 s to answer its first
    # request on one of these machines (2026-12-03): it is given ten minutes.
    wait_for "http://127.0.0.1:$port/fhir/metadata" "$dir/serve.log" 600
}
# start_gateway URL PORT LOG [ARGS]: pkgw serve on the store at URL.
start_gateway() {
    local url=$1 port=$2 log=$3
    shift 3
    PKGW__DATABASE__URL=$url PKGW__SERVER__BIND=127.0.0.1:$port PKGW__SERVER__RATE_LIMIT_PER_SEC=0 \
        PKGW__LOG__LEVEL=warn PKGW__DATABASE__MAX_CONNECTIONS=16 \
        "$pkgw" serve "$@" >"$log" 2>&1 &
    gateway_pid=$!
    wait_for "http://127.0.0.1:$port/ready" "$log"
}
# delete_stores: what the run loaded (tens of GB at 1 000 000 contracts), not its results.
delete_stores() {
    [ "$keep_stores" = 1 ] && return 0
    rm -rf "$out/sqlite" "$out/peer" "$out"/sync-* "$out/contracts.ndjson"
}
# On every way out, finished or stopped early: no process of the run is left, nor the
# PostgreSQL database it made, nor its stores.
pg_made=0
limit_pid=""
peer_load_pid=""
clean_up() {
    stop_gateway
    stop_peer
    stop_process "$limit_pid"
    stop_process "$peer_load_pid"
    [ "$pg_made" = 1 ] && "$bench" sql "$pg_admin" "DROP DATABASE IF EXISTS pkgw_load" >/dev/null 2>&1
    delete_stores
}
trap clean_up EXIT

store_url() {
    case "$1" in
        sqlite) echo "sqlite://$out/sqlite/pkgw.db?mode=rwc" ;;
        postgres) echo "$pg_url" ;;
        *) echo "unknown backend $1" >&2; exit 2 ;;
    esac
}

# Loading: the peer is loaded (through its own store code, scripts/load/peer_load.py)
# while the gateway's stores are imported, on the other core; nothing is measured until
# all loading is done.
say "peer: loading the same $contracts CarePlans into sekmet-fhir (beside the imports)"
rm -rf "$out/peer"
mkdir -p "$out/peer"
(
    start=$(date +%s.%N)
    "$pkgw" generate --contracts "$contracts" --seed 7 --format fhir 2>/dev/null \
        | "$peer_env/bin/python" scripts/load/peer_load.py "$out/peer/peer.db"
    end=$(date +%s.%N)
    echo "$start $end" | awk '{print $2 - $1}' >"$results/peer-import-seconds.txt"
) 2>"$results/peer-load.log" &
peer_load_pid=$!

for backend in $backends; do
    url=$(store_url "$backend")
    case "$backend" in
        sqlite)
            rm -rf "$out/sqlite"
            mkdir -p "$out/sqlite"
            ;;
        postgres)
            "$bench" sql "$pg_admin" "DROP DATABASE IF EXISTS pkgw_load"
            "$bench" sql "$pg_admin" "CREATE DATABASE pkgw_load"
            pg_made=1
            ;;
    esac
    say "$backend: importing $contracts contracts"
    start=$(date +%s.%N)
    "$pkgw" import "$out/contracts.ndjson" --database-url "$url" 2>"$results/$backend-import.log"
    end=$(date +%s.%N)
    echo "$start $end" | awk '{print $2 - $1}' >"$results/$backend-import-seconds.txt"
    echo "  $(cat "$results/$backend-import-seconds.txt") s" >&2
done
say "waiting for the peer's load"
wait "$peer_load_pid"
peer_load_pid=""
cat "$results/peer-load.log" >&2
# What a bulk load leaves behind is written out before anything is measured: on
# PostgreSQL a checkpoint (else the first one after the load flushes gigabytes while
# the first workloads run), and the kernel's dirty pages.
for backend in $backends; do
    [ "$backend" = postgres ] && "$bench" sql "$pg_url" "CHECKPOINT"
done
sync

# pg_counters NAME: PostgreSQL's checkpoints so far and the buffers they wrote
# (results/NAME.pg), to tell whether one ran during a workload.
pg_counters() {
    "$bench" sql "$pg_url" "SELECT checkpoints_timed || ' ' || checkpoints_req || ' ' || buffers_checkpoint || ' ' || buffers_backend FROM pg_stat_bgwriter" \
        >"$results/$1.pg" 2>/dev/null || true
}

port=18480
say "the peer under the same workloads"
start_peer "$out/peer" "$port"
PKGW_LOAD_TOKEN=$peer_token PKGW_LOAD_PATHS=$out/read.paths \
    run_wrk "peer-read" "http://127.0.0.1:$port" get.lua ""
PKGW_LOAD_TOKEN=$peer_token PKGW_LOAD_PATHS=$out/search.paths \
    run_wrk "peer-search" "http://127.0.0.1:$port" get.lua ""
# What the peer takes of writes: the sync propagation's limit.
python3 scripts/load/propagate.py capacity "http://127.0.0.1:$port/fhir" "$peer_token" \
    "$out/put.bodies" "$duration" >"$results/peer-put-rate.txt"
echo "  peer PUT rate: $(cat "$results/peer-put-rate.txt")/s" >&2
awk '/VmHWM/ {print $2}' "/proc/$peer_pid/status" >"$results/peer-rss-kb.txt"
stop_peer
port=$((port + 1))
# The propagation runs at the asked rate and at one the peer takes (half its PUT rate).
peer_rate=$(awk '{r = int($1 / 20) * 10; print (r < 10 ? 10 : r)}' "$results/peer-put-rate.txt")
sync_rates="$sync_rate"
[ "$peer_rate" -lt "$sync_rate" ] && sync_rates="$sync_rate $peer_rate"

for backend in $backends; do
    url=$(store_url "$backend")
    case "$backend" in
        sqlite) commit_url="sqlite://$out/sqlite/commits.db?mode=rwc" ;;
        postgres) commit_url=$pg_url ;;
    esac
    say "$backend: durable commit rate"
    "$bench" commits "$commit_url" 5 1 >"$results/$backend-commits-1.txt"
    "$bench" commits "$commit_url" 5 32 >"$results/$backend-commits-32.txt"
    echo "  1: $(cat "$results/$backend-commits-1.txt")/s, 32: $(cat "$results/$backend-commits-32.txt")/s" >&2

    say "$backend: the gateway under load"
    PKGW__SYNC__ENABLED=false start_gateway "$url" "$port" "$results/$backend-serve.log"
    base="http://127.0.0.1:$port"
    first=$(head -1 "$out/read.paths")
    curl -fs -H "Authorization: Bearer $token" "$base$first" >"$out/careplan.json"
    curl -fs -H "Authorization: Bearer $token" "$base$(head -1 "$out/coordinated.paths")" >"$out/coordinated.json"
    for workload in read:read.paths search:search.paths coordinated:coordinated.paths; do
        [ "$backend" = postgres ] && pg_counters "$backend-${workload%%:*}-before"
        PKGW_LOAD_PATHS=$out/${workload#*:} run_wrk "$backend-${workload%%:*}" "$base" get.lua ""
        [ "$backend" = postgres ] && pg_counters "$backend-${workload%%:*}-after"
    done
    PKGW_LOAD_BODIES=$out/put.bodies run_wrk "$backend-put" "$base" put.lua ""
    PKGW_LOAD_BODIES=$out/transaction.bodies run_wrk "$backend-transaction" "$base" post.lua ""
    awk '/VmHWM/ {print $2}' "/proc/$gateway_pid/status" >"$results/$backend-rss-kb.txt"
    echo "  peak RSS $(cat "$results/$backend-rss-kb.txt") kB" >&2
    stop_gateway
    port=$((port + 1))

    # Sync propagation: a second, empty peer as the target of the CarePlans of the 4 000
    # contracts the workloads use. First what the import queued is delivered (`pkgw sync
    # run --once`: the 4 000 CarePlans, and the rest of the outbox dispatched to no one),
    # then the gateway runs with sync on while PUTs come at a fixed rate.
    say "$backend: sync propagation to a peer at $sync_rates updates/s for $sync_seconds s each"
    peer_port=$port
    port=$((port + 1))
    rm -rf "$out/sync-$backend"
    start_peer "$out/sync-$backend" "$peer_port"
    {
        echo "[[targets]]"
        echo 'name = "peer"'
        echo "base_url = \"http://127.0.0.1:$peer_port/fhir\""
        echo "auth = { kind = \"bearer\", token = \"$peer_token\" }"
        echo 'resources = ["CarePlan"]'
        printf 'contracts = [%s]\n' "$(cut -f1 "$out/put.bodies" | sed 's/.*/"&"/' | paste -sd,)"
    } >"$out/sync-$backend/pkgw.toml"
    start=$(date +%s.%N)
    "$pkgw" sync run --once --config "$out/sync-$backend/pkgw.toml" --database-url "$url" \
        >"$results/$backend-sync-initial.log" 2>&1
    end=$(date +%s.%N)
    echo "$start $end" | awk '{print $2 - $1}' >"$results/$backend-sync-initial-seconds.txt"
    echo "  initial delivery and dispatch: $(cat "$results/$backend-sync-initial-seconds.txt") s" >&2
    PKGW__SYNC__ENABLED=true start_gateway "$url" "$port" "$results/$backend-sync-serve.log" \
        --config "$out/sync-$backend/pkgw.toml"
    for rate in $sync_rates; do
        python3 scripts/load/propagate.py probe "http://127.0.0.1:$port" "$token" "$out/put.bodies" \
            "$out/sync-$backend/peer.db" "$rate" "$sync_seconds" >"$results/$backend-sync-$rate.json"
        cat "$results/$backend-sync-$rate.json" >&2
    done
    stop_gateway
    stop_peer
    port=$((port + 1))
done

if [ "$pg_made" = 1 ]; then
    "$bench" sql "$pg_admin" "DROP DATABASE IF EXISTS pkgw_load"
    pg_made=0
fi
delete_stores

say "the limit: a minimal axum server on the same bytes"
for what in careplan coordinated; do
    "$bench" serve "$out/$what.json" "127.0.0.1:$port" >"$results/limit-$what.log" 2>&1 &
    limit_pid=$!
    wait_for "http://127.0.0.1:$port/" "$results/limit-$what.log"
    PKGW_LOAD_PATHS=$out/read.paths run_wrk "limit-$what" "http://127.0.0.1:$port" get.lua ""
    stop_process "$limit_pid"
    limit_pid=""
    port=$((port + 1))
done

say "writing $report"
python3 scripts/load/report.py "$results" "$contracts" "$duration" "$connections" "$backends" >"$report"
echo "wrote $report" >&2
