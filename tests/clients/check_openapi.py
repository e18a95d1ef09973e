"""Checks the gateway's OpenAPI document with an independent validator
(openapi-spec-validator), then checks real answers against the document's own schemas
(JSON Schema 2020-12, as OpenAPI 3.1 uses it).

Usage: check_openapi.py OPENAPI.json [SCHEMA=ANSWER.json ...]
Prints what it checked; exits non-zero with the reason on any problem.
"""

import json
import sys

from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from referencing import Registry, Resource


def main(spec_file, *pairs):
    with open(spec_file, encoding="utf-8") as f:
        spec = json.load(f)
    validate(spec)
    assert spec["openapi"].startswith("3.1"), spec["openapi"]
    registry = Registry().with_resource("urn:pkgw:openapi", Resource.opaque(spec))
    checked = []
    for pair in pairs:
        name, answer_file = pair.split("=", 1)
        with open(answer_file, encoding="utf-8") as f:
            answer = json.load(f)
        schema = {"$ref": f"urn:pkgw:openapi#/components/schemas/{name}"}
        errors = sorted(
            Draft202012Validator(schema, registry=registry).iter_errors(answer),
            key=lambda e: list(e.path),
        )
        if errors:
            for e in errors[:10]:
                print(f"{name} ({answer_file}): {'/'.join(map(str, e.path))}: {e.message}")
            sys.exit(1)
        checked.append(name)
    print(json.dumps({"openapi": spec["openapi"], "paths": sorted(spec["paths"]), "answers": checked}))


if __name__ == "__main__":
    main(*sys.argv[1:])
