-- Contracts, every version of them, the outbox and the audit trail (PostgreSQL).
-- Instants are microseconds since the Unix epoch (UTC), so they sort and compare the
-- same on every backend.

CREATE TABLE contracts (
    id          TEXT PRIMARY KEY,
    version     BIGINT NOT NULL,
    status      TEXT NOT NULL,
    patient     TEXT NOT NULL,
    unit_hsa_id TEXT,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX contracts_by_patient ON contracts (patient);
CREATE INDEX contracts_by_unit ON contracts (unit_hsa_id);

CREATE TABLE contract_versions (
    contract_id TEXT NOT NULL REFERENCES contracts (id),
    version     BIGINT NOT NULL,
    recorded_at BIGINT NOT NULL,
    source      TEXT NOT NULL,
    author      TEXT,
    reason      TEXT,
    document    TEXT NOT NULL,
    PRIMARY KEY (contract_id, version)
);

CREATE TABLE outbox (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    contract_id TEXT NOT NULL,
    version     BIGINT NOT NULL,
    origin      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    FOREIGN KEY (contract_id, version) REFERENCES contract_versions (contract_id, version)
);
CREATE INDEX outbox_by_contract ON outbox (contract_id, version);

CREATE TABLE audit (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          BIGINT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    contract_id TEXT,
    version     BIGINT,
    outcome     TEXT NOT NULL,
    origin      TEXT NOT NULL
);
CREATE INDEX audit_by_contract ON audit (contract_id);
