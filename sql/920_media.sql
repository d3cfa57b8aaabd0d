-- 920_media.sql: media attachments (docs/media.md): the tables and every
-- SQL function the media code of the module calls.
--
-- Re-applied by scripts/migrate on every run, like every file >= 900, so
-- the tables are created with IF NOT EXISTS; changing one needs a numbered
-- migration.  Conventions of 900_functions.sql apply: one call = one round
-- trip = one transaction, status codes instead of exceptions (0 ok,
-- 1 not_found, 2 forbidden, 3 limit_exceeded, 4 bad_request).
--
-- Life of an attachment (attachments.state):
--   0 pending    created by createAttachment, bytes not confirmed yet;
--   1 uploaded   nginx verified the PUT (local store) or a HEAD found the
--                object with the right size (S3); only now may a message
--                reference it;
--   2 deleting   every recipient device received it, or it was never sent
--                within the grace period, or it is older than the
--                retention: the blob is to be deleted; the module deletes
--                it, then the row (chat_media_purged).
-- attachment_receipts holds one row per recipient device that has not
-- received the blob yet (a completed local download or ackAttachment
-- deletes it); receipts of inactive (removed, idle) devices do not count.
--
-- Locks: attachments rows (by id) -> attachment_receipts.  A message that
-- references attachments takes FOR KEY SHARE on them (in
-- chat_media_attachments_json) before chat_media_link inserts receipts;
-- marking one "deleting" takes FOR UPDATE and re-reads the receipts after
-- it, so no blob is deleted under a message being committed.


CREATE TABLE IF NOT EXISTS attachments (
    id            text        PRIMARY KEY,
    owner_id      text        NOT NULL,
    owner_device  text        NOT NULL,
    content_type  text        NOT NULL,
    size          bigint      NOT NULL,
    sha256        text        NOT NULL,
    state         smallint    NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL DEFAULT now(),
    uploaded_at   timestamptz,
    linked_at     timestamptz,
    CONSTRAINT attachments_id_check CHECK (id ~ '^[0-9a-f]{32}$'),
    CONSTRAINT attachments_size_check CHECK (size >= 0),
    CONSTRAINT attachments_sha256_check CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    CONSTRAINT attachments_state_check CHECK (state IN (0, 1, 2))
);

-- the sweep: oldest first, and the rows waiting for their blob's deletion
CREATE INDEX IF NOT EXISTS attachments_created_idx
    ON attachments (created_at);
CREATE INDEX IF NOT EXISTS attachments_deleting_idx
    ON attachments (created_at) WHERE state = 2;


-- the chats an attachment was sent to: who may ask for a URL
CREATE TABLE IF NOT EXISTS attachment_chats (
    attachment_id  text   NOT NULL REFERENCES attachments (id)
                          ON DELETE CASCADE,
    chat_id        bigint NOT NULL,
    PRIMARY KEY (attachment_id, chat_id)
);


-- recipient devices that have not received the blob yet
CREATE TABLE IF NOT EXISTS attachment_receipts (
    attachment_id  text        NOT NULL REFERENCES attachments (id)
                               ON DELETE CASCADE,
    user_id        text        NOT NULL,
    device_id      text        NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (attachment_id, user_id, device_id)
);

-- "which receipts belong to devices that went inactive" (the sweep)
CREATE INDEX IF NOT EXISTS attachment_receipts_device_idx
    ON attachment_receipts (user_id, device_id);


-- ---------------------------------------------------------------------------
-- helpers
-- ---------------------------------------------------------------------------

-- The object sent in newMessage.attachments (the module adds "url" and
-- "urlExpiresAt" per device when it delivers the event).
CREATE OR REPLACE FUNCTION chat_media_json(a attachments)
RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT jsonb_build_object('attachmentId', a.id,
                              'contentType', a.content_type,
                              'size', a.size,
                              'sha256', a.sha256)
$$;


