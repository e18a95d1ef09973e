#!/usr/bin/env bash
# Where the gateway's time goes under one workload of the load test: loads N generated
# contracts into a SQLite file, starts the release gateway, puts it under wrk load at
# one concurrency level and records it with `perf record -g` (perf is installed from
# Debian when missing). Writes the flat profile (self time per function, the top 60) to
# target/profile/WORKLOAD.txt and keeps perf.data beside it for `perf report -i`.
#
# Usage: scripts/profile.sh [--workload read|search|coordinated|put|transaction]
#                           [--contracts N] [--connections C] [--seconds S]
# Defaults: read, 20000 contracts, 32 connections, 15 seconds. Not part of the tests.
set -euo pipefail
cd "$(dirname "$0")/.."

workload=read
contracts=20000
connections=32
seconds=15
while [ $# -gt 0 ]; do
    case "$1" in
        --workload) workload=$2; shift 2 ;;
        --contracts) contracts=$2; shift 2 ;;
        --connections) connections=$2; shift 2 ;;
        --seconds) seconds=$2; shift 2 ;;
        -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
        *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
case "$workload" in
    read | search | coordinated) script=get.lua; export PKGW_LOAD_PATHS ;;
    put) script=put.lua; export PKGW_LOAD_BODIES ;;
    transaction) script=post.lua; export PKGW_LOAD_BODIES ;;
    *) echo "unknown workload $workload" >&2; exit 2 ;;
esac

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
for tool in wrk perf; do
    if ! command -v "$tool" >/dev/null; then
        package=$tool
        [ "$tool" = perf ] && package=linux-perf
        $sudo apt-get update -qq
        $sudo apt-get install -y -qq "$package" >/dev/null
    fi
done

out=target/profile
mkdir -p "$out"
cargo build --release -p pkgw
pkgw=target/release/pkgw
if [ ! -f "$out/pkgw-$contracts.db" ]; then
    "$pkgw" generate --contracts "$contracts" --seed 7 --out "$out/contracts.ndjson"
    "$pkgw" import "$out/contracts.ndjson" --database-url "sqlite://$out/pkgw-$contracts.db?mode=rwc"
fi
"$pkgw" generate --contracts 2000 --seed 7 --format fhir --out "$out/sample.fhir.ndjson"
python3 scripts/load/prepare.py "$out/sample.fhir.ndjson" "$out"
case "$workload" in
    read) PKGW_LOAD_PATHS=$out/read.paths ;;
    search) PKGW_LOAD_PATHS=$out/search.paths ;;
    coordinated) PKGW_LOAD_PATHS=$out/coordinated.paths ;;
    put) PKGW_LOAD_BODIES=$out/put.bodies ;;
    transaction) PKGW_LOAD_BODIES=$out/transaction.bodies ;;
esac

export PKGW__AUTH__HS256_SECRET=profile-$RANDOM$RANDOM
PKGW_LOAD_TOKEN=$("$pkgw" token --scope 'system/*.cruds' --client profile --minutes 60)
export PKGW_LOAD_TOKEN PKGW_LOAD_THREADS=2 PKGW_LOAD_SLICE=0 PKGW_LOAD_SLICES=1
port=18580
PKGW__DATABASE__URL="sqlite://$out/pkgw-$contracts.db" PKGW__SERVER__BIND=127.0.0.1:$port \
    PKGW__SERVER__RATE_LIMIT_PER_SEC=0 PKGW__LOG__LEVEL=warn PKGW__SYNC__ENABLED=false \
    "$pkgw" serve >"$out/serve.log" 2>&1 &
gateway=$!
trap 'kill $gateway 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$port/ready" >/dev/null 2>&1 && break
    sleep 0.2
done
wrk -t2 -c"$connections" -d"$((seconds + 2))s" -s "scripts/load/$script" "http://127.0.0.1:$port" \
    >"$out/$workload-wrk.txt" &
load=$!
sleep 1
$sudo perf record -g -F 999 -p "$gateway" -o "$out/$workload.perf.data" -- sleep "$seconds" 2>/dev/null
wait "$load"
$sudo perf report -i "$out/$workload.perf.data" --no-children --sort symbol --percent-limit 0.4 \
    --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -60 >"$out/$workload.txt"
grep 'Requests/sec' "$out/$workload-wrk.txt" >&2
echo "profile: $out/$workload.txt (perf report -i $out/$workload.perf.data for the call graphs)" >&2
