-- tests/sql/40_drain_ack.sql: chat_drain order and paging, chat_ack_batch,
-- message deletion once every inbox row is gone (also under a concurrent
-- ack, through dblink), chat_remove_device's inbox cleanup.

SELECT t.reset();

SELECT count(chat_device_connect(u, u || g, 5)) AS x
  FROM unnest(ARRAY['alice', 'bob']) AS u, generate_series(1, 2) AS g
\gset
SELECT chat_id AS chat, event_json AS cev
  FROM chat_create('alice', ARRAY['bob'], 'ab', 10) \gset
SELECT chat_id AS chat2
  FROM chat_create('bob', ARRAY['alice'], 'ba', 10) \gset

-- 5 messages alternating between the chats, from alice1
CREATE TEMP TABLE sent AS
SELECT g, s.*
  FROM generate_series(1, 5) AS g,
       LATERAL t.send1('alice', 'alice1',
                       CASE WHEN g % 2 = 1 THEN :chat ELSE :chat2 END,
                       'd' || g, 'body ' || g) AS s;

-- drain -----------------------------------------------------------------

SELECT t.is((SELECT count(*) FROM chat_drain('bob', 'bob1', 0, 100)),
            7::bigint, 'drain: 2 chat updates + 5 messages');
SELECT t.ok((SELECT bool_and(event_id > prev)
               FROM (SELECT event_id, lag(event_id, 1, 0::bigint)
                                      OVER (ORDER BY ordinality) AS prev
                       FROM chat_drain('bob', 'bob1', 0, 100)
                            WITH ORDINALITY) AS x),
            'drain: rows come in event id order');
SELECT t.is((SELECT event_json FROM chat_drain('bob', 'bob1', 0, 1)), :'cev',
            'drain: first row is the create event, verbatim');
SELECT t.is((SELECT array_agg(d.event_json ORDER BY d.event_id)
               FROM chat_drain('bob', 'bob1', 0, 100) AS d
              WHERE d.event_json::json ->> 'type' = 'newMessage'),
            (SELECT array_agg(event_json ORDER BY message_id) FROM sent),
            'drain: newMessage JSON identical to what send returned');
SELECT t.is((SELECT array_agg(event_id)
               FROM chat_drain('bob', 'bob1', 0, 3))::text,
            (SELECT (array_agg(event_id ORDER BY event_id))[1:3]
               FROM inbox WHERE user_id = 'bob' AND device_id = 'bob1')::text,
            'drain: limit');

-- paging by the last event id seen
SELECT (SELECT max(event_id) FROM chat_drain('bob', 'bob1', 0, 3)) AS p1
\gset
SELECT t.is((SELECT array_agg(event_id ORDER BY event_id)
               FROM chat_drain('bob', 'bob1', :p1, 3))::text,
            (SELECT (array_agg(event_id ORDER BY event_id))[4:6]
               FROM inbox WHERE user_id = 'bob' AND device_id = 'bob1')::text,
            'drain: second page after the last id');
SELECT t.is((SELECT count(*) FROM chat_drain('bob', 'bob1',
                (SELECT max(event_id) FROM inbox), 3)), 0::bigint,
            'drain: nothing after the last id');
SELECT t.is((SELECT count(*) FROM chat_drain('bob', 'bob1', NULL, NULL)),
            7::bigint, 'drain: NULL after and NULL limit mean all, 100');
SELECT t.is((SELECT count(*) FROM chat_drain('bob', 'bob1', 0, 0)), 0::bigint,
            'drain: limit 0');
SELECT t.is((SELECT count(*) FROM chat_drain('alice', 'alice1', 0, 100)),
            2::bigint, 'drain: the sending device has only the updates');

-- the batched drain: each element its own page from its own position, in
-- element order, then event order; an unknown device gets nothing
SELECT t.is((SELECT string_agg(b.idx || ':' || b.event_id, ',' ORDER BY ord)
               FROM chat_drain_batch(
                        ARRAY['bob', 'nobody', 'alice', 'bob'],
                        ARRAY['bob2', 'x', 'alice1', 'bob1'],
                        ARRAY[0, 0, 0, :p1]::bigint[], 3)
                    WITH ORDINALITY AS b(idx, event_id, event_json, ord)),
            (SELECT string_agg(x.i || ':' || x.e, ',' ORDER BY x.i, x.e)
               FROM ((SELECT 1 AS i, event_id AS e
                        FROM chat_drain('bob', 'bob2', 0, 3))
                     UNION ALL
                     (SELECT 3, event_id
                        FROM chat_drain('alice', 'alice1', 0, 3))
                     UNION ALL
                     (SELECT 4, event_id FROM chat_drain('bob', 'bob1', :p1, 3))
                    ) AS x),
            'drain batch: the pages of chat_drain, by element then event');
SELECT t.is((SELECT count(*) FROM chat_drain_batch('{}', '{}', '{}', 3)),
            0::bigint, 'drain batch: an empty batch');
SELECT t.is((SELECT count(*) FROM chat_drain('alice', 'alice2', 0, 100)),
            7::bigint, 'drain: the sender''s other device has all');
SELECT t.is((SELECT count(*) FROM chat_drain('nobody', 'n1', 0, 100)),
            0::bigint, 'drain: unknown device: nothing');

-- ack -------------------------------------------------------------------

SELECT message_id AS m1 FROM sent WHERE g = 1 \gset
SELECT message_id AS m3 FROM sent WHERE g = 3 \gset

SELECT t.is(chat_ack_batch(ARRAY['bob'], ARRAY['bob1'], ARRAY[:m1]::bigint[]),
            1, 'ack: one row deleted');
