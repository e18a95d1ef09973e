// Drives pkgw's FHIR API with two stock JavaScript FHIR clients, used as their
// documentation says, with no request made by hand: fhir-kit-client 2.0.3 and Medplum's
// MedplumClient (@medplum/core 5.2.13). Each creates contracts idempotently by the EHR's
// own identifier, reads, searches and pages with a time zone in the query, updates
// (plainly and by identifier), patches (JSON Patch), sends a batch and a transaction to
// the base, has a CarePlan checked by $validate, and deletes.
//
// Usage: PKGW_FHIR_NODE=DIR node js_walkthrough.mjs BASE_URL CAREPLAN.json PERSONNUMMER
// Prints one JSON line with what each client saw; exits non-zero (with the reason) on any
// surprise.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import assert from 'node:assert/strict';

globalThis.WebSocket ??= class WebSocket {}; // @medplum/core names it; Node 20 has none
const modules = join(resolve(process.env.PKGW_FHIR_NODE), 'node_modules');
const require = createRequire(join(modules, 'x.js'));
// fhir-kit-client is an ES module only; it is imported from where the tests installed it.
const { Client } = await import(pathToFileURL(join(modules, 'fhir-kit-client', 'dist', 'index.js')).href);
const { MedplumClient } = require('@medplum/core');

const [base, planFile, person] = process.argv.slice(2);
const template = JSON.parse(readFileSync(planFile, 'utf8'));
const EHR = 'http://journal.example/sid/vardplan';
// Swedish winter time, written with its offset: the '+' must survive the round trip.
const SINCE = 'ge2026-01-01T00:00:00+01:00';

/** A new CarePlan of the person carrying the EHR's identifier `value`. */
function plan(value) {
  return { ...structuredClone(template), identifier: [{ system: EHR, value }] };
}

async function fhirKit() {
  const client = new Client({ baseUrl: `${base}/fhir` });
  const statement = await client.capabilityStatement();
  assert.equal(statement.fhirVersion, '4.0.1');

  // Conditional create by the EHR's identifier: the second makes nothing new.
  const ifNoneExist = (value) => ({ headers: { 'If-None-Exist': `identifier=${EHR}|${value}` } });
  const first = await client.create({ resourceType: 'CarePlan', body: plan('kit-1'), options: ifNoneExist('kit-1') });
  const again = await client.create({ resourceType: 'CarePlan', body: plan('kit-1'), options: ifNoneExist('kit-1') });
  assert.equal(again.id, first.id);
  const second = await client.create({ resourceType: 'CarePlan', body: plan('kit-2'), options: ifNoneExist('kit-2') });

  const read = await client.read({ resourceType: 'CarePlan', id: first.id });
  assert.equal(read.id, first.id);

  // Search one per page, following the server's links.
  const seen = [];
  let page = await client.search({ resourceType: 'CarePlan', searchParams: { patient: person, _lastUpdated: SINCE, _count: 1 } });
  while (page) {
    for (const e of page.entry ?? []) if (e.search?.mode === 'match') seen.push(e.resource.id);
    page = await client.nextPage({ bundle: page });
  }
  assert.ok(seen.includes(first.id) && seen.includes(second.id), `paged: ${seen}`);

  read.description = 'Uppdaterad med fhir-kit-client';
  const updated = await client.update({ resourceType: 'CarePlan', id: read.id, body: read });
  assert.equal(updated.meta.versionId, '2');

  const byIdentifier = plan('kit-1');
  byIdentifier.description = 'Villkorligt uppdaterad';
  const conditional = await client.update({ resourceType: 'CarePlan', searchParams: { identifier: `${EHR}|kit-1` }, body: byIdentifier });
  assert.equal(conditional.id, first.id);
  assert.equal(conditional.meta.versionId, '3');

  const patched = await client.patch({
    resourceType: 'CarePlan', id: first.id,
    jsonPatch: [{ op: 'replace', path: '/description', value: 'Ändrad med JSON Patch' }],
  });
  assert.equal(patched.description, 'Ändrad med JSON Patch');

  const batch = await client.batch({ body: { resourceType: 'Bundle', type: 'batch', entry: [
    { request: { method: 'GET', url: `CarePlan/${first.id}` } },
    { request: { method: 'GET', url: `CarePlan?identifier=${encodeURIComponent(`${EHR}|kit-2`)}` } },
  ] } });
  assert.equal(batch.type, 'batch-response');
  assert.equal(batch.entry[1].resource.total, 1);

  const changed = plan('kit-2');
  changed.description = 'Ändrad i en transaktion';
  const transaction = await client.transaction({ body: { resourceType: 'Bundle', type: 'transaction', entry: [
    { resource: changed, request: { method: 'PUT', url: `CarePlan?identifier=${encodeURIComponent(`${EHR}|kit-2`)}` } },
  ] } });
  assert.equal(transaction.entry[0].resource.id, second.id);

  const outcome = await client.operation({ name: '$validate', resourceType: 'CarePlan', input: plan('kit-3') });
  assert.equal(outcome.issue[0].severity, 'information', JSON.stringify(outcome));

  await client.delete({ resourceType: 'CarePlan', id: second.id });
  await assert.rejects(client.read({ resourceType: 'CarePlan', id: second.id }), (e) => e.response?.status === 410);
  return { created: [first.id, second.id], paged: seen.length, deleted: second.id };
}

