#!/usr/bin/env python3
"""Makes the load test's request files from `pkgw generate --format fhir` output (the
same seed and numbers as the contracts loaded, so the ids match):

  read.paths         GET /fhir/CarePlan/{id}
  search.paths       GET /fhir/CarePlan?patient:identifier=<personnummer system>|<number>
                     (the standard form, which the peer FHIR server answers too)
  coordinated.paths  GET /fhir/CarePlan/$coordinated-plan?patient=<number>
  put.bodies         id<TAB>CarePlan JSON (for PUT with If-Match)
  transaction.bodies id<TAB>transaction Bundle (CarePlan, CareTeam, Goals, Appointments as PUTs)

Usage: prepare.py FHIR.ndjson OUT_DIR"""

import json
import sys
import urllib.parse

PNR = "http://electronichealth.se/identifier/personnummer"


def main(source, out):
    contracts = []
    with open(source, encoding="utf-8") as f:
        for line in f:
            resource = json.loads(line)
            if resource["resourceType"] == "CarePlan":
                contracts.append([resource])
            elif contracts:
                contracts[-1].append(resource)
    def write(name, lines):
        with open(f"{out}/{name}", "w", encoding="utf-8") as f:
            for line in lines:
                f.write(line + "\n")
    plans = [c[0] for c in contracts]
    patients = [p["subject"]["identifier"]["value"] for p in plans]
    write("read.paths", (f"/fhir/CarePlan/{p['id']}" for p in plans))
    write("search.paths", (f"/fhir/CarePlan?patient:identifier={urllib.parse.quote(PNR + '|' + n, safe='')}" for n in patients))
    write("coordinated.paths", (f"/fhir/CarePlan/$coordinated-plan?patient={n}" for n in patients))
    write("put.bodies", (f"{p['id']}\t{json.dumps(p, ensure_ascii=False, separators=(',', ':'))}" for p in plans))
    def transaction(resources):
        entries = [{"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
                   for r in resources]
        return json.dumps({"resourceType": "Bundle", "type": "transaction", "entry": entries},
                          ensure_ascii=False, separators=(",", ":"))
    write("transaction.bodies", (f"{c[0]['id']}\t{transaction(c)}" for c in contracts))
    print(f"{len(contracts)} contracts' requests in {out}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
