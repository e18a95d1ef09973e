-- FHIR content an EHR sent that the contract does not model, kept with each version so
-- the next version sends it back out unchanged (JSON, NULL when there is none).
ALTER TABLE contract_versions ADD COLUMN foreign_fhir TEXT;
