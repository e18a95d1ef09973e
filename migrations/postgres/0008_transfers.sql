-- A version written by a care transition keeps what was handed over from which unit to
-- which, when, and of what kind (JSON; NULL for other changes).
ALTER TABLE contract_versions ADD COLUMN transfer TEXT;
