"""Drives pkgw's FHIR API with fhirpy, a third-party FHIR client, used as its documentation
says: create, conditional create, read, search, update, conditional update, refresh,
history and delete. No request is hand-made except history, which fhirpy has no method
for and is read through its generic `execute`.

Usage: fhirpy_walkthrough.py BASE_URL CAREPLAN.json PERSONNUMMER
Prints one JSON line with what it saw; exits non-zero (with the reason) on any surprise.
"""

import json
import sys

from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import ResourceNotFound

CONTRACT = "https://pkgw.example/fhir/sid/patientkontrakt"
PERSONNUMMER = "http://electronichealth.se/identifier/personnummer"


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

    # delete, then the resource is gone
    client.reference("CarePlan", plan.id).to_resource().delete()
    try:
        client.reference("CarePlan", plan.id).to_resource()
        raise AssertionError("a deleted CarePlan was still read")
    except ResourceNotFound:
        pass

    print(json.dumps({"id": plan.id, "versions": versions}))


if __name__ == "__main__":
    main(*sys.argv[1:4])