-- Marks p_id deleting if it is uploaded, was sent, and no active recipient
-- device is still waiting for it.  The caller holds FOR UPDATE on the row.
-- Returns true when it did.
CREATE OR REPLACE FUNCTION chat_media_settle(p_id text)
RETURNS boolean
LANGUAGE plpgsql
AS $$
BEGIN
    UPDATE attachments a
       SET state = 2
     WHERE a.id = p_id
       AND a.state = 1
       AND a.linked_at IS NOT NULL
       AND NOT EXISTS (
           SELECT 1
             FROM attachment_receipts r
             JOIN devices d ON d.user_id = r.user_id
                           AND d.device_id = r.device_id
            WHERE r.attachment_id = p_id
              AND d.active);

    RETURN FOUND;
END
$$;


-- ---------------------------------------------------------------------------
-- 1. chat_media_create (createAttachment): status 0 with the new id;
--    4 for invalid arguments
-- ---------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION chat_media_create(p_user text, p_device text,
    p_type text, p_size bigint, p_sha256 text)
RETURNS TABLE(status int, attachment_id text)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    v_id  text;
BEGIN
    IF NOT chat_valid_id(p_user) OR NOT chat_valid_id(p_device)
       OR p_type IS NULL OR length(p_type) NOT BETWEEN 1 AND 127
       OR p_size IS NULL OR p_size < 0
       OR p_sha256 IS NULL OR p_sha256 !~ '^[0-9a-f]{64}$'
    THEN
        RETURN QUERY SELECT 4, NULL::text;
        RETURN;
    END IF;

    v_id := replace(gen_random_uuid()::text, '-', '');

    INSERT INTO attachments (id, owner_id, owner_device, content_type, size,
                             sha256)
    VALUES (v_id, p_user, p_device, p_type, p_size, p_sha256);

    RETURN QUERY SELECT 0, v_id;
END
$$;


-- ---------------------------------------------------------------------------
-- 2. chat_media_uploaded: the bytes of p_id are stored and verified (size
--    and hash, by nginx for the local store, the size by a HEAD for S3).
--    0: uploaded now or already; 1: no such pending/uploaded attachment
--    with that size and hash (deleted, swept, never created).
-- ---------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION chat_media_uploaded(p_id text, p_size bigint,
    p_sha256 text)
RETURNS int
LANGUAGE plpgsql
AS $$
DECLARE
    v_state  smallint;
BEGIN
    SELECT a.state INTO v_state
      FROM attachments a
     WHERE a.id = p_id
       AND a.size = p_size
       AND (p_sha256 IS NULL OR a.sha256 = p_sha256)
       FOR NO KEY UPDATE;

    IF NOT FOUND OR v_state = 2 THEN
        RETURN 1;
    END IF;

    IF v_state = 0 THEN
        UPDATE attachments
           SET state = 1, uploaded_at = now()
         WHERE id = p_id;
    END IF;

    RETURN 0;
END
$$;


-- ---------------------------------------------------------------------------
-- 3. chat_media_pending (S3): which of p_ids are p_user's and still
--    pending: the module HEADs those before a message references them.
-- ---------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION chat_media_pending(p_user text, p_ids text[])
RETURNS TABLE(attachment_id text, size bigint, sha256 text)
LANGUAGE sql STABLE
AS $$
    SELECT a.id, a.size, a.sha256
      FROM attachments a
     WHERE a.id = ANY (p_ids)
       AND a.owner_id = p_user
       AND a.state = 0
     ORDER BY a.id
$$;


-- ---------------------------------------------------------------------------
-- 4. chat_media_attachments_json: for sendMessage, called by
--    chat_send_batch for each new (not duplicate) message that has
--    attachments, before its inbox rows are inserted.
--
--    p_ids is the JSON array the module built: at most 10 distinct strings.
--    On success: attachments = the JSON array of the objects to store in
--    messages.attachments (same order), bad_id NULL.  Otherwise
--    attachments NULL and bad_id = the first id that is not an uploaded
--    attachment of p_user (or a repeated one, or '' for a malformed list).
--    An empty or NULL list gives '[]'.
--
--    The rows are locked FOR KEY SHARE (in id order): none can be marked
--    deleting until the transaction ends, so chat_media_link() after it
--    links blobs that still exist.
-- ---------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION chat_media_attachments_json(p_user text,
    p_device text, p_ids jsonb, OUT attachments jsonb, OUT bad_id text)