SELECT t.ok(NOT :m1 = ANY (t.inbox_of('bob', 'bob1')), 'ack: row gone');
SELECT t.is((SELECT count(*) FROM messages WHERE id = :m1), 1::bigint,
            'ack: message kept while other devices have it');
SELECT t.is(chat_ack_batch(ARRAY['bob'], ARRAY['bob1'], ARRAY[:m1]::bigint[]),
            0, 'ack: acking again deletes nothing');
SELECT t.is(chat_ack_batch(ARRAY['bob'], ARRAY['bob9'], ARRAY[:m3]::bigint[]),
            0, 'ack: unknown device deletes nothing');

-- several devices and events in one call, with a duplicate
SELECT t.is(chat_ack_batch(ARRAY['bob', 'alice', 'bob', 'bob'],
                           ARRAY['bob2', 'alice2', 'bob1', 'bob2'],
                           ARRAY[:m1, :m1, :m3, :m1]::bigint[]),
            3, 'ack: many devices in one call, duplicates counted once');
SELECT t.is((SELECT count(*) FROM messages WHERE id = :m1), 0::bigint,
            'ack: message deleted with its last inbox row');
SELECT t.is((SELECT count(*) FROM messages WHERE id = :m3), 1::bigint,
            'ack: message with rows left is kept');
SELECT t.is((SELECT count(*) FROM sent_keys WHERE message_id = :m1),
            1::bigint, 'ack: the idempotency key outlives the message');
SELECT t.ok((SELECT dup FROM t.send1('alice', 'alice1', :chat, 'd1', 'x')),
            'ack: re-send after deletion is still a dup');

-- acking chat updates (kind 2) works the same
SELECT t.is(chat_ack_batch(ARRAY['bob'], ARRAY['bob1'],
                           ARRAY[((:'cev')::json ->> 'eventId')::bigint]),
            1, 'ack: a chat update');

SELECT t.is(chat_ack_batch(NULL, NULL, NULL), 0, 'ack: NULL arrays');

-- remove_device drops the inbox and the messages only it held --------------

SELECT message_id AS m5 FROM sent WHERE g = 5 \gset
SELECT chat_ack_batch(ARRAY['bob', 'bob', 'alice'],
                      ARRAY['bob1', 'bob2', 'alice2'],
                      ARRAY[:m3, :m3, :m3]::bigint[]) AS x \gset
SELECT chat_ack_batch(ARRAY['alice', 'bob'], ARRAY['alice2', 'bob1'],
                      ARRAY[:m5, :m5]::bigint[]) AS x \gset
SELECT t.is((SELECT count(*) FROM inbox WHERE event_id = :m5), 1::bigint,
            'remove_device: m5 left only in bob2');
SELECT t.is(chat_remove_device('bob', 'bob2'), 0, 'remove_device: ok');
SELECT t.is(t.inbox_of('bob', 'bob2'), '{}'::bigint[],
            'remove_device: inbox dropped');
SELECT t.is((SELECT count(*) FROM messages WHERE id = :m5), 0::bigint,
            'remove_device: message only it held is deleted');
SELECT t.is((SELECT count(*) FROM chat_drain('bob', 'bob2', 0, 100)),
            0::bigint, 'drain: inactive device gets nothing');
SELECT t.is((SELECT count(*) FROM t.send1('alice', 'alice1', :chat, 'post',
                                          'x') AS s
              WHERE 'bob' = ANY (s.recipients)), 1::bigint,
            'send after remove_device: bob still a recipient (bob1)');
SELECT t.is((SELECT count(*) FROM inbox
              WHERE user_id = 'bob' AND device_id = 'bob2'), 0::bigint,
            'send after remove_device: the removed device gets nothing');

-- the race: two devices ack the last two rows at the same time ---------------
--
-- This session acks bob1's row inside an open transaction, so the message
-- still has alice2's row when it checks.  A second session (dblink) acks
-- alice2's row meanwhile and must wait on the message lock; after our
-- COMMIT it sees both rows gone and deletes the message.

SELECT message_id AS mr FROM t.send1('alice', 'alice1', :chat, 'race', 'r')
\gset
SELECT t.is((SELECT array_agg(user_id || '/' || device_id
                              ORDER BY user_id, device_id)
               FROM inbox WHERE event_id = :mr)::text,
            '{alice/alice2,bob/bob1}', 'race: two rows: alice2, bob1');

SELECT dblink_connect('racer', :'dbl' || ' application_name=racer') AS x
\gset
BEGIN;
SELECT t.is(chat_ack_batch(ARRAY['bob'], ARRAY['bob1'], ARRAY[:mr]::bigint[]),
            1, 'race: first ack (not committed yet)');
SELECT t.is((SELECT count(*) FROM messages WHERE id = :mr), 1::bigint,
            'race: first ack sees the other row, keeps the message');
SELECT dblink_send_query('racer',
    format('SELECT chat_ack_batch(ARRAY[''alice''], ARRAY[''alice2''], '
           'ARRAY[%s]::bigint[])', :mr)) AS x \gset
SELECT t.ok(t.wait_for_lock_wait('racer'),
            'race: second ack waits on the message lock');
COMMIT;
SELECT t.is((SELECT r FROM dblink_get_result('racer') AS x(r int)), 1,
            'race: second ack deleted its row');
SELECT count(*) AS x FROM dblink_get_result('racer') AS r(r int) \gset
SELECT t.is((SELECT count(*) FROM messages WHERE id = :mr), 0::bigint,
            'race: the message is deleted');
SELECT t.is((SELECT count(*) FROM inbox WHERE event_id = :mr), 0::bigint,
            'race: no inbox rows left');

SELECT dblink_disconnect('racer') AS x \gset
