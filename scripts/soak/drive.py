"""The soak's load and its sampler (see scripts/soak.sh).

Mixed load at a steady rate against a running gateway — reads by id, searches by person,
$coordinated-plan, updates with If-Match through the contract API, transaction Bundles
that create a contract — while a sampler reads, every SAMPLE seconds, the gateway's RSS
and open file descriptors (/proc) and its /metrics (database connections, each target's
queue and its age, dead letters). Writes the samples and the answers as JSON and the
report as Markdown.

Usage: python3 drive.py --base URL --token T --pid PID --contracts NDJSON --fixtures DIR
                        --minutes M --rate R --sample S --json OUT.json --report OUT.md
                        [--describe TEXT]
"""

import argparse
import collections
import json
import os
import random
import re
import threading
import time
import urllib.error
import urllib.request
import uuid

parser = argparse.ArgumentParser()
for name in ("base", "token", "contracts", "fixtures", "json", "report"):
    parser.add_argument(f"--{name}", required=True)
parser.add_argument("--pid", type=int, required=True)
parser.add_argument("--minutes", type=float, default=30)
parser.add_argument("--rate", type=float, default=20)
parser.add_argument("--sample", type=float, default=30)
parser.add_argument("--workers", type=int, default=8)
parser.add_argument("--describe", default="")
args = parser.parse_args()

# The workload: what share of operations each kind is.
MIX = [("read", 45), ("search", 15), ("coordinated-plan", 10), ("update", 20), ("transaction", 10)]

contracts = []
for line in open(args.contracts, encoding="utf-8"):
    record = json.loads(line)
    contracts.append((record["id"], record["versions"][-1]["contract"]["patient"]["id"]))
bundles = []
for name in sorted(os.listdir(args.fixtures)):
    if name.endswith(".json"):
        bundle = json.load(open(os.path.join(args.fixtures, name), encoding="utf-8"))
        plan = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "CarePlan")
        bundles.append((plan["id"], json.dumps(bundle)))

lock = threading.Lock()
answers = collections.Counter()  # (operation, status) -> count
latencies = collections.defaultdict(list)  # operation -> seconds
stop = threading.Event()


def call(method, path, body=None, headers=None):
    request = urllib.request.Request(args.base + path, data=body, method=method)
    request.add_header("Authorization", f"Bearer {args.token}")
    for k, v in (headers or {}).items():
        request.add_header(k, v)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()
    except OSError as e:
        return 0, {}, str(e).encode()


def timed(operation, method, path, body=None, headers=None):
    started = time.monotonic()
    status, headers_back, data = call(method, path, body, headers)
    took = time.monotonic() - started
    with lock:
        answers[(operation, status)] += 1
        latencies[operation].append(took)
    return status, headers_back, data


def one(operation, mine):
    contract, patient = random.choice(contracts)
    if operation == "read":
        timed(operation, "GET", f"/fhir/CarePlan/{contract}")
    elif operation == "search":
        timed(operation, "GET", f"/fhir/CarePlan?patient={patient}")
    elif operation == "coordinated-plan":
        timed(operation, "GET", f"/fhir/CarePlan/$coordinated-plan?patient={patient}")
    elif operation == "update":
        # Each worker updates only its own contracts: a 412 here would be a real fault.
        contract, _ = random.choice(mine)
        status, headers, data = call("GET", f"/api/contracts/{contract}")
        if status != 200:
            with lock:
                answers[("update (read)", status)] += 1
            return
        current = json.loads(data)["contract"]
        current.setdefault("agreement", {})["whatMatters"] = [f"Soak {uuid.uuid4().hex[:8]}"]
        timed(operation, "PUT", f"/api/contracts/{contract}", json.dumps(current).encode(),
              {"Content-Type": "application/json", "If-Match": headers.get("ETag") or headers.get("etag")})
    elif operation == "transaction":
        plan_id, text = random.choice(bundles)
        bundle = json.loads(text.replace(plan_id, str(uuid.uuid4())))
        bundle["type"] = "transaction"
        for entry in bundle["entry"]:
            entry["request"] = {"method": "POST", "url": entry["resource"]["resourceType"]}
        timed(operation, "POST", "/fhir", json.dumps(bundle).encode(),
              {"Content-Type": "application/fhir+json"})


def worker(index):
    mine = contracts[index :: args.workers]
    interval = args.workers / args.rate
    weights = [w for _, w in MIX]
    next_at = time.monotonic() + random.random() * interval
    while not stop.is_set():
        now = time.monotonic()
        if next_at > now:
            stop.wait(next_at - now)
            continue
        # Open loop at the set rate; a worker that fell behind skips, it does not burst.
        next_at = max(next_at + interval, now)
        operation = random.choices([name for name, _ in MIX], weights)[0]
        one(operation, mine)


