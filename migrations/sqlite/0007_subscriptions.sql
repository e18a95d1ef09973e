-- FHIR R4 Subscriptions (rest-hook): a portal asks to be told when a person's contract
-- changes. Notifications go through the sync queue as target 'subscription:{id}'.
CREATE TABLE subscriptions (
    id         TEXT PRIMARY KEY,
    -- active, off (deleted) or error (the endpoint refused for good)
    status     TEXT NOT NULL,
    -- The person (personnummer or samordningsnummer) whose contracts are watched.
    patient    TEXT NOT NULL,
    -- The Subscription resource as accepted (JSON).
    resource   TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    error      TEXT
);
CREATE INDEX subscriptions_by_patient ON subscriptions (patient);

-- The person of each change, for routing to subscriptions.
ALTER TABLE outbox ADD COLUMN patient TEXT;
