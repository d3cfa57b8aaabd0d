-- tests/sql/60_concurrency.sql: several sessions (dblink) sending batches
-- into the same chats at once.  Checks: no deadlock, seq contiguous per
-- chat, id order == seq order per chat, one winner per idempotency key.

SELECT t.reset();

SELECT count(chat_device_connect(u, u || g, 5)) AS x
  FROM unnest(ARRAY['alice', 'bob']) AS u, generate_series(1, 2) AS g
\gset
SELECT chat_id AS ca FROM chat_create('alice', ARRAY['bob'], 'A', 10) \gset
SELECT chat_id AS cb FROM chat_create('bob', ARRAY['alice'], 'B', 10) \gset

-- Run p_sql on n dblink connections at once, p_rounds times; each
-- connection's %1$s is replaced by its number and %2$s by the round.
-- Returns the number of result rows; raises on any remote error.
CREATE OR REPLACE FUNCTION t.parallel(p_sql text, p_n int, p_rounds int,
    p_conn text)
RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    i      int;
    rnd    int;
    rows   bigint := 0;
    n      bigint;
BEGIN
    FOR i IN 1 .. p_n LOOP
        PERFORM dblink_connect('par' || i,
                               p_conn || ' application_name=par' || i);
    END LOOP;

    FOR rnd IN 1 .. p_rounds LOOP
        FOR i IN 1 .. p_n LOOP
            PERFORM dblink_send_query('par' || i, format(p_sql, i, rnd));
        END LOOP;
        FOR i IN 1 .. p_n LOOP
            SELECT count(*) INTO n
              FROM dblink_get_result('par' || i) AS x(v text);
            rows := rows + n;
            PERFORM * FROM dblink_get_result('par' || i) AS x(v text);
        END LOOP;
    END LOOP;

    FOR i IN 1 .. p_n LOOP
        PERFORM dblink_disconnect('par' || i);
    END LOOP;

    RETURN rows;
END
$$;

-- 4 sessions x 15 rounds; each batch has 6 messages over both chats, in
-- opposite chat orders in odd and even sessions
SELECT t.is(t.parallel($q$
    SELECT status::text
      FROM chat_send_batch(
               ARRAY['alice', 'bob', 'alice', 'bob', 'alice', 'bob'],
               ARRAY['alice1', 'bob1', 'alice2', 'bob2', 'alice1', 'bob1'],
               CASE WHEN %1$s %% 2 = 0
                    THEN ARRAY[$q$ || :ca || ',' || :cb || ',' || :ca
                             || ',' || :cb || ',' || :ca || ',' || :cb
                             || $q$]::bigint[]
                    ELSE ARRAY[$q$ || :cb || ',' || :ca || ',' || :cb
                             || ',' || :ca || ',' || :cb || ',' || :ca
                             || $q$]::bigint[]
               END,
               ARRAY['p%1$s-%2$s-1', 'p%1$s-%2$s-2', 'p%1$s-%2$s-3',
                     'p%1$s-%2$s-4', 'p%1$s-%2$s-5', 'p%1$s-%2$s-6'],
               ARRAY['x', 'x', 'x', 'x', 'x', 'x'],
               NULL)
    $q$, 4, 15, :'dbl'), 4 * 15 * 6::bigint,
    'concurrent batches: every element answered, no deadlock');

