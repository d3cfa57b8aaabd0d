-- tests/sql/30_send.sql: chat_send_batch: delivery to devices, idempotency,
-- seq and id order, status codes, mixed batches.

SELECT t.reset();

-- alice and bob with 3 devices each, carol with none, xavier with one
SELECT count(chat_device_connect(u, u || g, 5)) AS x
  FROM unnest(ARRAY['alice', 'bob']) AS u, generate_series(1, 3) AS g
\gset
SELECT chat_device_connect('xavier', 'x1', 5) AS x \gset

SELECT chat_id AS chat FROM chat_create('alice', ARRAY['bob', 'carol'],
                                        'abc', 10) \gset
SELECT chat_id AS lone FROM chat_create('xavier', ARRAY['carol'], 'xc', 10)
\gset
SELECT chat_id AS other FROM chat_create('bob', ARRAY['xavier'], 'bx', 10)
\gset
DELETE FROM inbox;

-- one batch, two chats interleaved, several senders ---------------------------
-- each chat's devices are looked up once per batch and paired with its
-- messages by position: every message must still reach every device of
-- its chat but the sending one, and nothing else (rolled back: the cases
-- below count seqs and rows from here)

BEGIN;
SELECT array_agg(message_id ORDER BY idx) AS ids,
       string_agg(status::text, ',' ORDER BY idx) AS sts
  FROM chat_send_batch(ARRAY['bob', 'alice', 'bob', 'xavier', 'alice'],
                       ARRAY['bob1', 'alice2', 'bob3', 'x1', 'alice1'],
                       ARRAY[:other, :chat, :chat, :other, :chat]::bigint[],
                       ARRAY['pb1', 'pb2', 'pb3', 'pb4', 'pb5'],
                       ARRAY['1', '2', '3', '4', '5'],
                       ARRAY['[]', '[]', '[]', '[]', '[]']::jsonb[])
\gset
SELECT t.is(:'sts', '0,0,0,0,0', 'send: a mixed batch is stored');
SELECT t.is((SELECT string_agg(g.n || ':' || coalesce(
                 (SELECT string_agg(i.device_id, ',' ORDER BY i.device_id)
                    FROM inbox i
                   WHERE i.event_id = (:'ids'::bigint[])[g.n]), '-'), ' '
                 ORDER BY g.n)
               FROM generate_series(1, 5) AS g(n)),
            '1:bob2,bob3,x1 2:alice1,alice3,bob1,bob2,bob3 '
            || '3:alice1,alice2,alice3,bob1,bob2 4:bob1,bob2,bob3 '
            || '5:alice2,alice3,bob1,bob2,bob3',
            'send: a mixed batch reaches each chat''s devices but the sender''s');
ROLLBACK;

-- an attachment that is not an uploaded one of the sender: status 4, and
-- event_json names it (sql/920_media.sql validates attachments)
SELECT status AS st, event_json AS ev
  FROM t.send1('alice', 'alice1', :chat, 'cm-att', 'x', '["nope"]') \gset
SELECT t.is(:st, 4, 'send: unknown attachment is bad_request');
SELECT t.is(:'ev', 'nope', 'send: and event_json names it');

-- one message ---------------------------------------------------------------

SELECT status AS st, message_id AS mid, seq AS sq, sent_at_ms AS ms,
       dup AS dp, event_json AS ev, recipients::text AS rc
  FROM t.send1('alice', 'alice1', :chat, 'cm-1', 'hello "world"', '[]')
\gset
SELECT t.is(:st, 0, 'send: ok');
SELECT t.ok(NOT :'dp'::boolean, 'send: not a dup');
SELECT t.is(:sq, 1::bigint, 'send: first seq is 1');
SELECT t.is(:'rc', '{alice,bob}',
            'send: recipients are users with a recipient device');
SELECT t.is((SELECT last_seq FROM chats WHERE id = :chat), 1::bigint,
            'send: last_seq bumped');

