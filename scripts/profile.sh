#!/usr/bin/env bash
# Where the gateway's time goes under one workload of the load test: loads N generated
# contracts into a SQLite file (or a PostgreSQL database, --backend postgres), starts the
# release gateway, puts it under wrk load at
# one concurrency level and records it with `perf record -g` (perf is installed from
# Debian when missing). Writes the flat profile (self time per function, the top 60) to
# target/profile/WORKLOAD.txt and keeps perf.data beside it for `perf report -i`.
#
# With --callgrind it counts instructions instead (valgrind's callgrind; installed from
# Debian when missing): the gateway runs under callgrind, the workload runs once to warm
# up (for writes on other contracts than those measured), then for SECONDS with the
# counters zeroed before and dumped after; it prints the instructions per 2xx answer
# and keeps the count in target/profile/WORKLOAD-new.callgrind for callgrind_annotate
# (--inclusive=yes; with --compare, also WORKLOAD-old.callgrind). Instructions vary
# less than seconds between runs, but by up to some ten per cent (how many audit rows
# share a commit, when SQLite checkpoints): count each build more than once. They leave
# out the kernel's work, which the rate and CPU time include.
#
# With --compare OLD_PKGW it records nothing: it puts the same workload on an earlier
# build (OLD_PKGW, e.g. a copy of target/release/pkgw from before a change) and on this
# one, in turns (--rounds, each build once per round), on the same data in the same
# run, and prints each run's rate, p50, p99 and the gateway's CPU time per request with
# the ratios new/old: on these noisy machines only ratios measured side by side mean
# anything.
#
# Usage: scripts/profile.sh [--workload read|search|coordinated|put|transaction]
#                           [--contracts N] [--connections C] [--seconds S]
#                           [--backend sqlite|postgres] [--compare OLD_PKGW [--rounds R]]
#                           [--callgrind]
# Defaults: read, 20000 contracts, 32 connections, 15 seconds, sqlite, 2 rounds.
# PostgreSQL: PKGW_LOAD_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/test);
# the script keeps the imported store there as database pkgw_profile_N (the next run
# with N contracts starts from it; drop it when done) and runs each gateway on a fresh
# copy of it (pkgw_profile_run), dropped when the script ends. Not part of the tests.
set -euo pipefail
cd "$(dirname "$0")/.."

workload=read
contracts=20000
connections=32
seconds=15
old=""
rounds=2
backend=sqlite
callgrind=""
while [ $# -gt 0 ]; do
    case "$1" in
        --workload) workload=$2; shift 2 ;;
        --contracts) contracts=$2; shift 2 ;;
        --connections) connections=$2; shift 2 ;;
        --seconds) seconds=$2; shift 2 ;;
        --compare) old=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        --backend) backend=$2; shift 2 ;;
        --callgrind) callgrind=1; shift ;;
        -h|--help) sed -n '2,34p' "$0"; exit 0 ;;
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
tools="wrk perf"
[ -n "$callgrind" ] && tools="wrk valgrind"
for tool in $tools; do
    if ! command -v "$tool" >/dev/null; then
        package=$tool
        [ "$tool" = perf ] && package=linux-perf
        $sudo apt-get update -qq
        $sudo apt-get install -y -qq "$package" >/dev/null
    fi
done

out=target/profile
mkdir -p "$out"
cargo build --release -p pkgw -p pkgw-bench
pkgw=target/release/pkgw
bench=target/release/pkgw-bench
pg_admin=${PKGW_LOAD_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}
pg_base=pkgw_profile_$contracts
case "$backend" in
    sqlite)
        if [ ! -f "$out/pkgw-$contracts.db" ]; then
            "$pkgw" generate --contracts "$contracts" --seed 7 --out "$out/contracts.ndjson"
            "$pkgw" import "$out/contracts.ndjson" --database-url "sqlite://$out/pkgw-$contracts.db?mode=rwc"
        fi
        ;;
    postgres)
        if [ -z "$("$bench" sql "$pg_admin" "SELECT datname::text FROM pg_database WHERE datname = '$pg_base'")" ]; then
            "$pkgw" generate --contracts "$contracts" --seed 7 --out "$out/contracts.ndjson"
            "$bench" sql "$pg_admin" "CREATE DATABASE $pg_base"
            "$pkgw" import "$out/contracts.ndjson" --database-url "${pg_admin%/*}/$pg_base"
        fi
        ;;
    *) echo "unknown backend $backend" >&2; exit 2 ;;
esac
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
threads=2
[ "$connections" -lt 2 ] && threads=1

# Starts the gateway BINARY on a copy of the imported store (writes move the versions
# on, so each run starts from the same one) and waits until it is ready.
serve() {
    local url
    case "$backend" in
        sqlite)
            rm -f "$out/run.db" "$out/run.db-wal" "$out/run.db-shm"
            cp "$out/pkgw-$contracts.db" "$out/run.db"
            url="sqlite://$out/run.db"
            ;;
        postgres)
            "$bench" sql "$pg_admin" "DROP DATABASE IF EXISTS pkgw_profile_run"
            "$bench" sql "$pg_admin" "CREATE DATABASE pkgw_profile_run TEMPLATE $pg_base"
            url="${pg_admin%/*}/pkgw_profile_run"
            ;;
    esac
    # $wrapper (unquoted: a command and its arguments) runs the gateway under callgrind.
    # shellcheck disable=SC2086
    PKGW__DATABASE__URL="$url" PKGW__SERVER__BIND=127.0.0.1:$port \
        PKGW__SERVER__RATE_LIMIT_PER_SEC=0 PKGW__LOG__LEVEL=warn PKGW__SYNC__ENABLED=false \
        ${wrapper:-} "$1" serve >"$out/serve.log" 2>&1 &
    gateway=$!
    for _ in $(seq 1 "${tries:-100}"); do
        curl -fs "http://127.0.0.1:$port/ready" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    echo "the gateway did not start: see $out/serve.log" >&2
    return 1
}

