#!/usr/bin/env bash
# Checks the model of the sync protocol (model/sync.pml) with spin: an exhaustive search
# of every interleaving of the dispatcher, two replicas, the target, a pull and the
# faults, for assertion violations and invalid end states (docs/sync-model.md says what
# is checked and which code each step stands for).
#
#   scripts/check-model.sh            # the bounds CI checks
#   scripts/check-model.sh 3 2        # MAXV=3 versions, FAULTS=2 (larger: minutes, GBs)
#
# Installs Debian's spin (and a C compiler) when missing. Prints each run's state count;
# on a violation, prints the counterexample and fails.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v spin >/dev/null || ! command -v gcc >/dev/null; then
    as_root=""
    if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null; then as_root="sudo"; fi
    $as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -qq spin gcc >/dev/null
fi

if [ $# -eq 2 ]; then
    bounds=("$1 $2")
else
    # versions written, faults per run
    bounds=("2 2" "3 1")
fi

model="$PWD/model/sync.pml"
for bound in "${bounds[@]}"; do
    read -r versions faults <<<"$bound"
    work="$PWD/target/spin/v${versions}-f${faults}"
    rm -rf "$work" && mkdir -p "$work"
    cp "$model" "$work/sync.pml"
    (
        cd "$work"
        spin -DMAXV="$versions" -DFAULTS="$faults" -a sync.pml >/dev/null
        gcc -O2 -DSAFETY -DCOLLAPSE -o pan pan.c 2>/dev/null
        ./pan -m1000000 -w26 >pan.out 2>&1 || true
    )
    out="$work/pan.out"
    states=$(grep -oE '^ *[0-9]+ states, stored' "$out" | grep -oE '[0-9]+' || echo "?")
    seconds=$(grep -oE 'elapsed time [0-9.e+]+' "$out" | grep -oE '[0-9.e+]+$' || echo "?")
    if grep -q 'errors: 0' "$out" && ! grep -q 'Search not completed' "$out" \
        && ! grep -q 'max search depth too small' "$out"; then
        echo "model: ${versions} versions, ${faults} faults: no violation in ${states} states (${seconds} s)"
    else
        echo "model: ${versions} versions, ${faults} faults: VIOLATION (or search incomplete)" >&2
        grep -E 'violated|invalid end state|errors:|Search not completed|too small' "$out" >&2 || true
        if [ -f "$work/sync.pml.trail" ]; then
            (cd "$work" && spin -DMAXV="$versions" -DFAULTS="$faults" -t -p -g sync.pml | tail -80) >&2
        fi
        exit 1
    fi
done