async function medplum() {
  const client = new MedplumClient({ baseUrl: `${base}/`, fhirUrlPath: 'fhir', fetch: globalThis.fetch });
  const first = await client.createResourceIfNoneExist(plan('mp-1'), `identifier=${EHR}|mp-1`);
  const again = await client.createResourceIfNoneExist(plan('mp-1'), `identifier=${EHR}|mp-1`);
  assert.equal(again.id, first.id);
  const second = await client.createResourceIfNoneExist(plan('mp-2'), `identifier=${EHR}|mp-2`);

  const read = await client.readResource('CarePlan', first.id);
  assert.equal(read.id, first.id);

  const seen = [];
  for await (const page of client.searchResourcePages('CarePlan', { patient: person, _lastUpdated: SINCE, _count: 1 })) {
    for (const r of page) seen.push(r.id);
  }
  assert.ok(seen.includes(first.id) && seen.includes(second.id), `paged: ${seen}`);

  const updated = await client.updateResource({ ...read, description: 'Uppdaterad med Medplum' });
  assert.equal(updated.meta.versionId, '2');

  const upserted = await client.upsertResource({ ...plan('mp-1'), description: 'Villkorligt uppdaterad' }, { identifier: `${EHR}|mp-1` });
  assert.equal(upserted.id, first.id);
  assert.equal(upserted.meta.versionId, '3');

  const patched = await client.patchResource('CarePlan', first.id, [{ op: 'replace', path: '/description', value: 'Ändrad med JSON Patch' }]);
  assert.equal(patched.description, 'Ändrad med JSON Patch');

  const batch = await client.executeBatch({ resourceType: 'Bundle', type: 'batch', entry: [
    { request: { method: 'GET', url: `CarePlan/${first.id}` } },
  ] });
  assert.equal(batch.entry[0].resource.id, first.id);
  const transaction = await client.executeBatch({ resourceType: 'Bundle', type: 'transaction', entry: [
    { resource: { ...plan('mp-2'), description: 'Ändrad i en transaktion' }, request: { method: 'PUT', url: `CarePlan?identifier=${encodeURIComponent(`${EHR}|mp-2`)}` } },
  ] });
  assert.equal(transaction.entry[0].resource.id, second.id);

  const outcome = await client.validateResource(plan('mp-3'));
  assert.equal(outcome.issue[0].severity, 'information', JSON.stringify(outcome));

  await client.deleteResource('CarePlan', second.id);
  await assert.rejects(client.readResource('CarePlan', second.id));
  return { created: [first.id, second.id], paged: seen.length, deleted: second.id };
}

try {
  const kit = await fhirKit();
  const mp = await medplum();
  console.log(JSON.stringify({ fhirKit: kit, medplum: mp }));
} catch (e) {
  console.error(e?.stack ?? e, JSON.stringify(e?.response?.data ?? e?.outcome ?? ''));
  process.exit(1);
}
