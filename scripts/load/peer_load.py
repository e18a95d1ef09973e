#!/usr/bin/env python3
"""Loads the CarePlans of `pkgw generate --format fhir` output (read from standard input)
into the peer FHIR server's database, through the peer's own store (sekmet-fhir's
`sekmet.fhir.store.Store`: the same code its HTTP `PUT` runs — the version, its history
row and its search index), in transactions of 1 000, without HTTP. The peer then serves
the same CarePlans under the same ids as the gateway.

Usage: pkgw generate --format fhir ... | PEER_PYTHON peer_load.py PEER.db"""

import json
import sys
import time

from sekmet.fhir.store import Store

PER_TRANSACTION = 1000


def main(db):
    store = Store(db)
    loaded = 0
    started = time.monotonic()
    batch = []

    def flush():
        with store.transaction():
            for resource in batch:
                store.update(resource, origin="external")
        batch.clear()

    for line in sys.stdin:
        # Only the CarePlans: the workloads read and search them.
        if not line.startswith('{"resourceType":"CarePlan"'):
            continue
        batch.append(json.loads(line))
        loaded += 1
        if len(batch) == PER_TRANSACTION:
            flush()
            if loaded % 100_000 == 0:
                rate = loaded / (time.monotonic() - started)
                print(f"  peer: {loaded} CarePlans ({rate:.0f}/s)", file=sys.stderr)
    if batch:
        flush()
    store.conn.execute("ANALYZE")
    print(f"  peer: {loaded} CarePlans loaded", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1])