SELECT t.is(:'ev'::jsonb,
            jsonb_build_object('type', 'newMessage',
                               'eventId', :'mid', 'chatId', :'chat',
                               'messageId', :'mid', 'seq', 1,
                               'senderId', 'alice',
                               'senderDevice', 'alice1',
                               'message', 'hello "world"',
                               'attachments', '[]'::jsonb,
                               'sentAt', :ms),
            'send: newMessage event content');
SELECT t.is(jsonb_typeof(:'ev'::jsonb -> 'seq'), 'number',
            'send: seq is a number');
SELECT t.is(jsonb_typeof(:'ev'::jsonb -> 'sentAt'), 'number',
            'send: sentAt is a number');
SELECT t.ok((:'ev'::jsonb ->> 'sentAt')::bigint
            BETWEEN chat_ms(now() - interval '1 minute')
                AND chat_ms(now() + interval '1 minute'),
            'send: sentAt is unix ms, now');
SELECT t.ok(:'ev' LIKE '{"type" : "newMessage"%', 'send: "type" comes first');

SELECT t.is((SELECT array_agg(user_id || '/' || device_id
                              ORDER BY user_id, device_id)
               FROM inbox WHERE event_id = :mid)::text,
            '{alice/alice2,alice/alice3,bob/bob1,bob/bob2,bob/bob3}',
            'send: every device but the sending one gets an inbox row');
SELECT t.is(t.inbox_of('alice', 'alice1'), '{}'::bigint[],
            'send: the sending device gets nothing');
SELECT t.ok((SELECT bool_and(kind = 1 AND payload IS NULL
                             AND chat_id = :chat)
               FROM inbox WHERE event_id = :mid),
            'send: inbox rows are kind 1 without payload');
SELECT t.is((SELECT count(*) FROM messages WHERE id = :mid), 1::bigint,
            'send: message stored');
SELECT t.is((SELECT message_id FROM sent_keys
              WHERE user_id = 'alice' AND device_id = 'alice1'
                AND client_message_id = 'cm-1'), :mid::bigint,
            'send: idempotency key stored');

-- idempotent re-send -------------------------------------------------------

SELECT status AS st2, message_id AS mid2, seq AS sq2, sent_at_ms AS ms2,
       dup AS dp2, event_json AS ev2, recipients::text AS rc2
  FROM t.send1('alice', 'alice1', :chat, 'cm-1', 'changed body') \gset
SELECT t.is(:st2, 0, 're-send: status 0');
SELECT t.ok(:'dp2'::boolean, 're-send: dup');
SELECT t.is(:mid2::bigint, :mid::bigint, 're-send: same message id');
SELECT t.is(:sq2::bigint, :sq::bigint, 're-send: same seq');
SELECT t.is(:ms2::bigint, :ms::bigint, 're-send: same sent_at');
SELECT t.is(:'ev2'::jsonb ->> 'message', 'hello "world"',
            're-send: the stored event again (not the changed body)');
SELECT t.is(:'rc2', '{alice,bob}',
            're-send: to the users who have not acked it yet');
SELECT t.is((SELECT count(*) FROM inbox), 5::bigint,
            're-send: nothing delivered twice');
SELECT t.is((SELECT last_seq FROM chats WHERE id = :chat), 1::bigint,
            're-send: last_seq unchanged');
SELECT t.is((SELECT body FROM messages WHERE id = :mid), 'hello "world"',
            're-send: first body kept');

SELECT t.ok((SELECT dup = false AND seq = 2
               FROM t.send1('alice', 'alice2', :chat, 'cm-1', 'x')),
            'the same client id from another device is a new message');

-- seq and id order -----------------------------------------------------------

SELECT count(*) AS n
  FROM generate_series(1, 10) AS g,
       LATERAL t.send1('bob', 'bob1', :chat, 'seq-' || g, 'm' || g) AS s
