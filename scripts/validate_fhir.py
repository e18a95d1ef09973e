#!/usr/bin/env python3
"""Validates FHIR R4 JSON with an independent implementation: fhir.resources 6.1.0
(FHIR 4.0.1, pydantic 1) for structure and types, plus the codes of the required value
sets of the elements pkgw writes, which fhir.resources does not check.

Usage: validate_fhir.py FILE...   (each a resource or a Bundle, checked whole and then
entry by entry; prints one line per problem and exits 1 if there is any). The count
printed is of the resources checked, not counting the Bundles around them."""

import json
import sys

from fhir.resources import construct_fhir_element

# Required bindings in FHIR R4 4.0.1 (https://hl7.org/fhir/R4/), by resource and path.
REQUIRED = {
    "CarePlan": {
        "status": {"draft", "active", "on-hold", "revoked", "completed", "entered-in-error", "unknown"},
        "intent": {"proposal", "plan", "order", "option"},
        "activity.detail.status": {"not-started", "scheduled", "in-progress", "on-hold", "completed",
                                   "cancelled", "stopped", "unknown", "entered-in-error"},
        "activity.detail.kind": {"Appointment", "CommunicationRequest", "DeviceRequest", "MedicationRequest",
                                 "NutritionOrder", "Task", "ServiceRequest", "VisionPrescription"},
    },
    "CareTeam": {
        "status": {"proposed", "active", "suspended", "inactive", "entered-in-error"},
        "telecom.system": {"phone", "fax", "email", "pager", "url", "sms", "other"},
        "telecom.use": {"home", "work", "temp", "old", "mobile"},
    },
    "Appointment": {
        "status": {"proposed", "pending", "booked", "arrived", "fulfilled", "cancelled", "noshow",
                   "entered-in-error", "checked-in", "waitlist"},
        "participant.status": {"accepted", "declined", "tentative", "needs-action"},
        "participant.required": {"required", "optional", "information-only"},
    },
    "AppointmentResponse": {
        "participantStatus": {"accepted", "declined", "tentative", "needs-action"},
    },
    "Goal": {
        "lifecycleStatus": {"proposed", "planned", "accepted", "active", "on-hold", "completed", "cancelled",
                            "entered-in-error", "rejected"},
    },
    "Provenance": {},
    "CommunicationRequest": {
        "status": {"draft", "active", "on-hold", "revoked", "completed", "entered-in-error", "unknown"},
        "priority": {"routine", "urgent", "asap", "stat"},
    },
    "DocumentReference": {
        "status": {"current", "superseded", "entered-in-error"},
        "docStatus": {"preliminary", "final", "amended", "entered-in-error"},
        "relatesTo.code": {"replaces", "transforms", "signs", "appends"},
    },
    "PlanDefinition": {
        "status": {"draft", "active", "retired", "unknown"},
        "relatedArtifact.type": {"documentation", "justification", "citation", "predecessor", "successor",
                                 "derived-from", "depends-on", "composed-of"},
        "action.documentation.type": {"documentation", "justification", "citation", "predecessor",
                                      "successor", "derived-from", "depends-on", "composed-of"},
    },
    "Questionnaire": {
        "status": {"draft", "active", "retired", "unknown"},
        "item.type": {"group", "display", "boolean", "decimal", "integer", "date", "dateTime", "time", "string",
                      "text", "url", "choice", "open-choice", "attachment", "reference", "quantity"},
    },
    "QuestionnaireResponse": {
        "status": {"in-progress", "completed", "amended", "entered-in-error", "stopped"},
    },
    "Parameters": {},
    "AuditEvent": {
        "action": {"C", "R", "U", "D", "E"},
        "outcome": {"0", "4", "8", "12"},
    },
    "Bundle": {
        "type": {"document", "message", "transaction", "transaction-response", "batch", "batch-response",
                 "history", "searchset", "collection"},
        "entry.request.method": {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"},
        "entry.search.mode": {"match", "include", "outcome"},
        "link.relation": {"self", "next", "previous", "first", "last"},
    },
    "OperationOutcome": {
        "issue.severity": {"fatal", "error", "warning", "information"},
        "issue.code": {"invalid", "structure", "required", "value", "invariant", "security", "login",
                       "unknown", "expired", "forbidden", "suppressed", "processing", "not-supported",
                       "duplicate", "multiple-matches", "not-found", "deleted", "too-long",
                       "code-invalid", "extension", "too-costly", "business-rule", "conflict",
                       "transient", "lock-error", "no-store", "exception", "timeout", "incomplete",
                       "throttled", "informational"},
    },
    "Patient": {
        "gender": {"male", "female", "other", "unknown"},
        "identifier.use": {"usual", "official", "temp", "secondary", "old"},
        "name.use": {"usual", "official", "temp", "nickname", "anonymous", "old", "maiden"},
    },
    "Subscription": {
        "status": {"requested", "active", "error", "off"},
        "channel.type": {"rest-hook", "websocket", "email", "sms", "message"},
    },
    "OperationDefinition": {
        "status": {"draft", "active", "retired", "unknown"},
        "kind": {"operation", "query"},
        "parameter.use": {"in", "out"},
        "parameter.part.use": {"in", "out"},
    },
    "CapabilityStatement": {
        "status": {"draft", "active", "retired", "unknown"},
        "kind": {"instance", "capability", "requirements"},
        "fhirVersion": {"4.0.1"},
        "rest.mode": {"client", "server"},
        "rest.interaction.code": {"transaction", "batch", "search-system", "history-system"},
        "rest.resource.interaction.code": {"read", "vread", "update", "patch", "delete", "history-instance",
                                           "history-type", "create", "search-type"},
        "rest.resource.versioning": {"no-version", "versioned", "versioned-update"},
        "rest.resource.searchParam.type": {"number", "date", "string", "token", "reference", "composite",
                                           "quantity", "uri", "special"},
    },
}


def values_at(node, path):
    """Every value at a dotted path, descending into lists."""
    if isinstance(node, list):
        for item in node:
            yield from values_at(item, path)
        return
    if not path:
        yield node
        return
    head, _, rest = path.partition(".")
    if isinstance(node, dict) and head in node:
        yield from values_at(node[head], rest)


def check(resource, where):
    problems = []
    kind = resource.get("resourceType")
    if kind not in REQUIRED:
        return [f"{where}: unexpected resourceType {kind!r}"]
    try:
        construct_fhir_element(kind, resource)
    except Exception as e:  # pydantic's ValidationError, or a bad resourceType
        problems.append(f"{where}: {' '.join(str(e).split())}")
    for path, codes in REQUIRED[kind].items():
        for value in values_at(resource, path):
            if value not in codes:
                problems.append(f"{where}: {kind}.{path} = {value!r} is not in the required value set")
    if kind == "Appointment" and ("start" in resource) != ("end" in resource):
        problems.append(f"{where}: app-2: either start and end are specified, or neither")
    if kind == "Bundle":
        # The Bundle was checked whole; the codes of what it holds are checked one by one.
        for i, entry in enumerate(resource.get("entry", [])):
            for key in ("resource",):
                if key in entry:
                    problems.extend(check(entry[key], f"{where} entry[{i}]"))
            outcome = entry.get("response", {}).get("outcome")
            if outcome is not None:
                problems.extend(check(outcome, f"{where} entry[{i}].response.outcome"))
    return problems


def count_resources(resource):
    entries = resource.get("entry", []) if resource.get("resourceType") == "Bundle" else []
    return 1 + sum(count_resources(e["resource"]) for e in entries if isinstance(e.get("resource"), dict))


def main(paths):
    problems, count = [], 0
    for path in paths:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        count += count_resources(data) - (1 if data.get("resourceType") == "Bundle" else 0)
        problems.extend(check(data, path))
    for p in problems:
        print(p)
    print(f"checked {count} resources, {len(problems)} problems", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
