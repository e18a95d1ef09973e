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
INSERT INTO contract_identifiers (system, value, contract_id)
SELECT i ->> 'system', i ->> 'value', c.id
FROM contracts c
JOIN contract_versions v ON v.contract_id = c.id AND v.version = c.version
CROSS JOIN LATERAL jsonb_array_elements(
    CASE WHEN jsonb_typeof(v.foreign_fhir::jsonb -> 'care_plan' -> 'identifier') = 'array'
         THEN v.foreign_fhir::jsonb -> 'care_plan' -> 'identifier'
         ELSE '[]'::jsonb END) AS i
WHERE v.deleted = 0 AND v.foreign_fhir IS NOT NULL
  AND i ->> 'system' IS NOT NULL AND i ->> 'value' IS NOT NULL
ON CONFLICT DO NOTHING;