# The workload for SECONDS against the gateway, wrk's report to FILE.
load() {
    wrk -t$threads -c"$connections" -d"$1s" --latency -s "scripts/load/$script" \
        "http://127.0.0.1:$port" >"$2"
}

gateway=""
# On every way out: no gateway left running, nor the copy of the PostgreSQL store.
clean_up() {
    if [ -n "$gateway" ]; then
        kill "$gateway" 2>/dev/null || true
        wait "$gateway" 2>/dev/null || true
    fi
    if [ "$backend" = postgres ]; then
        "$bench" sql "$pg_admin" "DROP DATABASE IF EXISTS pkgw_profile_run" >/dev/null 2>&1 || true
    fi
}
trap clean_up EXIT

# Instructions per 2xx answer of BINARY under the workload (see --callgrind); the count
# kept as $out/$workload-NAME.callgrind.
count() {
    local binary=$1 name=$2 dump requests bad
    rm -f "$out"/callgrind.out.*
    wrapper="valgrind --tool=callgrind --callgrind-out-file=$out/callgrind.out.%p" tries=600 \
        serve "$binary"
    # Every run the same requests: reads from the first path on, writes on their slice.
    export PKGW_LOAD_FROM_START=1
    PKGW_LOAD_SLICES=2 PKGW_LOAD_SLICE=1 load "$seconds" /dev/null
    callgrind_control -z "$gateway" >/dev/null 2>&1
    PKGW_LOAD_SLICES=2 PKGW_LOAD_SLICE=0 load "$seconds" "$out/$workload-$name-wrk.txt"
    callgrind_control -d "$gateway" >/dev/null 2>&1
    kill -INT "$gateway"
    wait "$gateway" 2>/dev/null || true
    dump=$(ls "$out"/callgrind.out.*.1)
    mv "$dump" "$out/$workload-$name.callgrind"
    rm -f "$out"/callgrind.out.*
    requests=$(awk '/requests in/ {print $1}' "$out/$workload-$name-wrk.txt")
    bad=$(awk '/Non-2xx/ {print $5}' "$out/$workload-$name-wrk.txt" | grep . || echo 0)
    awk -v r="$requests" -v b="$bad" '/^summary:/ {printf "%.0f\n", $2 / (r - b)}' \
        "$out/$workload-$name.callgrind"
}
if [ -n "$callgrind" ]; then
    new_count=$(count "$pkgw" new)
    echo "$backend, $workload, $connections connections: $new_count instructions per 2xx answer (target/profile/$workload-new.callgrind)" >&2
    if [ -n "$old" ]; then
        old_count=$(count "$old" old)
        echo "the build before: $old_count; new/old $(python3 -c "print(f'{$new_count / $old_count:.2f}')")" >&2
    fi
    exit 0
fi
if [ -n "$old" ]; then
    printf '| build | %s, %s, %s connections | requests/s | p50 | p99 | not 2xx | gateway CPU ms per request |\n' \
        "$backend" "$workload" "$connections"
    printf '|---|---|---:|---:|---:|---:|---:|\n'
    tick=$(getconf CLK_TCK)
    for round in $(seq 1 "$rounds"); do
        for build in old new; do
            binary=$pkgw
            [ "$build" = old ] && binary=$old
            serve "$binary"
            ready=$(awk '{print $14 + $15}' "/proc/$gateway/stat")
            load "$seconds" "$out/$workload-$build.txt"
            # The gateway's CPU time (user and system) under the load alone.
            used=$(awk -v ready="$ready" '{print $14 + $15 - ready}' "/proc/$gateway/stat")
            kill $gateway
            wait $gateway 2>/dev/null || true
            rate=$(awk '/Requests\/sec/ {print $2}' "$out/$workload-$build.txt")
            cpu=$(awk -v used="$used" -v tick="$tick" -v rate="$rate" -v s="$seconds" \
                'BEGIN {printf "%.3f", used * 1000 / tick / (rate * s)}')
            eval "rate_$build=$rate cpu_$build=$cpu"
            printf '| %s | round %s | %s | %s | %s | %s | %s |\n' "$build" "$round" "$rate" \
                "$(awk '$1 == "50%" {print $2}' "$out/$workload-$build.txt")" \
                "$(awk '$1 == "99%" {print $2}' "$out/$workload-$build.txt")" \
                "$(awk '/Non-2xx/ {print $5}' "$out/$workload-$build.txt" | grep . || echo 0)" \
                "$cpu"
        done
        # shellcheck disable=SC2154 # set by eval above
        echo "round $round: new/old rate $(python3 -c "print(f'{$rate_new / $rate_old:.2f}')"), CPU per request $(python3 -c "print(f'{$cpu_new / $cpu_old:.2f}')")" >&2
    done
    exit 0
fi
serve "$pkgw"
load "$((seconds + 2))" "$out/$workload-wrk.txt" &
load=$!
sleep 1
$sudo perf record -g -F 999 -p "$gateway" -o "$out/$workload.perf.data" -- sleep "$seconds" 2>/dev/null
wait "$load"
$sudo perf report -i "$out/$workload.perf.data" --no-children --sort symbol --percent-limit 0.4 \
    --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -60 >"$out/$workload.txt"
grep 'Requests/sec' "$out/$workload-wrk.txt" >&2
echo "profile: $out/$workload.txt (perf report -i $out/$workload.perf.data for the call graphs)" >&2
