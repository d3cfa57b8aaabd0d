-- 900_functions.sql: every SQL function the nginx module calls, plus their
-- private helpers.
--
-- Re-applied by scripts/migrate on every run (CREATE OR REPLACE), inside
-- one transaction.  Changing the argument or result types of a function
-- needs a numbered migration that drops the old one first.
--
-- Conventions:
--   * one call = one database round trip = one transaction (the module
--     sends each call as a prepared statement with parameters);
--   * expected outcomes are status codes, never exceptions:
--       0 ok, 1 not_found, 2 forbidden, 3 limit_exceeded, 4 bad_request;
--   * ids travel as text in JSON ("eventId": "42"), seq and sentAt as
--     integers (sentAt in unix milliseconds);
--   * lock order, to stay free of deadlocks (docs/schema.md, "Locks"):
--       advisory locks (idempotency keys in hash order, or the user's
--       device lock, or the sweep lock) -> chats (ascending id) ->
--       devices (user_id, device_id) -> inbox (user_id, device_id,
--       event_id) -> messages (chat_id, id);
--     rows of one table are locked in that key order, in one statement,
--     and no transaction goes back to an earlier table.
--
-- Functions named chat_* without a number in docs/schema.md are private
-- helpers; the module calls only the documented ones.


-- ---------------------------------------------------------------------------
-- helpers
-- ---------------------------------------------------------------------------

-- A user or device id: 1..64 characters of [A-Za-z0-9._@-].  NULL is not
-- valid.  (Written without {1,64}: a bounded repeat makes the regex
-- several times slower, and this runs for every element of every batch.)
CREATE OR REPLACE FUNCTION chat_valid_id(p_id text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT coalesce(length(p_id) BETWEEN 1 AND 64
                    AND p_id !~ '[^A-Za-z0-9._@-]', false)
$$;


-- Unix time in whole milliseconds (floor), as sent in "sentAt".  STABLE,
-- not IMMUTABLE, because extract() from a timestamptz is: a function
-- declared stricter than its body is never inlined.
CREATE OR REPLACE FUNCTION chat_ms(p_ts timestamptz)
RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT floor(extract(epoch FROM p_ts) * 1000)::bigint
$$;


-- The newMessage event.  The single place its format is defined: used by
-- chat_send_batch (live delivery) and chat_drain (inbox replay).  For a
-- message the event id is the message id.
CREATE OR REPLACE FUNCTION chat_message_event_json(p_chat_id bigint,
    p_id bigint, p_seq bigint, p_sender text, p_sender_device text,
    p_body text, p_attachments jsonb, p_sent_at timestamptz)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT json_build_object(
        'type', 'newMessage',
        'eventId', p_id::text,
        'chatId', p_chat_id::text,
        'messageId', p_id::text,
        'seq', p_seq,
        'senderId', p_sender,
        'senderDevice', p_sender_device,
        'message', p_body,
        'attachments', p_attachments,
        'sentAt', chat_ms(p_sent_at))::text
$$;


-- The chatUpdate event (create, add, remove).  p_admin is NULL when the
-- chat was deleted because its last participant left.
CREATE OR REPLACE FUNCTION chat_update_event_json(p_event bigint,
    p_chat_id bigint, p_name text, p_participants text[], p_admin text)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT json_build_object(
        'type', 'chatUpdate',
        'eventId', p_event::text,
        'chatId', p_chat_id::text,
        'name', p_name,
        'participants', to_json(coalesce(p_participants, '{}')),
        'admin', p_admin)::text
$$;


-- Participants of a chat, longest-standing first (ties by user id); the
-- first one is the next admin.
CREATE OR REPLACE FUNCTION chat_participant_array(p_chat bigint)
RETURNS text[]
LANGUAGE sql STABLE
AS $$
    SELECT ARRAY(SELECT p.user_id
                   FROM participants p
                  WHERE p.chat_id = p_chat
                  ORDER BY p.joined_at, p.user_id)
$$;


-- Queue a chatUpdate event for every active device of p_users.
--
-- "active IS NOT FALSE" (active is NOT NULL: the same rows) wherever a
-- device is looked up by key: it does not imply the predicate of the
-- partial index devices_idle_idx (last_seen) WHERE active, so that index,
-- the sweep's, can never be picked for a lookup by user (a plan made on
-- the statistics of a small devices table walked every active device for
-- each registration: 200 000 registrations cost 111 s of CPU instead of
-- 40).
--
-- The helpers the hot paths call that are not a single inlinable SELECT
-- are PL/pgSQL, not SQL: PostgreSQL plans the body of such an SQL function
-- again on every call (about 0.25 ms each; chat_inbox_keys alone was a
-- third of a registration), PL/pgSQL keeps its plans for the session.
CREATE OR REPLACE FUNCTION chat_deliver_update(p_chat bigint,
    p_event bigint, p_payload text, p_users text[])
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    INSERT INTO inbox (user_id, device_id, event_id, chat_id, kind, payload,
                       created_at)
    SELECT d.user_id, d.device_id, p_event, p_chat, 2, p_payload, now()
      FROM devices d
     WHERE d.user_id = ANY (p_users)
       AND d.active IS NOT FALSE;
END
$$;


-- Delete the messages (p_chats[i], p_ids[i]) that have no inbox row left;
-- returns how many were deleted.  Only chat_delete_inbox calls it.
--
-- Race-free against concurrent deletions of the other inbox rows of the
-- same message: the caller has already deleted its own rows; this locks
-- the messages (sorted, FOR UPDATE) in one statement and checks NOT EXISTS
-- in the next one, which in READ COMMITTED takes a fresh snapshot.
-- Whichever transaction gets a message's lock second therefore sees the
-- other's inbox delete committed, so the last one always deletes the
-- message (docs/schema.md).
CREATE OR REPLACE FUNCTION chat_gc_messages(p_chats bigint[],
    p_ids bigint[])
RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    v_n  bigint;
BEGIN
    IF p_ids IS NULL OR cardinality(p_ids) = 0 THEN
        RETURN 0;
    END IF;

    /*
     * Every lookup is by key, one at a time (LATERAL ... OFFSET 0), in key
     * order: a plan made on the statistics of a nearly empty messages
     * table joined the whole table instead, and each ack got slower as
     * the table grew (run F's offline drain: 30 ms -> 0.8 s).
     */
    PERFORM 1
       FROM (SELECT DISTINCT x.c, x.i
               FROM unnest(p_chats, p_ids) AS x(c, i)
              ORDER BY 1, 2) AS x
      CROSS JOIN LATERAL (
            SELECT 1
              FROM messages m
             WHERE m.chat_id = x.c AND m.id = x.i
               FOR UPDATE OF m) AS l;

    WITH del AS (
        DELETE FROM messages m
         WHERE m.ctid = ANY (ARRAY(
                   SELECT l.t
                     FROM (SELECT DISTINCT x.c, x.i
                             FROM unnest(p_chats, p_ids) AS x(c, i)) AS x
                    CROSS JOIN LATERAL (
                          SELECT m2.ctid AS t
                            FROM messages m2
                           WHERE m2.chat_id = x.c AND m2.id = x.i
                             AND NOT EXISTS (SELECT 1 FROM inbox b
                                              WHERE b.event_id = x.i)
                          OFFSET 0) AS l))
        RETURNING 1)
    SELECT count(*) INTO v_n FROM del;

    RETURN v_n;
END
$$;


-- Delete the inbox rows (p_users[i], p_devices[i], p_events[i]) that exist
-- (NULL elements and duplicates are ignored), then the messages left with
-- no inbox row.  Every inbox deletion goes through here, once per
-- transaction: inbox rows are locked in key order in one statement, and
-- messages only after that, so no two transactions can wait for each
-- other in a cycle (docs/schema.md, "Locks").
CREATE OR REPLACE FUNCTION chat_delete_inbox(p_users text[],
    p_devices text[], p_events bigint[], OUT inbox_deleted bigint,
    OUT messages_deleted bigint)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    v_chats  bigint[];
    v_ids    bigint[];
BEGIN
    inbox_deleted := 0;
    messages_deleted := 0;

    IF p_events IS NULL OR cardinality(p_events) = 0 THEN
        RETURN;
    END IF;

    WITH k AS (
        SELECT DISTINCT x.u, x.d, x.e
          FROM unnest(p_users, p_devices, p_events) AS x(u, d, e)
         WHERE x.u IS NOT NULL AND x.d IS NOT NULL AND x.e IS NOT NULL),
    /* one lookup by key per row, in key order (see chat_gc_messages) */
    l AS (
        SELECT r.t
          FROM (SELECT k.u, k.d, k.e FROM k ORDER BY 1, 2, 3) AS k
         CROSS JOIN LATERAL (
               SELECT i.ctid AS t
                 FROM inbox i
                WHERE i.user_id = k.u AND i.device_id = k.d
                  AND i.event_id = k.e
                  FOR UPDATE OF i) AS r),
    del AS (
        /* inbox rows are never updated, so a locked row keeps its ctid */
        DELETE FROM inbox
         WHERE ctid = ANY (ARRAY(SELECT l.t FROM l))
        RETURNING chat_id, event_id, kind)
    SELECT count(*),
           array_agg(del.chat_id) FILTER (WHERE del.kind = 1),
           array_agg(del.event_id) FILTER (WHERE del.kind = 1)
      INTO inbox_deleted, v_chats, v_ids
      FROM del;

    messages_deleted := chat_gc_messages(v_chats, v_ids);
END
$$;


-- The keys of every inbox row of the devices (p_users[i], p_devices[i]),
-- for chat_delete_inbox.  No lock: a row queued after this read (by a send
-- racing with a deactivation) is left for reactivation or retention.
CREATE OR REPLACE FUNCTION chat_inbox_keys(p_users text[], p_devices text[],
    OUT users text[], OUT devices text[], OUT events bigint[])
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    SELECT coalesce(array_agg(i.user_id), '{}'),
           coalesce(array_agg(i.device_id), '{}'),
           coalesce(array_agg(i.event_id), '{}')
      INTO users, devices, events
      FROM inbox i
      JOIN unnest(p_users, p_devices) AS x(u, d)
        ON i.user_id = x.u AND i.device_id = x.d;
END
$$;


-- Deactivate those of the devices (p_users[i], p_devices[i]) that are
-- active, locked in key order; with p_idle_before, only those still not
-- seen since then (re-checked after the lock, so a concurrent touch or
-- connect wins).  Returns the devices deactivated; their inboxes are the
-- caller's to drop.
CREATE OR REPLACE FUNCTION chat_deactivate_devices(p_users text[],
    p_devices text[], p_idle_before timestamptz, OUT users text[],
    OUT devices text[])
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
BEGIN
    SELECT coalesce(array_agg(s.user_id), '{}'),
           coalesce(array_agg(s.device_id), '{}')
      INTO users, devices
      FROM (SELECT d.user_id, d.device_id
              FROM devices d
              JOIN unnest(p_users, p_devices) AS x(u, dv)
                ON d.user_id = x.u AND d.device_id = x.dv
             WHERE d.active
               AND (p_idle_before IS NULL OR d.last_seen < p_idle_before)
             ORDER BY d.user_id, d.device_id
               FOR NO KEY UPDATE OF d) AS s;

    IF cardinality(users) > 0 THEN
        UPDATE devices d
           SET active = false
          FROM unnest(users, devices) AS x(u, dv)
         WHERE d.user_id = x.u AND d.device_id = x.dv;
    END IF;
END
$$;


