-- A delivery that finished after its lease had passed to another worker may have
-- written an older copy over a newer one at the target: it marks the contract's row
-- to be delivered once more, and the worker holding the row then keeps it.
ALTER TABLE sync_queue ADD COLUMN recheck BIGINT NOT NULL DEFAULT 0;
