-- 910_delivery.sql: delivery helpers of the gateway that go beyond one
-- device (re-applied on every migrate, like every file >= 900).

-- chat_poll: while Redis is down each worker reads, in one statement, the
-- inboxes of all its connected devices, each from its own drain position
-- (p_after[i]), at most p_limit events per device.  Every lookup is one
-- index range scan on inbox's primary key (user_id, device_id, event_id).
CREATE OR REPLACE FUNCTION chat_poll(p_users text[], p_devices text[],
    p_after bigint[], p_limit int)
RETURNS TABLE(user_id text, device_id text, event_id bigint, event_json text)
LANGUAGE sql STABLE
AS $$
    SELECT d.u, d.d, e.event_id, e.event_json
      FROM unnest(p_users, p_devices, p_after) AS d(u, d, a)
     CROSS JOIN LATERAL chat_drain(d.u, d.d, d.a, p_limit) AS e
     ORDER BY d.u, d.d, e.event_id
$$;


-- chat_device_connect_batch: the registrations of many connections in one
-- statement (the gateway batches them as it does sends and acks), before
-- their WebSocket upgrade.  Rows are processed in (user, device) order, so
-- the per-user advisory locks of chat_device_connect are always taken in
-- one order: no deadlock between concurrent batches.  One row per input
-- element, idx 1-based; status as chat_device_connect's, or 7 when the
-- token (issued at p_iats[i], unix seconds, 0 or NULL: unknown) was issued
-- at or before the device's removal (tokens_before, migration 004).
DROP FUNCTION IF EXISTS chat_device_connect_batch(text[], text[], int);
CREATE OR REPLACE FUNCTION chat_device_connect_batch(p_users text[],
    p_devices text[], p_max int, p_iats bigint[] DEFAULT NULL)
RETURNS TABLE(idx int, status int)
LANGUAGE plpgsql
-- as chat_send_batch (sql/900_functions.sql)
SET plan_cache_mode = force_generic_plan
SET jit = off
SET enable_seqscan = off
AS $$
DECLARE
    r record;
BEGIN
    FOR r IN
        SELECT x.i::int AS i, x.u, x.d,
               coalesce(p_iats[x.i], 0) AS iat
          FROM unnest(p_users, p_devices) WITH ORDINALITY AS x(u, d, i)
         ORDER BY x.u, x.d, x.i
    LOOP
        idx := r.i;

        IF EXISTS (SELECT 1 FROM devices
                    WHERE user_id = r.u AND device_id = r.d
                      AND r.iat <= tokens_before)
        THEN
            status := 7;
        ELSE
            status := chat_device_connect(r.u, r.d, p_max);
        END IF;

        RETURN NEXT;
    END LOOP;
END
$$;
