#!/usr/bin/env bash
# The load test: builds release, loads N synthetic contracts into SQLite and PostgreSQL,
# starts the gateway on each and puts it under load with wrk (installed from Debian when
# missing) — read a CarePlan by id, search CarePlans by personnummer, $coordinated-plan,
# PUT CarePlan with If-Match, a transaction Bundle push — at several concurrency levels,
# bounded in time, on loopback only. In the same run it measures the limits: a minimal
# axum server answering the same bytes (crates/pkgw-bench) and the disk's durable commit
# rate; and the mapping micro-benchmarks (benches/mapping.rs) beside plain serde_json.
# Writes BENCHMARKS.md with throughput, p50/p99 latency, the gateway's peak RSS and the
# ratios to the limits.
#
# Usage: scripts/load.sh [--contracts N] [--duration SECONDS] [--connections "1 8 32 64"]
#                        [--backends "sqlite postgres"] [--out FILE]
# PostgreSQL: PKGW_LOAD_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/test);
# the script makes a database pkgw_load there and drops it afterwards.
# Not part of the tests: CI does not run it.
set -euo pipefail
cd "$(dirname "$0")/.."

contracts=100000
duration=10
connections="1 8 32 64"
backends="sqlite postgres"
report=BENCHMARKS.md
while [ $# -gt 0 ]; do
    case "$1" in
        --contracts) contracts=$2; shift 2 ;;
        --duration) duration=$2; shift 2 ;;
        --connections) connections=$2; shift 2 ;;
        --backends) backends=$2; shift 2 ;;
        --out) report=$2; shift 2 ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
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

gateway_pid=""
stop_gateway() {
    if [ -n "$gateway_pid" ]; then
        kill -TERM "$gateway_pid" 2>/dev/null || true
        wait "$gateway_pid" 2>/dev/null || true
        gateway_pid=""
    fi
}
trap 'stop_gateway; [ -n "${limit_pid:-}" ] && kill "$limit_pid" 2>/dev/null || true' EXIT

port=18480
for backend in $backends; do
    case "$backend" in
        sqlite)
            rm -rf "$out/sqlite"
            mkdir -p "$out/sqlite"
            url="sqlite://$out/sqlite/pkgw.db?mode=rwc"
            commit_url="sqlite://$out/sqlite/commits.db?mode=rwc"
            ;;
        postgres)
            "$bench" sql "$pg_admin" "DROP DATABASE IF EXISTS pkgw_load"
            "$bench" sql "$pg_admin" "CREATE DATABASE pkgw_load"
            url=$pg_url
            commit_url=$pg_url
            ;;
        *) echo "unknown backend $backend" >&2; exit 2 ;;
    esac
    say "$backend: durable commit rate"
    "$bench" commits "$commit_url" 5 1 >"$results/$backend-commits-1.txt"
    "$bench" commits "$commit_url" 5 32 >"$results/$backend-commits-32.txt"
    echo "  1: $(cat "$results/$backend-commits-1.txt")/s, 32: $(cat "$results/$backend-commits-32.txt")/s" >&2

    say "$backend: importing $contracts contracts"
    start=$(date +%s.%N)
    "$pkgw" import "$out/contracts.ndjson" --database-url "$url" 2>"$results/$backend-import.log"
    end=$(date +%s.%N)
    echo "$start $end" | awk '{print $2 - $1}' >"$results/$backend-import-seconds.txt"
    echo "  $(cat "$results/$backend-import-seconds.txt") s" >&2

    say "$backend: the gateway under load"
    PKGW__DATABASE__URL=$url PKGW__SERVER__BIND=127.0.0.1:$port PKGW__SERVER__RATE_LIMIT_PER_SEC=0 \
        PKGW__LOG__LEVEL=warn PKGW__SYNC__ENABLED=false PKGW__DATABASE__MAX_CONNECTIONS=16 \
        "$pkgw" serve >"$results/$backend-serve.log" 2>&1 &
    gateway_pid=$!
    for _ in $(seq 1 100); do
        curl -fs "http://127.0.0.1:$port/ready" >/dev/null 2>&1 && break
        sleep 0.2
    done
    base="http://127.0.0.1:$port"
    first=$(head -1 "$out/read.paths")
    curl -fs -H "Authorization: Bearer $token" "$base$first" >"$out/careplan.json"
    curl -fs -H "Authorization: Bearer $token" "$base$(head -1 "$out/coordinated.paths")" >"$out/coordinated.json"
    PKGW_LOAD_PATHS=$out/read.paths run_wrk "$backend-read" "$base" get.lua ""
    PKGW_LOAD_PATHS=$out/search.paths run_wrk "$backend-search" "$base" get.lua ""
    PKGW_LOAD_PATHS=$out/coordinated.paths run_wrk "$backend-coordinated" "$base" get.lua ""
    PKGW_LOAD_BODIES=$out/put.bodies run_wrk "$backend-put" "$base" put.lua ""
    PKGW_LOAD_BODIES=$out/transaction.bodies run_wrk "$backend-transaction" "$base" post.lua ""
    awk '/VmHWM/ {print $2}' "/proc/$gateway_pid/status" >"$results/$backend-rss-kb.txt"
    echo "  peak RSS $(cat "$results/$backend-rss-kb.txt") kB" >&2
    stop_gateway
    if [ "$backend" = postgres ]; then
        "$bench" sql "$pg_admin" "DROP DATABASE IF EXISTS pkgw_load"
    fi
    port=$((port + 1))
done

say "the limit: a minimal axum server on the same bytes"
for what in careplan coordinated; do
    "$bench" serve "$out/$what.json" "127.0.0.1:$port" >/dev/null &
    limit_pid=$!
    sleep 0.5
    PKGW_LOAD_PATHS=$out/read.paths run_wrk "limit-$what" "http://127.0.0.1:$port" get.lua ""
    kill "$limit_pid" 2>/dev/null || true
    wait "$limit_pid" 2>/dev/null || true
    limit_pid=""
    port=$((port + 1))
done

say "writing $report"
python3 scripts/load/report.py "$results" "$contracts" "$duration" "$connections" "$backends" >"$report"
echo "wrote $report" >&2