LANGUAGE plpgsql
AS $$
DECLARE
    v_ids   text[];
    v_bad   text;
BEGIN
    attachments := NULL;
    bad_id := NULL;

    IF p_ids IS NULL OR p_ids = '[]'::jsonb THEN
        attachments := '[]'::jsonb;
        RETURN;
    END IF;

    IF jsonb_typeof(p_ids) <> 'array' OR jsonb_array_length(p_ids) > 10
       OR EXISTS (SELECT 1 FROM jsonb_array_elements(p_ids) AS e(v)
                   WHERE jsonb_typeof(e.v) <> 'string')
    THEN
        bad_id := '';
        RETURN;
    END IF;

    v_ids := ARRAY(SELECT e.v FROM jsonb_array_elements_text(p_ids)
                                   WITH ORDINALITY AS e(v, i)
                    ORDER BY e.i);

    /* a repeated id */
    SELECT x.v INTO v_bad
      FROM unnest(v_ids) WITH ORDINALITY AS x(v, i)
     GROUP BY x.v
    HAVING count(*) > 1
     ORDER BY min(x.i)
     LIMIT 1;

    IF v_bad IS NOT NULL THEN
        bad_id := v_bad;
        RETURN;
    END IF;

    PERFORM 1
       FROM attachments a
      WHERE a.id = ANY (v_ids)
      ORDER BY a.id
        FOR KEY SHARE;

    SELECT x.v INTO v_bad
      FROM unnest(v_ids) WITH ORDINALITY AS x(v, i)
      LEFT JOIN attachments a
        ON a.id = x.v AND a.owner_id = p_user AND a.state = 1
     WHERE a.id IS NULL
     ORDER BY x.i
     LIMIT 1;

    IF v_bad IS NOT NULL THEN
        bad_id := v_bad;
        RETURN;
    END IF;

    SELECT jsonb_agg(chat_media_json(a) ORDER BY x.i) INTO attachments
      FROM unnest(v_ids) WITH ORDINALITY AS x(v, i)
      JOIN attachments a ON a.id = x.v;
END
$$;


-- ---------------------------------------------------------------------------
-- 5. chat_media_link: called by chat_send_batch after it inserted the new
--    messages (p_chats[i], p_ids[i]) and their inbox rows, in the same
--    transaction (a later statement, so it sees them).  For every
--    attachment of those messages: the chat is recorded (getAttachmentUrl
--    rights), every device with an inbox row for the message gets a
--    receipt row, linked_at is set.  An attachment whose message reached
--    no device is settled at once.  Returns the number of receipts added.
-- ---------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION chat_media_link(p_chats bigint[],
    p_ids bigint[])
RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    t_chat  bigint[];
    t_msg   bigint[];
    t_att   text[];
    v_att   text[];
    v_n     bigint;
    v_id    text;
