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


-- chat_drain_batch: a page of each device's inbox, each from its own
-- position, for a batch of connections (after a burst of connects most are
-- empty): rows ordered by element (idx, 1-based), then event.
CREATE OR REPLACE FUNCTION chat_drain_batch(p_users text[], p_devices text[],
    p_after bigint[], p_limit int)
RETURNS TABLE(idx int, event_id bigint, event_json text)
LANGUAGE sql STABLE
AS $$
    SELECT d.i::int, e.event_id, e.event_json
      FROM unnest(p_users, p_devices, p_after) WITH ORDINALITY AS d(u, d, a, i)
     CROSS JOIN LATERAL chat_drain(d.u, d.d, d.a, p_limit) AS e
     ORDER BY d.i, e.event_id
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
    r     record;
    v_st  int[];                /* status by idx; NULL: not decided yet */
BEGIN
    v_st := array_fill(NULL::int, ARRAY[cardinality(p_users)]);

    IF p_max IS NULL THEN
        RETURN QUERY
            SELECT g.i::int, 4
              FROM generate_series(1, cardinality(p_users)) AS g(i);
        RETURN;
    END IF;

    /*
     * The two common cases are decided for the whole batch in a few
     * statements (a loop of chat_device_connect() cost about eight
     * statements a device, most of the PostgreSQL time of a connection
     * storm): a known active device whose token is not revoked, and a
     * device never seen whose user is under the cap.  Everything else
     * (bad ids, revoked tokens, reactivations, an element repeated in the
     * batch) goes through chat_device_connect() one by one, as before.
     * The per-user locks of chat_device_connect() are taken first, in
     * user order, so concurrent batches cannot deadlock on them.
     */
    PERFORM pg_advisory_xact_lock(hashtextextended('dev:' || x.u, 0))
       FROM (SELECT DISTINCT u FROM unnest(p_users) AS u
              WHERE chat_valid_id(u) ORDER BY u) AS x;

    /* 7: the token was issued at or before the device's removal */
    FOR r IN
        SELECT x.i::int AS i
          FROM unnest(p_users, p_devices) WITH ORDINALITY AS x(u, d, i)
          JOIN devices dv ON dv.user_id = x.u AND dv.device_id = x.d
         WHERE coalesce(p_iats[x.i], 0) <= dv.tokens_before
    LOOP
        v_st[r.i] := 7;
    END LOOP;

    /* 0: a known active device; one element per device */
    FOR r IN
        WITH x AS (
            SELECT min(y.i)::int AS i, y.u, y.d
              FROM unnest(p_users, p_devices) WITH ORDINALITY AS y(u, d, i)
             WHERE v_st[y.i] IS NULL
             GROUP BY y.u, y.d)
        UPDATE devices dv
           SET last_seen = now()
          FROM x
         WHERE dv.user_id = x.u AND dv.device_id = x.d
           AND dv.active IS NOT FALSE
        RETURNING x.i
    LOOP
        v_st[r.i] := 0;
    END LOOP;

    /* 0 or 3: a device never seen, its user's devices counted once */
    FOR r IN
        WITH x AS (
            SELECT min(y.i)::int AS i, y.u, y.d
              FROM unnest(p_users, p_devices) WITH ORDINALITY AS y(u, d, i)
             WHERE v_st[y.i] IS NULL
               AND chat_valid_id(y.u) AND chat_valid_id(y.d)
             GROUP BY y.u, y.d
            HAVING count(*) = 1),
        n AS (
            SELECT x.i, x.u, x.d,
                   row_number() OVER (PARTITION BY x.u ORDER BY x.i)
                   + (SELECT count(*) FROM devices a
                       WHERE a.user_id = x.u AND a.active IS NOT FALSE)
                   AS nth
              FROM x
             WHERE NOT EXISTS (SELECT 1 FROM devices e
                                WHERE e.user_id = x.u AND e.device_id = x.d)),
        ins AS (
            INSERT INTO devices (user_id, device_id)
            SELECT n.u, n.d FROM n WHERE n.nth <= p_max)
        SELECT n.i, CASE WHEN n.nth <= p_max THEN 0 ELSE 3 END AS st
          FROM n
    LOOP
        v_st[r.i] := r.st;
    END LOOP;

    /* the rest, one by one in (user, device) order */
    FOR r IN
        SELECT x.i::int AS i, x.u, x.d
          FROM unnest(p_users, p_devices) WITH ORDINALITY AS x(u, d, i)
         WHERE v_st[x.i] IS NULL
         ORDER BY x.u, x.d, x.i
    LOOP
        v_st[r.i] := chat_device_connect(r.u, r.d, p_max);
    END LOOP;

    RETURN QUERY
        SELECT g.i::int, v_st[g.i]
          FROM generate_series(1, cardinality(p_users)) AS g(i);
END
$$;
