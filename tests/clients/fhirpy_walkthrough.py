"""Drives pkgw's FHIR API with fhirpy, a third-party FHIR client, used as its documentation
says: create, conditional create (by the gateway's identifier and by the EHR's own), read,
search (paged, with a time zone in the query), update, conditional update, refresh,
patch, history and delete. History, batch and transaction at the base and `$validate`,
which fhirpy has no methods for, go through its generic `execute`.

Usage: fhirpy_walkthrough.py BASE_URL CAREPLAN.json PERSONNUMMER
Prints one JSON line with what it saw; exits non-zero (with the reason) on any surprise.
"""

import json
import sys

from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import ResourceNotFound

CONTRACT = "https://pkgw.example/fhir/sid/patientkontrakt"
PERSONNUMMER = "http://electronichealth.se/identifier/personnummer"
EHR = "http://journal.example/sid/vardplan"


def main(base, plan_file, person):
    with open(plan_file, encoding="utf-8") as f:
        plan_json = json.load(f)
    client = SyncFHIRClient(base)

    # create (POST)
    plan = client.resource("CarePlan", **plan_json)
    plan.save()
    assert plan.id, "the server assigned an id"
    assert plan["meta"]["versionId"] == "1", plan["meta"]

    # conditional create: an existing match is returned, nothing new is made
    same, created = (
        client.resources("CarePlan")
        .search(identifier=f"{CONTRACT}|{plan.id}")
        .get_or_create(client.resource("CarePlan", **plan_json))
    )
    assert not created and same.id == plan.id, (created, same.id)

    # read
    read = client.reference("CarePlan", plan.id).to_resource()
    assert read["status"] == "draft", read["status"]

    # search, chained and plain
    chained = (
        client.resources("CarePlan")
        .search(**{"patient.identifier": f"{PERSONNUMMER}|{person}"})
        .fetch_all()
    )
    assert [p.id for p in chained] == [plan.id], [p.id for p in chained]
    total = client.resources("CarePlan").search(patient=person).count()
    assert total == 1, total

    # update (PUT)
    read["description"] = "Uppdaterad med fhirpy"
    read.save()
    assert read["meta"]["versionId"] == "2", read["meta"]

    # refresh (GET with If-None-Match)
    read.refresh()
    assert read["description"] == "Uppdaterad med fhirpy"

    # conditional update (PUT ?identifier=)
    read["description"] = "Villkorligt uppdaterad"
    updated, created = (
        client.resources("CarePlan").search(identifier=f"{CONTRACT}|{plan.id}").update(read)
    )
    assert not created and updated["meta"]["versionId"] == "3", (created, updated["meta"])

    # history
    history = client.execute(f"CarePlan/{plan.id}/_history", method="get")
    versions = [e["resource"]["meta"]["versionId"] for e in history["entry"]]
    assert versions == ["3", "2", "1"], versions

    # the EHR's own identifier: conditional create (once) and conditional update
    own_json = {**plan_json, "identifier": [{"system": EHR, "value": "fp-1"}]}
    by_own = client.resources("CarePlan").search(identifier=f"{EHR}|fp-1")
    own, created = by_own.get_or_create(client.resource("CarePlan", **own_json))
    assert created, "the first conditional create makes the contract"
    same, created = by_own.get_or_create(client.resource("CarePlan", **own_json))
    assert not created and same.id == own.id, (created, same.id, own.id)
    own["description"] = "Uppdaterad via journalens identifierare"
    own_updated, created = by_own.update(own)
    assert not created and own_updated.id == own.id, (created, own_updated.id)

    # search one per page with a time zone in the query, following the links
    paged = (
        client.resources("CarePlan")
        .search(patient=person, _lastUpdated="ge2026-01-01T00:00:00+01:00")
        .limit(1)
        .fetch_all()
    )
    paged_ids = [p.id for p in paged]
    assert plan.id in paged_ids and own.id in paged_ids, paged_ids

    # patch: fhirpy sends the elements to change (a JSON Merge Patch)
    patched = client.patch("CarePlan", own.id, description="Ändrad med fhirpy")
    assert patched["description"] == "Ändrad med fhirpy", patched

    # batch and transaction at the base
    batch = client.execute("", method="post", data={
        "resourceType": "Bundle", "type": "batch",
        "entry": [{"request": {"method": "GET", "url": f"CarePlan/{own.id}"}}],
    })
    assert batch["entry"][0]["resource"]["id"] == own.id, batch
    transaction = client.execute("", method="post", data={
        "resourceType": "Bundle", "type": "transaction",
        "entry": [{
            "resource": {**own_json, "description": "Ändrad i en transaktion"},
            "request": {"method": "PUT", "url": f"CarePlan?identifier={EHR}|fp-1"},
        }],
    })
    assert transaction["entry"][0]["resource"]["id"] == own.id, transaction

    # $validate
    outcome = client.execute("CarePlan/$validate", method="post", data=plan_json)
    assert outcome["issue"][0]["severity"] == "information", outcome

    # delete, then the resource is gone
    client.reference("CarePlan", plan.id).to_resource().delete()
    try:
        client.reference("CarePlan", plan.id).to_resource()
        raise AssertionError("a deleted CarePlan was still read")
    except ResourceNotFound:
        pass

    print(json.dumps({"id": plan.id, "versions": versions, "own": own.id}))


if __name__ == "__main__":
    main(*sys.argv[1:4])