\gset
SELECT t.is((SELECT array_agg(seq ORDER BY id) FROM messages
              WHERE chat_id = :chat)::text,
            (SELECT array_agg(g) FROM generate_series(1, 12) AS g)::text,
            'seq: 1..12 without gaps, in id order');
SELECT t.is((SELECT last_seq FROM chats WHERE id = :chat), 12::bigint,
            'seq: last_seq 12');

-- sender's other devices ------------------------------------------------------

SELECT message_id AS mb FROM t.send1('bob', 'bob2', :chat, 'b2', 'from b2')
\gset
SELECT t.ok(:mb = ANY (t.inbox_of('bob', 'bob1'))
            AND :mb = ANY (t.inbox_of('bob', 'bob3'))
            AND NOT :mb = ANY (t.inbox_of('bob', 'bob2')),
            'send: sender''s other devices get it, the sending one not');
SELECT t.is((SELECT count(*) FROM inbox WHERE event_id = :mb), 5::bigint,
            'send: 3 devices x 2 users minus the sender = 5 rows');

-- no recipient device at all ------------------------------------------------

SELECT status AS st, message_id AS ml, recipients::text AS rc,
       event_json IS NOT NULL AS hasev
  FROM t.send1('xavier', 'x1', :lone, 'lone-1', 'anyone?') \gset
SELECT t.is(:st, 0, 'no recipient device: status 0');
SELECT t.is(:'rc', '{}', 'no recipient device: empty recipients');
SELECT t.is((SELECT count(*) FROM messages WHERE id = :ml), 0::bigint,
            'no recipient device: message not kept');
SELECT t.is((SELECT count(*) FROM sent_keys
              WHERE client_message_id = 'lone-1'), 1::bigint,
            'no recipient device: key kept');
SELECT t.ok((SELECT dup AND message_id = :ml
               FROM t.send1('xavier', 'x1', :lone, 'lone-1', 'anyone?')),
            'no recipient device: re-send is a dup');

-- statuses ------------------------------------------------------------------

SELECT t.is((SELECT status FROM t.send1('alice', 'alice1', -1, 'k', 'b')), 1,
            'send: unknown chat: 1');
SELECT t.is((SELECT status FROM t.send1('xavier', 'x1', :chat, 'k', 'b')), 2,
            'send: sender not a participant: 2');
SELECT t.is((SELECT last_seq FROM chats WHERE id = :chat), 13::bigint,
            'send: a refused send leaves last_seq alone');
SELECT t.is((SELECT count(*) FROM sent_keys WHERE client_message_id = 'k'),
            0::bigint, 'send: refused sends store no key');
SELECT t.is((SELECT status FROM t.send1('alice', 'alice1', :chat, 'k', NULL)),
            4, 'send: NULL body: 4');
SELECT t.is((SELECT status FROM t.send1('alice', 'alice1', :chat, '', 'b')),
            4, 'send: empty client id: 4');
SELECT t.is((SELECT status FROM t.send1('alice', 'alice1', :chat,
                                        repeat('k', 129), 'b')),
            4, 'send: 129-char client id: 4');
SELECT t.is((SELECT status FROM t.send1('alice', 'alice1', :chat, NULL,
                                        'b')),
            4, 'send: NULL client id: 4');
SELECT t.is((SELECT status FROM t.send1('al ice', 'alice1', :chat, 'k',
                                        'b')),
            4, 'send: bad user id: 4');
SELECT t.is((SELECT status FROM t.send1('alice', 'alice1', NULL, 'k', 'b')),
            4, 'send: NULL chat: 4');
SELECT t.is((SELECT status FROM t.send1('alice', 'alice1', :chat, 'k', 'b',
                                        '{"not":"an array"}')),
            4, 'send: attachments not an array: 4');
SELECT t.is((SELECT event_json::jsonb -> 'attachments'
               FROM t.send1('alice', 'alice1', :chat, 'noatt', '')),
            '[]'::jsonb, 'send: NULL attachments become [] (empty body ok)');
