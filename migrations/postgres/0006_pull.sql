-- Pull mode: up to when each target's changes have been read (the target's own
-- lastUpdated instants, in microseconds).
CREATE TABLE sync_pull (
    target       TEXT PRIMARY KEY,
    pulled_until BIGINT NOT NULL
);
