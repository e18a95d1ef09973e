-- Transfers planned for a future handover (e.g. a planned discharge): until then the
-- sending unit stays responsible; at the instant the gateway applies the transfer itself.
CREATE TABLE scheduled_transfers (
    id              TEXT PRIMARY KEY,
    contract_id     TEXT NOT NULL,
    -- The transfer (JSON, as the domain's Transfer) and the system that asked for it.
    transfer        TEXT NOT NULL,
    source          TEXT NOT NULL,
    at              BIGINT NOT NULL,
    -- pending, applying, applied, cancelled or failed
    status          TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    applied_version BIGINT,
    error           TEXT
);
-- At most one pending transfer per contract.
CREATE UNIQUE INDEX scheduled_transfers_one_pending ON scheduled_transfers (contract_id)
    WHERE status IN ('pending', 'applying');
CREATE INDEX scheduled_transfers_due ON scheduled_transfers (status, at);