SELECT t.is((SELECT count(*) FROM chat_send_batch('{}', '{}', '{}', '{}',
                                                  '{}', '{}')),
            0::bigint, 'send: empty batch, no rows');

-- a mixed batch -------------------------------------------------------------

SELECT last_seq AS before FROM chats WHERE id = :chat \gset
CREATE TEMP TABLE b AS
SELECT * FROM chat_send_batch(
    ARRAY['alice',  'alice',  'alice', 'xavier', 'alice', 'bob',
          'bob',    'alice',  'alice'],
    ARRAY['alice1', 'alice1', 'alice1', 'x1',    'alice1', 'bob1',
          'bob1',   'alice1', 'alice1'],
    ARRAY[:other,   :chat,    -7,      :chat,    :chat,    :other,
          :chat,    :chat,    :chat]::bigint[],
    ARRAY['mx-a',   'cm-1',   'mx-c',  'mx-d',   'mx-e',   'mx-f',
          'mx-g',   'mx-e',   NULL],
    ARRAY['a',      'b',      'c',     'd',      'e',      'f',
          'g',      'h',      'i'],
    ARRAY[NULL, NULL, NULL, NULL, '[]', NULL, NULL, NULL, NULL]::jsonb[]);

SELECT t.is((SELECT array_agg(idx ORDER BY idx) FROM b)::text,
            '{1,2,3,4,5,6,7,8,9}', 'batch: one row per element');
SELECT t.is((SELECT array_agg(status || ':' || coalesce(dup::text, '-'))
               FROM b)::text,
            '{2:false,0:true,1:false,2:false,0:false,0:false,0:false,'
            '0:true,4:false}',
            'batch: mixed statuses, rows in idx order');
SELECT t.is((SELECT message_id FROM b WHERE idx = 2), :mid::bigint,
            'batch: the dup returns the original id');
SELECT t.is((SELECT message_id FROM b WHERE idx = 8),
            (SELECT message_id FROM b WHERE idx = 5),
            'batch: a key repeated in one batch is a dup of the first');
SELECT t.is((SELECT array_agg(seq ORDER BY idx) FROM b
              WHERE idx IN (5, 7))::text,
            format('{%s,%s}', :before + 1, :before + 2),
            'batch: elements of one chat get consecutive seqs in idx order');
SELECT t.ok((SELECT (array_agg(message_id ORDER BY idx))[1]
                    < (array_agg(message_id ORDER BY idx))[2]
               FROM b WHERE idx IN (5, 7)),
            'batch: and increasing ids');
SELECT t.is((SELECT seq FROM b WHERE idx = 6), 1::bigint,
            'batch: the other chat counts on its own');
SELECT t.is((SELECT recipients::text FROM b WHERE idx = 6), '{bob,xavier}',
            'batch: recipients per element');
SELECT t.is((SELECT event_json::jsonb -> 'attachments' FROM b WHERE idx = 5),
            '[]'::jsonb, 'batch: attachments per element');
SELECT t.ok((SELECT bool_and(message_id IS NULL AND event_json IS NULL
                             AND recipients IS NULL)
               FROM b WHERE status <> 0),
            'batch: failed elements carry no ids or events');
SELECT t.is((SELECT last_seq FROM chats WHERE id = :chat), :before + 2,
            'batch: last_seq counts only the stored messages');
DROP TABLE b;

-- arrays of unequal length: the missing fields make a bad element
SELECT t.is((SELECT array_agg(status ORDER BY idx)
               FROM chat_send_batch(ARRAY['alice', 'alice'],
                                    ARRAY['alice1', 'alice1'],
                                    ARRAY[:chat]::bigint[],
                                    ARRAY['u1', 'u2'], ARRAY['x', 'y'],
                                    NULL))::text,
            '{0,4}', 'batch: short arrays: the missing element is bad');