-- ---------------------------------------------------------------------------
-- Hooks a feature replaces.  The core knows a message's attachments only as
-- a JSON array it stores and sends; what an attachment id means (whose
-- upload, which blob, which devices may fetch it) is the media feature's:
-- sql/920_media.sql replaces these two functions, after this file, on every
-- migrate.  Without it a message has no attachments (any id is refused as
-- bad_id) and nothing is linked.
-- ---------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION chat_hook_attachments(p_user text,
    p_device text, p_ids jsonb, OUT attachments jsonb, OUT bad_id text)
LANGUAGE plpgsql
AS $$
BEGIN
    attachments := '[]'::jsonb;
    bad_id := NULL;

    IF p_ids IS NOT NULL AND p_ids <> '[]'::jsonb THEN
        attachments := NULL;
        bad_id := coalesce(p_ids->>0, '');
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION chat_hook_linked(p_chats bigint[],
    p_ids bigint[])
RETURNS bigint
LANGUAGE plpgsql
AS $$
BEGIN
    RETURN 0;
END
$$;


-- ---------------------------------------------------------------------------
-- 1. chat_device_connect: 0 ok, 3 too many active devices, 4 bad ids
-- ---------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION chat_device_connect(p_user text, p_device text,
    p_max_devices int)