-- a batch never waits for another: an element whose chat or key another
-- batch holds comes back busy (5) and the gateway sends it again; here
-- every element is sent again in one batch, alone: those stored before
-- are duplicates, the busy ones are stored now
SELECT t.is((SELECT count(*)
               FROM chat_send_batch(
                        ARRAY(SELECT (ARRAY['alice', 'bob'])[2 - k % 2]
                                FROM generate_series(1, 4) i,
                                     generate_series(1, 15) r,
                                     generate_series(1, 6) k
                               ORDER BY i, r, k),
                        ARRAY(SELECT (ARRAY['alice1', 'bob1', 'alice2',
                                            'bob2', 'alice1', 'bob1'])[k]
                                FROM generate_series(1, 4) i,
                                     generate_series(1, 15) r,
                                     generate_series(1, 6) k
                               ORDER BY i, r, k),
                        ARRAY(SELECT CASE WHEN (i + k) % 2 = 1 THEN :ca
                                          ELSE :cb END
                                FROM generate_series(1, 4) i,
                                     generate_series(1, 15) r,
                                     generate_series(1, 6) k
                               ORDER BY i, r, k)::bigint[],
                        ARRAY(SELECT format('p%s-%s-%s', i, r, k)
                                FROM generate_series(1, 4) i,
                                     generate_series(1, 15) r,
                                     generate_series(1, 6) k
                               ORDER BY i, r, k),
                        array_fill('x'::text, ARRAY[360]), NULL)
              WHERE status = 0), 360::bigint,
            'concurrent batches: busy elements stored when sent again');

SELECT t.is((SELECT count(*) FROM messages), 4 * 15 * 6::bigint,
            'concurrent batches: every message stored');
SELECT t.ok((SELECT bool_and(ok) FROM (
                SELECT array_agg(seq ORDER BY id)
                       = array_agg(g ORDER BY g) AS ok
                  FROM (SELECT chat_id, id, seq,
                               row_number() OVER (PARTITION BY chat_id
                                                  ORDER BY seq) AS g
                          FROM messages) AS m
                 GROUP BY chat_id) AS x),
            'concurrent batches: per chat, seq is 1..n in id order');
SELECT t.is((SELECT array_agg(last_seq ORDER BY id) FROM chats)::text,
            '{180,180}', 'concurrent batches: last_seq = messages per chat');

-- the same keys from 4 sessions at once, crossed over two chats (a key is
-- sent to chat A by one session and to chat B by another): no deadlock,
-- exactly one stored message per key
SELECT t.is(t.parallel($q$
    SELECT dup::text
      FROM chat_send_batch(ARRAY['alice', 'alice'], ARRAY['alice1', 'alice1'],
               ARRAY[$q$ || :ca || ',' || :cb || $q$]::bigint[],
               CASE WHEN %1$s %% 2 = 0
                    THEN ARRAY['k-%2$s-x', 'k-%2$s-y']
                    ELSE ARRAY['k-%2$s-y', 'k-%2$s-x']
               END,
               ARRAY['x', 'x'], NULL)
    $q$, 4, 10, :'dbl'), 4 * 10 * 2::bigint,
    'concurrent same keys: every element answered, no deadlock');
-- busy ones sent again (to either chat: a stored key is a duplicate)
SELECT t.is((SELECT count(*)
               FROM chat_send_batch(array_fill('alice'::text, ARRAY[20]),
                        array_fill('alice1'::text, ARRAY[20]),
                        ARRAY(SELECT CASE WHEN k = 'x' THEN :ca ELSE :cb END
                                FROM generate_series(1, 10) r,
                                     unnest(ARRAY['x', 'y']) k
                               ORDER BY r, k)::bigint[],
                        ARRAY(SELECT format('k-%s-%s', r, k)
                                FROM generate_series(1, 10) r,
                                     unnest(ARRAY['x', 'y']) k
                               ORDER BY r, k),
                        array_fill('x'::text, ARRAY[20]), NULL)
              WHERE status = 0), 20::bigint,
            'concurrent same keys: busy ones stored when sent again');
SELECT t.is((SELECT count(*) FROM sent_keys WHERE client_message_id
             LIKE 'k-%'), 20::bigint,
            'concurrent same keys: one key row per key');
SELECT t.is((SELECT count(*) FROM messages
              WHERE client_message_id LIKE 'k-%'), 20::bigint,
            'concurrent same keys: one message per key');