-- message bodies with any text
SELECT t.is((SELECT (event_json::json ->> 'message')
               FROM t.send1('alice', 'alice1', :chat, 'uni',
                            E'\u00e9\u4e2d\U0001F600 "q" \\ \n\t')),
            E'\u00e9\u4e2d\U0001F600 "q" \\ \n\t',
            'send: unicode and escapes round-trip through the JSON');

-- The hot functions keep generic plans for the whole session, planned on
-- their first call; on tables this small the planner prefers whole-table
-- scans, which become the bottleneck once the tables grow (it happened:
-- hash joins over all of sent_keys).  They must use the indexes anyway.
-- (pg_stat_xact_user_tables also counts this session's scans not yet
-- reported: the test compares before and after.)
BEGIN;
CREATE TEMP TABLE scans ON COMMIT DROP AS
    SELECT relname, seq_scan FROM pg_stat_xact_user_tables;
SELECT message_id AS m1
  FROM chat_send_batch(ARRAY['alice', 'bob'], ARRAY['alice1', 'bob1'],
                       ARRAY[:chat, :other]::bigint[],
                       ARRAY['scan-1', 'scan-2'], ARRAY['x', 'y'], NULL)
 WHERE idx = 1
\gset
SELECT chat_ack_batch(ARRAY['bob'], ARRAY['bob2'], ARRAY[:m1]::bigint[])
    AS acked \gset
SELECT t.is(:acked, 1, 'plans: the ack deleted its inbox row');
SELECT chat_device_connect('alice', 'alice2', 5) AS x \gset
SELECT t.is((SELECT coalesce(string_agg(
                          a.relname || ':'
                          || a.seq_scan - coalesce(b.seq_scan, 0),
                          ' ' ORDER BY a.relname), '')
               FROM pg_stat_xact_user_tables a
               LEFT JOIN scans b ON b.relname = a.relname
              WHERE a.seq_scan > coalesce(b.seq_scan, 0)
                AND a.relname IN ('chats', 'participants', 'devices',
                                  'sent_keys', 'messages', 'inbox')),
            '', 'plans: send, ack and connect scan no table as a whole');
ROLLBACK;

-- Plans made on statistics of nearly empty tables (a queue table is often
-- that small when autovacuum analyzes it) must stay linear in the batch:
-- one that scanned every locked chat for every element read 40 000 chat
-- rows for this batch of 200 and took 100 ms.  Counted in index tuples
-- fetched, not in time.
SELECT t.reset();
ANALYZE chats, participants, devices, inbox, messages, sent_keys;
SELECT count(chat_device_connect('o' || g, 'd', 5))
       + count(chat_device_connect('p' || g, 'd', 5)) AS x
  FROM generate_series(1, 200) AS g
\gset
CREATE TEMP TABLE oc AS
    SELECT g, (SELECT chat_id FROM chat_create('o' || g, ARRAY['p' || g],
                                               'o', 10)) AS c
      FROM generate_series(1, 200) AS g;
BEGIN;
CREATE TEMP TABLE fetched ON COMMIT DROP AS
    SELECT relname, idx_tup_fetch FROM pg_stat_xact_user_tables;
SELECT t.is((SELECT count(*)
               FROM chat_send_batch(
                        ARRAY(SELECT 'o' || g FROM oc ORDER BY g),
                        array_fill('d'::text, ARRAY[200]),
                        ARRAY(SELECT c FROM oc ORDER BY g),
                        ARRAY(SELECT 'lin-' || g FROM oc ORDER BY g),
                        array_fill('x'::text, ARRAY[200]), NULL)
              WHERE status = 0), 200::bigint,
            'plans on empty-table statistics: the batch of 200 is stored');
SELECT t.ok((SELECT a.idx_tup_fetch - coalesce(b.idx_tup_fetch, 0)
               FROM pg_stat_xact_user_tables a
               LEFT JOIN fetched b ON b.relname = a.relname
              WHERE a.relname = 'chats') <= 2000,
            'plans on empty-table statistics: chat rows read stay linear');
ROLLBACK;
DROP TABLE oc;

