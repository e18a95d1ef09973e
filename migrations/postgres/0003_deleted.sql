-- A version written by a FHIR delete: the contract was revoked and its resources read as
-- gone (410) from then on; earlier versions stay readable. 1 for such a version, else 0.
ALTER TABLE contract_versions ADD COLUMN deleted BIGINT NOT NULL DEFAULT 0;

-- Type-level history (`GET /fhir/CarePlan/_history?_since=`) reads versions by time.
CREATE INDEX contract_versions_by_time ON contract_versions (recorded_at);
