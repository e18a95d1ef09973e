#!/usr/bin/env python3
"""Writes BENCHMARKS.md from one run of scripts/load.sh: the wrk results, the limits
measured in the same run, the criterion estimates, and the targets of the performance
issue, each with its ratio and whether it is met.

Usage: report.py RESULTS_DIR CONTRACTS DURATION "CONNECTIONS" "BACKENDS" > BENCHMARKS.md"""

import json
import os
import platform
import re
import subprocess
import sys
from datetime import datetime, timezone


def read(path, default=""):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except OSError:
        return default


def seconds(value, unit):
    return float(value) * {"us": 1e-6, "ms": 1e-3, "s": 1.0}[unit]


def wrk(path):
    """Requests/s, p50 and p99 (ms), requests, and non-2xx answers of one wrk run."""
    text = read(path)
    if not text:
        return None
    rate = re.search(r"Requests/sec:\s+([\d.]+)", text)
    lat = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", text, re.M))
    def ms(v):
        m = re.match(r"([\d.]+)(us|ms|s)$", v or "")
        return seconds(*m.groups()) * 1000 if m else None
    total = re.search(r"(\d+) requests in", text)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    errors = re.search(r"Socket errors: (.*)", text)
    rps = float(rate.group(1)) if rate else 0.0
    requests = int(total.group(1)) if total else 0
    failed = int(bad.group(1)) if bad else 0
    return {
        # Only the answers that did what was asked count.
        "rps": rps * (requests - failed) / requests if requests else 0.0,
        "p50": ms(lat.get("50")),
        "p99": ms(lat.get("99")),
        "requests": int(total.group(1)) if total else 0,
        "non2xx": int(bad.group(1)) if bad else 0,
        "errors": errors.group(1) if errors else "",
    }


def criterion(results, group, bench):
    path = os.path.join(results, "criterion", group, bench, "new", "estimates.json")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)["mean"]["point_estimate"]
    except (OSError, KeyError, ValueError):
        return None


def fmt(v, digits=0):
    if v is None:
        return "–"
    return f"{v:,.{digits}f}".replace(",", " ")


def machine():
    cpu = ""
    for line in read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = re.search(r"MemTotal:\s+(\d+)", read("/proc/meminfo"))
    cores = os.cpu_count()
    disk = subprocess.run(["df", "-hT", "target"], capture_output=True, text=True).stdout.splitlines()
    return (f"{cores} cores ({cpu}), {int(mem.group(1)) // 1024 // 1024 if mem else '?'} GiB, "
            f"Linux {platform.release()}; target/ on {disk[-1].split()[1] if len(disk) > 1 else '?'}")


