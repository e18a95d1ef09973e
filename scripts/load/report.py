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

# The sections of docs/scaling.md (their anchors) that give each target's profile and
# next remedy.
READS = "reads-against-the-minimal-server"
COORDINATED = "coordinated-plan-and-searches"
UPDATES = "durable-updates-against-the-commit-rate"
SYNC = "sync-propagation"
MAPPING = "mapping-a-contract-to-fhir-json"


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


def read_json(path):
    text = read(path)
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def sync_runs(results, backend):
    """The sync propagation runs of a backend, the highest rate first."""
    runs = []
    for name in os.listdir(results):
        if name.startswith(f"{backend}-sync-") and name.endswith(".json"):
            run = read_json(os.path.join(results, name))
            if run:
                runs.append(run)
    return sorted(runs, key=lambda r: -r["rate"])


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

        runs = sync_runs(results, backend)
        if runs:
            initial = read(os.path.join(results, f"{backend}-sync-initial-seconds.txt"))
            peer_put = read(os.path.join(results, "peer-put-rate.txt"))
            w(f"**Sync propagation** to a peer FHIR server (a second sekmet-fhir, empty at the start, "
              f"the target of the CarePlans of the 4 000 contracts the workloads use): first the "
              f"import's outbox was delivered (`pkgw sync run --once`: the 4 000 CarePlans sent, the "
              f"rest of the {fmt(int(contracts))} changes dispatched to no one) in "
              f"{fmt(float(initial) if initial else None)} s; then PUTs at a fixed rate for "
              f"{fmt(runs[0]['seconds'])} s (open loop: sent on schedule whatever the answers) "
              f"through the gateway running its sync engine, at the rate asked and at one the "
              f"peer takes (it took {fmt(float(peer_put) if peer_put else None)} PUTs/s sent "
              f"straight to it, from 4 connections). From each version's commit (its "
              f"`meta.lastUpdated`) to its arrival at the peer (the peer's own `lastUpdated` of "
              f"the version it stored); a contract changed again while its delivery waits goes "
              f"out once, as its latest version:")
            w("")
            w("An update has arrived once the peer holds it or a later update of the same "
              "contract; *sent as such* counts those the peer got as themselves.")
            w("")
            w("| updates/s | updates 2xx | arrived | sent as such | p50 ms | p99 ms | max ms | backlog when the updates stopped | backlog after | failed requests |")
            w("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
            for sync in runs:
                w(f"| {fmt(sync['rate'])} | {fmt(sync['committed'])} | {fmt(sync['arrived'])} | "
                  f"{fmt(sync.get('sent_as_such'))} | "
                  f"{fmt(sync['p50_ms'], 1)} | {fmt(sync['p99_ms'], 1)} | {fmt(sync['max_ms'], 1)} | "
                  f"{sync['backlog_at_stop']} | {sync['backlog_after']} | {sync['failed']} |")
            w("")
        if backend == "postgres":
            spans = []
            for name in ("read", "search", "coordinated"):
                before = read(os.path.join(results, f"{backend}-{name}-before.pg")).split()
                after = read(os.path.join(results, f"{backend}-{name}-after.pg")).split()
                if len(before) == 4 and len(after) == 4:
                    d = [int(a) - int(b) for a, b in zip(after, before)]
                    spans.append(f"{name}: {d[0] + d[1]} checkpoint(s), {fmt(d[2])} buffers written by them")
            if spans:
                w("PostgreSQL checkpoints during the read workloads (`pg_stat_bgwriter`; the load "
                  "script checkpoints once after the import, before measuring): " + "; ".join(spans) + ".")
                w("")

        def at(name, c):
            return wrk(os.path.join(results, f"{backend}-{name}-{c}.txt"))

        def limit_at(what, c):
            return wrk(os.path.join(results, f"limit-{what}-{c}.txt"))

        def against(name, what, floor, label, section):
            ours, lim = at(name, 32), limit_at(what, 32)
            if ours and lim and lim["rps"]:
                ratio = ours["rps"] / lim["rps"]
                targets.append((f"{backend}: {label} ≥ {floor}× the minimal server (32 connections)",
                                f"{ratio:.2f}×", ratio >= floor, section))

        against("read", "careplan", 0.25, "read by id", READS)
        for c, most in ((32, 10), (1, 5)):
            r = at("read", c)
            if r:
                targets.append((f"{backend}: read by id p99 ≤ {most} ms at {c} connection{'s' if c > 1 else ''}",
                                f"{r['p99']:.2f} ms" if r["p99"] is not None else "–",
                                r["p99"] is not None and r["p99"] <= most, READS))
        against("coordinated", "coordinated", 0.15, "$coordinated-plan", COORDINATED)
        against("search", "careplan", 0.2, "search by person", COORDINATED)
        put1, put32 = at("put", 1), at("put", 32)
        if put1:
            targets.append((f"{backend}: one commit per update (the request's audit row in the version's transaction)",
                            "yes: the version's audit row carries the request's address and status", True,
                            UPDATES))
        if put1 and c1:
            ratio = put1["rps"] / float(c1)
            targets.append((f"{backend}: durable update ≥ 0.5× the durable commit rate (1 connection)",
                            f"{ratio:.2f}×", ratio >= 0.5, UPDATES))
        if put1 and put32 and backend == "sqlite":
            ratio = put32["rps"] / put1["rps"] if put1["rps"] else 0
            targets.append((f"{backend}: updates at 32 connections ≥ 3× the rate at 1 (group commit)",
                            f"{ratio:.2f}×", ratio >= 3, UPDATES))
        for n, sync in enumerate(sync_runs(results, backend)):
            which = "" if n == 0 else " (a rate the peer takes)"
            targets.append((f"{backend}: sync propagation p99 < 1 s at {fmt(sync['rate'])} updates/s{which}, backlog 0 after",
                            f"p50 {fmt(sync['p50_ms'])} ms, p99 {fmt(sync['p99_ms'])} ms; "
                            f"{fmt(sync['arrived'])} of {fmt(sync['committed'])} arrived; backlog {sync['backlog_after']}",
                            sync["p99_ms"] is not None and sync["p99_ms"] < 1000 and sync["backlog_after"] == 0
                            and sync["arrived"] == sync["committed"], SYNC))
        if rss:
            targets.append((f"{backend}: gateway RSS under 200 MB at steady load",
                            f"{int(rss) / 1024:.0f} MB", int(rss) < 200 * 1024, None))

    peer_rows = [(label, name) for label, name in
                 (("read CarePlan by id", "read"), ("search CarePlan by personnummer", "search"))
                 if wrk(os.path.join(results, f"peer-{name}-{conns[0]}.txt"))]
    if peer_rows:
        loaded = read(os.path.join(results, "peer-import-seconds.txt"))
        peer_rss = read(os.path.join(results, "peer-rss-kb.txt"))
        w("## Beside a peer FHIR server")
        w("")
        w("The peer is **sekmet-fhir 0.1.1** from PyPI (`pip install sekmet-fhir==0.1.1`): a "
          "FHIR R4 server in Python (FastAPI on uvicorn, one process), keeping resources, their "
          "versions and a search index in SQLite on disk. It was loaded with the same generated "
          f"CarePlans ({fmt(int(contracts))}, only the CarePlans, through its own store code: "
          f"{fmt(float(loaded) if loaded else None)} s, beside the gateway's imports) and put under "
          "the same reads and searches (the same paths, wrk settings and durations). It checks a "
          "static bearer token (no JWT, no scopes, no compartments), writes no audit row, runs "
          "without its traffic log (its setting for load runs), and answers from its stored JSON. "
          "pkgw verifies the JWT, checks scopes and the person's compartment, looks up the current "
          "version and commits an audit row before it answers. "
          f"Peer RSS after the load: {fmt(int(peer_rss) / 1024 if peer_rss else None)} MB. "
          f"PUTs of the same CarePlans sent straight to it from 4 connections: "
          f"{fmt(float(read(os.path.join(results, 'peer-put-rate.txt')) or 0))} a second (2xx).")
        w("")
        w("| workload | connections | peer requests/s (2xx) | peer p50 ms | peer p99 ms | "
          + " | ".join(f"pkgw {b} requests/s | ratio" for b in backends) + " |")
        w("|---|---:|---:|---:|---:|" + "---:|---:|" * len(backends))
        for label, name in peer_rows:
            for c in conns:
                p = wrk(os.path.join(results, f"peer-{name}-{c}.txt"))
                if p is None:
                    continue
                cells = []
                for b in backends:
                    ours = wrk(os.path.join(results, f"{b}-{name}-{c}.txt"))
                    ratio = ours["rps"] / p["rps"] if ours and p["rps"] else None
                    cells.append(f"{fmt(ours['rps'] if ours else None)} | {fmt(ratio, 2)}")
                w(f"| {label} | {c} | {fmt(p['rps'])} | {fmt(p['p50'], 2)} | {fmt(p['p99'], 2)} | "
                  + " | ".join(cells) + " |")
        w("")
        w("A ratio above 1 means pkgw answered more requests a second than the peer.")
        w("")

    w("## Mapping (criterion, mean time per call)")
    w("")
    w("| benchmark | pkgw | plain serde_json on the same Bundle | ratio (serde_json time / pkgw time) |")
    w("|---|---:|---:|---:|")
    reference = criterion(results, "to_bundle", "serde_json")
    rows = [
        ("contract → Bundle JSON", criterion(results, "to_bundle", "pkgw"), reference),
        ("… of which the narrative (XHTML)", criterion(results, "to_bundle", "narrative"), reference),
        ("… of which the resources as the mapping's JSON tree (narrative included), built and dropped",
         criterion(results, "to_bundle", "resources"), reference),
        ("… of which writing that tree's bytes (the same bytes the reference writes)",
         criterion(results, "to_bundle", "written"), reference),
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
        targets.append(("mapping contract → Bundle JSON ≥ 0.5× plain serde_json", f"{ratio:.2f}×", ratio >= 0.5,
                        MAPPING))
    if int(contracts) >= 1_000_000:
        loaded = [f"{b} in {float(read(os.path.join(results, f'{b}-import-seconds.txt')) or 0):.0f} s"
                  for b in backends]
        targets.append(("1 000 000 contracts load, figures hold with that store",
                        f"{int(contracts):,}".replace(",", " ")
                        + f" loaded ({', '.join(loaded)}); every figure above is with that store",
                        True, None))
    else:
        targets.append(("1 000 000 contracts load, figures hold with that store",
                        f"not run at this size ({int(contracts):,}); `scripts/load.sh --contracts 1000000`".replace(",", " "),
                        None, None))

    w("## Targets")
    w("")
    w("| target | measured | met | where the time goes, what was done, what is next |")
    w("|---|---|---|---|")
    for label, value, met, section in targets:
        where = f"[docs/scaling.md](docs/scaling.md#{section})" if section else "–"
        w(f"| {label} | {value} | {'yes' if met else ('–' if met is None else '**no**')} | {where} |")
    w("")
    w("Where a target is not met, `docs/scaling.md` says where the time goes (the profile) "
      "and what would close the gap (the next remedy), in the section the last column links.")
    print("\n".join(out))


if __name__ == "__main__":
    main(*sys.argv[1:6])
