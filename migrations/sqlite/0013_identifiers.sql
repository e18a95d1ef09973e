-- The business identifiers other systems give a contract's CarePlan (an EHR's own, beside
-- the gateway's contract id), each naming one live contract: what conditional creates,
-- updates and deletes and searches by identifier find, and what keeps two contracts from
-- taking one identifier (also when two creates race). A deleted contract's are removed.
CREATE TABLE contract_identifiers (
    system      TEXT NOT NULL,
    value       TEXT NOT NULL,
    contract_id TEXT NOT NULL REFERENCES contracts (id),
    PRIMARY KEY (system, value)
);
CREATE INDEX contract_identifiers_by_contract ON contract_identifiers (contract_id);

-- The identifiers the current versions hold already.
INSERT OR IGNORE INTO contract_identifiers (system, value, contract_id)
SELECT json_extract(i.value, '$.system'), json_extract(i.value, '$.value'), c.id
FROM contracts c
JOIN contract_versions v ON v.contract_id = c.id AND v.version = c.version,
     json_each(v.foreign_fhir, '$.care_plan.identifier') i
WHERE v.deleted = 0
  AND json_extract(i.value, '$.system') IS NOT NULL
  AND json_extract(i.value, '$.value') IS NOT NULL;
