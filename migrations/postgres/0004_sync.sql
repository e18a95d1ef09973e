-- Sync: each outbox row is dispatched once into the queue of every target that should
-- have the change; a target's queue holds one row per contract (the newest version to
-- deliver, older ones superseded); what a target holds is remembered per contract, and
-- what a target refused for good waits in dead_letters until replayed.

-- The responsible units (HSA-ids, space-separated) of the version and of the one before,
-- so a unit's target also gets the change that ends its responsibility.
ALTER TABLE outbox ADD COLUMN units TEXT;
-- When the row was dispatched to the targets' queues; NULL until then.
ALTER TABLE outbox ADD COLUMN dispatched_at BIGINT;
CREATE INDEX outbox_undispatched ON outbox (seq) WHERE dispatched_at IS NULL;

CREATE TABLE sync_queue (
    target          TEXT NOT NULL,
    contract_id     TEXT NOT NULL,
    version         BIGINT NOT NULL,
    queued_at       BIGINT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    -- A worker that claimed the row holds it until then (a lease: a crashed worker's
    -- rows are picked up again when it runs out).
    claimed_until   BIGINT NOT NULL DEFAULT 0,
    claimed_by      TEXT,
    last_error      TEXT,
    PRIMARY KEY (target, contract_id)
);
CREATE INDEX sync_queue_due ON sync_queue (target, next_attempt_at);

CREATE TABLE sync_state (
    target            TEXT NOT NULL,
    contract_id       TEXT NOT NULL,
    delivered_version BIGINT NOT NULL,
    delivered_at      BIGINT NOT NULL,
    -- JSON: each resource the target holds ("Type/id") and its version there (ETag).
    remote            TEXT NOT NULL,
    PRIMARY KEY (target, contract_id)
);

CREATE TABLE dead_letters (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    target      TEXT NOT NULL,
    contract_id TEXT NOT NULL,
    version     BIGINT NOT NULL,
    failed_at   BIGINT NOT NULL,
    -- The target's HTTP status (NULL when it never answered), why, and its
    -- OperationOutcome (JSON) if it sent one.
    status      BIGINT,
    error       TEXT NOT NULL,
    outcome     TEXT,
    replayed_at BIGINT
);
CREATE INDEX dead_letters_by_target ON dead_letters (target, seq);