-- concurrent acks of the same messages by every device: all deleted
SELECT t.is(t.parallel($q$
    SELECT chat_ack_batch(array_agg(user_id), array_agg(device_id),
                          array_agg(event_id))::text
      FROM (SELECT * FROM inbox ORDER BY CASE WHEN %1$s %% 2 = 0
                                              THEN event_id
                                              ELSE -event_id END) AS i
    $q$, 4, 1, :'dbl'), 4::bigint,
    'concurrent acks of everything: no deadlock');
SELECT t.is((SELECT count(*) FROM inbox) + (SELECT count(*) FROM messages),
            0::bigint, 'concurrent acks: no inbox row, no message left');

-- busy elements, deterministically: another transaction holds a chat,
-- then an idempotency key; the batch does not wait, stores the rest, and
-- leaves nothing behind for the busy ones (a batch that waited would hit
-- the statement timeout: a failure, not a hang)
SET statement_timeout = '20s';
SELECT dblink_connect('holder', :'dbl') AS x \gset
SELECT dblink_exec('holder', 'BEGIN') AS x \gset
SELECT v AS x FROM dblink('holder', format(
    'SELECT id::text FROM chats WHERE id = %s FOR NO KEY UPDATE', :ca))
    AS r(v text) \gset
SELECT t.is((SELECT array_agg(status ORDER BY idx)
               FROM chat_send_batch(ARRAY['alice', 'alice'],
                                    ARRAY['alice1', 'alice1'],
                                    ARRAY[:ca, :cb]::bigint[],
                                    ARRAY['busy-1', 'busy-2'],
                                    ARRAY['x', 'x'], NULL))::text,
            '{5,0}', 'busy: the element whose chat is held is busy (5)');
SELECT t.is((SELECT count(*) FROM sent_keys
              WHERE client_message_id = 'busy-1'), 0::bigint,
            'busy: nothing is stored for it');
SELECT v AS x FROM dblink('holder',
    'SELECT pg_advisory_xact_lock(hashtextextended('
    || quote_literal('key:alice/alice1/busy-3') || ', 0))::text')
    AS r(v text) \gset
SELECT t.is((SELECT status
               FROM chat_send_batch(ARRAY['alice'], ARRAY['alice1'],
                                    ARRAY[:cb]::bigint[], ARRAY['busy-3'],
                                    ARRAY['x'], NULL)), 5,
            'busy: an element whose key another batch holds is busy');
-- with p_wait the batch waits for the holder instead: sent from a second
-- session while the holder still has the chat, it answers only after the
-- holder commits, and stores the message
SELECT dblink_connect('waiter', :'dbl' || ' application_name=waiter')
    AS x \gset
SELECT dblink_send_query('waiter', format(
    'SELECT status::text FROM chat_send_batch(ARRAY[''alice''], '
    'ARRAY[''alice1''], ARRAY[%s]::bigint[], ARRAY[''busy-w''], '
    'ARRAY[''x''], NULL, true)', :ca)) AS x \gset
CREATE OR REPLACE FUNCTION t.lock_wait(p_app text)
RETURNS boolean
LANGUAGE plpgsql
AS $$
BEGIN
    FOR i IN 1 .. 2000 LOOP
        IF EXISTS (SELECT 1 FROM pg_stat_activity
                    WHERE application_name = p_app
                      AND wait_event_type = 'Lock')
        THEN
            RETURN true;
        END IF;
        PERFORM pg_sleep(0.01);
        PERFORM pg_stat_clear_snapshot();
    END LOOP;
    RETURN false;
END
$$;
SELECT t.ok(t.lock_wait('waiter'),
            'busy: with p_wait it waits for the chat lock');
SELECT t.is(dblink_is_busy('waiter'), 1, 'busy: ... and has not answered');
SELECT dblink_exec('holder', 'COMMIT') AS x \gset
SELECT t.is((SELECT v FROM dblink_get_result('waiter') AS r(v text)), '0',
            'busy: and is stored once the holder commits');