BEGIN
    IF p_ids IS NULL OR cardinality(p_ids) = 0 THEN
        RETURN 0;
    END IF;

    /* (chat, message, attachment) of the new messages */
    SELECT coalesce(array_agg(m.chat_id), '{}'),
           coalesce(array_agg(m.id), '{}'),
           coalesce(array_agg(e.a ->> 'attachmentId'), '{}')
      INTO t_chat, t_msg, t_att
      FROM unnest(p_chats, p_ids) AS x(c, i)
      JOIN messages m ON m.chat_id = x.c AND m.id = x.i
     CROSS JOIN LATERAL jsonb_array_elements(
               CASE WHEN jsonb_typeof(m.attachments) = 'array'
                    THEN m.attachments ELSE '[]'::jsonb END) AS e(a)
     WHERE e.a ->> 'attachmentId' IS NOT NULL;

    v_att := ARRAY(SELECT DISTINCT t.a FROM unnest(t_att) AS t(a)
                    ORDER BY 1);

    IF cardinality(v_att) = 0 THEN
        RETURN 0;
    END IF;

    INSERT INTO attachment_chats (attachment_id, chat_id)
    SELECT DISTINCT t.a, t.c
      FROM unnest(t_chat, t_att) AS t(c, a)
      JOIN attachments x ON x.id = t.a
     ORDER BY 1, 2
    ON CONFLICT DO NOTHING;

    WITH ins AS (
        INSERT INTO attachment_receipts (attachment_id, user_id, device_id)
        SELECT DISTINCT t.a, i.user_id, i.device_id
          FROM unnest(t_chat, t_msg, t_att) AS t(c, m, a)
          JOIN attachments x ON x.id = t.a
          JOIN inbox i ON i.event_id = t.m
                      AND i.chat_id = t.c
                      AND i.kind = 1
         ORDER BY 1, 2, 3
        ON CONFLICT DO NOTHING
        RETURNING 1)
    SELECT count(*) INTO v_n FROM ins;

    UPDATE attachments a
       SET linked_at = now()
     WHERE a.id = ANY (v_att)
       AND a.linked_at IS NULL;

    /* a message that reached nobody: nothing will ever download it */
    FOR v_id IN
        SELECT a.id FROM attachments a
         WHERE a.id = ANY (v_att)
           AND NOT EXISTS (SELECT 1 FROM attachment_receipts r
                            WHERE r.attachment_id = a.id)
         ORDER BY a.id
    LOOP
        PERFORM chat_media_settle(v_id);
    END LOOP;

    RETURN v_n;
END
$$;


-- ---------------------------------------------------------------------------
-- 6. chat_media_get (getAttachmentUrl): status 0 with the object's facts
--    when p_user is a participant of a chat the attachment was sent to;
--    1 no such uploaded attachment; 2 forbidden.
-- ---------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION chat_media_get(p_user text, p_id text)
RETURNS TABLE(status int, content_type text, size bigint, sha256 text)
LANGUAGE plpgsql STABLE
AS $$
#variable_conflict use_column
DECLARE
    v  attachments;
BEGIN
    SELECT * INTO v FROM attachments a WHERE a.id = p_id;

    IF NOT FOUND OR v.state <> 1 THEN
        RETURN QUERY SELECT 1, NULL::text, NULL::bigint, NULL::text;
        RETURN;
    END IF;

    IF NOT EXISTS (SELECT 1
                     FROM attachment_chats c
                     JOIN participants p ON p.chat_id = c.chat_id
                    WHERE c.attachment_id = p_id
                      AND p.user_id = p_user)
    THEN
        RETURN QUERY SELECT 2, NULL::text, NULL::bigint, NULL::text;
        RETURN;
    END IF;

    RETURN QUERY SELECT 0, v.content_type, v.size, v.sha256;
END
$$;


-- ---------------------------------------------------------------------------
-- 7. chat_media_received: device (p_user, p_device) has the blob (a
--    completed download through the local store, or ackAttachment).  Its
--    receipt is deleted; when it was the last one of an active device the
--    attachment becomes "deleting" and purge is true: the module deletes
--    the blob, then calls chat_media_purged.  status 1: no such
--    attachment (not an error for acks).
-- ---------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION chat_media_received(p_id text, p_user text,
    p_device text)
RETURNS TABLE(status int, purge boolean)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    v_state  smallint;
BEGIN
    SELECT a.state INTO v_state
      FROM attachments a
     WHERE a.id = p_id
       FOR UPDATE;

    IF NOT FOUND THEN
        RETURN QUERY SELECT 1, false;
        RETURN;
    END IF;

    DELETE FROM attachment_receipts r
     WHERE r.attachment_id = p_id
       AND r.user_id = p_user
       AND r.device_id = p_device;

    IF v_state = 1 AND FOUND THEN
        RETURN QUERY SELECT 0, chat_media_settle(p_id);
        RETURN;
    END IF;

    RETURN QUERY SELECT 0, false;