RETURNS int
LANGUAGE plpgsql
-- array parameters: planning each call cost more than running it; the
-- generic plan's estimates must not trigger JIT (40 ms a call); and a
-- plan cached while the tables were nearly empty must not scan them (one
-- did: hash joins over whole sent_keys scans, most of PostgreSQL's CPU)
SET plan_cache_mode = force_generic_plan
SET jit = off
SET enable_seqscan = off
AS $$
DECLARE
    v_active  bigint;
    v_new     boolean;          /* inserted, not reactivated */
BEGIN
    IF NOT chat_valid_id(p_user) OR NOT chat_valid_id(p_device)
       OR p_max_devices IS NULL
    THEN
        RETURN 4;
    END IF;

    /* one connect at a time per user, so the count below stays true */
    PERFORM pg_advisory_xact_lock(hashtextextended('dev:' || p_user, 0));

    UPDATE devices
       SET last_seen = now()
     WHERE user_id = p_user AND device_id = p_device AND active IS NOT FALSE;

    IF FOUND THEN
        RETURN 0;
    END IF;

    SELECT count(*) INTO v_active
      FROM devices
     WHERE user_id = p_user AND active IS NOT FALSE;

    IF v_active >= p_max_devices THEN
        RETURN 3;
    END IF;

    /* only this function inserts devices, under the lock above */
    v_new := NOT EXISTS (SELECT 1 FROM devices
                          WHERE user_id = p_user AND device_id = p_device);

    INSERT INTO devices AS d (user_id, device_id)
    VALUES (p_user, p_device)
    ON CONFLICT (user_id, device_id)
    DO UPDATE SET active = true, last_seen = now();

    /*
     * a reactivated device starts with an empty inbox: drop rows a send
     * racing with its deactivation may have queued (a new one has none)
     */
    IF NOT v_new THEN
        PERFORM chat_delete_inbox(k.users, k.devices, k.events)
           FROM chat_inbox_keys(ARRAY[p_user], ARRAY[p_device]) AS k;
    END IF;

    RETURN 0;
END
$$;


-- ---------------------------------------------------------------------------
-- 2. chat_create: 0 ok, 3 too many participants, 4 bad ids or fewer than 2
-- ---------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION chat_create(p_creator text,
    p_participants text[], p_name text, p_max int)
RETURNS TABLE(status int, chat_id bigint, event_json text,
              recipients text[])
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    v_users  text[];
    v_name   text := coalesce(p_name, '');
    v_chat   bigint;
    v_event  bigint;
    v_json   text;
BEGIN
    IF NOT chat_valid_id(p_creator)
       OR EXISTS (SELECT 1 FROM unnest(p_participants) AS u
                   WHERE NOT chat_valid_id(u))
    THEN
        RETURN QUERY SELECT 4, NULL::bigint, NULL::text, NULL::text[];
        RETURN;
    END IF;

    v_users := ARRAY(SELECT DISTINCT u
                       FROM unnest(coalesce(p_participants, '{}')
                                   || p_creator) AS u
                      ORDER BY u);

    IF cardinality(v_users) < 2 THEN
        RETURN QUERY SELECT 4, NULL::bigint, NULL::text, NULL::text[];
        RETURN;
    END IF;

    IF cardinality(v_users) > coalesce(p_max, 100) THEN
        RETURN QUERY SELECT 3, NULL::bigint, NULL::text, NULL::text[];
        RETURN;
    END IF;

    INSERT INTO chats (name, admin_id)
    VALUES (v_name, p_creator)
    RETURNING id INTO v_chat;

    INSERT INTO participants (chat_id, user_id)
    SELECT v_chat, u FROM unnest(v_users) AS u;

    v_event := nextval('events_id_seq');
    v_json := chat_update_event_json(v_event, v_chat, v_name,
                                     chat_participant_array(v_chat),
                                     p_creator);

    PERFORM chat_deliver_update(v_chat, v_event, v_json, v_users);

    RETURN QUERY SELECT 0, v_chat, v_json, v_users;
END
$$;


-- ---------------------------------------------------------------------------
-- 3. chat_modify: 0 ok, 1 no such chat, 2 forbidden, 3 too many
--    participants, 4 bad op or id.  ADD of a member and REMOVE of a
--    non-member are no-ops: status 0 with no event.
-- ---------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION chat_modify(p_actor text, p_chat bigint,
    p_user text, p_op text, p_max int)
RETURNS TABLE(status int, event_json text, recipients text[])
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    v_op      text := upper(p_op);
    v_name    text;
    v_admin   text;
    v_member  boolean;
    v_count   bigint;
    v_users   text[];
    v_recips  text[];
    v_event   bigint;
    v_json    text;
BEGIN
    IF v_op IS NULL OR v_op NOT IN ('ADD', 'REMOVE') OR p_chat IS NULL
       OR NOT chat_valid_id(p_actor) OR NOT chat_valid_id(p_user)
    THEN
        RETURN QUERY SELECT 4, NULL::text, NULL::text[];
        RETURN;
    END IF;

    SELECT c.name, c.admin_id INTO v_name, v_admin
      FROM chats c
     WHERE c.id = p_chat
       FOR UPDATE;

    IF NOT FOUND THEN
        RETURN QUERY SELECT 1, NULL::text, NULL::text[];
        RETURN;
    END IF;

    IF NOT EXISTS (SELECT 1 FROM participants p
                    WHERE p.chat_id = p_chat AND p.user_id = p_actor)
    THEN
        RETURN QUERY SELECT 2, NULL::text, NULL::text[];
        RETURN;
    END IF;

    v_member := EXISTS (SELECT 1 FROM participants p
                         WHERE p.chat_id = p_chat AND p.user_id = p_user);

    IF v_op = 'ADD' THEN

        IF v_member THEN
            RETURN QUERY SELECT 0, NULL::text, NULL::text[];
            RETURN;
        END IF;

        SELECT count(*) INTO v_count
          FROM participants p
         WHERE p.chat_id = p_chat;

        IF v_count + 1 > coalesce(p_max, 100) THEN
            RETURN QUERY SELECT 3, NULL::text, NULL::text[];
            RETURN;
        END IF;

        INSERT INTO participants (chat_id, user_id) VALUES (p_chat, p_user);

        v_users := chat_participant_array(p_chat);
        v_recips := v_users;

    ELSE

        IF p_user <> p_actor AND p_actor <> v_admin THEN
            RETURN QUERY SELECT 2, NULL::text, NULL::text[];
            RETURN;
        END IF;

        IF NOT v_member THEN
            RETURN QUERY SELECT 0, NULL::text, NULL::text[];
            RETURN;
        END IF;

        DELETE FROM participants p
         WHERE p.chat_id = p_chat AND p.user_id = p_user;

        v_users := chat_participant_array(p_chat);

        IF cardinality(v_users) = 0 THEN
            /* undelivered messages stay drainable: no FK to chats */
            DELETE FROM chats c WHERE c.id = p_chat;
            v_admin := NULL;

        ELSIF p_user = v_admin THEN
            v_admin := v_users[1];
            UPDATE chats c SET admin_id = v_admin WHERE c.id = p_chat;
        END IF;

        v_recips := v_users || p_user;
    END IF;

    v_event := nextval('events_id_seq');
    v_json := chat_update_event_json(v_event, p_chat, v_name, v_users,
                                     v_admin);

    PERFORM chat_deliver_update(p_chat, v_event, v_json, v_recips);

    RETURN QUERY SELECT 0, v_json, v_recips;
END
$$;


-- ---------------------------------------------------------------------------
-- 4. chat_send_batch: one row per element, in idx order.
--    status 0 ok (dup = true: an earlier send with the same key, nothing
--    delivered again), 1 no such chat, 2 sender not a participant,
--    4 bad element (ids, NULL chat or body, client id not 1..128
--    characters, attachments not a JSON array), 5 busy: its chat or its
--    key is locked by a concurrent batch; nothing was done for it, send
--    it again in a later batch.  With p_wait the batch waits for those
--    locks instead and nothing is busy (the gateway sends elements that
--    came back busy that way, so no chat can starve them).
-- ---------------------------------------------------------------------------

-- Whether element fields are acceptable at all (status 4 otherwise).
CREATE OR REPLACE FUNCTION chat_send_valid(p_user text, p_device text,
    p_chat bigint, p_cmid text, p_body text, p_attachments jsonb)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT chat_valid_id(p_user) AND chat_valid_id(p_device)
           AND p_chat IS NOT NULL AND p_body IS NOT NULL
           AND coalesce(length(p_cmid) BETWEEN 1 AND 128, false)
           AND coalesce(jsonb_typeof(p_attachments) = 'array',
                        p_attachments IS NULL)
$$;


-- A fixed number of statements per batch, whatever its size, no lock
-- waits, and no join whose plan depends on table statistics (the queue
-- tables are often nearly empty when analyzed):
--   1. lock every idempotency key (advisory, in hash order, without
--      waiting: an element whose key another batch holds is busy);
--   2. lock the chats that may get messages (FOR NO KEY UPDATE, ascending
--      id, SKIP LOCKED: an element whose chat another batch holds is
--      busy); only the locked ones are read in step 3.  Batches of
--      different workers therefore never wait for each other's commit:
--      each takes the chats it can and leaves the rest for its next batch
--      (waiting made every batch wait for every other one that shared a
--      chat, serialising all workers);
--   3. read each element with what the locks now protect: its stored key,
--      its chat's last_seq, the sender's membership (a fresh snapshot,
--      taken after the locks, so nothing read can change before commit);
--   4. (no SQL) decide each element in (chat_id, idx) order: status, seq
--      counted per chat, id = nextval() drawn under the chat lock, so
--      within a chat id order == seq order; a key repeated in the batch
--      is a dup of its first successful element;
--   5. write each chat's last_seq back once;
--   6. look up the recipient devices of each new message;
--   7. insert inbox rows, messages, keys in one statement and return the
--      rows in idx order.
-- (the signature before p_wait)
DROP FUNCTION IF EXISTS chat_send_batch(text[], text[], bigint[], text[],
    text[], jsonb[]);

CREATE OR REPLACE FUNCTION chat_send_batch(p_users text[], p_devices text[],
    p_chats bigint[], p_cmids text[], p_bodies text[],
    p_attachments jsonb[], p_wait boolean DEFAULT false)
RETURNS TABLE(idx int, status int, message_id bigint, seq bigint,
              sent_at_ms bigint, dup boolean, event_json text,
              recipients text[])
LANGUAGE plpgsql
-- array parameters: planning each call cost more than running it; the
-- generic plan's estimates must not trigger JIT (40 ms a call); and a
-- plan cached while the tables were nearly empty must not scan them (one
-- did: hash joins over whole sent_keys scans, most of PostgreSQL's CPU)
SET plan_cache_mode = force_generic_plan
SET jit = off
SET enable_seqscan = off
AS $$
#variable_conflict use_column
DECLARE
    r        record;
    v_now    timestamptz := now();
    v_ms     bigint := chat_ms(now());
    v_chat   bigint;            /* chat of the current run */
    v_seq    bigint;            /* its last seq so far */
    v_won    jsonb := '{}';     /* repeated key -> idx that stored it */
    v_w      text;
    v_id     bigint;
    v_locked bigint[];          /* chats locked in step 2 */
    v_busy   bigint[];          /* key locks held by other batches */
    v_chats  bigint[];          /* chats of the elements to lock */
    v_media  boolean := false;  /* a new message has attachments */
    /* per element, indexed by idx */
    a_st     int[] := '{}';
    a_mid    bigint[] := '{}';
    a_seq    bigint[] := '{}';
    a_ms     bigint[] := '{}';
    a_dup    boolean[] := '{}';
    a_att    jsonb[] := '{}';
    a_bad    text[] := '{}';
    v_m      record;
    n_c      bigint[] := '{}';
    /* per new message */
    n_i      int[] := '{}';
    n_id     bigint[] := '{}';
    n_seq    bigint[] := '{}';
    /* per chat that got messages */
    c_id     bigint[] := '{}';
    c_seq    bigint[] := '{}';
    c_first  int[] := '{}';     /* its first new message in n_* */
    /* recipient devices of the new messages, one element per inbox row */
    r_i      int[];
    r_u      text[];
    r_d      text[];
    r_e      bigint[];
    r_c      bigint[];
    a_rc     text[] := '{}';    /* per element: its recipient users */
BEGIN
    /* 1 */
    v_busy := ARRAY(
        SELECT s.h
          FROM (SELECT DISTINCT
                       hashtextextended('key:' || x.u || '/' || x.d || '/'
                                        || x.k, 0) AS h
                  FROM unnest(p_users, p_devices, p_chats, p_cmids, p_bodies,
                              p_attachments) AS x(u, d, c, k, b, a)
                 WHERE chat_send_valid(x.u, x.d, x.c, x.k, x.b, x.a)
                 ORDER BY 1) AS s
         WHERE CASE WHEN p_wait
                    THEN pg_advisory_xact_lock(s.h) IS NULL
                    ELSE NOT pg_try_advisory_xact_lock(s.h) END);

    /* 2: also for retries (one sent_keys lookup less per message) */
    v_chats := ARRAY(
        SELECT DISTINCT x.c
          FROM unnest(p_users, p_devices, p_chats, p_cmids, p_bodies,
                      p_attachments) AS x(u, d, c, k, b, a)
         WHERE chat_send_valid(x.u, x.d, x.c, x.k, x.b, x.a)
           AND NOT hashtextextended('key:' || x.u || '/' || x.d || '/'
                                    || x.k, 0) = ANY (v_busy));

    IF p_wait THEN
        v_locked := ARRAY(SELECT c.id FROM chats c
                           WHERE c.id = ANY (v_chats)
                           ORDER BY c.id FOR NO KEY UPDATE);
    ELSE
        v_locked := ARRAY(SELECT c.id FROM chats c
                           WHERE c.id = ANY (v_chats)
                           ORDER BY c.id FOR NO KEY UPDATE SKIP LOCKED);
    END IF;

    /* 3 and 4 */
    FOR r IN
        SELECT e.i, e.c, e.u, e.d, e.a, e.ok, e.nkey, sk.message_id AS kid,
               sk.seq AS kseq, sk.sent_at AS kat,
               CASE WHEN e.c = ANY (v_locked) THEN ch.last_seq END
                   AS last_seq,
               e.ok AND EXISTS (SELECT 1 FROM participants p
                                 WHERE p.chat_id = e.c AND p.user_id = e.u)
                   AS member,
               e.ok AND hashtextextended('key:' || e.u || '/' || e.d || '/'
                                         || e.k, 0) = ANY (v_busy)
                   AS key_busy,
               /* a chat that exists but another batch holds */
               ch.id IS NOT NULL AND NOT e.c = ANY (v_locked) AS chat_busy,
               e.u || '/' || e.d || '/' || e.k AS key
          FROM (SELECT x.i::int AS i, x.u, x.d, x.c, x.k, x.a,
                       chat_send_valid(x.u, x.d, x.c, x.k, x.b, x.a) AS ok,
                       count(*) OVER (PARTITION BY x.u, x.d, x.k) AS nkey
                  FROM unnest(p_users, p_devices, p_chats, p_cmids, p_bodies,
                              p_attachments)
                       WITH ORDINALITY AS x(u, d, c, k, b, a, i)) AS e
          /*
           * One index lookup per element, whatever the statistics say
           * (OFFSET 0 keeps each a correlated lookup): plans made on a
           * just-analyzed, nearly empty table joined otherwise, e.g. by
           * scanning every locked chat for every element (100 ms a batch).
           */
          LEFT JOIN LATERAL (
              SELECT k.message_id, k.seq, k.sent_at
                FROM sent_keys k
               WHERE e.ok AND k.user_id = e.u AND k.device_id = e.d
                 AND k.client_message_id = e.k
              OFFSET 0) AS sk ON true
          LEFT JOIN LATERAL (
              SELECT c.id, c.last_seq
                FROM chats c
               WHERE e.ok AND c.id = e.c
              OFFSET 0) AS ch ON true
         ORDER BY e.c, e.i
    LOOP
        a_dup[r.i] := false;

        IF NOT r.ok THEN
            a_st[r.i] := 4;
            CONTINUE;
        END IF;

        IF r.key_busy THEN
            a_st[r.i] := 5;
            CONTINUE;
        END IF;

        IF r.kid IS NOT NULL THEN
            a_st[r.i] := 0;
            a_mid[r.i] := r.kid;
            a_seq[r.i] := r.kseq;
            a_ms[r.i] := chat_ms(r.kat);
            a_dup[r.i] := true;
            CONTINUE;
        END IF;

        IF r.nkey > 1 THEN
            v_w := v_won ->> r.key;
            IF v_w IS NOT NULL THEN
                a_st[r.i] := 0;
                a_mid[r.i] := a_mid[v_w::int];
                a_seq[r.i] := a_seq[v_w::int];
                a_ms[r.i] := v_ms;
                a_dup[r.i] := true;
                CONTINUE;
            END IF;
        END IF;

        IF r.last_seq IS NULL THEN
            a_st[r.i] := CASE WHEN r.chat_busy THEN 5 ELSE 1 END;
            CONTINUE;
        END IF;

        IF NOT r.member THEN
            a_st[r.i] := 2;
            CONTINUE;
        END IF;

        IF r.a IS NOT NULL AND r.a <> '[]'::jsonb THEN
            SELECT * INTO v_m
              FROM chat_hook_attachments(r.u, r.d, r.a);
            IF v_m.bad_id IS NOT NULL THEN
                a_st[r.i] := 4;
                a_bad[r.i] := v_m.bad_id;
                CONTINUE;
            END IF;
            a_att[r.i] := v_m.attachments;
            v_media := true;
        END IF;

        IF v_chat IS DISTINCT FROM r.c THEN
            IF v_chat IS NOT NULL THEN
                c_id := c_id || v_chat;
                c_seq := c_seq || v_seq;
            END IF;
            v_chat := r.c;
            v_seq := r.last_seq;
            c_first := c_first || (cardinality(n_i) + 1);
        END IF;

        v_seq := v_seq + 1;
        v_id := nextval('events_id_seq');

        a_st[r.i] := 0;
        a_mid[r.i] := v_id;
        a_seq[r.i] := v_seq;
        a_ms[r.i] := v_ms;
        n_i := n_i || r.i;
        n_c := n_c || r.c;
        n_id := n_id || v_id;
        n_seq := n_seq || v_seq;

        IF r.nkey > 1 THEN
            v_won := v_won || jsonb_build_object(r.key, r.i);
        END IF;
    END LOOP;

    IF v_chat IS NOT NULL THEN
        c_id := c_id || v_chat;
        c_seq := c_seq || v_seq;
    END IF;

    /* 5 */
    IF cardinality(c_id) > 0 THEN
        UPDATE chats c
           SET last_seq = x.s
          FROM unnest(c_id, c_seq) AS x(id, s)
         WHERE c.id = x.id;
    END IF;

    /*
     * 6: the recipients (every active device of every participant but the
     * sending one), one element per inbox row, into arrays.  Each chat's
     * devices are looked up once per batch, then paired with each of its
     * new messages by position (the loop above put a chat's new messages
     * next to each other and noted where each chat's run starts), so a
     * group message batched with k others of its chat costs 1/k of a
     * lookup of the participants and their devices, and no join is
     * planned on estimates.  What
     * follows joins nothing whose size the planner takes from the tables:
     * inbox, messages and participants are often nearly empty when they
     * are analyzed, and joins planned on that (nested loops over the
     * inserted rows) cost O(batch^2).  Each participant's devices are
     * looked up by the participant (the inner OFFSET 0 keeps that nested
     * loop): a plan cached on statistics taken while participants was
     * nearly empty hash-joined every chat's participants with a full
     * index scan of devices, 1 ms per message, in 1 of 3 bench runs.
     */
    IF cardinality(n_i) > 0 THEN
        c_first := c_first || (cardinality(n_i) + 1);

        SELECT array_agg(n_i[j]), array_agg(dv.u), array_agg(dv.d),
               array_agg(n_id[j]), array_agg(c.c)
          INTO r_i, r_u, r_d, r_e, r_c
          FROM unnest(c_id) WITH ORDINALITY AS c(c, k)
         CROSS JOIN LATERAL (
               SELECT x.u, x.d
                 FROM participants p
                CROSS JOIN LATERAL (
                      SELECT y.user_id AS u, y.device_id AS d
                        FROM devices y
                       WHERE y.user_id = p.user_id
                         AND y.active IS NOT FALSE
                      OFFSET 0) AS x
                WHERE p.chat_id = c.c
               OFFSET 0) AS dv
         /* the chat's new messages: n_i[c_first[k] .. c_first[k+1]-1] */
         CROSS JOIN LATERAL generate_series(c_first[c.k::int],
                                            c_first[c.k::int + 1] - 1) AS j
         WHERE NOT (dv.u = p_users[n_i[j]] AND dv.d = p_devices[n_i[j]]);

        FOR r IN
            SELECT y.i, array_agg(DISTINCT y.u)::text AS users
              FROM unnest(r_i, r_u) AS y(i, u)
             GROUP BY y.i
        LOOP
            a_rc[r.i] := r.users;
        END LOOP;
    END IF;

    /* 7 */
    RETURN QUERY
    WITH nm AS (
        SELECT n.i, n.id, n.sq, p_users[n.i] AS u, p_devices[n.i] AS d,
               p_chats[n.i] AS c, p_cmids[n.i] AS k, p_bodies[n.i] AS b,
               coalesce(a_att[n.i], '[]') AS a
          FROM unnest(n_i, n_id, n_seq) AS n(i, id, sq)),

    ins AS (
        INSERT INTO inbox (user_id, device_id, event_id, chat_id, kind,
                           created_at)
        SELECT y.u, y.d, y.e, y.c, 1, v_now
          FROM unnest(r_u, r_d, r_e, r_c) AS y(u, d, e, c)),

    /* a message nobody will receive is not kept; its key is */
    msg AS (
        INSERT INTO messages (chat_id, id, seq, sender_id, sender_device,
                              client_message_id, body, attachments, sent_at)
        SELECT nm.c, nm.id, nm.sq, nm.u, nm.d, nm.k, nm.b, nm.a, v_now
          FROM nm
         WHERE a_rc[nm.i] IS NOT NULL),

    keys AS (
        INSERT INTO sent_keys (user_id, device_id, client_message_id,
                               chat_id, message_id, seq, sent_at)
        SELECT nm.u, nm.d, nm.k, nm.c, nm.id, nm.sq, v_now
          FROM nm)

    SELECT e.i::int, a_st[e.i], a_mid[e.i], a_seq[e.i], a_ms[e.i],
           a_dup[e.i],
           CASE WHEN a_st[e.i] = 0 AND NOT a_dup[e.i]
                THEN chat_message_event_json(p_chats[e.i], a_mid[e.i],
                                             a_seq[e.i], p_users[e.i],
                                             p_devices[e.i], p_bodies[e.i],
                                             coalesce(a_att[e.i], '[]'),
                                             v_now)
                WHEN dp.users IS NOT NULL THEN dp.ev
                /* status 4 for an attachment: event_json is its id */
                ELSE a_bad[e.i] END,
           CASE WHEN a_st[e.i] = 0 AND NOT a_dup[e.i]
                THEN coalesce(a_rc[e.i]::text[], '{}')
                ELSE dp.users END
      FROM generate_subscripts(a_st, 1) AS e(i)
      /*
       * A retry of a send that was committed but never answered (the
       * gateway gave up waiting): publish it again to the users whose
       * devices have not acked it yet, or it would wait for their next
       * connection.  Devices that have it in flight drop the copy.
       */
      LEFT JOIN LATERAL (
          SELECT chat_message_event_json(m.chat_id, m.id, m.seq,
                                         m.sender_id, m.sender_device,
                                         m.body, m.attachments, m.sent_at)
                     AS ev,
                 (SELECT array_agg(DISTINCT ib.user_id)
                    FROM inbox ib
                   WHERE ib.event_id = m.id) AS users
            FROM messages m
           WHERE a_dup[e.i] AND m.chat_id = p_chats[e.i]
             AND m.id = a_mid[e.i]
          /* OFFSET 0: stay a correlated lookup by primary key (pulled up,
             it became a hash join over a scan of all messages) */
          OFFSET 0) AS dp ON true
     ORDER BY e.i;

    /* receipts for the devices that got the new messages' attachments */
    IF v_media THEN
        PERFORM chat_hook_linked(n_c, n_id);
    END IF;
END
$$;


-- ---------------------------------------------------------------------------
-- 5. chat_ack_batch: returns the number of inbox rows deleted
-- ---------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION chat_ack_batch(p_users text[], p_devices text[],
    p_events bigint[])
RETURNS int
LANGUAGE plpgsql
-- array parameters: planning each call cost more than running it; the
-- generic plan's estimates must not trigger JIT (40 ms a call); and a
-- plan cached while the tables were nearly empty must not scan them (one
-- did: hash joins over whole sent_keys scans, most of PostgreSQL's CPU)
SET plan_cache_mode = force_generic_plan
SET jit = off
SET enable_seqscan = off
AS $$
DECLARE
    v_n  bigint;
BEGIN
    SELECT d.inbox_deleted INTO v_n
      FROM chat_delete_inbox(p_users, p_devices, p_events) AS d;

    RETURN v_n;
END
$$;


-- ---------------------------------------------------------------------------
-- 6. chat_drain: a page of the device's inbox, oldest first; nothing for
--    an inactive or unknown device.  p_limit NULL means 100; capped to
--    0..10000.
-- ---------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION chat_drain(p_user text, p_device text,
    p_after bigint, p_limit int)
RETURNS TABLE(event_id bigint, event_json text)
LANGUAGE sql STABLE
AS $$
    /*
     * Written so that the plan cannot depend on table statistics (the
     * gateway's prepared statement keeps a generic plan, made whenever):
     * the device's range is given as row comparisons on the primary key
     * and the order is the primary key's, which only that index serves
     * (with "user_id = ... AND event_id > p_after ORDER BY event_id" a
     * plan walked inbox_event_id_idx through every device's rows: 14 ms a
     * page instead of 0.6); the message is a correlated lookup (OFFSET 0).
     */
    SELECT i.event_id,
           CASE WHEN i.kind = 1 THEN m.json ELSE i.payload END
      FROM inbox i
      LEFT JOIN LATERAL (
          SELECT m.id,
                 chat_message_event_json(m.chat_id, m.id, m.seq,
                                         m.sender_id, m.sender_device,
                                         m.body, m.attachments, m.sent_at)
                     AS json
            FROM messages m
           WHERE i.kind = 1 AND m.chat_id = i.chat_id AND m.id = i.event_id
          OFFSET 0) AS m ON true
     WHERE (i.user_id, i.device_id, i.event_id)
           > (p_user, p_device, coalesce(p_after, 0))
       AND (i.user_id, i.device_id) <= (p_user, p_device)
       AND (i.kind <> 1 OR m.id IS NOT NULL)
       AND EXISTS (SELECT 1 FROM devices d
                    WHERE d.user_id = p_user AND d.device_id = p_device
                      AND d.active IS NOT FALSE)
     ORDER BY i.user_id, i.device_id, i.event_id
     LIMIT least(greatest(coalesce(p_limit, 100), 0), 10000)
$$;


-- ---------------------------------------------------------------------------
-- 7. chat_list: the user's chats as a JSON array, by chat id
-- ---------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION chat_list(p_user text)
RETURNS text
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    RETURN (
    SELECT coalesce(
               json_agg(json_build_object(
                            'chatId', c.id::text,
                            'name', c.name,
                            'participants',
                                to_json(chat_participant_array(c.id)),
                            'admin', c.admin_id,
                            'lastSeq', c.last_seq)
                        ORDER BY c.id)::text,
               '[]')
      FROM participants p
      JOIN chats c ON c.id = p.chat_id
     WHERE p.user_id = p_user);
END
$$;


-- ---------------------------------------------------------------------------
-- 8. chat_remove_device: 0 ok, 1 no such active device
-- ---------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION chat_remove_device(p_user text, p_device text)
RETURNS int
LANGUAGE plpgsql
AS $$
DECLARE
    v  record;
BEGIN
    SELECT * INTO v
      FROM chat_deactivate_devices(ARRAY[p_user], ARRAY[p_device], NULL);

    IF cardinality(v.users) = 0 THEN
        RETURN 1;
    END IF;

    /* the device's tokens issued until now no longer connect */
    UPDATE devices
       SET tokens_before = floor(extract(epoch FROM now()))::bigint
     WHERE user_id = p_user AND device_id = p_device;

    PERFORM chat_delete_inbox(k.users, k.devices, k.events)
       FROM chat_inbox_keys(v.users, v.devices) AS k;

    RETURN 0;
END
$$;


-- ---------------------------------------------------------------------------
-- 9. chat_sweep: retention, in one pass:
--      a. deactivate active devices not seen for p_device_idle (at most
--         max(p_limit / 10, 1) per call);
--      b. delete their inbox rows and the oldest inbox rows created before
--         now() - p_retention (at most p_limit of those), in one
--         chat_delete_inbox call, which also deletes the messages left
--         without inbox rows -- that is how messages older than the
--         retention go: a message lives only while it has inbox rows, and
--         they are exactly as old as it is;
--      c. delete at most p_limit sent_keys older than the retention;
--      d. (first) delete at most p_limit idle rate buckets, skipping
--         locked ones (930_limits.sql).
--    Call it again while a count reaches its bound.  A NULL interval skips
--    its part.  One sweep runs at a time: a concurrent call returns zeros.
-- ---------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION chat_sweep(p_retention interval,
    p_device_idle interval, p_limit int DEFAULT 10000)
RETURNS TABLE(inbox_deleted bigint, messages_deleted bigint,
              devices_deactivated bigint, keys_deleted bigint)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    v_limit  int := greatest(coalesce(p_limit, 10000), 1);
    v_cut    timestamptz := now() - p_retention;
    v_idle   timestamptz := now() - p_device_idle;
    v_dev    record;
    v_u      text[] := '{}';
    v_d      text[] := '{}';
    v_e      bigint[] := '{}';
    v_del    record;
    v_keys   bigint := 0;
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtextextended('chat:sweep', 0)) THEN
        RETURN QUERY SELECT 0::bigint, 0::bigint, 0::bigint, 0::bigint;
        RETURN;
    END IF;

    /* d, first: idle rate buckets (930_limits.sql; locked ones skipped) */
    PERFORM chat_rate_sweep(v_limit);

    /* a */
    SELECT dd.* INTO v_dev
      FROM (SELECT coalesce(array_agg(o.user_id), '{}') AS u,
                   coalesce(array_agg(o.device_id), '{}') AS d
              FROM (SELECT d.user_id, d.device_id
                      FROM devices d
                     WHERE v_idle IS NOT NULL
                       AND d.active AND d.last_seen < v_idle
                     ORDER BY d.last_seen
                     LIMIT greatest(v_limit / 10, 1)) AS o) AS a,
           LATERAL chat_deactivate_devices(a.u, a.d, v_idle) AS dd;

    IF cardinality(v_dev.users) > 0 THEN
        SELECT k.users, k.devices, k.events INTO v_u, v_d, v_e
          FROM chat_inbox_keys(v_dev.users, v_dev.devices) AS k;
    END IF;

    /*
     * b: event ids grow with time, so take the p_limit lowest and keep
     * those created before the cutoff
     */
    IF v_cut IS NOT NULL THEN
        SELECT v_u || coalesce(array_agg(o.user_id), '{}'),
               v_d || coalesce(array_agg(o.device_id), '{}'),
               v_e || coalesce(array_agg(o.event_id), '{}')
          INTO v_u, v_d, v_e
          FROM (SELECT b.user_id, b.device_id, b.event_id, b.created_at
                  FROM inbox b
                 ORDER BY b.event_id
                 LIMIT v_limit) AS o
         WHERE o.created_at < v_cut;
    END IF;

    SELECT * INTO v_del FROM chat_delete_inbox(v_u, v_d, v_e);

    /* c */
    IF v_cut IS NOT NULL THEN
        WITH del AS (
            DELETE FROM sent_keys
             WHERE ctid = ANY (ARRAY(SELECT k.ctid
                                       FROM sent_keys k
                                      WHERE k.sent_at < v_cut
                                      ORDER BY k.sent_at
                                      LIMIT v_limit))
            RETURNING 1)
        SELECT count(*) INTO v_keys FROM del;
    END IF;

    RETURN QUERY SELECT v_del.inbox_deleted, v_del.messages_deleted,
                        cardinality(v_dev.users)::bigint, v_keys;
END
$$;


-- ---------------------------------------------------------------------------
-- 10. chat_touch_devices: last_seen = now() for connected devices
-- ---------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION chat_touch_devices(p_users text[],
    p_devices text[])
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    UPDATE devices d
       SET last_seen = now()
      FROM (SELECT d2.user_id, d2.device_id
              FROM devices d2
              JOIN unnest(p_users, p_devices) AS x(u, dv)
                ON d2.user_id = x.u AND d2.device_id = x.dv
             WHERE d2.active IS NOT FALSE
             ORDER BY d2.user_id, d2.device_id
               FOR NO KEY UPDATE OF d2) AS l
     WHERE d.user_id = l.user_id AND d.device_id = l.device_id;
END
$$;


-- ---------------------------------------------------------------------------
-- 11. chat_is_participant
-- ---------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION chat_is_participant(p_user text, p_chat bigint)
RETURNS boolean
LANGUAGE sql STABLE
AS $$
    SELECT EXISTS (SELECT 1 FROM participants p
                    WHERE p.chat_id = p_chat AND p.user_id = p_user)
$$;