SELECT dblink_disconnect('waiter') AS x \gset
SELECT dblink_disconnect('holder') AS x \gset
SELECT t.is((SELECT array_agg(status::text || dup::text ORDER BY idx)
               FROM chat_send_batch(ARRAY['alice', 'alice', 'alice'],
                                    ARRAY['alice1', 'alice1', 'alice1'],
                                    ARRAY[:ca, :cb, :cb]::bigint[],
                                    ARRAY['busy-1', 'busy-2', 'busy-3'],
                                    ARRAY['x', 'x', 'x'], NULL))::text,
            '{0false,0true,0false}',
            'busy: sent again once the holder is gone, they are stored');
RESET statement_timeout;

-- everything at once: sends, acks in random order, device removal and
-- reconnection, sweeps; no deadlock error, and no message is left without
-- an inbox row
SELECT t.reset();
SELECT count(chat_device_connect('s' || u, 'd' || g, 5)) AS x
  FROM generate_series(1, 12) AS u, generate_series(1, 2) AS g
\gset
SELECT count(*) AS x
  FROM generate_series(1, 12) AS u,
       LATERAL chat_create('s' || u,
                           ARRAY['s' || (u % 12 + 1),
                                 's' || ((u + 5) % 12 + 1)],
                           'g' || u, 10) AS c
\gset

CREATE OR REPLACE FUNCTION t.stress_step(p_sess int, p_round int)
RETURNS text
LANGUAGE plpgsql
AS $$
DECLARE
    v  record;
BEGIN
    IF p_sess IN (1, 2) THEN
        PERFORM chat_ack_batch(array_agg(i.user_id), array_agg(i.device_id),
                               array_agg(i.event_id))
           FROM (SELECT * FROM inbox ORDER BY random() LIMIT 40) AS i;

    ELSIF p_sess = 3 THEN
        SELECT * INTO v FROM devices ORDER BY random() LIMIT 1;
        PERFORM chat_remove_device(v.user_id, v.device_id);
        PERFORM chat_device_connect(v.user_id, v.device_id, 5);

    ELSIF p_sess = 4 THEN
        /* a retention in the future: the 20 oldest rows go */
        PERFORM chat_sweep('-1 hour', '30 days', 20);

    ELSE
        PERFORM count(*)
           FROM (SELECT array_agg(p.user_id ORDER BY n) AS u,
                        array_agg('d' || (1 + n % 2) ORDER BY n) AS d,
                        array_agg(p.chat_id ORDER BY n) AS c,
                        array_agg(format('st-%s-%s-%s', p_sess, p_round, n)
                                  ORDER BY n) AS k
                   FROM generate_series(1, 20) AS n,
                        LATERAL (SELECT * FROM participants
                                  ORDER BY random() + n * 0
                                  LIMIT 1) AS p) AS a,
                LATERAL chat_send_batch(a.u, a.d, a.c, a.k,
                                        array_fill('m'::text, ARRAY[20]),
                                        NULL) AS s;
    END IF;

    RETURN 'ok';
END
$$;

SELECT t.is(t.parallel('SELECT t.stress_step(%1$s, %2$s)', 6, 25, :'dbl'),
            6 * 25::bigint,
            'stress: sends, acks, removals, sweeps at once: no deadlock');
SELECT t.ok((SELECT count(*) FROM messages) > 0, 'stress: messages remain');
SELECT t.is((SELECT count(*) FROM messages m
              WHERE NOT EXISTS (SELECT 1 FROM inbox i
                                 WHERE i.event_id = m.id)), 0::bigint,
            'stress: no message without an inbox row');
SELECT t.ok((SELECT bool_and(ok) FROM (
                SELECT array_agg(seq ORDER BY message_id)
                       = array_agg(seq ORDER BY seq)
                       AS ok
                  FROM sent_keys GROUP BY chat_id) AS x),
            'stress: per chat, id order == seq order');
SELECT t.ok((SELECT coalesce(bool_and(c.last_seq >= x.s), true) FROM chats c
               JOIN (SELECT chat_id, max(seq) AS s FROM messages
                      GROUP BY chat_id) AS x ON x.chat_id = c.id),
            'stress: last_seq is at least every stored seq');
