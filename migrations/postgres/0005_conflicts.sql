-- Edits a system sent that conflicted with changes it had not seen (both changed the
-- same part): refused with 409 and kept here for a person to resolve. Never updated.
CREATE TABLE sync_conflicts (
    seq             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    contract_id     TEXT NOT NULL,
    -- The system that sent the edit, and the version it had seen.
    source          TEXT NOT NULL,
    seen_version    BIGINT NOT NULL,
    current_version BIGINT NOT NULL,
    -- The parts changed on both sides, comma-separated (agreement, fixedCareContact, …).
    parts           TEXT NOT NULL,
    -- What was sent (FHIR JSON), so nothing received is lost.
    received        TEXT NOT NULL,
    at              BIGINT NOT NULL
);
CREATE INDEX sync_conflicts_by_contract ON sync_conflicts (contract_id, seq);
