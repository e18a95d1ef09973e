-- The W3C traceparent of the request that made a change (when it carried one, or the
-- gateway traced it): the outbound sync calls the change causes carry it on, so an EHR's
-- trace runs through the gateway to the other systems. A queue row keeps the one of the
-- newest version queued.
ALTER TABLE outbox ADD COLUMN traceparent TEXT;
ALTER TABLE sync_queue ADD COLUMN traceparent TEXT;
