#!/usr/bin/env python3
"""Sync propagation: updates contracts at a fixed rate through the gateway while it syncs
them to a peer FHIR server, then measures, for each update, the time from its commit at
the gateway to its arrival at the peer.

The updates are open-loop: update n is sent at start + n / rate whatever the answers
before it (so a slow answer cannot lower the rate), from a pool of threads each with its
own connection, each PUT of a CarePlan with the version it last saw (If-Match) and a
note that names the run and the update ("sync-probe RUN/n"). The commit time is the new version's
`meta.lastUpdated` in the gateway's answer (taken just before its transaction commits);
the arrival time is the `last_updated` the peer's store gave the version it received,
read from the peer's database file once the gateway's sync queue for the peer is empty
again: the first version it stored of that update or of a later one of the same
contract (a contract changed again while its delivery waits goes out once, as its
latest version). Both clocks are this machine's.

Writes a JSON summary to standard output: updates sent, answered 2xx, arrived, p50/p99
of the delay in milliseconds, the sync queue when the updates stopped and at the end.

`capacity` measures what the peer itself takes: PUTs of the same CarePlans straight to
it (no If-Match), from 4 threads, for SECONDS; prints the 2xx answers a second.

Usage: propagate.py probe GATEWAY_BASE TOKEN PUT_BODIES PEER_DB RATE SECONDS
       propagate.py capacity PEER_BASE TOKEN PUT_BODIES SECONDS"""

import http.client
import json
import queue
import sqlite3
import sys
import threading
import time
import urllib.parse
from datetime import datetime

THREADS = 16
DRAIN_SECONDS = 120


def instant(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def queued(base, token):
    """The gateway's sync backlog: contracts queued for the targets (`pkgw_sync_queued`,
    retries included) and changes not yet dispatched to the queues (`pkgw_sync_outbox`)."""
    url = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    conn.request("GET", "/metrics", headers={"Authorization": f"Bearer {token}"})
    text = conn.getresponse().read().decode()
    conn.close()
    total = 0
    for line in text.splitlines():
        if line.startswith(("pkgw_sync_queued{", "pkgw_sync_outbox ")):
            total += int(float(line.rsplit(" ", 1)[1]))
    return total


def read_plans(bodies_file):
    plans = []
    with open(bodies_file, encoding="utf-8") as f:
        for line in f:
            plan_id, body = line.rstrip("\n").split("\t", 1)
            plans.append((plan_id, json.loads(body)))
    return plans


def capacity(base, token, bodies_file, seconds):
    plans = read_plans(bodies_file)
    url = urllib.parse.urlsplit(base)
    stop = time.monotonic() + float(seconds)
    done = []

    def worker(first):
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
        n, ok = first, 0
        while time.monotonic() < stop:
            plan_id, plan = plans[n % len(plans)]
            body = dict(plan)
            body["note"] = [{"text": f"capacity {n}"}]
            conn.request("PUT", f"{url.path}/CarePlan/{plan_id}", json.dumps(body), {
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/fhir+json",
            })
            answer = conn.getresponse()
            answer.read()
            ok += 200 <= answer.status < 300
            n += 4
        done.append(ok)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(f"{sum(done) / float(seconds):.1f}")


def probe(base, token, bodies_file, peer_db, rate, seconds):
    rate, seconds = float(rate), float(seconds)
    plans = read_plans(bodies_file)
    # Each run's notes are its own (the peer keeps every version of earlier runs).
    tag = f"{time.time_ns()}"
    url = urllib.parse.urlsplit(base)
    total = int(rate * seconds)
    # The version each contract is at now (earlier workloads moved them on).
    versions = {}
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    for plan_id, _ in plans:
        conn.request("GET", f"/fhir/CarePlan/{plan_id}", headers={"Authorization": f"Bearer {token}"})
        answer = conn.getresponse()
        data = answer.read()
        if answer.status != 200:
            sys.exit(f"reading CarePlan/{plan_id}: {answer.status} {data[:200]!r}")
        versions[plan_id] = int(json.loads(data)["meta"]["versionId"])
    conn.close()
    # Each contract is used by one update at a time: the next update of it waits for the
    # answer before (its If-Match is that answer's version).
    free = queue.Queue()
    for k in range(len(plans)):
        free.put(k)
    committed = {}
    failures = []
    lock = threading.Lock()
    start = time.monotonic() + 0.5

    def worker(first):
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
        for n in range(first, total, THREADS):
            due = start + n / rate
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            k = free.get()
            plan_id, plan = plans[k]
            body = dict(plan)
            body["note"] = [{"text": f"sync-probe {tag}/{n}"}]
            headers = {
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/fhir+json",
                "Prefer": "return=representation",
                "If-Match": f'W/"{versions[plan_id]}"',
            }
            try:
                conn.request("PUT", f"/fhir/CarePlan/{plan_id}", json.dumps(body), headers)
                answer = conn.getresponse()
                data = answer.read()
            except OSError as e:
                conn.close()
                conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
                with lock:
                    failures.append(str(e))
                free.put(k)
                continue
            if 200 <= answer.status < 300:
                stored = json.loads(data)
                with lock:
                    versions[plan_id] = int(stored["meta"]["versionId"])
                    committed[n] = (plan_id, instant(stored["meta"]["lastUpdated"]))
            else:
                with lock:
                    failures.append(f"{answer.status} {data[:200]!r}")
            free.put(k)
        conn.close()

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sending = time.monotonic() - start
    backlog_at_stop = queued(base, token)
    deadline = time.monotonic() + DRAIN_SECONDS
    backlog = backlog_at_stop
    while backlog > 0 and time.monotonic() < deadline:
        time.sleep(0.2)
        backlog = queued(base, token)

    # What the peer stored of each contract: (update n, when), in the order it came.
    held = {}
    peer = sqlite3.connect(f"file:{peer_db}?mode=ro", uri=True)
    for plan_id, text, at in peer.execute(
        "SELECT id, json, last_updated FROM versions WHERE type = 'CarePlan' AND json LIKE ?",
        (f"%sync-probe {tag}/%",),
    ):
        for note in json.loads(text).get("note", []):
            words = note.get("text", "").split()
            if len(words) == 2 and words[0] == "sync-probe" and words[1].startswith(f"{tag}/"):
                held.setdefault(plan_id, []).append((int(words[1].split("/")[1]), instant(at)))
    # An update has arrived once the peer holds it or a later update of the same contract
    # (one changed again while its delivery waited goes out once, as its latest version).
    delays = []
    exact = 0
    for n, (plan_id, at) in committed.items():
        later = [(m, t) for m, t in held.get(plan_id, []) if m >= n]
        if later:
            delays.append((min(t for _, t in later) - at) * 1000)
            exact += any(m == n for m, _ in later)
    delays.sort()

    def pct(p):
        return round(delays[min(len(delays) - 1, int(len(delays) * p))], 1) if delays else None

    print(json.dumps({
        "rate": rate,
        "seconds": seconds,
        "sent": total,
        "sending_seconds": round(sending, 1),
        "committed": len(committed),
        "arrived": len(delays),
        "sent_as_such": exact,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "max_ms": round(delays[-1], 1) if delays else None,
        "backlog_at_stop": backlog_at_stop,
        "backlog_after": backlog,
        "failures": failures[:5],
        "failed": len(failures),
    }))


if __name__ == "__main__":
    if sys.argv[1:2] == ["capacity"]:
        capacity(*sys.argv[2:6])
    else:
        probe(*sys.argv[2:8])
