-- A dispatched outbox row now leaves the outbox as it is queued for the targets (its
-- work is done: the queue rows carry it on), so the outbox stays small; the rows earlier
-- versions kept after dispatch go too.
DELETE FROM outbox WHERE dispatched_at IS NOT NULL;