END
$$;


-- ---------------------------------------------------------------------------
-- 8. chat_media_purged: the blobs of p_ids are gone: drop their rows
--    (only those in state deleting).  Returns how many.
-- ---------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION chat_media_purged(p_ids text[])
RETURNS bigint
LANGUAGE sql
AS $$
    WITH del AS (
        DELETE FROM attachments a
         WHERE a.id = ANY (p_ids)
           AND a.state = 2
        RETURNING 1)
    SELECT count(*) FROM del
$$;


-- ---------------------------------------------------------------------------
-- 9. chat_media_sweep: periodic (worker 0 of each host; one sweep at a
--    time across hosts, the others return nothing).  Marks deleting, at
--    most p_limit of each kind:
--      a. attachments older than p_retention, whatever their state;
--      b. attachments never sent in a message and older than p_grace
--         (pending or uploaded);
--      c. sent attachments whose remaining receipts all belong to
--         inactive devices (removed or idle): those receipts are dropped;
--    then returns up to p_limit attachments in state deleting, oldest
--    first (also those whose blob deletion failed before), for the module
--    to delete and purge.
-- ---------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION chat_media_sweep(p_retention interval,
    p_grace interval, p_limit int)
RETURNS TABLE(attachment_id text)
LANGUAGE plpgsql
AS $$
#variable_conflict use_column
DECLARE
    v_limit  int := greatest(coalesce(p_limit, 1000), 1);
    v_ids    text[];
    v_id     text;
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtextextended('chat:media_sweep', 0))
    THEN
        RETURN;
    END IF;

    /* a and b */
    v_ids := ARRAY(
        SELECT a.id
          FROM attachments a
         WHERE a.state <> 2
           AND (a.created_at < now() - p_retention
                OR (a.linked_at IS NULL AND a.created_at < now() - p_grace))
         ORDER BY a.created_at
         LIMIT v_limit);

    IF cardinality(v_ids) > 0 THEN
        PERFORM 1 FROM attachments a
          WHERE a.id = ANY (v_ids) ORDER BY a.id FOR UPDATE;
        UPDATE attachments a SET state = 2 WHERE a.id = ANY (v_ids);
    END IF;

    /* c: receipts of devices no longer active */
    v_ids := ARRAY(
        SELECT DISTINCT r.attachment_id
          FROM (SELECT r2.attachment_id
                  FROM attachment_receipts r2
                  JOIN devices d ON d.user_id = r2.user_id
                                AND d.device_id = r2.device_id
                 WHERE NOT d.active
                 LIMIT v_limit) AS r
         ORDER BY 1);

    FOREACH v_id IN ARRAY v_ids LOOP
        PERFORM 1 FROM attachments a WHERE a.id = v_id FOR UPDATE;

        DELETE FROM attachment_receipts r
         USING devices d
         WHERE r.attachment_id = v_id
           AND d.user_id = r.user_id AND d.device_id = r.device_id
           AND NOT d.active;

        PERFORM chat_media_settle(v_id);
    END LOOP;

    RETURN QUERY
    SELECT a.id
      FROM attachments a
     WHERE a.state = 2
     ORDER BY a.created_at
     LIMIT v_limit;
END
$$;


-- ---------------------------------------------------------------------------
-- The core's hooks (sql/900_functions.sql, applied before this file) are
-- the media functions: chat_send_batch() calls them by these names only.
-- ---------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION chat_hook_attachments(p_user text,
    p_device text, p_ids jsonb, OUT attachments jsonb, OUT bad_id text)
LANGUAGE plpgsql
AS $$
BEGIN
    SELECT m.attachments, m.bad_id INTO attachments, bad_id
      FROM chat_media_attachments_json(p_user, p_device, p_ids) AS m;
END
$$;

CREATE OR REPLACE FUNCTION chat_hook_linked(p_chats bigint[],
    p_ids bigint[])
RETURNS bigint
LANGUAGE plpgsql
AS $$
BEGIN
    RETURN chat_media_link(p_chats, p_ids);
END
$$;
