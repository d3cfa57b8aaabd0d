-- 930_limits.sql: per-user rate limits (chat_user_rate, docs/security.md
-- "Rate limits and fairness"): a token bucket per user and command kind,
-- kept here so that it holds for all of a user's devices on every worker
-- and every gateway host, and the entry points the module calls for the
-- limited commands.
--
-- Re-applied by scripts/migrate on every run, like every file >= 900, so
-- the table is created with IF NOT EXISTS.  Conventions of
-- 900_functions.sql apply; one more status: 6 rate_limited.
--
-- Kinds (NGX_CHAT_RATE_* in the module): 0 createChat,
-- 1 modifyChatParticipants, 2 createAttachment.
--
-- Cost: one row per user and kind that used the command, updated (one row
-- lock, in the command's own transaction) on every call.  A bucket left
-- alone long enough is full again, the same as no row: chat_sweep deletes
-- those.  Locks: a command takes at most one user_rates row, its own
-- user's, before anything else; the sweep takes none it would wait for
-- (docs/schema.md, "Locks").


CREATE TABLE IF NOT EXISTS user_rates (
    user_id  text        NOT NULL,
    kind     smallint    NOT NULL,
    tokens   float8      NOT NULL,      -- requests left at "at"
    at       timestamptz NOT NULL,
    PRIMARY KEY (user_id, kind)
);

CREATE INDEX IF NOT EXISTS user_rates_at ON user_rates (at);


-- ---------------------------------------------------------------------------
-- chat_rate_take: takes one request from p_user's bucket of p_kind, which
-- holds up to p_burst requests and refills at p_rate per minute.  false:
-- the bucket is empty (nothing is taken).  p_rate 0 or NULL: no limit.
-- ---------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION chat_rate_take(p_user text, p_kind int,
    p_rate int, p_burst int)
RETURNS boolean
LANGUAGE plpgsql
AS $$
DECLARE
    v_now    timestamptz := now();
    v_burst  float8 := greatest(coalesce(p_burst, 1), 1);
BEGIN
    IF coalesce(p_rate, 0) <= 0 THEN
        RETURN true;
    END IF;

    INSERT INTO user_rates AS r (user_id, kind, tokens, at)
    VALUES (p_user, p_kind, v_burst - 1, v_now)
    ON CONFLICT (user_id, kind) DO UPDATE
       SET tokens = least(v_burst,
                          r.tokens
                          + greatest(extract(epoch FROM v_now - r.at), 0)
                            * p_rate / 60.0) - 1,
           at = greatest(r.at, v_now)
     WHERE least(v_burst,
                 r.tokens
                 + greatest(extract(epoch FROM v_now - r.at), 0)
                   * p_rate / 60.0) >= 1;

    RETURN FOUND;
END
$$;


-- ---------------------------------------------------------------------------
-- The limited commands: status 6 when over the rate, else the command's
-- own function (900_functions.sql, 920_media.sql) and its result.
-- ---------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION chat_create_rated(p_creator text,
    p_participants text[], p_name text, p_max int, p_rate int, p_burst int)
RETURNS TABLE(status int, chat_id bigint, event_json text,
              recipients text[])
LANGUAGE plpgsql
AS $$
BEGIN
    IF NOT chat_rate_take(p_creator, 0, p_rate, p_burst) THEN
        RETURN QUERY SELECT 6, NULL::bigint, NULL::text, NULL::text[];
        RETURN;
    END IF;

    RETURN QUERY SELECT * FROM chat_create(p_creator, p_participants,
                                           p_name, p_max);
END
$$;


CREATE OR REPLACE FUNCTION chat_modify_rated(p_actor text, p_chat bigint,
    p_user text, p_op text, p_max int, p_rate int, p_burst int)
RETURNS TABLE(status int, event_json text, recipients text[])
LANGUAGE plpgsql
AS $$
BEGIN
    IF NOT chat_rate_take(p_actor, 1, p_rate, p_burst) THEN
        RETURN QUERY SELECT 6, NULL::text, NULL::text[];
        RETURN;
    END IF;

    RETURN QUERY SELECT * FROM chat_modify(p_actor, p_chat, p_user, p_op,
                                           p_max);
END
$$;


CREATE OR REPLACE FUNCTION chat_media_create_rated(p_user text,
    p_device text, p_type text, p_size bigint, p_sha256 text, p_rate int,
    p_burst int)
RETURNS TABLE(status int, attachment_id text)
LANGUAGE plpgsql
AS $$
BEGIN
    IF NOT chat_rate_take(p_user, 2, p_rate, p_burst) THEN
        RETURN QUERY SELECT 6, NULL::text;
        RETURN;
    END IF;

    RETURN QUERY SELECT * FROM chat_media_create(p_user, p_device, p_type,
                                                 p_size, p_sha256);
END
$$;


-- ---------------------------------------------------------------------------
-- chat_rate_sweep: deletes up to p_limit buckets idle for 7 days (full
-- again for every rate the module allows: at least 1r/m, a burst up to
-- 10000); returns how many.  Called by chat_sweep, first; it skips rows
-- another transaction holds, so it never waits for a rate-limited command
-- (which may wait for the sweep's later locks).
-- ---------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION chat_rate_sweep(p_limit int)
RETURNS bigint
LANGUAGE sql
AS $$
    WITH del AS (
        DELETE FROM user_rates
         WHERE ctid = ANY (ARRAY(SELECT r.ctid
                                   FROM user_rates r
                                  WHERE r.at < now() - interval '7 days'
                                  ORDER BY r.at
                                  LIMIT greatest(coalesce(p_limit, 1000), 1)
                                    FOR UPDATE SKIP LOCKED))
        RETURNING 1)
    SELECT count(*) FROM del
$$;