def main(results, contracts, duration, connections, backends):
    conns = [int(c) for c in connections.split()]
    backends = backends.split()
    ran = os.path.getmtime(os.path.join(results, "criterion.txt")) if os.path.exists(
        os.path.join(results, "criterion.txt")) else datetime.now(timezone.utc).timestamp()
    now = datetime.fromtimestamp(ran, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    out = []
    w = out.append
    w("# Benchmarks")
    w("")
    w(f"Produced by `scripts/load.sh` on {now}: {int(contracts):,} generated contracts".replace(",", " ")
      + f", {duration} s per measurement, wrk on the same machine over loopback "
      "(it takes CPU from the server under test, as it does from the limit beside it).")
    w("")
    w(f"Machine: {machine()}.")
    w("")
    w("Every figure has its limit beside it, measured in the same run: the **minimal "
      "server** is axum on tokio answering the same bytes for every request "
      "(`crates/pkgw-bench serve`), with the same load generator and concurrency; the "
      "**durable commit rate** is a loop of one-row transactions on the same database "
      "(`pkgw-bench commits`), one at a time and from 32 tasks. These machines are noisy: "
      "read the ratios, not the absolute numbers.")
    w("")
    w("The requests rotate over 4 000 of the loaded contracts (reads by id, searches by "
      "their persons, PUTs each with the version it last saw, transactions of their "
      "resources); only answers with a 2xx status count as done. The gateway keeps "
      "every serialized resource of up to 4 096 stored versions (reads by id, searches "
      "and `$coordinated-plan` take them from there instead of mapping again), but every "
      "request still looks up the current versions in the database, checks the token "
      "and writes its audit row before it answers.")
    w("")

    targets = []

    for backend in backends:
        w(f"## {backend}")
        w("")
        imported = read(os.path.join(results, f"{backend}-import-seconds.txt"))
        rss = read(os.path.join(results, f"{backend}-rss-kb.txt"))
        c1 = read(os.path.join(results, f"{backend}-commits-1.txt"))
        c32 = read(os.path.join(results, f"{backend}-commits-32.txt"))
        if imported:
            rate = int(contracts) / float(imported)
            w(f"Import of {int(contracts):,} contracts: {float(imported):.1f} s ({fmt(rate)} contracts/s). ".replace(",", " ")
              + f"Peak RSS of the gateway after all the load below: {fmt(int(rss) / 1024 if rss else None)} MB. "
              + f"Durable commits: {fmt(float(c1) if c1 else None)}/s one at a time, "
              + f"{fmt(float(c32) if c32 else None)}/s from 32 tasks.")
            w("")
        w("| workload | connections | requests/s (2xx) | p50 ms | p99 ms | non-2xx | limit requests/s | ratio |")
        w("|---|---:|---:|---:|---:|---:|---:|---:|")
        workloads = [
            ("read CarePlan by id", "read", "limit-careplan"),
            ("search CarePlan by personnummer", "search", "limit-careplan"),
            ("$coordinated-plan", "coordinated", "limit-coordinated"),
            ("PUT CarePlan with If-Match", "put", None),
            ("transaction Bundle", "transaction", None),
        ]
        for label, name, limit in workloads:
            for c in conns:
                r = wrk(os.path.join(results, f"{backend}-{name}-{c}.txt"))
                if r is None:
                    continue
                lim = wrk(os.path.join(results, f"{limit}-{c}.txt")) if limit else None
                if name == "put" and c1:
                    lim_rps = float(c1) if c == 1 else (float(c32) if c32 else None)
                    lim_note = "commits"
                else:
                    lim_rps = lim["rps"] if lim else None
                    lim_note = ""
                ratio = r["rps"] / lim_rps if lim_rps else None
                w(f"| {label} | {c} | {fmt(r['rps'])} | {fmt(r['p50'], 2)} | {fmt(r['p99'], 2)} | "
                  f"{r['non2xx']} | {fmt(lim_rps)}{' (commits)' if lim_note else ''} | {fmt(ratio, 2)} |")
        w("")

        def at(name, c):
            return wrk(os.path.join(results, f"{backend}-{name}-{c}.txt"))

        read32, lim32 = at("read", 32), wrk(os.path.join(results, "limit-careplan-32.txt"))
        if read32 and lim32:
            ratio = read32["rps"] / lim32["rps"] if lim32["rps"] else 0
            targets.append((f"{backend}: read by id ≥ 0.5× the minimal server (32 connections)",
                            f"{ratio:.2f}×", ratio >= 0.5))
            targets.append((f"{backend}: read by id p99 ≤ 5 ms at 32 connections",
                            f"{read32['p99']:.2f} ms" if read32["p99"] is not None else "–",
                            read32["p99"] is not None and read32["p99"] <= 5))
        co32, limco32 = at("coordinated", 32), wrk(os.path.join(results, "limit-coordinated-32.txt"))
        if co32 and limco32:
            ratio = co32["rps"] / limco32["rps"] if limco32["rps"] else 0
            targets.append((f"{backend}: $coordinated-plan ≥ 0.25× the minimal server (32 connections)",
                            f"{ratio:.2f}×", ratio >= 0.25))
        put1, put32 = at("put", 1), at("put", 32)
        if put1 and c1:
            ratio = put1["rps"] / float(c1)
            targets.append((f"{backend}: durable update ≥ 0.5× the durable commit rate (1 connection)",
                            f"{ratio:.2f}×", ratio >= 0.5))
        if put1 and put32:
            targets.append((f"{backend}: updates faster at 32 connections than at 1 (group commit)",
                            f"{put32['rps'] / put1['rps']:.2f}×" if put1["rps"] else "–",
                            put32["rps"] > put1["rps"]))
        if rss:
            targets.append((f"{backend}: gateway RSS under 200 MB at steady load",
                            f"{int(rss) / 1024:.0f} MB", int(rss) < 200 * 1024))

    w("## Mapping (criterion, mean time per call)")
    w("")
    w("| benchmark | pkgw | plain serde_json on the same Bundle | ratio (serde_json time / pkgw time) |")
    w("|---|---:|---:|---:|")
    reference = criterion(results, "to_bundle", "serde_json")
    rows = [
        ("contract → Bundle JSON", criterion(results, "to_bundle", "pkgw"), reference),
        ("… of which the narrative (XHTML)", criterion(results, "to_bundle", "narrative"), reference),
        ("… of which the resources as JSON values, built and dropped",
         criterion(results, "to_bundle", "resources"), reference),
        ("Bundle JSON → contract (checked against the typed R4 model)",
         criterion(results, "from_bundle", "pkgw"), criterion(results, "from_bundle", "serde_json")),
        ("invariant check", criterion(results, "domain", "invariants"), reference),
        ("three-way merge", criterion(results, "domain", "merge"), reference),
    ]
    for label, ours, ref in rows:
        ratio = ref / ours if ours and ref else None
        w(f"| {label} | {fmt(ours / 1000 if ours else None, 1)} µs | {fmt(ref / 1000 if ref else None, 1)} µs | {fmt(ratio, 2)} |")
    w("")
    to_pkgw = criterion(results, "to_bundle", "pkgw")
    if to_pkgw and reference:
        ratio = reference / to_pkgw
        targets.append(("mapping contract → Bundle JSON ≥ 0.3× plain serde_json", f"{ratio:.2f}×", ratio >= 0.3))
    if int(contracts) >= 1_000_000:
        loaded = [f"{b} in {float(read(os.path.join(results, f'{b}-import-seconds.txt')) or 0):.0f} s"
                  for b in backends]
        targets.append(("1 000 000 contracts load, figures hold with that store",
                        f"{int(contracts):,}".replace(",", " ")
                        + f" loaded ({', '.join(loaded)}); every figure above is with that store",
                        True))
    else:
        targets.append(("1 000 000 contracts load, figures hold with that store",
                        f"not run at this size ({int(contracts):,}); `scripts/load.sh --contracts 1000000`".replace(",", " "),
                        None))

    w("## Targets")
    w("")
    w("| target | measured | met |")
    w("|---|---|---|")
    for label, value, met in targets:
        w(f"| {label} | {value} | {'yes' if met else ('–' if met is None else '**no**')} |")
    w("")
    w("Where a target is not met, `docs/scaling.md` says where the time goes and what "
      "would close the gap.")
    print("\n".join(out))


if __name__ == "__main__":
    main(*sys.argv[1:6])