def metrics():
    status, _, data = call("GET", "/metrics")
    values = {}
    if status != 200:
        return values
    for line in data.decode().splitlines():
        match = re.match(r"^(pkgw_[a-z_]+)(\{[^}]*\})? ([0-9.eE+-]+|NaN)$", line)
        if match:
            values[match.group(1) + (match.group(2) or "")] = float(match.group(3))
    return values


def sample(started):
    status_text = open(f"/proc/{args.pid}/status", encoding="utf-8").read()
    rss_kib = int(re.search(r"VmRSS:\s+(\d+) kB", status_text).group(1))
    fds = len(os.listdir(f"/proc/{args.pid}/fd"))
    m = metrics()
    pick = lambda prefix: {k[len(prefix):]: v for k, v in m.items() if k.startswith(prefix)}
    with lock:
        errors = sum(n for (op, status), n in answers.items() if not 200 <= status < 300)
        total = sum(answers.values())
    return {
        "minute": round((time.monotonic() - started) / 60, 2),
        "rss_mib": round(rss_kib / 1024, 1),
        "fds": fds,
        "db_connections": pick("pkgw_db_connections"),
        "queued": pick("pkgw_sync_queued"),
        "oldest_queued_seconds": pick("pkgw_sync_oldest_queued_seconds"),
        "dead_letters": pick("pkgw_sync_dead_letters"),
        "contracts": m.get("pkgw_contracts"),
        "outbox": m.get("pkgw_sync_outbox"),
        "answers": total,
        "error_answers": errors,
    }


started = time.monotonic()
samples = [sample(started)]
threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(args.workers)]
for t in threads:
    t.start()
end = started + args.minutes * 60
while time.monotonic() < end:
    stop.wait(min(args.sample, max(0, end - time.monotonic())))
    samples.append(sample(started))
    last = samples[-1]
    print(f"  {last['minute']:6.1f} min  rss {last['rss_mib']} MiB  fds {last['fds']}  "
          f"queued {last['queued']}  answers {last['answers']} (errors {last['error_answers']})", flush=True)
stop.set()
for t in threads:
    t.join()
# After the load: the backlog drains (the flapping target's included) — waited for, up
# to a few minutes, and sampled once more.
deadline = time.monotonic() + 300
while time.monotonic() < deadline:
    queued = {k: v for k, v in metrics().items() if k.startswith("pkgw_sync_queued")}
    if queued and all(v == 0 for v in queued.values()):
        break
    time.sleep(2)
samples.append(sample(started) | {"after_load": True})


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))] if values else float("nan")


by_operation = {}
for (operation, status), n in sorted(answers.items()):
    by_operation.setdefault(operation, {})[str(status)] = n
summary = {
    "minutes": args.minutes,
    "rate": args.rate,
    "describe": args.describe,
    "answers": by_operation,
    "latency_ms": {op: {"p50": round(percentile(v, 50) * 1000, 1), "p99": round(percentile(v, 99) * 1000, 1)}
                   for op, v in sorted(latencies.items())},
    "samples": samples,
}
json.dump(summary, open(args.json, "w", encoding="utf-8"), indent=1)


def fmt(d):
    """`{pool="writer",state="idle"} 1` as `writer idle 1`."""
    return ", ".join(" ".join(re.findall(r'"([^"]*)"', k) + [f"{v:.0f}"]) for k, v in sorted(d.items())) or "—"


lines = [
    "| minute | RSS (MiB) | open fds | DB connections | outbox | queued per target | oldest queued (s) | dead letters | contracts | answers (non-2xx) |",
    "|---:|---:|---:|---|---:|---|---|---|---:|---:|",
]
for s in samples:
    minute = f"{s['minute']:.1f}" + (" (drained)" if s.get("after_load") else "")
    lines.append(
        f"| {minute} | {s['rss_mib']} | {s['fds']} | {fmt(s['db_connections'])} | {s['outbox']:g} | {fmt(s['queued'])} | "
        f"{fmt(s['oldest_queued_seconds'])} | {fmt(s['dead_letters'])} | {s['contracts']:g} | {s['answers']} ({s['error_answers']}) |"
    )
answer_lines = ["| operation | answers by status | p50 (ms) | p99 (ms) |", "|---|---|---:|---:|"]
for operation, statuses in by_operation.items():
    lat = summary["latency_ms"].get(operation, {})
    answer_lines.append(
        f"| {operation} | {', '.join(f'{k}: {v}' for k, v in statuses.items())} | {lat.get('p50', '—')} | {lat.get('p99', '—')} |"
    )
with open(args.report, "w", encoding="utf-8") as out:
    out.write("\n".join(answer_lines) + "\n\n" + "\n".join(lines) + "\n")
